/* Random-program decoder and ALU check. Blocks of random instructions (RV64IM register and
   immediate ALU ops, LUI/AUIPC, compressed ALU ops, with random funct3/funct7/shift fields so
   that many are illegal and must trap) run on registers a0-a5 filled with random and edge
   values. Every register result and every illegal-instruction trap feeds a checksum, compared
   with the value QEMU 7.2 computes. Encodings of Zba/Zbb/Zbc/Zbs (which QEMU 7.2 enables by
   default) are never generated. */
#include "tests.h"

const char test_name[] = "fuzz";

#define BLOCKS 3000
#define INSNS 24 /* instructions (16- or 32-bit) per block */

/* From QEMU 7.2 (qemu-system-riscv64 -M virt -bios none -kernel isa/fuzz.elf). */
#define EXPECTED_SUM 0x0ed1ce415569cdc3UL
#define EXPECTED_TRAPS 0x33eaUL
#define EXPECTED_MEM 0xddf3f99fd615f573UL

static uint64_t rng = 0x9e3779b97f4a7c15UL;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static uint64_t pick(const uint64_t *v, int n) { return v[rnd() % n]; }

static const uint64_t edge[] = {0, 1, -1UL, 0x8000000000000000UL, 0x7fffffffffffffffUL,
                                0x80000000UL, 0x7fffffffUL, 0xffffffffUL, 0xffffffff80000000UL,
                                0x100000000UL, 31, 32, 63, 64, 0xfffUL, 0x800UL};

static uint64_t value(void) {
  return (rnd() & 3) == 0 ? pick(edge, sizeof edge / 8) : rnd() >> (rnd() & 63);
}

/* At a fixed address (1 MiB into RAM, past this program) so AUIPC results do not depend on
   the program's layout. */
#define code ((uint16_t *)0x80100000UL)

static uint32_t reg(void) { return 10 + rnd() % 6; } /* a0..a5 */

static uint32_t rtype(uint32_t op, uint32_t f3, uint32_t f7) {
  return f7 << 25 | reg() << 20 | reg() << 15 | f3 << 12 | reg() << 7 | op;
}

static uint32_t gen32(void) {
  uint32_t f3 = rnd() % 8;
  switch (rnd() % 6) {
  case 0: { /* OP */
    static const uint64_t f7s[] = {0x00, 0x00, 0x01, 0x01, 0x20, 0x02, 0x40, 0x7f, 0x08};
    uint32_t f7 = pick(f7s, 9);
    if (f7 == 0x20 && (f3 == 4 || f3 == 6 || f3 == 7)) f7 = 0; /* xnor/orn/andn are Zbb */
    return rtype(0x33, f3, f7);
  }
  case 1: { /* OP-32 */
    static const uint64_t f7s[] = {0x00, 0x00, 0x01, 0x01, 0x20, 0x02, 0x40, 0x08};
    return rtype(0x3b, f3, pick(f7s, 8));
  }
  case 2: { /* OP-IMM */
    uint32_t imm = rnd() & 0xfff;
    if (f3 == 1) {
      static const uint64_t f6s[] = {0x00, 0x00, 0x00, 0x01, 0x20, 0x3f, 0x08};
      imm = pick(f6s, 7) << 6 | (imm & 63);
    } else if (f3 == 5) {
      static const uint64_t f6s[] = {0x00, 0x10, 0x00, 0x10, 0x01, 0x3f, 0x20, 0x08};
      imm = pick(f6s, 8) << 6 | (imm & 63);
    }
    return imm << 20 | reg() << 15 | f3 << 12 | reg() << 7 | 0x13;
  }
  case 3: { /* OP-IMM-32 */
    uint32_t imm = rnd() & 0xfff;
    if (f3 == 1 || f3 == 5) {
      static const uint64_t f7s[] = {0x00, 0x00, 0x20, 0x01, 0x40};
      imm = pick(f7s, 5) << 5 | (imm & 31);
      if (f3 == 1 && (imm >> 5) == 0x20) imm &= 31; /* keep slliw mostly legal */
    }
    return imm << 20 | reg() << 15 | f3 << 12 | reg() << 7 | 0x1b;
  }
  case 4: return (uint32_t)(rnd() & 0xfffff000) | reg() << 7 | 0x37; /* LUI */
  default: return (uint32_t)(rnd() & 0xfffff000) | reg() << 7 | 0x17; /* AUIPC */
  }
}

static uint16_t gen16(void) {
  uint32_t rd = reg(), rs2 = reg(), rdp = rd - 8, rs2p = rs2 - 8;
  uint32_t imm6 = rnd() & 63;
  switch (rnd() % 9) {
  case 0: return 0x0001 | (imm6 >> 5) << 12 | rd << 7 | (imm6 & 31) << 2;          /* c.addi */
  case 1: return 0x2001 | (imm6 >> 5) << 12 | rd << 7 | (imm6 & 31) << 2;          /* c.addiw */
  case 2: return 0x4001 | (imm6 >> 5) << 12 | rd << 7 | (imm6 & 31) << 2;          /* c.li */
  case 3:                                                                             /* c.lui */
    if (imm6 == 0) imm6 = 1;
    return 0x6001 | (imm6 >> 5) << 12 | rd << 7 | (imm6 & 31) << 2;
  case 4: /* c.srli / c.srai / c.andi */
    return 0x8001 | (imm6 >> 5) << 12 | (rnd() % 3) << 10 | rdp << 7 | (imm6 & 31) << 2;
  case 5: /* c.sub c.xor c.or c.and c.subw c.addw and the two reserved ones */
    return 0x8c01 | (rnd() & 1) << 12 | rdp << 7 | (rnd() & 3) << 5 | rs2p << 2;
  case 6: return 0x0002 | (imm6 >> 5) << 12 | rd << 7 | (imm6 & 31) << 2;          /* c.slli */
  case 7: return 0x8002 | rd << 7 | rs2 << 2;                                       /* c.mv */
  default: return 0x9002 | rd << 7 | rs2 << 2;                                      /* c.add */
  }
}

static uint64_t regs[6];

static void run_block(void) {
  asm volatile("ld a0, 0(%0)\n ld a1, 8(%0)\n ld a2, 16(%0)\n ld a3, 24(%0)\n ld a4, 32(%0)\n"
               "ld a5, 40(%0)\n jalr %1\n sd a0, 0(%0)\n sd a1, 8(%0)\n sd a2, 16(%0)\n"
               "sd a3, 24(%0)\n sd a4, 32(%0)\n sd a5, 40(%0)"
               : : "r"(regs), "r"(code) : "a0", "a1", "a2", "a3", "a4", "a5", "ra", "memory");
}

static uint8_t mbuf[8192] __attribute__((aligned(4096)));

/* Random loads and stores of every size and alignment around a page boundary. */
static uint64_t mem_fuzz(void) {
  uint64_t sum = 0;
  for (int i = 0; i < 8192; i++) mbuf[i] = (uint8_t)(i * 7 + 3);
  for (int i = 0; i < 40000; i++) {
    uint8_t *p = mbuf + 4096 - 40 + rnd() % 80;
    uint64_t v = value(), r = 0;
    switch (rnd() % 11) {
    case 0: asm volatile("lb %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 1: asm volatile("lh %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 2: asm volatile("lw %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 3: asm volatile("ld %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 4: asm volatile("lbu %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 5: asm volatile("lhu %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 6: asm volatile("lwu %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 7: asm volatile("sb %0, 0(%1)" : : "r"(v), "r"(p) : "memory"); break;
    case 8: asm volatile("sh %0, 0(%1)" : : "r"(v), "r"(p) : "memory"); break;
    case 9: asm volatile("sw %0, 0(%1)" : : "r"(v), "r"(p) : "memory"); break;
    default: asm volatile("sd %0, 0(%1)" : : "r"(v), "r"(p) : "memory"); break;
    }
    sum = (sum ^ r) * 0x100000001b3UL + (sum >> 31);
  }
  for (int i = 4096 - 48; i < 4096 + 48; i++) sum = (sum ^ mbuf[i]) * 0x100000001b3UL;
  return sum;
}

int main(void) {
  group_begin("random blocks");
  uint64_t sum = 0, traps = 0;
  for (int b = 0; b < BLOCKS; b++) {
    int n = 0;
    for (int i = 0; i < INSNS; i++) {
      if (rnd() & 1) {
        code[n++] = gen16();
      } else {
        uint32_t w = gen32();
        code[n++] = (uint16_t)w;
        code[n++] = (uint16_t)(w >> 16);
      }
    }
    code[n++] = 0x8082; /* c.ret */
    fence_i();
    for (int r = 0; r < 6; r++) regs[r] = value();
    trap_expect();
    run_block();
    trap_done();
    traps += trap.count;
    for (int r = 0; r < 6; r++) sum = (sum ^ regs[r]) * 0x100000001b3UL + (sum >> 29);
    sum += trap.count;
  }
  CHECK("illegal instructions trapped", traps, EXPECTED_TRAPS);
  CHECK("checksum of all results", sum, EXPECTED_SUM);
  group_end();

  group_begin("random loads and stores across a page boundary");
  CHECK("checksum of loaded values and memory", mem_fuzz(), EXPECTED_MEM);
  group_end();
  return finish();
}
