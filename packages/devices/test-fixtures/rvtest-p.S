# The shape of a riscv-tests "p" environment program (written for FerryVM, not copied): M-mode
# setup (satp and PMP probes with a temporary mtvec, no delegation), mret into U mode, the test
# body, then ecall; the M-mode trap handler reports TESTNUM through tohost with two 32-bit
# stores (low word, then high word) and keeps repeating them, as riscv-tests do.
# FAIL_AT = 0 passes (tohost = 1); FAIL_AT = n fails as test n (tohost = (n << 1) | 1).
#include "common.h"
#ifndef FAIL_AT
#define FAIL_AT 0
#endif
#define TESTNUM gp
  .section .text.init
  .align 6
  .globl _start
_start:
  j reset
  .align 2
trap:
  csrr t5, mcause
  li t6, 8
  beq t5, t6, write_tohost
  ori TESTNUM, TESTNUM, 1337
write_tohost:
  sw TESTNUM, tohost, t5
  sw zero, tohost + 4, t5
  j write_tohost
reset:
  csrr a0, mhartid
1: bnez a0, 1b
  la t0, 1f
  csrw mtvec, t0
  csrwi satp, 0
  .align 2
1:
  la t0, 1f
  csrw mtvec, t0
  li t0, (1 << 53) - 1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  .align 2
1:
  csrwi mie, 0
  csrwi medeleg, 0
  csrwi mideleg, 0
  li TESTNUM, 0
  la t0, trap
  csrw mtvec, t0
  csrwi mstatus, 0
  la t0, test
  csrw mepc, t0
  mret
test:
  li TESTNUM, 2
  li a1, 5
  li a2, 7
  add a3, a1, a2
  li a4, 12
  bne a3, a4, fail
#if FAIL_AT != 0
  li TESTNUM, FAIL_AT
  j fail
#endif
pass:
  fence
  li TESTNUM, 1
  li a7, 93
  li a0, 0
  ecall
fail:
  fence
  slli TESTNUM, TESTNUM, 1
  ori TESTNUM, TESTNUM, 1
  li a7, 93
  mv a0, TESTNUM
  ecall
TOHOST_SECTION
