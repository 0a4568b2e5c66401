/*
 * The FerryVM CPU benchmark workload. M-mode start-up builds Sv39 page tables (a 4 KiB-page
 * table for the first 2 MiB of RAM, 2 MiB megapages above, a 1 GiB gigapage over the MMIO
 * low GiB; A/D bits left clear for the hardware to set), then runs the integer workload in
 * S-mode: per iteration a multiply-xorshift hash over a buffer, an insertion sort, a linked-
 * list walk with data-dependent branches, and a recursive function. Prints a checksum from
 * M-mode and powers off through the finisher. `bench_iterations` (a u64 in .data) sets the
 * length: about 1e9 instructions at the default value; the bench app may patch it.
 */
#include "harness.h"

const char test_name[] = "bench";

volatile uint64_t bench_iterations __attribute__((section(".data"))) = 148000;

#define PTE_V 1UL
#define PTE_R 2UL
#define PTE_W 4UL
#define PTE_X 8UL
#define PTE_G 0x20UL

static uint64_t root_pt[512] __attribute__((aligned(4096)));
static uint64_t l1_pt[512] __attribute__((aligned(4096)));
static uint64_t l0_pt[512] __attribute__((aligned(4096)));

#define N_HASH 64
#define N_SORT 24
#define N_LIST 128

struct node {
  struct node *next;
  uint64_t value;
};

static uint64_t hash_buf[N_HASH];
static int64_t sort_buf[N_SORT];
static struct node nodes[N_LIST];

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005UL + 1442695040888963407UL;
  return *s >> 17;
}

static __attribute__((noinline)) uint64_t hash_round(uint64_t seed) {
  uint64_t h = seed ^ 0x9e3779b97f4a7c15UL;
  for (int i = 0; i < N_HASH; i++) {
    uint64_t v = hash_buf[i] ^ h;
    v *= 0xff51afd7ed558ccdUL;
    v ^= v >> 33;
    hash_buf[i] = v;
    h = (h << 5 | h >> 59) + v;
  }
  return h;
}

static __attribute__((noinline)) uint64_t sort_round(uint64_t seed) {
  uint64_t s = seed;
  for (int i = 0; i < N_SORT; i++) sort_buf[i] = (int64_t)lcg(&s) - (1L << 45);
  for (int i = 1; i < N_SORT; i++) {
    int64_t key = sort_buf[i];
    int j = i - 1;
    while (j >= 0 && sort_buf[j] > key) {
      sort_buf[j + 1] = sort_buf[j];
      j--;
    }
    sort_buf[j + 1] = key;
  }
  return (uint64_t)sort_buf[0] ^ (uint64_t)sort_buf[N_SORT / 2] ^ (uint64_t)sort_buf[N_SORT - 1];
}

static __attribute__((noinline)) uint64_t list_round(uint64_t seed) {
  struct node *n = &nodes[seed % N_LIST];
  uint64_t acc = 0;
  for (int i = 0; i < N_LIST; i++) {
    if (n->value & 1)
      acc += n->value;
    else
      acc ^= n->value << (i & 15);
    n->value += acc & 0xff;
    n = n->next;
  }
  return acc;
}

static __attribute__((noinline)) uint64_t rec(uint64_t n, uint64_t k) {
  if (n < 2) return n + k;
  return rec(n - 1, k * 3 + 1) + rec(n - 2, k ^ n);
}

static uint64_t bench_main(uint64_t iterations) {
  uint64_t s = 12345;
  for (int i = 0; i < N_HASH; i++) hash_buf[i] = lcg(&s);
  /* A ring in a scrambled order: i -> (i * 37 + 11) mod 128 (37 is odd, so one cycle). */
  for (int i = 0; i < N_LIST; i++) {
    nodes[i].next = &nodes[(i * 37 + 11) % N_LIST];
    nodes[i].value = lcg(&s);
  }
  uint64_t sum = 0;
  for (uint64_t it = 0; it < iterations; it++) {
    sum += hash_round(sum + it);
    sum ^= sort_round(sum);
    sum += list_round(sum);
    sum = (sum << 7 | sum >> 57) + rec(10, it);
    sum += sum / (it | 1);
  }
  return sum;
}

int main(void) {
  uint64_t ram = 0x80000000UL;
  root_pt[0] = (0UL >> 12 << 10) | PTE_V | PTE_R | PTE_W | PTE_G;      /* 0..1 GiB: MMIO */
  root_pt[2] = ((uint64_t)l1_pt >> 12 << 10) | PTE_V;                  /* 2..3 GiB: RAM */
  l1_pt[0] = ((uint64_t)l0_pt >> 12 << 10) | PTE_V;
  for (int i = 0; i < 512; i++) l0_pt[i] = ((ram + i * 4096UL) >> 12 << 10) | PTE_V | PTE_R | PTE_W | PTE_X;
  for (int i = 1; i < 64; i++) l1_pt[i] = ((ram + i * 0x200000UL) >> 12 << 10) | PTE_V | PTE_R | PTE_W | PTE_X;
  csr_write(satp, (8UL << 60) | ((uint64_t)root_pt >> 12));
  sfence_vma();
  uint64_t n = bench_iterations;
  printf_("bench: %u iterations in S-mode with Sv39\n", n);
  uint64_t sum = run_lower(PRV_S, bench_main, n);
  csr_write(satp, 0);
  printf_("bench: checksum %016lx\n", sum);
  return 0;
}
