/* RV64I: every base instruction with edge cases. Expected values of ALU checks are folded
   by the compiler from the C expression; the instruction itself runs in inline assembly. */
#include "tests.h"

const char test_name[] = "rv64i";

#define MIN64 0x8000000000000000UL
#define MAX64 0x7fffffffffffffffUL

static uint64_t data[4] __attribute__((aligned(64))) = {0x8796a5b4c3d2e1f0UL, 0x0f1e2d3c4b5a6978UL,
                                                       0, 0};
static uint8_t straddle[8192] __attribute__((aligned(4096)));

static void test_upper(void) {
  group_begin("lui/auipc");
  uint64_t r;
  asm volatile(NORVC("lui %0, 0x80000") : "=r"(r));
  CHECK("lui sign-extends", r, 0xffffffff80000000UL);
  asm volatile(NORVC("lui %0, 0x7ffff") : "=r"(r));
  CHECK("lui positive", r, 0x7ffff000UL);
  asm volatile(NORVC("lui %0, 0") : "=r"(r));
  CHECK("lui 0", r, 0);
  uint64_t here, there;
  asm volatile(NORVC("1: auipc %0, 0\n la %1, 1b") : "=r"(here), "=r"(there));
  CHECK("auipc 0 = pc", here, there);
  asm volatile(NORVC("1: auipc %0, 0x80000\n la %1, 1b") : "=r"(here), "=r"(there));
  CHECK("auipc negative offset", here, there - 0x80000000UL);
  asm volatile(NORVC("1: auipc %0, 1\n la %1, 1b") : "=r"(here), "=r"(there));
  CHECK("auipc +4096", here, there + 4096);
  group_end();
}

static void test_imm(void) {
  group_begin("op-imm");
  T_RI("addi", 1, -1, 0);
  T_RI("addi", MAX64, 1, MIN64);
  T_RI("addi", 0, -2048, (uint64_t)-2048);
  T_RI("addi", 0, 2047, 2047);
  T_RI("slti", (uint64_t)-1, 0, 1);
  T_RI("slti", 0, -1, 0);
  T_RI("slti", MIN64, -2048, 1);
  T_RI("sltiu", 0, -1, 1); /* the immediate is sign-extended, then compared unsigned */
  T_RI("sltiu", (uint64_t)-2, -1, 1);
  T_RI("sltiu", (uint64_t)-1, -1, 0);
  T_RI("sltiu", 5, 5, 0);
  T_RI("xori", 0x00ff00ffUL, -1, ~0x00ff00ffUL);
  T_RI("xori", 0x123, 0x7ff, 0x123 ^ 0x7ff);
  T_RI("ori", 0xf0, -2048, 0xfffffffffffff8f0UL);
  T_RI("andi", 0xffffffffffffffffUL, -2048, 0xfffffffffffff800UL);
  T_RI("andi", 0x1234, 0x7f, 0x34);
  T_RI("slli", 1, 63, MIN64);
  T_RI("slli", 0xffUL, 32, 0xff00000000UL);
  T_RI("srli", MIN64, 63, 1);
  T_RI("srli", (uint64_t)-1, 1, MAX64);
  T_RI("srai", MIN64, 63, (uint64_t)-1);
  T_RI("srai", MIN64, 1, 0xc000000000000000UL);
  T_RI("srai", MAX64, 62, 1);
  group_end();

  group_begin("op-imm-32");
  T_RI("addiw", 0x7fffffffUL, 1, 0xffffffff80000000UL);
  T_RI("addiw", 0xffffffffUL, 1, 0);
  T_RI("addiw", 0x123456789UL, 0, 0x23456789UL);
  T_RI("addiw", 0x80000000UL, 0, 0xffffffff80000000UL); /* sext.w */
  T_RI("addiw", 0, -2048, (uint64_t)-2048);
  T_RI("slliw", 1, 31, 0xffffffff80000000UL);
  T_RI("slliw", 0xffffffff00000003UL, 30, 0xffffffffc0000000UL);
  T_RI("slliw", 0x100000001UL, 0, 1);
  T_RI("srliw", 0xffffffff80000000UL, 31, 1);
  T_RI("srliw", 0x80000000UL, 0, 0xffffffff80000000UL);
  T_RI("srliw", 0xfffffffffffffff0UL, 4, 0x0fffffffUL);
  T_RI("sraiw", 0x80000000UL, 31, (uint64_t)-1);
  T_RI("sraiw", 0x7fffffff00000000UL, 4, 0);
  T_RI("sraiw", 0x00000000f0000000UL, 4, 0xffffffffff000000UL);
  group_end();
}

static void test_reg(void) {
  group_begin("op");
  T_RR("add", MAX64, 1, MIN64);
  T_RR("add", (uint64_t)-1, (uint64_t)-1, (uint64_t)-2);
  T_RR("sub", 0, 1, (uint64_t)-1);
  T_RR("sub", MIN64, 1, MAX64);
  T_RR("sll", 1, 64 + 3, 8); /* only the low 6 bits count */
  T_RR("sll", 1, 63, MIN64);
  T_RR("slt", (uint64_t)-1, 1, 1);
  T_RR("slt", 1, (uint64_t)-1, 0);
  T_RR("slt", MIN64, MAX64, 1);
  T_RR("slt", 3, 3, 0);
  T_RR("sltu", 1, (uint64_t)-1, 1);
  T_RR("sltu", (uint64_t)-1, 1, 0);
  T_RR("sltu", 0, 0, 0);
  T_RR("xor", 0xff00ff00ff00ff00UL, 0x0ff00ff00ff00ff0UL, 0xff00ff00ff00ff00UL ^ 0x0ff00ff00ff00ff0UL);
  T_RR("srl", MIN64, 63, 1);
  T_RR("srl", MIN64, 127, 1);
  T_RR("srl", (uint64_t)-1, 0, (uint64_t)-1);
  T_RR("sra", MIN64, 63, (uint64_t)-1);
  T_RR("sra", MIN64, 64 + 4, 0xf800000000000000UL);
  T_RR("sra", MAX64, 63, 0);
  T_RR("or", 0xf0f0UL, 0x0f0fUL, 0xffffUL);
  T_RR("and", 0xf0f0UL, 0x0ff0UL, 0x00f0UL);
  group_end();

  group_begin("op-32");
  T_RR("addw", 0x7fffffffUL, 1, 0xffffffff80000000UL);
  T_RR("addw", 0xffffffff00000001UL, 0x00000000ffffffffUL, 0);
  T_RR("addw", 0x100000000UL, 0x100000000UL, 0);
  T_RR("subw", 0, 1, (uint64_t)-1);
  T_RR("subw", 0x80000000UL, 1, 0x7fffffffUL);
  T_RR("subw", 0x7fffffffUL, (uint64_t)-1, 0xffffffff80000000UL);
  T_RR("sllw", 1, 31, 0xffffffff80000000UL);
  T_RR("sllw", 1, 32, 1); /* only the low 5 bits count */
  T_RR("sllw", 3, 63, 0xffffffff80000000UL);
  T_RR("srlw", 0xffffffff80000000UL, 31, 1);
  T_RR("srlw", 0x80000000UL, 32, 0xffffffff80000000UL);
  T_RR("srlw", 0xffffffff00000000UL, 1, 0);
  T_RR("sraw", 0x80000000UL, 31, (uint64_t)-1);
  T_RR("sraw", 0x80000000UL, 63, (uint64_t)-1);
  T_RR("sraw", 0x40000000UL, 30, 1);
  T_RR("sraw", 0x0000000080000000UL, 0, 0xffffffff80000000UL);
  group_end();
}

#define LOAD(op, base, off)                                                     \
  ({                                                                            \
    uint64_t r_;                                                                \
    asm volatile(NORVC(op " %0, %2(%1)") : "=r"(r_) : "r"(base), "i"(off) : "memory"); \
    r_;                                                                         \
  })
#define STORE(op, base, off, v) \
  asm volatile(NORVC(op " %1, %2(%0)") : : "r"(base), "r"((uint64_t)(v)), "i"(off) : "memory")

static void test_loads(void) {
  uint64_t *d = data;
  group_begin("loads");
  CHECK("lb", LOAD("lb", d, 0), 0xfffffffffffffff0UL);
  CHECK("lb", LOAD("lb", d, 8), 0x78);
  CHECK("lbu", LOAD("lbu", d, 0), 0xf0);
  CHECK("lh", LOAD("lh", d, 0), 0xffffffffffffe1f0UL);
  CHECK("lh", LOAD("lh", d, 8), 0x6978);
  CHECK("lhu", LOAD("lhu", d, 0), 0xe1f0);
  CHECK("lw", LOAD("lw", d, 0), 0xffffffffc3d2e1f0UL);
  CHECK("lw", LOAD("lw", d, 4), 0xffffffff8796a5b4UL);
  CHECK("lw", LOAD("lw", d, 8), 0x4b5a6978UL);
  CHECK("lwu", LOAD("lwu", d, 4), 0x8796a5b4UL);
  CHECK("ld", LOAD("ld", d, 0), 0x8796a5b4c3d2e1f0UL);
  CHECK("ld", LOAD("ld", d, 8), 0x0f1e2d3c4b5a6978UL);
  uint64_t *d8 = d + 1;
  CHECK("lw negative offset", LOAD("lw", d8, -4), 0xffffffff8796a5b4UL);
  CHECK("ld negative offset", LOAD("ld", d8, -8), 0x8796a5b4c3d2e1f0UL);
  group_end();

  group_begin("misaligned loads");
  CHECK("lh +1", LOAD("lh", d, 1), 0xffffffffffffd2e1UL);
  CHECK("lhu +7", LOAD("lhu", d, 7), 0x7887);
  CHECK("lw +1", LOAD("lw", d, 1), 0xffffffffb4c3d2e1UL);
  CHECK("lwu +6", LOAD("lwu", d, 6), 0x69788796UL);
  CHECK("lw +6", LOAD("lw", d, 6), 0x69788796UL);
  CHECK("ld +3", LOAD("ld", d, 3), 0x5a69788796a5b4c3UL);
  CHECK("ld +7", LOAD("ld", d, 7), 0x1e2d3c4b5a697887UL);
  group_end();
}

static void test_stores(void) {
  uint64_t *d = &data[2];
  group_begin("stores");
  d[0] = 0;
  d[1] = 0;
  STORE("sb", d, 0, 0x1234567890abcdefUL);
  CHECK("sb", d[0], 0xef);
  STORE("sh", d, 2, 0x1234567890abcdefUL);
  CHECK("sh", d[0], 0xcdef00efUL);
  STORE("sw", d, 4, 0xfedcba9876543210UL);
  CHECK("sw", d[0], 0x76543210cdef00efUL);
  STORE("sd", d, 8, 0x0123456789abcdefUL);
  CHECK("sd", d[1], 0x0123456789abcdefUL);
  STORE("sb", d, 15, 0xaa);
  CHECK("sb top byte", d[1], 0xaa23456789abcdefUL);
  group_end();

  group_begin("misaligned stores");
  d[0] = 0;
  d[1] = 0;
  STORE("sh", d, 7, 0xbbaa);
  CHECK("sh +7 low", d[0], 0xaa00000000000000UL);
  CHECK("sh +7 high", d[1], 0xbb);
  STORE("sw", d, 1, 0x44332211);
  CHECK("sw +1", d[0], 0xaa00004433221100UL);
  STORE("sd", d, 5, 0x8877665544332211UL);
  CHECK("sd +5 low", d[0], 0x3322114433221100UL);
  CHECK("sd +5 high", d[1], 0x0000008877665544UL);
  group_end();

  group_begin("page-crossing access");
  uint8_t *p = straddle + 4096 - 3;
  STORE("sd", p, 0, 0x0807060504030201UL);
  CHECK("sd across pages: first page", straddle[4095], 0x03);
  CHECK("sd across pages: second page", straddle[4096], 0x04);
  CHECK("sd across pages: last byte", straddle[4100], 0x08);
  CHECK("ld across pages", LOAD("ld", p, 0), 0x0807060504030201UL);
  CHECK("lw across pages", LOAD("lw", p, 1), 0x0000000005040302UL);
  CHECK("lh across pages", LOAD("lh", straddle + 4095, 0), 0x0403);
  group_end();
}

#define BR(op, a, b)                                                                  \
  ({                                                                                  \
    uint64_t t_;                                                                      \
    asm volatile(NORVC(op " %1, %2, 1f\n li %0, 0\n j 2f\n1: li %0, 1\n2:")           \
                 : "=&r"(t_)                                                          \
                 : "r"((uint64_t)(a)), "r"((uint64_t)(b)));                           \
    t_;                                                                               \
  })

static void test_branches(void) {
  group_begin("branches");
  CHECK("beq taken", BR("beq", 5, 5), 1);
  CHECK("beq not taken", BR("beq", 5, 6), 0);
  CHECK("bne taken", BR("bne", 0, MIN64), 1);
  CHECK("bne not taken", BR("bne", -1, -1), 0);
  CHECK("blt signed", BR("blt", -1, 0), 1);
  CHECK("blt not", BR("blt", 0, -1), 0);
  CHECK("blt equal", BR("blt", 7, 7), 0);
  CHECK("blt min max", BR("blt", MIN64, MAX64), 1);
  CHECK("bge", BR("bge", 0, -1), 1);
  CHECK("bge equal", BR("bge", -5, -5), 1);
  CHECK("bge not", BR("bge", MIN64, 0), 0);
  CHECK("bltu", BR("bltu", 0, -1), 1);
  CHECK("bltu not", BR("bltu", -1, 0), 0);
  CHECK("bltu equal", BR("bltu", 9, 9), 0);
  CHECK("bgeu", BR("bgeu", -1, 0), 1);
  CHECK("bgeu equal", BR("bgeu", 0, 0), 1);
  CHECK("bgeu not", BR("bgeu", 1, MIN64), 0);
  /* backward branch */
  uint64_t n;
  asm volatile(NORVC("li %0, 0\n li t0, 10\n1: addi %0, %0, 3\n addi t0, t0, -1\n bnez t0, 1b")
               : "=&r"(n) : : "t0");
  CHECK("backward loop", n, 30);
  group_end();
}

static void test_jumps(void) {
  group_begin("jal/jalr");
  uint64_t link, expect, target;
  asm volatile(NORVC("jal %0, 1f\n2: nop\n1: la %1, 2b") : "=&r"(link), "=&r"(expect));
  CHECK("jal link", link, expect);
  asm volatile(NORVC("la t0, 1f\n jalr %0, 0(t0)\n2: nop\n1: la %1, 2b")
               : "=&r"(link), "=&r"(expect) : : "t0");
  CHECK("jalr link", link, expect);
  /* jalr clears bit 0 of the target */
  asm volatile(NORVC("la t0, 1f\n addi t0, t0, 1\n jalr %0, 0(t0)\n li %1, 99\n j 3f\n1: li %1, 1\n3:")
               : "=&r"(link), "=&r"(target) : : "t0");
  CHECK("jalr clears bit 0", target, 1);
  /* rd == rs1: the target is computed from the old value */
  asm volatile(NORVC("la t0, 1f\n jalr t0, 0(t0)\n2: li %0, 99\n j 3f\n1: mv %0, t0\n la %1, 2b\n3:")
               : "=&r"(link), "=&r"(expect) : : "t0");
  CHECK("jalr rd == rs1", link, expect);
  /* jalr with negative offset */
  asm volatile(NORVC("la t0, 1f + 16\n jalr %0, -16(t0)\n li %1, 99\n j 3f\n1: li %1, 7\n3:")
               : "=&r"(link), "=&r"(target) : : "t0");
  CHECK("jalr negative offset", target, 7);
  group_end();
}

static void test_x0(void) {
  group_begin("x0");
  uint64_t r;
  asm volatile(NORVC("addi x0, x0, 5\n mv %0, x0") : "=r"(r));
  CHECK("addi x0", r, 0);
  asm volatile(NORVC("lui x0, 0x12345\n mv %0, x0") : "=r"(r));
  CHECK("lui x0", r, 0);
  asm volatile(NORVC("ld x0, 0(%1)\n mv %0, x0") : "=r"(r) : "r"(data));
  CHECK("ld x0", r, 0);
  asm volatile(NORVC("jal x0, 1f\n1: mv %0, x0") : "=r"(r));
  CHECK("jal x0", r, 0);
  asm volatile(NORVC("li t0, 1\n add x0, t0, t0\n add %0, x0, t0") : "=r"(r) : : "t0");
  CHECK("add reads x0 as 0", r, 1);
  group_end();
}

/* A buffer to write code into (in .data: RAM we can write and execute). */
static uint32_t code_buf[8] __attribute__((aligned(16), section(".data")));

static void test_fence_i(void) {
  group_begin("fence.i / self-modifying code");
  uint64_t (*fn)(void) = (uint64_t (*)(void))code_buf;
  code_buf[0] = 0x02a00513; /* li a0, 42 */
  code_buf[1] = 0x00008067; /* ret */
  fence_i();
  CHECK("run written code", fn(), 42);
  code_buf[0] = 0x06300513; /* li a0, 99 */
  fence_i();
  CHECK("run rewritten code", fn(), 99);
  asm volatile("fence rw, rw\n fence\n fence.tso" ::: "memory");
  CHECK("fence executes", 1, 1);
  group_end();
}

int main(void) {
  test_upper();
  test_imm();
  test_reg();
  test_loads();
  test_stores();
  test_branches();
  test_jumps();
  test_x0();
  test_fence_i();
  return finish();
}
