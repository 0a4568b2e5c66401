# riscv-tests benchmark syscalls: write(1, buf, len) through magic_mem, then exit(7).
#include "common.h"
  .section .text.init
  .globl _start
_start:
  la s0, tohost
  la s1, fromhost
  la a0, magic
  li t0, 64
  sd t0, 0(a0)
  li t0, 1
  sd t0, 8(a0)
  la t0, msg
  sd t0, 16(a0)
  li t0, 12
  sd t0, 24(a0)
  sd a0, 0(s0)
1: ld t1, 0(s1)
  beqz t1, 1b
  sd zero, 0(s1)
  ld t0, 0(a0)
  li t1, 12
  bne t0, t1, bad
  li t0, 93
  sd t0, 0(a0)
  li t0, 7
  sd t0, 8(a0)
  sd a0, 0(s0)
2: j 2b
bad:
  li t0, (99 << 1) | 1
  sd t0, 0(s0)
3: j 3b
  .data
msg: .ascii "syscall out\n"
  .align 6
magic: .dword 0, 0, 0, 0, 0, 0, 0, 0
TOHOST_SECTION
