/* Shared definitions for the machine test fixtures (virt memory map). */
#define UART0 0x10000000
#define FINISHER 0x100000
#define CLINT 0x2000000
#define MTIMECMP (CLINT + 0x4000)
#define MTIME (CLINT + 0xbff8)

#define TOHOST_SECTION \
  .section .tohost, "aw", @progbits; \
  .align 6; .globl tohost; tohost: .dword 0; \
  .align 6; .globl fromhost; fromhost: .dword 0

/* Prints the NUL-terminated string at label through the UART; clobbers t0-t2. */
#define UART_PUTS(label) \
  la t0, label; li t1, UART0; 1: lbu t2, 0(t0); beqz t2, 2f; sb t2, 0(t1); addi t0, t0, 1; j 1b; 2:

#define FINISH_PASS li t0, FINISHER; li t1, 0x5555; sw t1, 0(t0); 3: j 3b
#define FINISH_FAIL(code) li t0, FINISHER; li t1, ((code) << 16) | 0x3333; sw t1, 0(t0); 3: j 3b
