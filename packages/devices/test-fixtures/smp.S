# Every hart adds 1 << hartid to a shared word with amoadd, then hart 0 waits until all of
# -smp 4's harts have (0xf), prints the hart ids it saw in a0 order, and passes. Harts
# other than 0 park in WFI afterwards.
#include "common.h"
  .section .text.init
  .globl _start
_start:
  csrr a0, mhartid
  la t0, counter
  li t1, 1
  sll t1, t1, a0
  amoadd.d zero, t1, (t0)
  bnez a0, park
  li t2, 0xf
wait:
  ld t1, 0(t0)
  bne t1, t2, wait
  UART_PUTS(msg)
  FINISH_PASS
park:
  wfi
  j park
  .data
  .align 3
counter: .dword 0
msg: .asciz "all 4 harts\n"
