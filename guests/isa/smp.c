/* Two harts (run with -smp 2): an IPI through the CLINT's msip wakes hart 1 from WFI; both
   harts then hammer shared counters with AMOs and LR/SC retry loops; hart 1 reports through
   memory. Checks that interleaved harts keep atomics atomic and see each other's stores. */
#include "tests.h"

const char test_name[] = "smp";

#define N 20000

static volatile uint64_t amo_counter, lrsc_counter, plain_flag, hart1_done, hart1_id, hart1_seen;
static volatile uint32_t word_counter;

static void work(void) {
  for (int i = 0; i < N; i++) {
    asm volatile("amoadd.d zero, %1, (%0)" : : "r"(&amo_counter), "r"(1UL) : "memory");
    asm volatile("amoadd.w zero, %1, (%0)" : : "r"(&word_counter), "r"(3UL) : "memory");
    uint64_t v, fail;
    asm volatile("1: lr.d %0, (%2)\n addi %0, %0, 2\n sc.d %1, %0, (%2)\n bnez %1, 1b"
                 : "=&r"(v), "=&r"(fail) : "r"(&lrsc_counter) : "memory");
  }
}

static volatile uint64_t res_word, step, sc_result;

static void hart1(uint64_t hartid) {
  mmio_write32(CLINT_MSIP + 4 * hartid, 0);
  hart1_id = hartid;
  while (!plain_flag) {
  }
  hart1_seen = plain_flag;
  work();
  asm volatile("fence rw, rw" ::: "memory");
  hart1_done = 1;
  /* reservation test: LR here, hart 0 changes the word, then our SC must fail */
  while (step != 1) {
  }
  uint64_t v, rc;
  asm volatile("lr.d %0, (%1)" : "=r"(v) : "r"(&res_word) : "memory");
  step = 2;
  while (step != 3) {
  }
  asm volatile("sc.d %0, %2, (%1)" : "=r"(rc) : "r"(&res_word), "r"(v + 100) : "memory");
  sc_result = rc + 1; /* 1 = success */
  for (;;) asm volatile("wfi");
}

int main(void) {
  group_begin("wake-up by IPI");
  extern void (*volatile secondary_entry)(uint64_t);
  secondary_entry = hart1;
  asm volatile("fence rw, rw" ::: "memory");
  mmio_write32(CLINT_MSIP + 4, 1);
  uint64_t end = mmio_read64(CLINT_MTIME) + 10000000UL;
  while (hart1_id == 0 && mmio_read64(CLINT_MTIME) < end) {
  }
  CHECK("hart 1 runs", hart1_id, 1);
  CHECK("msip of hart 1 cleared by hart 1", mmio_read32(CLINT_MSIP + 4), 0);
  CHECK("hart 0 sees no IPI of its own", csr_read(mip) & (1UL << IRQ_M_SOFT), 0);
  group_end();

  group_begin("shared memory and atomics");
  plain_flag = 0x5eed;
  work();
  end = mmio_read64(CLINT_MTIME) + 100000000UL;
  while (!hart1_done && mmio_read64(CLINT_MTIME) < end) {
  }
  CHECK("hart 1 finished", hart1_done, 1);
  CHECK("hart 1 saw hart 0's store", hart1_seen, 0x5eed);
  CHECK("amoadd.d total", amo_counter, 2 * N);
  CHECK("amoadd.w total", word_counter, 3 * 2 * N);
  CHECK("lr/sc total", lrsc_counter, 2 * 2 * N);
  group_end();

  group_begin("reservations across harts");
  res_word = 5;
  step = 1;
  end = mmio_read64(CLINT_MTIME) + 10000000UL;
  while (step != 2 && mmio_read64(CLINT_MTIME) < end) {
  }
  asm volatile("amoadd.d zero, %1, (%0)" : : "r"(&res_word), "r"(1UL) : "memory");
  step = 3;
  while (!sc_result && mmio_read64(CLINT_MTIME) < end) {
  }
  CHECK("hart 1's SC fails after hart 0 changed the word", sc_result, 2);
  CHECK("the word holds hart 0's update", res_word, 6);
  group_end();
  return finish();
}
