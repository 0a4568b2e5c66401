/* The riscv-tests syscall proxy (as benchmarks/common/syscalls.c uses it): tohost = address
   of magic_mem, magic_mem = {64 (write), fd 1, buf, len}; the host answers in magic_mem[0]
   and sets fromhost. Prints a line, checks the returned length, then exits with
   {93 (exit), 0} through the proxy. Fails with code 3 if write() returned a wrong length.
   (QEMU 7.2's HTIF has no syscall proxy: FerryVM only.) */
  .file "syscall.S"
#include "htif.h"
  .section .text.init, "ax"
  .globl _start
_start:
  la s0, magic_mem
  la s1, tohost
  la s2, fromhost
  li t0, 64
  sd t0, 0(s0)
  li t0, 1
  sd t0, 8(s0)
  la t0, message
  sd t0, 16(s0)
  la t0, message_end
  la t1, message
  sub s4, t0, t1
  sd s4, 24(s0)
  fence
  sd s0, 0(s1)
1:
  ld t1, 0(s2)
  beqz t1, 1b
  sd zero, 0(s2)
  fence
  ld t0, 0(s0)
  bne t0, s4, bad
  li t0, 93
  sd t0, 0(s0)
  sd zero, 8(s0)
  fence
  sd s0, 0(s1)
2:
  j 2b
bad:
  li t0, (3 << 1) | 1
  sd t0, 0(s1)
  j bad
  .section .data
  .align 6
magic_mem:
  .dword 0, 0, 0, 0, 0, 0, 0, 0
message:
  .ascii "Hello through the syscall proxy\n"
message_end:
HTIF_MAILBOXES
