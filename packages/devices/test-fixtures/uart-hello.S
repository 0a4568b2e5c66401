# Prints through the 16550 UART, then passes through the sifive_test finisher.
#include "common.h"
  .section .text.init
  .globl _start
_start:
  csrr a3, mhartid
  bnez a3, park
  UART_PUTS(msg)
  FINISH_PASS
park:
  wfi
  j park
  .data
msg: .asciz "hello from uart\n"
