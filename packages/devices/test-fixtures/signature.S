# riscv-arch-test style: fills a signature region between begin_signature and end_signature,
# then halts through tohost = 1 (the harness dumps the region with --signature).
#include "common.h"
  .section .text.init
  .globl _start
_start:
  la t0, begin_signature
  li t1, 0xaa
  sw t1, 8(t0)
  li t1, 0x0102
  sh t1, 12(t0)
  li t0, 1
  sw t0, tohost, t1
1: j 1b
  .data
  .align 4
  .globl begin_signature
begin_signature:
  .word 0x11223344, 0xdeadbeef, 0, 0xffffffff
  .globl end_signature
end_signature:
TOHOST_SECTION
