/*
 * The bundled demo guest: a greeting on the UART, then one counter line per second of guest
 * time (CLINT mtime, 10 MHz), sleeping in WFI on the machine timer between lines.
 * Runs until stopped, or for `hello_ticks` lines when that word is patched to non-zero.
 */
#include "harness.h"

const char test_name[] = "hello";

#define TIMEBASE_HZ 10000000UL

/* Lines to print before powering off; 0 = forever. Patchable in the ELF. */
volatile uint64_t hello_ticks __attribute__((section(".data"))) = 0;
/* Guest-time interval between lines, in mtime ticks. Patchable in the ELF. */
volatile uint64_t hello_interval __attribute__((section(".data"))) = TIMEBASE_HZ;

int main(void) {
  uint64_t hart = csr_read(mhartid);
  printf_("Hello from FerryVM! This is a bare-metal RISC-V guest on hart %u.\n", hart);
  uint64_t start = mmio_read64(CLINT_MTIME);
  uint64_t next = start;
  csr_write(mie, 1UL << IRQ_M_TIMER); /* MIE stays 0: WFI wakes up, no trap is taken */
  for (uint64_t n = 1; hello_ticks == 0 || n <= hello_ticks; n++) {
    next += hello_interval;
    mmio_write64(CLINT_MTIMECMP + 8 * hart, next);
    while (mmio_read64(CLINT_MTIME) < next) asm volatile("wfi");
    printf_("tick %u\n", n);
  }
  mmio_write64(CLINT_MTIMECMP + 8 * hart, ~0UL);
  printf_("bye\n");
  return 0;
}
