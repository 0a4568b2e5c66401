/* The FerryVM test-guest harness: console, checks, exit and the C side of the trap handlers. */
#include "harness.h"

volatile struct trap_record trap;
volatile uint64_t trap_resume;
void (*volatile m_irq_handler)(uint64_t cause, struct frame *f);
void (*volatile s_irq_handler)(uint64_t cause, struct frame *f);
static volatile int expecting;
extern char lower_return[];

void putchar_(int c) {
#ifdef SBI_CONSOLE
  /* S-mode guests under OpenSBI: the legacy console putchar call (extension 0x01) */
  register uint64_t a0 asm("a0") = (uint64_t)c;
  register uint64_t a7 asm("a7") = 1;
  asm volatile("ecall" : "+r"(a0) : "r"(a7) : "a1", "memory");
  return;
#endif
  volatile uint8_t *uart = (volatile uint8_t *)UART_BASE;
  while ((uart[5] & 0x20) == 0) {
  }
  uart[0] = (uint8_t)c;
}

void puts_(const char *s) {
  while (*s) putchar_(*s++);
}

static void put_num(uint64_t v, unsigned base, int width, int zero, int neg) {
  char buf[24];
  int n = 0;
  do {
    unsigned d = v % base;
    buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= base;
  } while (v);
  if (neg) buf[n++] = '-';
  while (n < width) {
    putchar_(zero ? '0' : ' ');
    width--;
  }
  while (n) putchar_(buf[--n]);
}

void printf_(const char *fmt, ...) {
  __builtin_va_list ap;
  __builtin_va_start(ap, fmt);
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      putchar_(*fmt);
      continue;
    }
    fmt++;
    int zero = 0, width = 0;
    if (*fmt == '0') {
      zero = 1;
      fmt++;
    }
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    while (*fmt == 'l') fmt++;
    switch (*fmt) {
    case 's':
      puts_(__builtin_va_arg(ap, const char *));
      break;
    case 'c':
      putchar_(__builtin_va_arg(ap, int));
      break;
    case 'd': {
      int64_t v = __builtin_va_arg(ap, int64_t);
      put_num(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, width, zero, v < 0);
      break;
    }
    case 'u':
      put_num(__builtin_va_arg(ap, uint64_t), 10, width, zero, 0);
      break;
    case 'x':
      put_num(__builtin_va_arg(ap, uint64_t), 16, width, zero, 0);
      break;
    case '%':
      putchar_('%');
      break;
    default:
      putchar_('?');
      break;
    }
  }
  __builtin_va_end(ap);
}

__attribute__((noreturn)) void exit(int code) {
  code &= 0xffff;
  /* sifive_test finisher (QEMU virt) ... */
  mmio_write32(FINISHER_BASE, code == 0 ? 0x5555 : ((uint32_t)code << 16) | 0x3333);
  /* ... and the HTIF convention for machines that watch `tohost`. */
  extern volatile uint64_t tohost;
  tohost = code == 0 ? 1 : ((uint64_t)code << 1) | 1;
  for (;;) asm volatile("wfi");
}

/* ---- checks ---- */

static const char *group_name;
static unsigned group_fails, group_checks;
static unsigned total_checks, total_fails, first_fail;

void group_begin(const char *name) {
  group_name = name;
  group_fails = 0;
  group_checks = 0;
}

void group_end(void) {
  if (group_fails == 0)
    printf_("%s %s: ok (%u checks)\n", test_name, group_name, (uint64_t)group_checks);
  else
    printf_("%s %s: FAILED %u of %u checks\n", test_name, group_name, (uint64_t)group_fails,
            (uint64_t)group_checks);
}

void check_eq(int line, const char *name, uint64_t got, uint64_t expected) {
  total_checks++;
  group_checks++;
  if (got == expected) return;
  group_fails++;
  total_fails++;
  if (!first_fail) first_fail = total_checks;
  printf_("FAIL #%u %s/%s: got 0x%lx expected 0x%lx (line %d)\n", (uint64_t)total_checks,
          group_name, name, got, expected, (int64_t)line);
}

int finish(void) {
  if (total_fails == 0) {
    printf_("%s: PASS\n", test_name);
    return 0;
  }
  printf_("%s: FAIL (%u of %u checks failed, first #%u)\n", test_name, (uint64_t)total_fails,
          (uint64_t)total_checks, (uint64_t)first_fail);
  return first_fail < 255 ? (int)first_fail : 255;
}

/* ---- traps ---- */

void trap_expect(void) {
  trap.count = 0;
  trap.cause = trap.tval = trap.epc = trap.prev = trap.mode = trap.status = ~0UL;
  trap_resume = 0;
  expecting = 1;
}

void trap_done(void) {
  expecting = 0;
  trap_resume = 0;
}

static uint64_t insn_length(uint64_t epc) {
  uint16_t h = *(volatile uint16_t *)epc;
  return (h & 3) == 3 ? 4 : 2;
}

static __attribute__((noreturn)) void unexpected(const char *who, uint64_t cause, uint64_t epc,
                                                 uint64_t tval) {
  printf_("%s: unexpected %s trap: cause 0x%lx epc 0x%lx tval 0x%lx\n", test_name, who, cause,
          epc, tval);
  exit(127);
}

void m_trap(struct frame *f) {
  uint64_t cause = csr_read(mcause);
  if (cause & CAUSE_INTERRUPT) {
    if (m_irq_handler) {
      m_irq_handler(cause, f);
      return;
    }
    unexpected("M-mode interrupt", cause, f->epc, csr_read(mtval));
  }
  uint64_t status = csr_read(mstatus);
  if (((cause == CAUSE_USER_ECALL || cause == CAUSE_SUPERVISOR_ECALL) &&
       f->x[17] == LOWER_RETURN_MAGIC) ||
      (cause == CAUSE_ILLEGAL_INSTRUCTION && f->x[17] == LOWER_RETURN_MAGIC &&
       f->x[16] == LOWER_RETURN_MAGIC)) {
    f->epc = (uint64_t)lower_return;
    csr_set(mstatus, MSTATUS_MPP);
    csr_clear(mstatus, MSTATUS_MPRV);
    return;
  }
  if (!expecting) unexpected("M-mode", cause, f->epc, csr_read(mtval));
  trap.count++;
  trap.cause = cause;
  trap.tval = csr_read(mtval);
  trap.epc = f->epc;
  trap.prev = (status >> 11) & 3;
  trap.mode = PRV_M;
  trap.status = status;
  if (trap_resume)
    f->epc = trap_resume;
  else
    f->epc += insn_length(f->epc);
}

void s_trap(struct frame *f) {
  uint64_t cause = csr_read(scause);
  if (cause & CAUSE_INTERRUPT) {
    if (s_irq_handler) {
      s_irq_handler(cause, f);
      return;
    }
    unexpected("S-mode interrupt", cause, f->epc, csr_read(stval));
  }
  uint64_t status = csr_read(sstatus);
  if ((cause == CAUSE_USER_ECALL || cause == CAUSE_SUPERVISOR_ECALL) &&
      f->x[17] == LOWER_RETURN_MAGIC) {
    /* Pass the function's result on to M, which returns from run_lower: by an S ecall, or,
       when S ecalls are delegated, by an illegal instruction with a6 = a7 = magic. */
    register uint64_t a0 asm("a0") = f->x[10];
    register uint64_t a6 asm("a6") = LOWER_RETURN_MAGIC;
    register uint64_t a7 asm("a7") = LOWER_RETURN_MAGIC;
    if (cause == CAUSE_USER_ECALL)
      asm volatile("ecall" : : "r"(a0), "r"(a7) : "memory");
    else
      asm volatile(".4byte 0x0000000b" : : "r"(a0), "r"(a6), "r"(a7) : "memory");
    for (;;) {
    }
  }
  if (!expecting) unexpected("S-mode", cause, f->epc, csr_read(stval));
  trap.count++;
  trap.cause = cause;
  trap.tval = csr_read(stval);
  trap.epc = f->epc;
  trap.prev = (status >> 8) & 1;
  trap.mode = PRV_S;
  trap.status = status;
  if (trap_resume)
    f->epc = trap_resume;
  else
    f->epc += insn_length(f->epc);
}

/* GCC may emit calls to these even with -ffreestanding. */
void *memset(void *d, int c, size_t n) {
  uint8_t *p = d;
  while (n--) *p++ = (uint8_t)c;
  return d;
}

void *memcpy(void *d, const void *s, size_t n) {
  uint8_t *p = d;
  const uint8_t *q = s;
  while (n--) *p++ = *q++;
  return d;
}
