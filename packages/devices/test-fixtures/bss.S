# Loader fixture: code, a data word 0x11223344 at `word`, and 256 bytes of .bss at `zeros`.
  .section .text.init
  .globl _start
_start:
  j _start
  .data
  .globl word
word: .word 0x11223344
  .bss
  .globl zeros
zeros: .space 256
