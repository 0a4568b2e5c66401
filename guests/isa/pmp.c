/* PMP: NAPOT, TOR and NA4 regions, priority by entry number, S/U denial when nothing
   matches, M-mode exempt unless locked, the L bit (enforced on M, entry frozen), MPRV,
   and PMP checks on page-table walks. 16 entries; 4-byte granularity. */
#include "tests.h"

const char test_name[] = "pmp";

#define P_R 0x01
#define P_W 0x02
#define P_X 0x04
#define P_TOR 0x08
#define P_NA4 0x10
#define P_NAPOT 0x18
#define P_L 0x80

static uint8_t pg[8][4096] __attribute__((aligned(32768)));
static uint64_t pt_root[512] __attribute__((aligned(4096)));
static uint64_t pt_l1[512] __attribute__((aligned(4096)));

static void set_cfg(int i, uint64_t v) {
  uint64_t shift = (i & 7) * 8;
  if (i < 8) {
    uint64_t c = csr_read(pmpcfg0);
    csr_write(pmpcfg0, (c & ~(0xffUL << shift)) | (v << shift));
  } else {
    uint64_t c = csr_read(pmpcfg2);
    csr_write(pmpcfg2, (c & ~(0xffUL << shift)) | (v << shift));
  }
}

static uint64_t get_cfg(int i) {
  uint64_t c = i < 8 ? csr_read(pmpcfg0) : csr_read(pmpcfg2);
  return (c >> ((i & 7) * 8)) & 0xff;
}

static void set_addr(int i, uint64_t a) {
  switch (i) {
  case 0: csr_write(pmpaddr0, a); break;
  case 1: csr_write(pmpaddr1, a); break;
  case 2: csr_write(pmpaddr2, a); break;
  case 3: csr_write(pmpaddr3, a); break;
  case 4: csr_write(pmpaddr4, a); break;
  case 5: csr_write(pmpaddr5, a); break;
  case 6: csr_write(pmpaddr6, a); break;
  case 7: csr_write(pmpaddr7, a); break;
  case 8: csr_write(pmpaddr8, a); break;
  case 9: csr_write(pmpaddr9, a); break;
  case 10: csr_write(pmpaddr10, a); break;
  case 11: csr_write(pmpaddr11, a); break;
  case 12: csr_write(pmpaddr12, a); break;
  case 13: csr_write(pmpaddr13, a); break;
  case 14: csr_write(pmpaddr14, a); break;
  case 15: csr_write(pmpaddr15, a); break;
  }
}

static uint64_t get_addr(int i) {
  switch (i) {
  case 0: return csr_read(pmpaddr0);
  case 1: return csr_read(pmpaddr1);
  case 2: return csr_read(pmpaddr2);
  case 3: return csr_read(pmpaddr3);
  case 4: return csr_read(pmpaddr4);
  case 5: return csr_read(pmpaddr5);
  case 6: return csr_read(pmpaddr6);
  case 7: return csr_read(pmpaddr7);
  case 8: return csr_read(pmpaddr8);
  case 9: return csr_read(pmpaddr9);
  case 10: return csr_read(pmpaddr10);
  case 11: return csr_read(pmpaddr11);
  case 12: return csr_read(pmpaddr12);
  case 13: return csr_read(pmpaddr13);
  case 14: return csr_read(pmpaddr14);
  default: return csr_read(pmpaddr15);
  }
}

#define NAPOT_4K(p) (((uint64_t)(p) >> 2) | 0x1ff)

/* one access from the current mode */
enum { OP_LOAD, OP_STORE, OP_FETCH };
static volatile uint64_t p_op, p_addr;

static uint64_t probe(uint64_t unused) {
  trap_expect();
  uint64_t v;
  switch (p_op) {
  case OP_LOAD: asm volatile("lw %0, 0(%1)" : "=r"(v) : "r"(p_addr) : "memory"); break;
  case OP_STORE: asm volatile("sw zero, 0(%0)" : : "r"(p_addr) : "memory"); break;
  case OP_FETCH:
    asm volatile("la t1, 1f\n sd t1, 0(%1)\n jalr %0\n 1:" : : "r"(p_addr), "r"(&trap_resume)
                 : "t1", "a0", "ra", "memory");
    break;
  }
  trap_done();
  return trap.count ? trap.cause : 0;
}

static uint64_t access(int mode, int op, uint64_t addr) {
  p_op = op;
  p_addr = addr;
  return mode == PRV_M ? probe(0) : run_lower(mode, probe, 0);
}

#define LAF CAUSE_LOAD_ACCESS
#define SAF CAUSE_STORE_ACCESS
#define FAF CAUSE_FETCH_ACCESS

static void put_code(int i) {
  uint32_t *code = (uint32_t *)pg[i];
  code[0] = 0x02a00513; /* li a0, 42 */
  code[1] = 0x00008067; /* ret */
  fence_i();
}

int main(void) {
  for (int i = 0; i < 8; i++) put_code(i);
  /* Background: entry 14 = the first 2 MiB of RAM (this program), entry 15 = everything. */
  csr_write(pmpcfg0, 0);
  set_addr(14, (0x80000000UL >> 2) | 0x3ffff);
  set_addr(15, -1UL);
  csr_write(pmpcfg2, (uint64_t)(P_NAPOT | P_R | P_W | P_X) << 48 | (uint64_t)(P_NAPOT | P_R | P_W | P_X) << 56);

  group_begin("CSRs");
  set_addr(3, 0x123456789UL);
  CHECK("pmpaddr reads back", csr_read(pmpaddr3), 0x123456789UL);
  set_addr(3, 0);
  set_cfg(3, P_TOR | P_X);
  CHECK("pmpcfg byte 3", get_cfg(3), P_TOR | P_X);
  CHECK("pmpcfg0 layout", csr_read(pmpcfg0), (uint64_t)(P_TOR | P_X) << 24);
  set_cfg(3, 0);
  CHECK("entry 15 in pmpcfg2", csr_read(pmpcfg2) >> 56, P_NAPOT | P_R | P_W | P_X);
  group_end();

  group_begin("every entry");
  for (int i = 0; i < 15; i++) {
    set_addr(i, NAPOT_4K(pg[0]));
    CHECK("pmpaddr reads back", get_addr(i), NAPOT_4K(pg[0]));
    set_cfg(i, P_NAPOT | P_X); /* no R */
    CHECK("entry denies an S load", access(PRV_S, OP_LOAD, (uint64_t)pg[0] + 8 * i), LAF);
    CHECK("entry allows an S fetch", access(PRV_S, OP_FETCH, (uint64_t)pg[0]), 0);
    CHECK("other pages unaffected", access(PRV_S, OP_LOAD, (uint64_t)pg[1]), 0);
    set_cfg(i, 0);
    set_addr(i, 0);
  }
  CHECK("all test entries off again", csr_read(pmpcfg0), 0);
  set_addr(14, (0x80000000UL >> 2) | 0x3ffff);
  set_cfg(14, P_NAPOT | P_R | P_W | P_X);
  group_end();

  group_begin("NAPOT");
  set_addr(0, NAPOT_4K(pg[0]));
  set_cfg(0, P_NAPOT | P_R);
  CHECK("S load from R page", access(PRV_S, OP_LOAD, (uint64_t)pg[0] + 16), 0);
  CHECK("S store to R page", access(PRV_S, OP_STORE, (uint64_t)pg[0] + 16), SAF);
  CHECK("mtval", trap.tval, (uint64_t)pg[0] + 16);
  CHECK("S fetch from R page", access(PRV_S, OP_FETCH, (uint64_t)pg[0]), FAF);
  CHECK("mtval", trap.tval, (uint64_t)pg[0]);
  CHECK("U store to R page", access(PRV_U, OP_STORE, (uint64_t)pg[0] + 4092), SAF);
  CHECK("U load just past the region", access(PRV_U, OP_STORE, (uint64_t)pg[1]), 0);
  CHECK("M store ignores an unlocked entry", access(PRV_M, OP_STORE, (uint64_t)pg[0] + 16), 0);
  set_cfg(0, P_NAPOT | P_X);
  CHECK("S fetch from X page", access(PRV_S, OP_FETCH, (uint64_t)pg[0]), 0);
  CHECK("S load from X page", access(PRV_S, OP_LOAD, (uint64_t)pg[0]), LAF);
  /* an 8 KiB NAPOT region: pg[2] and pg[3] */
  set_addr(0, ((uint64_t)pg[2] >> 2) | 0x3ff);
  set_cfg(0, P_NAPOT);
  CHECK("8 KiB region, first page", access(PRV_S, OP_LOAD, (uint64_t)pg[2]), LAF);
  CHECK("8 KiB region, second page", access(PRV_S, OP_LOAD, (uint64_t)pg[3] + 4092), LAF);
  CHECK("8 KiB region, after", access(PRV_S, OP_LOAD, (uint64_t)pg[4]), 0);
  set_cfg(0, 0);
  group_end();

  group_begin("TOR");
  set_addr(1, (uint64_t)pg[1] >> 2);
  set_addr(2, (uint64_t)pg[3] >> 2); /* [pg1, pg3) */
  set_cfg(2, P_TOR | P_X);
  CHECK("S load in TOR range", access(PRV_S, OP_LOAD, (uint64_t)pg[2] + 100), LAF);
  CHECK("S load at TOR bottom", access(PRV_S, OP_LOAD, (uint64_t)pg[1]), LAF);
  CHECK("S load at TOR top (excluded)", access(PRV_S, OP_LOAD, (uint64_t)pg[3]), 0);
  CHECK("S load below TOR bottom", access(PRV_S, OP_LOAD, (uint64_t)pg[1] - 4), 0);
  CHECK("S fetch in TOR range", access(PRV_S, OP_FETCH, (uint64_t)pg[2]), 0);
  set_cfg(2, 0);
  group_end();

  group_begin("NA4");
  set_addr(4, ((uint64_t)pg[4] + 8) >> 2);
  set_cfg(4, P_NA4);
  CHECK("S load of the NA4 word", access(PRV_S, OP_LOAD, (uint64_t)pg[4] + 8), LAF);
  CHECK("S load of the next word", access(PRV_S, OP_LOAD, (uint64_t)pg[4] + 12), 0);
  CHECK("S load of the previous word", access(PRV_S, OP_LOAD, (uint64_t)pg[4] + 4), 0);
  set_cfg(4, 0);
  group_end();

  group_begin("priority and no match");
  set_addr(0, NAPOT_4K(pg[5]));
  set_cfg(0, P_NAPOT); /* no permissions */
  set_addr(1, ((uint64_t)pg[4] >> 2) | 0x3ff);
  set_cfg(1, P_NAPOT | P_R | P_W);
  CHECK("lowest entry wins: denied", access(PRV_S, OP_LOAD, (uint64_t)pg[5]), LAF);
  CHECK("second entry: allowed", access(PRV_S, OP_LOAD, (uint64_t)pg[4]), 0);
  set_cfg(0, 0);
  set_cfg(1, 0);
  set_cfg(15, 0);
  CHECK("S load where no entry matches", access(PRV_S, OP_LOAD, 0x80400000UL), LAF);
  CHECK("U store where no entry matches", access(PRV_U, OP_STORE, 0x80400000UL), SAF);
  CHECK("M load where no entry matches", access(PRV_M, OP_LOAD, 0x80400000UL), 0);
  set_cfg(15, P_NAPOT | P_R | P_W | P_X);
  group_end();

  group_begin("MPRV");
  set_addr(0, NAPOT_4K(pg[6]));
  set_cfg(0, P_NAPOT | P_R);
  csr_clear(mstatus, MSTATUS_MPP);
  csr_set(mstatus, 1UL << 11);
  trap_expect();
  csr_set(mstatus, MSTATUS_MPRV);
  *(volatile uint32_t *)pg[6] = 1;
  csr_clear(mstatus, MSTATUS_MPRV);
  trap_done();
  CHECK("M store with MPRV, MPP = S: checked as S", trap.cause, SAF);
  csr_set(mstatus, MSTATUS_MPP);
  trap_expect();
  csr_set(mstatus, MSTATUS_MPRV);
  *(volatile uint32_t *)pg[6] = 1;
  csr_clear(mstatus, MSTATUS_MPRV);
  trap_done();
  CHECK("M store with MPRV, MPP = M: allowed", trap.count, 0);
  set_cfg(0, 0);
  group_end();

  group_begin("page-table walk");
  /* Sv39: identity 1 GiB pages for MMIO and RAM; VA 0x4000_0000 maps the first 2 MiB of RAM
     through a level-1 table that PMP then protects. */
  pt_root[0] = (0UL >> 12 << 10) | 0xc7;           /* V R W A D */
  pt_root[1] = ((uint64_t)pt_l1 >> 12 << 10) | 1;  /* V */
  pt_root[2] = (0x80000000UL >> 12 << 10) | 0xcf;  /* V R W X A D */
  pt_l1[0] = (0x80000000UL >> 12 << 10) | 0xc7;
  uint64_t va = 0x40000000UL + ((uint64_t)pg[7] - 0x80000000UL);
  csr_write(satp, (8UL << 60) | ((uint64_t)pt_root >> 12));
  sfence_vma();
  CHECK("walk allowed", access(PRV_S, OP_LOAD, va), 0);
  set_addr(0, NAPOT_4K(pt_l1));
  set_cfg(0, P_NAPOT); /* no access for S, the walk included */
  sfence_vma();
  CHECK("walk denied: load access fault", access(PRV_S, OP_LOAD, va), LAF);
  CHECK("walk denied: mtval = VA", trap.tval, va);
  CHECK("walk denied: store access fault", access(PRV_S, OP_STORE, va + 8), SAF);
  CHECK("identity mapping still fine", access(PRV_S, OP_LOAD, (uint64_t)pg[7]), 0);
  set_cfg(0, 0);
  set_addr(1, NAPOT_4K(pg[7]));
  set_cfg(1, P_NAPOT | P_R);
  CHECK("translated store to a PMP read-only page: access fault", access(PRV_S, OP_STORE, va), SAF);
  CHECK("mtval = VA", trap.tval, va);
  CHECK("translated load allowed", access(PRV_S, OP_LOAD, va), 0);
  set_cfg(1, 0);
  set_cfg(0, 0);
  csr_write(satp, 0);
  sfence_vma();
  group_end();

  group_begin("lock");
  set_addr(5, NAPOT_4K(pg[5]));
  set_cfg(5, P_NAPOT | P_R | P_L);
  CHECK("locked: M load", access(PRV_M, OP_LOAD, (uint64_t)pg[5]), 0);
  CHECK("locked: M store", access(PRV_M, OP_STORE, (uint64_t)pg[5]), SAF);
  CHECK("locked: M fetch", access(PRV_M, OP_FETCH, (uint64_t)pg[5]), FAF);
  CHECK("locked: S store", access(PRV_S, OP_STORE, (uint64_t)pg[5]), SAF);
  set_addr(5, 0);
  CHECK("locked pmpaddr ignores writes", csr_read(pmpaddr5), NAPOT_4K(pg[5]));
  set_cfg(5, P_NAPOT | P_R | P_W | P_X);
  CHECK("locked pmpcfg ignores writes", get_cfg(5), P_NAPOT | P_R | P_L);
  set_cfg(4, P_NA4 | P_R);
  CHECK("other entries in the same pmpcfg stay writable", get_cfg(4), P_NA4 | P_R);
  set_cfg(4, 0);
  set_addr(6, (uint64_t)pg[6] >> 2);
  set_addr(7, (uint64_t)pg[7] >> 2);
  set_cfg(7, P_TOR | P_L | P_R);
  set_addr(6, 0);
  CHECK("locked TOR entry freezes the pmpaddr below", csr_read(pmpaddr6), (uint64_t)pg[6] >> 2);
  CHECK("locked TOR: M store", access(PRV_M, OP_STORE, (uint64_t)pg[6] + 8), SAF);
  CHECK("locked TOR: M load", access(PRV_M, OP_LOAD, (uint64_t)pg[6] + 8), 0);
  group_end();
  return finish();
}
