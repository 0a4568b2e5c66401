/* Shaped like riscv-tests' env/p (rv64ui-p-*): trap vector set up first, PMP opened, satp,
   mstatus/medeleg cleared, mret into U-mode, a few TEST_CASE checks with the test number in gp, RVTEST_PASS/FAIL ending in
   an ecall whose handler writes tohost with two 32-bit stores (`sw gp, tohost; sw zero,
   tohost+4`) in a loop, exactly as riscv-tests do. Pass = tohost 1. */
  .file "rvtest.S"
#include "htif.h"
#define TESTNUM gp
  .section .text.init, "ax"
  .globl _start
_start:
  j reset_vector
  .align 2
trap_vector:
  csrr t5, mcause
  li t6, 8 /* ecall from U */
  beq t5, t6, write_tohost
  li t6, 9 /* ecall from S */
  beq t5, t6, write_tohost
  li t6, 11 /* ecall from M */
  beq t5, t6, write_tohost
  li TESTNUM, 1337 /* unexpected trap */
write_tohost:
  sw TESTNUM, tohost, t5
  sw zero, tohost + 4, t5
  j write_tohost
reset_vector:
  li x1, 0
  la t0, 1f
  csrw mtvec, t0
  csrwi satp, 0
  .align 2
1:
  la t0, 1f
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  .align 2
1:
  la t0, trap_vector
  csrw mtvec, t0
  csrwi mstatus, 0
  csrwi medeleg, 0
  csrwi mideleg, 0
  csrwi mie, 0
  li TESTNUM, 0
  la t0, 1f
  csrw mepc, t0
  mret
1:
  /* TEST_RR_OP(2, add, 0xfffffffe, 0xffffffff, 0xffffffff) style checks */
  li TESTNUM, 2
  li x11, 0xffffffff
  li x12, 0xffffffff
  add x14, x11, x12
  li x7, 0x1fffffffe
  bne x14, x7, fail
  li TESTNUM, 3
  li x11, -1
  srli x14, x11, 60
  li x7, 15
  bne x14, x7, fail
  li TESTNUM, 4
  la x1, tdat
  lw x14, 4(x1)
  li x7, 0xffffffff80000000
  bne x14, x7, fail
  li TESTNUM, 5
  li x11, 7
  li x12, 0
  divu x14, x11, x12
  li x7, -1
  bne x14, x7, fail
  bne x0, TESTNUM, pass
fail:
  fence
1:
  beqz TESTNUM, 1b
  sll TESTNUM, TESTNUM, 1
  or TESTNUM, TESTNUM, 1
  li a7, 93
  addi a0, TESTNUM, 0
  ecall
pass:
  fence
  li TESTNUM, 1
  li a7, 93
  li a0, 0
  ecall
  .section .data
  .align 3
tdat:
  .word 0x00ff00ff, 0x80000000
HTIF_MAILBOXES
