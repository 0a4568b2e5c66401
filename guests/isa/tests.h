/* Helpers shared by the ISA tests: execute one instruction with given operands. */
#ifndef FERRY_TESTS_H
#define FERRY_TESTS_H
#include "harness.h"

/* Emit an instruction without compression. */
#define NORVC(s) ".option push\n.option norvc\n" s "\n.option pop\n"

/* rd = op rs1, rs2 */
#define RR(op, a, b)                                                                      \
  ({                                                                                      \
    uint64_t r_;                                                                          \
    asm volatile(NORVC(op " %0, %1, %2") : "=r"(r_) : "r"((uint64_t)(a)), "r"((uint64_t)(b))); \
    r_;                                                                                   \
  })
/* rd = op rs1, imm */
#define RI(op, a, imm)                                                                    \
  ({                                                                                      \
    uint64_t r_;                                                                          \
    asm volatile(NORVC(op " %0, %1, %2") : "=r"(r_) : "r"((uint64_t)(a)), "i"(imm));      \
    r_;                                                                                   \
  })
#define T_RR(op, a, b, expected) CHECK(op, RR(op, a, b), expected)
#define T_RI(op, a, imm, expected) CHECK(op, RI(op, a, imm), expected)

#define S32(x) ((uint64_t)(int64_t)(int32_t)(uint32_t)(x))

/* Returns mcause of the exception `insns` raise in M-mode (0 = none), skipping it. */
#define M_TRAP_OF(insns, ...)                                                             \
  ({                                                                                      \
    trap_expect();                                                                        \
    asm volatile(insns __VA_ARGS__);                                                      \
    trap_done();                                                                          \
    trap.count ? trap.cause : 0;                                                          \
  })

#endif
