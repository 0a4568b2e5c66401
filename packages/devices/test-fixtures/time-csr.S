# Reads CLINT mtime, the time CSR, CLINT mtime again, many times over: each time value must lie
# between the two mtime reads around it (passes), else fails with code 1. Then checks that a
# guest write to mtime shows in the time CSR at once (else code 2).
#include "common.h"
  .section .text.init
  .globl _start
_start:
  li s0, MTIME
  li s1, 20000
1:
  ld t0, 0(s0)
  csrr t1, time
  ld t2, 0(s0)
  bltu t1, t0, fail1
  bltu t2, t1, fail1
  addi s1, s1, -1
  bnez s1, 1b
  li t0, 0x123456789
  sd t0, 0(s0)
  csrr t1, time
  bltu t1, t0, fail2
  FINISH_PASS
fail1: FINISH_FAIL(1)
fail2: FINISH_FAIL(2)
