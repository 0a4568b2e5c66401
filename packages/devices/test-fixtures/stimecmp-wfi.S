# Sstc: arms stimecmp 20 ms ahead with STIE enabled (SIE off, no trap) and waits in WFI; the
# machine must wake the hart at that deadline although mtimecmp is not armed. Prints "stip".
#include "common.h"
  .section .text.init
  .globl _start
_start:
  li t0, -1
  li t1, MTIMECMP
  sd t0, 0(t1)
  li t0, 1 << 63
  csrs menvcfg, t0
  csrr t0, time
  li t1, 200000
  add s0, t0, t1
  csrw 0x14d, s0  # stimecmp
  li t0, 1 << 5
  csrw mie, t0
1:
  wfi
  csrr t0, mip
  andi t0, t0, 1 << 5
  beqz t0, 1b
  csrr t0, time
  bltu t0, s0, fail
  UART_PUTS(msg)
  FINISH_PASS
fail: FINISH_FAIL(1)
  .data
msg: .asciz "stip\n"
