# Reads a PLIC offset that holds no register (QEMU: LOG_GUEST_ERROR "invalid register read"),
# then passes through the finisher. For vm-cli's -d guest_errors and -D.
# Built by build.sh with packages/devices/test-fixtures' link.ld.
  .section .text.init
  .globl _start
_start:
  li t0, 0x0c001400
  lw t1, 0(t0)
  li t0, 0x100000
  li t1, 0x5555
  sw t1, 0(t0)
1: j 1b
