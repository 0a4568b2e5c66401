/* RVC: every RV64C instruction, the reserved encodings, 32-bit instructions at 2-byte
   alignment and across a page boundary. */
#include "tests.h"

const char test_name[] = "rv64c";

static uint64_t mem[8] __attribute__((aligned(64)));

/* Run `body` with a0 = a, a1 = b; result in a0. */
#define C2(body, a, b)                                                                   \
  ({                                                                                     \
    register uint64_t a0_ asm("a0") = (uint64_t)(a);                                     \
    register uint64_t a1_ asm("a1") = (uint64_t)(b);                                     \
    asm volatile(body : "+r"(a0_), "+r"(a1_) : : "a2", "a3", "a4", "a5", "memory");     \
    a0_;                                                                                 \
  })

int main(void) {
  group_begin("integer register-immediate");
  CHECK("c.li", C2("c.li a0, -32", 0, 0), (uint64_t)-32);
  CHECK("c.li", C2("c.li a0, 31", 0, 0), 31);
  CHECK("c.lui", C2("c.lui a0, 0xfffe0", 0, 0), 0xfffffffffffe0000UL);
  CHECK("c.lui", C2("c.lui a0, 1", 0, 0), 0x1000);
  CHECK("c.lui", C2("c.lui a0, 0x1f", 0, 0), 0x1f000);
  CHECK("c.addi", C2("c.addi a0, -1", 0, 0), (uint64_t)-1);
  CHECK("c.addi", C2("c.addi a0, 31", 0x7fffffffffffffffUL, 0), 0x800000000000001eUL);
  CHECK("c.addiw", C2("c.addiw a0, 1", 0x7fffffff, 0), 0xffffffff80000000UL);
  CHECK("c.addiw 0 = sext.w", C2("c.addiw a0, 0", 0x1ffffffffUL, 0), (uint64_t)-1);
  CHECK("c.slli", C2("c.slli a0, 63", 1, 0), 0x8000000000000000UL);
  CHECK("c.slli", C2("c.slli a0, 32", 0xffffffffUL, 0), 0xffffffff00000000UL);
  CHECK("c.srli", C2("c.srli a0, 63", 0x8000000000000000UL, 0), 1);
  CHECK("c.srli", C2("c.srli a0, 32", 0xffffffff00000000UL, 0), 0xffffffffUL);
  CHECK("c.srai", C2("c.srai a0, 63", 0x8000000000000000UL, 0), (uint64_t)-1);
  CHECK("c.srai", C2("c.srai a0, 33", 0x8000000000000000UL, 0), 0xffffffffc0000000UL);
  CHECK("c.andi", C2("c.andi a0, -32", 0xffffUL, 0), 0xffe0);
  CHECK("c.andi", C2("c.andi a0, 5", 0xffffUL, 0), 5);
  uint64_t sp_val, r;
  asm volatile("mv t0, sp\n c.addi16sp sp, -64\n mv %0, sp\n c.addi16sp sp, 64\n sub %0, t0, %0\n"
               "c.addi4spn a0, sp, 1020\n sub %1, a0, sp"
               : "=&r"(sp_val), "=&r"(r) : : "t0", "a0");
  CHECK("c.addi16sp", sp_val, 64);
  CHECK("c.addi4spn", r, 1020);
  CHECK("c.nop", C2("c.nop", 9, 0), 9);
  group_end();

  group_begin("integer register-register");
  CHECK("c.mv", C2("c.mv a0, a1", 1, 0x123), 0x123);
  CHECK("c.add", C2("c.add a0, a1", 0x7fffffffffffffffUL, 1), 0x8000000000000000UL);
  CHECK("c.sub", C2("c.sub a0, a1", 0, 1), (uint64_t)-1);
  CHECK("c.xor", C2("c.xor a0, a1", 0xff00, 0x0ff0), 0xf0f0);
  CHECK("c.or", C2("c.or a0, a1", 0xff00, 0x0ff0), 0xfff0);
  CHECK("c.and", C2("c.and a0, a1", 0xff00, 0x0ff0), 0x0f00);
  CHECK("c.addw", C2("c.addw a0, a1", 0x7fffffff, 1), 0xffffffff80000000UL);
  CHECK("c.addw", C2("c.addw a0, a1", 0x1ffffffffUL, 0x100000001UL), 0);
  CHECK("c.subw", C2("c.subw a0, a1", 0x80000000UL, 1), 0x7fffffff);
  CHECK("c.subw", C2("c.subw a0, a1", 0, 1), (uint64_t)-1);
  group_end();

  group_begin("loads and stores");
  mem[0] = 0x8796a5b4c3d2e1f0UL;
  mem[1] = 0x0f1e2d3c4b5a6978UL;
  CHECK("c.lw", C2("c.lw a0, 4(a1)", 0, mem), 0xffffffff8796a5b4UL);
  CHECK("c.lw", C2("c.lw a0, 8(a1)", 0, mem), 0x4b5a6978UL);
  CHECK("c.ld", C2("c.ld a0, 8(a1)", 0, mem), 0x0f1e2d3c4b5a6978UL);
  C2("c.sw a0, 16(a1)", 0xffffffff11223344UL, mem);
  CHECK("c.sw", mem[2], 0x11223344UL);
  C2("c.sd a0, 24(a1)", 0x1122334455667788UL, mem);
  CHECK("c.sd", mem[3], 0x1122334455667788UL);
  uint64_t lw, ld;
  asm volatile("addi sp, sp, -32\n li t0, -2\n sd t0, 8(sp)\n c.lwsp %0, 8(sp)\n"
               "c.ldsp %1, 8(sp)\n li t0, 0x1234\n c.swsp t0, 16(sp)\n c.sdsp t0, 24(sp)\n"
               "ld t1, 16(sp)\n ld t2, 24(sp)\n add %1, %1, t1\n add %1, %1, t2\n addi sp, sp, 32"
               : "=&r"(lw), "=&r"(ld) : : "t0", "t1", "t2", "memory");
  CHECK("c.lwsp", lw, (uint64_t)-2);
  CHECK("c.ldsp + c.swsp + c.sdsp", ld, (uint64_t)-2 + 0x1234 + 0x1234);
  group_end();

  group_begin("control transfer");
  uint64_t t, link, expect;
  asm volatile("li %0, 0\n c.j 1f\n li %0, 5\n1: addi %0, %0, 1" : "=&r"(t));
  CHECK("c.j", t, 1);
  CHECK("c.beqz taken", C2("c.beqz a1, 1f\n li a0, 0\n j 2f\n1: li a0, 1\n2:", 9, 0), 1);
  CHECK("c.beqz not taken", C2("c.beqz a1, 1f\n li a0, 0\n j 2f\n1: li a0, 1\n2:", 9, 3), 0);
  CHECK("c.bnez taken", C2("c.bnez a1, 1f\n li a0, 0\n j 2f\n1: li a0, 1\n2:", 9, -1), 1);
  CHECK("c.bnez not taken", C2("c.bnez a1, 1f\n li a0, 0\n j 2f\n1: li a0, 1\n2:", 9, 0), 0);
  asm volatile("la t0, 1f\n li %0, 0\n c.jr t0\n li %0, 5\n1: addi %0, %0, 2" : "=&r"(t) : : "t0");
  CHECK("c.jr", t, 2);
  asm volatile("la t0, 1f\n c.jalr t0\n2: nop\n1: mv %0, ra\n la %1, 2b"
               : "=&r"(link), "=&r"(expect) : : "t0", "ra");
  CHECK("c.jalr links pc+2", link, expect);
  group_end();

  group_begin("32-bit instructions at 2-byte alignment");
  asm volatile(".option push\n.option norvc\n .balign 4\n li %0, 0\n"
               ".option rvc\n c.nop\n.option norvc\n addi %0, %0, 3\n addi %0, %0, 4\n"
               ".option pop" : "=&r"(t));
  CHECK("addi at pc % 4 == 2", t, 7);
  asm volatile(".option push\n .balign 4\n c.nop\n jal %0, 1f\n2: nop\n1: la %1, 2b\n.option pop"
               : "=&r"(link), "=&r"(expect));
  CHECK("jal at pc % 4 == 2 links pc+4", link, expect);
  group_end();

  group_begin("instruction across a page boundary");
  extern uint64_t straddle_fn(uint64_t);
  CHECK("32-bit instruction split over two pages", straddle_fn(40), 42 + 0x345);
  group_end();

  group_begin("HINT encodings execute as no-ops");
  {
    trap_expect();
    register uint64_t a0 asm("a0") = 0x1234;
    asm volatile(".2byte 0x4015\n" /* c.li x0, 5 */
                 ".2byte 0x0015\n" /* c.nop 5 */
                 ".2byte 0x902a\n" /* c.add x0, a0 */
                 ".2byte 0x802a\n" /* c.mv x0, a0 */
                 ".2byte 0x0006\n" /* c.slli x0, 1 */
                 ".2byte 0x6005\n" /* c.lui x0, 1 */
                 ".2byte 0x0501\n" /* c.addi a0, 0 */
                 ".2byte 0x0502\n" /* c.slli a0, 0 */
                 : "+r"(a0) : : "memory");
    uint64_t after = a0; /* before any call can clobber a0 */
    trap_done();
    CHECK("no trap", trap.count, 0);
    CHECK("a0 unchanged", after, 0x1234);
    uint64_t z;
    asm volatile("mv %0, x0" : "=r"(z));
    CHECK("x0 still 0", z, 0);
  }
  group_end();

  group_begin("reserved encodings are illegal");
  trap_expect();
  asm volatile(".2byte 0x0000");
  CHECK("all-zero c.addi4spn: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("all-zero: mtval", trap.tval, 0);
  trap_expect();
  asm volatile(".2byte 0x0004"); /* c.addi4spn a1, sp, 0 (nzuimm = 0) */
  CHECK("c.addi4spn imm 0: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("c.addi4spn imm 0: mtval", trap.tval, 0x0004);
  trap_expect();
  asm volatile(".2byte 0x6101"); /* c.addi16sp sp, 0 */
  CHECK("c.addi16sp imm 0: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("c.addi16sp imm 0: mtval", trap.tval, 0x6101);
  trap_expect();
  asm volatile(".2byte 0x6501"); /* c.lui a0, 0 */
  CHECK("c.lui imm 0: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_expect();
  asm volatile(".2byte 0x8002"); /* c.jr x0 */
  CHECK("c.jr x0: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_expect();
  asm volatile(".2byte 0x4002"); /* c.lwsp x0 */
  CHECK("c.lwsp x0: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_expect();
  asm volatile(".2byte 0x6002"); /* c.ldsp x0 */
  CHECK("c.ldsp x0: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_expect();
  asm volatile(".2byte 0x9002"); /* c.ebreak */
  CHECK("c.ebreak: cause", trap.cause, CAUSE_BREAKPOINT);
  CHECK("c.ebreak: trap count", trap.count, 1);
  trap_done();
  group_end();
  return finish();
}

/* straddle_fn(x) = x + 2 + 0x345; its `addi a0, a0, 0x345` starts 2 bytes before a page end. */
asm(".pushsection .text.straddle, \"ax\"\n"
    ".balign 4096\n"
    ".globl straddle_fn\n"
    "straddle_fn:\n"
    ".option push\n.option norvc\n"
    " j 1f\n"
    ".option pop\n"
    ".option push\n.option rvc\n"
    ".fill (4096 - 4 - 4) / 2, 2, 0x0001\n" /* c.nop up to page end - 4 */
    "1: c.addi a0, 2\n"                      /* at page end - 4 */
    ".option pop\n"
    ".option push\n.option norvc\n"
    " addi a0, a0, 0x345\n" /* at page end - 2: split over two pages */
    " ret\n"
    ".option pop\n"
    ".popsection\n");
