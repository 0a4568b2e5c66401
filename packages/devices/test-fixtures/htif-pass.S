# riscv-tests convention: tohost = 1 means pass.
#include "common.h"
  .section .text.init
  .globl _start
_start:
  li t0, 1
  la t1, tohost
  sd t0, 0(t1)
1: j 1b
TOHOST_SECTION
