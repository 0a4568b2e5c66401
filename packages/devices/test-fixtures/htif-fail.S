# riscv-tests convention: tohost = (testnum << 1) | 1 means test testnum failed.
#include "common.h"
  .section .text.init
  .globl _start
_start:
  li t0, (5 << 1) | 1
  la t1, tohost
  sd t0, 0(t1)
1: j 1b
TOHOST_SECTION
