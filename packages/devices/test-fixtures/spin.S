# Never ends: for --timeout.
  .section .text.init
  .globl _start
_start:
  j _start
