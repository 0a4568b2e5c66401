# An S-mode payload for OpenSBI (-bios default, raw image at 0x80200000): checks a0 = hart id
# and a1 = the device tree (FDT magic), prints through the legacy SBI console, then powers off
# through SBI SRST (OpenSBI drives the sifive_test finisher). Linked at 0x80200000; the .bin is
# the raw image (see build.sh).
  .section .text.init
  .globl _start
_start:
  bnez a0, fail
  lwu t0, 0(a1)
  li t1, 0xedfe0dd0
  bne t0, t1, fail
  la s0, msg
1:
  lbu a0, 0(s0)
  beqz a0, 2f
  li a7, 1
  ecall
  addi s0, s0, 1
  j 1b
2:
  li a7, 0x53525354
  li a6, 0
  li a0, 0
  li a1, 0
  ecall
fail:
  li a7, 0x53525354
  li a6, 0
  li a0, 0
  li a1, 1
  ecall
3: j 3b
msg: .asciz "hello from S-mode\n"
