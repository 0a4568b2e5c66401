/*
 * `vm-cli demo`'s guest: one line per second of guest time (CLINT mtime, 10 MHz) with its tick
 * number and uptime, while it keeps 8 MiB of RAM busy so a live migration has something to
 * chase: every 100 ms it checks and rewrites 256 pages (1 MiB; the whole buffer every 0.8 s).
 * Each page holds its generation and a pattern derived from (page, generation); a page that
 * does not match (RAM lost or damaged by a migration) is counted and reported as "BAD".
 * Sleeps in WFI on the machine timer between bursts.
 */
#include "harness.h"

const char test_name[] = "demo";

#define TIMEBASE_HZ 10000000UL
#define PAGE_WORDS 512
#define PAGES 2048            /* 8 MiB */
#define PAGES_PER_SLICE 256   /* 1 MiB per 100 ms */
#define SLICES_PER_TICK 10

static uint64_t buf[PAGES][PAGE_WORDS] __attribute__((aligned(4096)));

static uint64_t pattern(uint64_t page, uint64_t gen, uint64_t word) {
  uint64_t x = (page << 32) ^ (gen << 12) ^ word ^ 0x9e3779b97f4a7c15UL;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9UL;
  return x ^ (x >> 29);
}

/* Checks a page against its generation (0 = never written), then writes the next one. */
static int rewrite(uint64_t page) {
  uint64_t *p = buf[page];
  uint64_t gen = p[0];
  int bad = 0;
  if (gen != 0) {
    for (uint64_t w = 1; w < PAGE_WORDS; w++) {
      if (p[w] != pattern(page, gen, w)) {
        bad = 1;
        break;
      }
    }
  }
  gen++;
  for (uint64_t w = 1; w < PAGE_WORDS; w++) p[w] = pattern(page, gen, w);
  p[0] = gen;
  return bad;
}

int main(void) {
  uint64_t hart = csr_read(mhartid);
  printf_("FerryVM demo guest on hart %u: a tick per guest second, 8 MiB of RAM rewritten and checked all along\n", hart);
  uint64_t start = mmio_read64(CLINT_MTIME);
  uint64_t next = start;
  uint64_t cursor = 0, rewritten = 0, bad = 0;
  csr_write(mie, 1UL << IRQ_M_TIMER); /* MIE stays 0: WFI wakes up, no trap is taken */
  for (uint64_t n = 1;; n++) {
    for (int s = 0; s < SLICES_PER_TICK; s++) {
      for (int i = 0; i < PAGES_PER_SLICE; i++) {
        bad += rewrite(cursor);
        cursor = (cursor + 1) % PAGES;
        rewritten++;
      }
      next += TIMEBASE_HZ / SLICES_PER_TICK;
      mmio_write64(CLINT_MTIMECMP + 8 * hart, next);
      while (mmio_read64(CLINT_MTIME) < next) asm volatile("wfi");
    }
    uint64_t up = (mmio_read64(CLINT_MTIME) - start) / (TIMEBASE_HZ / 10);
    printf_("tick %u  uptime %u.%u s  pages rewritten %u, %s\n", n, up / 10, up % 10, rewritten,
            bad == 0 ? "all intact" : "BAD");
    if (bad != 0) printf_("  %u pages did not hold what was written\n", bad);
  }
  return 0;
}
