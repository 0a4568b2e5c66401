# Waits in WFI forever with interrupts disabled (an idle guest must not spin the host).
  .section .text.init
  .globl _start
_start:
  csrw mie, zero
1: wfi
  j 1b
