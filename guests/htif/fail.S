/* Fails test number 21 through the HTIF convention: tohost = (21 << 1) | 1, exit code 21. */
  .file "fail.S"
#include "htif.h"
  .section .text.init, "ax"
  .globl _start
_start:
  li t0, (21 << 1) | 1
  la t1, tohost
1:
  sd t0, 0(t1)
  j 1b
HTIF_MAILBOXES
