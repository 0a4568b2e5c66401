/* The migration workload of QEMU's migration tests (tests/migration's a-b bootblock), for
   RISC-V virt: prints "A" once, then, over and over, increments the first byte of every
   4 KiB page in [mig_start, mig_end) and prints "B" after each pass. Before it increments a
   page it checks the page holds the pass number (mod 256), so a page lost or damaged by a
   save, restore or migration makes it print "E" and power off with status 2. After a
   migration the destination's RAM must show one monotone "edge" and the guest must keep
   printing "B", never "E".
   Runs until stopped; `mig_passes` (patchable, 0 = forever) limits the passes, then it
   powers off. Default range: RAM + 1 MiB to RAM + 100 MiB (needs -m 128M or more). */
#include "harness.h"

const char test_name[] = "a-b";

volatile uint64_t mig_start __attribute__((section(".data"))) = 0x80100000UL;
volatile uint64_t mig_end __attribute__((section(".data"))) = 0x86400000UL;
volatile uint64_t mig_passes __attribute__((section(".data"))) = 0;

int main(void) {
  uint64_t start = mig_start, end = mig_end, passes = mig_passes;
  putchar_('A');
  for (uint64_t n = 0; passes == 0 || n < passes; n++) {
    for (uint64_t p = start; p < end; p += 4096) {
      volatile uint8_t *b = (volatile uint8_t *)p;
      uint8_t v = *b;
      if (v != (uint8_t)n) {
        putchar_('E');
        putchar_('\n');
        return 2;
      }
      *b = (uint8_t)(v + 1);
    }
    putchar_('B');
  }
  putchar_('\n');
  return 0;
}
