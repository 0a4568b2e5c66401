/*
 * Start-up code and trap entry points of the FerryVM test-guest harness (QEMU virt board,
 * -bios none): hart 0 runs main(), other harts park in WFI. Traps in M-mode go to
 * m_trap_entry, which saves every register in a frame on the M trap stack (mscratch) and calls
 * m_trap(frame); S-mode traps (when a test sets stvec to s_trap_entry) call s_trap(frame).
 * run_lower(mode, fn, arg) runs fn(arg) in U (0) or S (1) mode; fn returns through
 * `ecall` with a7 = LOWER_RETURN_MAGIC, which the M handler turns into a return to run_lower's
 * caller.
 */
  .file "crt.S"
#include "harness.h"

#define FRAME_SIZE (34 * 8)

  .section .text.init, "ax"
  .globl _start
_start:
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  /* What the boot ROM passed: a0 = hartid, a1 = FDT address, a2 = fw_dynamic_info. */
  la t0, boot_regs
  sd a0, 0(t0)
  sd a1, 8(t0)
  sd a2, 16(t0)
  csrr t0, mhartid
  bnez t0, park
  la sp, stack_top
  la t0, m_trap_stack_top
  csrw mscratch, t0
  la t0, m_trap_entry
  csrw mtvec, t0
  /* S and U may access everything until a test says otherwise (QEMU denies them when no PMP
     entry is set). */
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sd zero, 0(t0)
  addi t0, t0, 8
  j 1b
2:
  call main
  call exit
/* Other harts: M trap vector and their own stacks, then wait (MSIE on, MIE off: an IPI wakes
   WFI) until hart 0 publishes secondary_entry; run it as secondary_entry(hartid). */
park:
  la t0, m_trap_entry
  csrw mtvec, t0
  csrr t0, mhartid
  slli t0, t0, 13
  la sp, secondary_stacks
  add sp, sp, t0
  csrw mscratch, sp
  addi sp, sp, -2048
  li t0, 8
  csrw mie, t0
1:
  wfi
  la t0, secondary_entry
  ld t1, 0(t0)
  beqz t1, 1b
  csrr a0, mhartid
  jalr t1
  j 1b

/* The M-mode trap entry. */
  .text
  .align 4
  .globl m_trap_entry
m_trap_entry:
  csrrw sp, mscratch, sp
  addi sp, sp, -FRAME_SIZE
  SAVE_REGS
  csrr t0, mscratch
  sd t0, 2*8(sp)
  csrr t0, mepc
  sd t0, 32*8(sp)
  mv a0, sp
  call m_trap
  ld t0, 32*8(sp)
  csrw mepc, t0
  ld t0, 2*8(sp)
  csrw mscratch, t0
  RESTORE_REGS
  addi sp, sp, FRAME_SIZE
  csrrw sp, mscratch, sp
  mret

/* The S-mode trap entry (used by tests that delegate to S). */
  .align 4
  .globl s_trap_entry
s_trap_entry:
  csrrw sp, sscratch, sp
  addi sp, sp, -FRAME_SIZE
  SAVE_REGS
  csrr t0, sscratch
  sd t0, 2*8(sp)
  csrr t0, sepc
  sd t0, 32*8(sp)
  mv a0, sp
  call s_trap
  ld t0, 32*8(sp)
  csrw sepc, t0
  ld t0, 2*8(sp)
  csrw sscratch, t0
  RESTORE_REGS
  addi sp, sp, FRAME_SIZE
  csrrw sp, sscratch, sp
  sret

/* uint64_t run_lower(int mode, uint64_t (*fn)(uint64_t), uint64_t arg) */
  .globl run_lower
run_lower:
  addi sp, sp, -112
  sd ra, 0(sp)
  sd s0, 8(sp)
  sd s1, 16(sp)
  sd s2, 24(sp)
  sd s3, 32(sp)
  sd s4, 40(sp)
  sd s5, 48(sp)
  sd s6, 56(sp)
  sd s7, 64(sp)
  sd s8, 72(sp)
  sd s9, 80(sp)
  sd s10, 88(sp)
  sd s11, 96(sp)
  csrr t0, mstatus
  sd t0, 104(sp)
  la t0, run_lower_saved_sp
  sd sp, 0(t0)
  /* MIE is 0 while the lower mode runs (M interrupts are enabled there anyway) and the
     caller's MIE comes back at lower_return. */
  li t0, (3 << 11) | (1 << 7)
  csrc mstatus, t0
  andi a0, a0, 3
  slli t1, a0, 11
  csrs mstatus, t1
  la t0, lower_trampoline
  csrw mepc, t0
  mv s0, a1
  mv a0, a2
  la sp, lower_stack_top
  la t0, s_trap_stack_top
  csrw sscratch, t0
  mret
  .globl lower_trampoline
lower_trampoline:
  jalr s0
  li a7, LOWER_RETURN_MAGIC
  ecall
  .globl lower_return
lower_return:
  la t0, run_lower_saved_sp
  ld sp, 0(t0)
  ld ra, 0(sp)
  ld s0, 8(sp)
  ld s1, 16(sp)
  ld s2, 24(sp)
  ld s3, 32(sp)
  ld s4, 40(sp)
  ld s5, 48(sp)
  ld s6, 56(sp)
  ld s7, 64(sp)
  ld s8, 72(sp)
  ld s9, 80(sp)
  ld s10, 88(sp)
  ld s11, 96(sp)
  ld t0, 104(sp)
  andi t0, t0, (1 << 3)
  csrs mstatus, t0
  addi sp, sp, 112
  ret

  .data
  .align 3
  .globl boot_regs
boot_regs:
  .dword 0, 0, 0

  .bss
  .align 3
  .globl secondary_entry
secondary_entry:
  .dword 0
  .align 12
secondary_stacks: /* hart h (1..4) uses the 8 KiB below secondary_stacks + h * 8 KiB */
  .skip 4 * 8192
run_lower_saved_sp:
  .dword 0

/* HTIF mailboxes: defined so that a tohost-aware machine knows where they are. */
  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
  .type tohost, @object
  .size tohost, 8
tohost: .dword 0
  .align 6
  .globl fromhost
  .type fromhost, @object
  .size fromhost, 8
fromhost: .dword 0
