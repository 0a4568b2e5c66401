/* Prints a line through the HTIF console (device 1, command 1: putchar), waiting for the
   host's fromhost acknowledgement after each byte, then passes (tohost = 1). */
  .file "console.S"
#include "htif.h"
  .section .text.init, "ax"
  .globl _start
_start:
  la s0, message
  la s1, tohost
  la s2, fromhost
  li s3, (1 << 56) | (1 << 48)
next:
  lbu a0, 0(s0)
  beqz a0, done
  or t0, s3, a0
  sd t0, 0(s1)
wait:
  ld t1, 0(s2)
  beqz t1, wait
  sd zero, 0(s2)
  addi s0, s0, 1
  j next
done:
  li t0, 1
  sd t0, 0(s1)
  j done
  .section .data
message:
  .string "Hello from the HTIF console!\n"
HTIF_MAILBOXES
