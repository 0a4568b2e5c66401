/* Interrupts must not change what a program computes: the same integer workload runs in
   S-mode and U-mode under Sv39 while machine timer interrupts arrive every ~20 us (handled
   in M) and each one also raises a supervisor software interrupt (delegated to and handled
   in S during the S run, handled in M during the U run),
   and its result must equal the undisturbed run's. */
#include "tests.h"

const char test_name[] = "irq-storm";

#define PERIOD 200 /* mtime ticks: 20 us */

static uint64_t root_s[512] __attribute__((aligned(4096)));
static uint64_t root_u[512] __attribute__((aligned(4096)));
static volatile uint64_t m_count, s_count;

static volatile uint64_t m_soft_count;

static void m_irq(uint64_t cause, struct frame *f) {
  if ((cause & 63) == IRQ_S_SOFT) { /* not delegated (U run) */
    m_soft_count++;
    csr_clear(mip, 1UL << IRQ_S_SOFT);
    return;
  }
  m_count++;
  mmio_write64(CLINT_MTIMECMP, mmio_read64(CLINT_MTIME) + PERIOD);
  csr_set(mip, 1UL << IRQ_S_SOFT);
}

static void s_soft(uint64_t cause, struct frame *f) {
  s_count++;
  csr_clear(sip, 1UL << IRQ_S_SOFT);
}

static uint64_t arr[64];

static __attribute__((noinline)) uint64_t rec(uint64_t n, uint64_t k) {
  if (n < 2) return n + k;
  return rec(n - 1, k * 3 + 1) ^ rec(n - 2, k + n);
}

static uint64_t workload(uint64_t rounds) {
  uint64_t s = 0x12345678;
  for (int i = 0; i < 64; i++) arr[i] = s = s * 6364136223846793005UL + 1442695040888963407UL;
  uint64_t sum = 0;
  for (uint64_t r = 0; r < rounds; r++) {
    for (int i = 1; i < 64; i++) { /* one insertion-sort pass over a perturbed array */
      uint64_t key = arr[i] ^ (r * 0x9e3779b97f4a7c15UL);
      int j = i - 1;
      while (j >= 0 && arr[j] > key) {
        arr[j + 1] = arr[j];
        j--;
      }
      arr[j + 1] = key;
    }
    sum = (sum << 5 | sum >> 59) + arr[r & 63] + rec(9, r) + sum / ((r | 1) * 3);
  }
  return sum;
}

#define ROUNDS 1500

static uint64_t s_workload(uint64_t rounds) {
  csr_set(sstatus, MSTATUS_SIE);
  uint64_t r = workload(rounds);
  csr_clear(sstatus, MSTATUS_SIE);
  return r;
}

int main(void) {
  root_s[0] = 0xc7;                                  /* MMIO gigapage: V R W A D */
  root_s[2] = (0x80000000UL >> 12 << 10) | 0xcf;     /* RAM gigapage: V R W X A D */
  root_u[0] = 0xc7 | 0x10;
  root_u[2] = root_s[2] | 0x10;
  m_irq_handler = m_irq;
  s_irq_handler = s_soft;
  csr_write(stvec, (uint64_t)s_trap_entry);

  group_begin("undisturbed");
  csr_write(satp, (8UL << 60) | ((uint64_t)root_s >> 12));
  sfence_vma();
  uint64_t want = run_lower(PRV_S, workload, ROUNDS);
  csr_write(satp, 0);
  CHECK("M-mode run agrees with S-mode run", workload(ROUNDS), want);
  group_end();

  group_begin("with interrupts");
  csr_write(mideleg, 1UL << IRQ_S_SOFT);
  csr_write(mie, (1UL << IRQ_M_TIMER) | (1UL << IRQ_S_SOFT));
  mmio_write64(CLINT_MTIMECMP, mmio_read64(CLINT_MTIME) + PERIOD);
  csr_write(satp, (8UL << 60) | ((uint64_t)root_s >> 12));
  sfence_vma();
  /* S runs with SIE = 1 so that the delegated SSIs are taken there */
  uint64_t got_s = run_lower(PRV_S, s_workload, ROUNDS);
  uint64_t m_after_s = m_count;
  /* U pages are not executable for S: in the U run M takes the SSIs too */
  csr_write(mideleg, 0);
  csr_write(satp, (8UL << 60) | ((uint64_t)root_u >> 12));
  sfence_vma();
  uint64_t got_u = run_lower(PRV_U, workload, ROUNDS);
  csr_write(satp, 0);
  mmio_write64(CLINT_MTIMECMP, -1UL);
  csr_write(mie, 0);
  csr_write(mideleg, 0);
  csr_write(mip, 0);
  CHECK("S-mode result", got_s, want);
  CHECK("U-mode result", got_u, want);
  CHECK("timer interrupts arrived during the S run", m_after_s >= 3, 1);
  CHECK("timer interrupts arrived during the U run", m_count - m_after_s >= 3, 1);
  CHECK("delegated SSIs were taken in S", s_count >= 3, 1);
  CHECK("SSIs were taken by M during the U run", m_soft_count >= 3, 1);
  group_end();
  return finish();
}
