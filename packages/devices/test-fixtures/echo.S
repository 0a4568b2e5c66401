# Echoes UART input in upper case until it reads 'q', then passes. Polls LSR.DR, with WFI-free
# busy waiting so the run loop must deliver input while the hart runs.
#include "common.h"
  .section .text.init
  .globl _start
_start:
  li s0, UART0
  UART_PUTS(prompt)
loop:
  lbu t0, 5(s0)
  andi t0, t0, 1
  beqz t0, loop
  lbu t1, 0(s0)
  li t2, 'q'
  beq t1, t2, done
  li t2, 'a'
  bltu t1, t2, out
  li t2, 'z'
  bgtu t1, t2, out
  addi t1, t1, -32
out:
  sb t1, 0(s0)
  j loop
done:
  FINISH_PASS
  .data
prompt: .asciz "> "
