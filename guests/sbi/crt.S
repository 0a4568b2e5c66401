/* Start-up of S-mode guests under OpenSBI (fw_dynamic jumps here in S-mode with a0 = hartid,
   a1 = FDT): stack, stvec -> s_trap_entry (s_trap in common/lib.c), main, then exit. */
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
  la t0, boot_regs
  sd a0, 0(t0)
  sd a1, 8(t0)
  sd a2, 16(t0)
  la sp, stack_top
  la t0, s_trap_stack_top
  csrw sscratch, t0
  la t0, s_trap_entry
  csrw stvec, t0
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

  .text
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

/* Unused in S guests, defined for common/lib.c. */
  .globl lower_return
lower_return:
  j lower_return
  .globl run_lower
run_lower:
  j run_lower

  .data
  .align 3
  .globl boot_regs
boot_regs:
  .dword 0, 0, 0

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
