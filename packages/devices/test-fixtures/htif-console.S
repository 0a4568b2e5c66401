# HTIF console output (device 1, command 1), waiting for fromhost after each byte as a
# Spike/QEMU HTIF client does, then exit through tohost with status 0.
#include "common.h"
  .section .text.init
  .globl _start
_start:
  la s0, tohost
  la s1, fromhost
  la s2, msg
next:
  lbu t0, 0(s2)
  beqz t0, end
  li t1, (1 << 56) | (1 << 48)
  or t0, t0, t1
  sd t0, 0(s0)
wait:
  ld t1, 0(s1)
  beqz t1, wait
  sd zero, 0(s1)
  addi s2, s2, 1
  j next
end:
  li t0, 1
  sd t0, 0(s0)
1: j 1b
  .data
msg: .asciz "htif says hi\n"
TOHOST_SECTION
