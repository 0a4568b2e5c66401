# Arms the CLINT timer 20 ms ahead (10 MHz), sleeps in WFI with MTIE enabled (MIE off, so
# WFI wakes without trapping), checks that mtime passed the deadline, prints "tick", passes.
#include "common.h"
  .section .text.init
  .globl _start
_start:
  li t0, MTIME
  ld t1, 0(t0)
  li t2, 200000
  add s0, t1, t2
  li t0, MTIMECMP
  sd s0, 0(t0)
  li t0, 1 << 7
  csrw mie, t0
wait:
  wfi
  csrr t1, mip
  andi t1, t1, 1 << 7
  beqz t1, wait
  li t0, MTIME
  ld t1, 0(t0)
  bltu t1, s0, fail
  csrr t1, time
  bltu t1, s0, fail
  UART_PUTS(msg)
  FINISH_PASS
fail:
  FINISH_FAIL(9)
  .data
msg: .asciz "tick\n"
