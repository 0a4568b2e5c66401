/* RV64M: multiply and divide, including division by zero and signed overflow. */
#include "tests.h"

const char test_name[] = "rv64m";

#define MIN64 0x8000000000000000UL
#define MAX64 0x7fffffffffffffffUL
#define ONES 0xffffffffffffffffUL

#define MULH(a, b) ((uint64_t)(((__int128)(int64_t)(a) * (__int128)(int64_t)(b)) >> 64))
#define MULHU(a, b) ((uint64_t)(((unsigned __int128)(a) * (unsigned __int128)(b)) >> 64))
#define MULHSU(a, b) ((uint64_t)(((__int128)(int64_t)(a) * (__int128)(unsigned __int128)(b)) >> 64))

int main(void) {
  group_begin("mul");
  T_RR("mul", 3, 7, 21);
  T_RR("mul", -3, 7, (uint64_t)-21);
  T_RR("mul", MIN64, -1, MIN64);
  T_RR("mul", 0x123456789abcdefUL, 0xfedcba987654321UL, 0x123456789abcdefUL * 0xfedcba987654321UL);
  T_RR("mulh", MIN64, MIN64, 0x4000000000000000UL);
  T_RR("mulh", -1, -1, 0);
  T_RR("mulh", -1, 1, ONES);
  T_RR("mulh", 0x123456789abcdefUL, -0xfedcba987654321L, MULH(0x123456789abcdefUL, -0xfedcba987654321L));
  T_RR("mulhu", ONES, ONES, 0xfffffffffffffffeUL);
  T_RR("mulhu", MIN64, 2, 1);
  T_RR("mulhu", 0x123456789abcdefUL, 0xfedcba9876543210UL, MULHU(0x123456789abcdefUL, 0xfedcba9876543210UL));
  T_RR("mulhsu", -1, ONES, ONES); /* -1 * (2^64-1) = -(2^64) + 1 -> high = -1 */
  T_RR("mulhsu", 1, ONES, 0);
  T_RR("mulhsu", MIN64, ONES, 0x8000000000000000UL);
  T_RR("mulhsu", -0x123456789abcdefL, 0xfedcba9876543210UL, MULHSU(-0x123456789abcdefL, 0xfedcba9876543210UL));
  T_RR("mulw", 0x7fffffff, 2, 0xfffffffffffffffeUL);
  T_RR("mulw", 0x10000, 0x10000, 0);
  T_RR("mulw", 0xffffffff00000003UL, 5, 15);
  T_RR("mulw", 0x40000000, 2, 0xffffffff80000000UL);
  group_end();

  group_begin("div/rem");
  T_RR("div", 20, 6, 3);
  T_RR("div", -20, 6, (uint64_t)-3); /* rounds toward zero */
  T_RR("div", 20, -6, (uint64_t)-3);
  T_RR("div", -20, -6, 3);
  T_RR("div", 5, 0, ONES);
  T_RR("div", MIN64, -1, MIN64);
  T_RR("divu", 20, 6, 3);
  T_RR("divu", -20, 6, (uint64_t)-20 / 6);
  T_RR("divu", 5, 0, ONES);
  T_RR("divu", MIN64, -1, 0);
  T_RR("rem", 20, 6, 2);
  T_RR("rem", -20, 6, (uint64_t)-2); /* sign of the dividend */
  T_RR("rem", 20, -6, 2);
  T_RR("rem", 5, 0, 5);
  T_RR("rem", -5, 0, (uint64_t)-5);
  T_RR("rem", MIN64, -1, 0);
  T_RR("remu", 20, 6, 2);
  T_RR("remu", -20, 6, (uint64_t)-20 % 6);
  T_RR("remu", 5, 0, 5);
  T_RR("remu", MIN64, -1, MIN64);
  group_end();

  group_begin("div/rem 32-bit");
  T_RR("divw", 20, 6, 3);
  T_RR("divw", 0xffffffecUL, 6, (uint64_t)-3); /* -20 in the low word */
  T_RR("divw", 0x1ffffffecUL, 6, (uint64_t)-3); /* upper bits are ignored */
  T_RR("divw", 5, 0, ONES);
  T_RR("divw", 0x80000000UL, -1, 0xffffffff80000000UL);
  T_RR("divuw", 0xffffffecUL, 6, S32(0xffffffecUL / 6));
  T_RR("divuw", 0xfffffffeUL, 1, 0xfffffffffffffffeUL); /* result is sign-extended */
  T_RR("divuw", 5, 0, ONES);
  T_RR("divuw", 0x80000000UL, 0xffffffffUL, 0);
  T_RR("remw", 0xffffffecUL, 6, (uint64_t)-2);
  T_RR("remw", 5, 0, 5);
  T_RR("remw", 0x80000005UL, 0, 0xffffffff80000005UL);
  T_RR("remw", 0x80000000UL, -1, 0);
  T_RR("remw", 0x100000007UL, 0x100000004UL, 3);
  T_RR("remuw", 0xffffffecUL, 6, S32(0xffffffecUL % 6));
  T_RR("remuw", 0x80000005UL, 0, 0xffffffff80000005UL);
  T_RR("remuw", 0xfffffffeUL, 0xffffffffUL, 0xfffffffffffffffeUL);
  group_end();

  group_begin("x0 destination");
  uint64_t r;
  asm volatile("li t0, 7\n mul x0, t0, t0\n div x0, t0, x0\n mv %0, x0" : "=r"(r) : : "t0");
  CHECK("mul/div into x0", r, 0);
  group_end();
  return finish();
}
