/* ELF loading by physical address: .vdata is linked at VA 0xffffffffc0000000 but loaded at
   PA 0x80010000 (p_paddr). Checks the bytes at the physical address, that the bss-like
   area past it reads zero, and passes through HTIF (tohost = 1); fails with code 2 or 3. */
  .file "paddr.S"
#include "htif.h"
  .section .text.init, "ax"
  .globl _start
_start:
  li t0, 0x80010000
  ld t1, 0(t0)
  li t2, 0x0123456789abcdef
  li a0, (2 << 1) | 1
  bne t1, t2, done
  ld t1, 8(t0)
  li t2, 0xfedcba9876543210
  bne t1, t2, done
  li a0, (3 << 1) | 1
  li t0, 0x80020000
  ld t1, 0(t0)
  bnez t1, done
  li a0, 1
done:
  la t0, tohost
1:
  sd a0, 0(t0)
  j 1b
  .section .vdata, "aw", @progbits
  .dword 0x0123456789abcdef, 0xfedcba9876543210
  .section .bss
  .dword 0
HTIF_MAILBOXES
