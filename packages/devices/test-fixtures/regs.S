# Reports the reset-vector registers: a0 = hartid, a1 = FDT address (must be 0x87e00000 with
# 128 MiB), a2 = 0x1028 (fw_dynamic_info), priv = M (mstatus readable). Fails with a code per check.
#include "common.h"
  .section .text.init
  .globl _start
_start:
  bnez a0, f1
  li t0, 0x87e00000
  bne a1, t0, f2
  li t0, 0x1028
  bne a2, t0, f3
  lwu t0, 0(a1)
  li t1, 0xedfe0dd0
  bne t0, t1, f4
  csrr t0, mstatus
  FINISH_PASS
f1: FINISH_FAIL(1)
f2: FINISH_FAIL(2)
f3: FINISH_FAIL(3)
f4: FINISH_FAIL(4)
