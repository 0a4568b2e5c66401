# Writes tohost from S-mode through a virtual alias (Sv39 gigapages: VA 0x8000_0000 and
# 0xc000_0000 both map PA 0x8000_0000), as riscv-tests' "v" environment does: the HTIF exit
# must be seen at the physical address. Reports test 6 failed (tohost = 13).
#include "common.h"
  .section .text.init
  .globl _start
_start:
  la t0, root_pt
  li t1, (0x80000 << 10) | 0xcf
  sd t1, 16(t0)
  sd t1, 24(t0)
  srli t0, t0, 12
  li t1, 8 << 60
  or t0, t0, t1
  csrw satp, t0
  sfence.vma
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  li t0, 1 << 11
  csrw mstatus, t0
  la t0, smode
  csrw mepc, t0
  mret
smode:
  la t0, tohost
  li t1, 0x40000000
  add t0, t0, t1
  li t2, (6 << 1) | 1
  sd t2, 0(t0)
1: j 1b
  .data
  .align 12
root_pt: .fill 512, 8, 0
TOHOST_SECTION
