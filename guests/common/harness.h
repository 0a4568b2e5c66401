/*
 * The FerryVM test-guest harness: UART console, printf-lite, checks, exit through the
 * sifive_test finisher (tohost fallback), CSR helpers and the trap frame.
 * Included from C and from assembly.
 */
#ifndef FERRY_HARNESS_H
#define FERRY_HARNESS_H

#define LOWER_RETURN_MAGIC 0x4c4f5752 /* "LOWR" */

#define UART_BASE 0x10000000UL
#define FINISHER_BASE 0x100000UL
#define CLINT_BASE 0x2000000UL
#define CLINT_MSIP (CLINT_BASE + 0x0)
#define CLINT_MTIMECMP (CLINT_BASE + 0x4000)
#define CLINT_MTIME (CLINT_BASE + 0xbff8)

#define MSTATUS_SIE (1UL << 1)
#define MSTATUS_MIE (1UL << 3)
#define MSTATUS_SPIE (1UL << 5)
#define MSTATUS_MPIE (1UL << 7)
#define MSTATUS_SPP (1UL << 8)
#define MSTATUS_MPP (3UL << 11)
#define MSTATUS_MPRV (1UL << 17)
#define MSTATUS_SUM (1UL << 18)
#define MSTATUS_MXR (1UL << 19)
#define MSTATUS_TVM (1UL << 20)
#define MSTATUS_TW (1UL << 21)
#define MSTATUS_TSR (1UL << 22)

#define IRQ_S_SOFT 1
#define IRQ_M_SOFT 3
#define IRQ_S_TIMER 5
#define IRQ_M_TIMER 7
#define IRQ_S_EXT 9
#define IRQ_M_EXT 11

#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS 1
#define CAUSE_ILLEGAL_INSTRUCTION 2
#define CAUSE_BREAKPOINT 3
#define CAUSE_MISALIGNED_LOAD 4
#define CAUSE_LOAD_ACCESS 5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS 7
#define CAUSE_USER_ECALL 8
#define CAUSE_SUPERVISOR_ECALL 9
#define CAUSE_MACHINE_ECALL 11
#define CAUSE_FETCH_PAGE_FAULT 12
#define CAUSE_LOAD_PAGE_FAULT 13
#define CAUSE_STORE_PAGE_FAULT 15
#define CAUSE_INTERRUPT (1UL << 63)

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

#ifdef __ASSEMBLER__

.macro SAVE_REGS
  sd x1, 1*8(sp)
  sd x3, 3*8(sp)
  sd x4, 4*8(sp)
  sd x5, 5*8(sp)
  sd x6, 6*8(sp)
  sd x7, 7*8(sp)
  sd x8, 8*8(sp)
  sd x9, 9*8(sp)
  sd x10, 10*8(sp)
  sd x11, 11*8(sp)
  sd x12, 12*8(sp)
  sd x13, 13*8(sp)
  sd x14, 14*8(sp)
  sd x15, 15*8(sp)
  sd x16, 16*8(sp)
  sd x17, 17*8(sp)
  sd x18, 18*8(sp)
  sd x19, 19*8(sp)
  sd x20, 20*8(sp)
  sd x21, 21*8(sp)
  sd x22, 22*8(sp)
  sd x23, 23*8(sp)
  sd x24, 24*8(sp)
  sd x25, 25*8(sp)
  sd x26, 26*8(sp)
  sd x27, 27*8(sp)
  sd x28, 28*8(sp)
  sd x29, 29*8(sp)
  sd x30, 30*8(sp)
  sd x31, 31*8(sp)
.endm

.macro RESTORE_REGS
  ld x1, 1*8(sp)
  ld x3, 3*8(sp)
  ld x4, 4*8(sp)
  ld x5, 5*8(sp)
  ld x6, 6*8(sp)
  ld x7, 7*8(sp)
  ld x8, 8*8(sp)
  ld x9, 9*8(sp)
  ld x10, 10*8(sp)
  ld x11, 11*8(sp)
  ld x12, 12*8(sp)
  ld x13, 13*8(sp)
  ld x14, 14*8(sp)
  ld x15, 15*8(sp)
  ld x16, 16*8(sp)
  ld x17, 17*8(sp)
  ld x18, 18*8(sp)
  ld x19, 19*8(sp)
  ld x20, 20*8(sp)
  ld x21, 21*8(sp)
  ld x22, 22*8(sp)
  ld x23, 23*8(sp)
  ld x24, 24*8(sp)
  ld x25, 25*8(sp)
  ld x26, 26*8(sp)
  ld x27, 27*8(sp)
  ld x28, 28*8(sp)
  ld x29, 29*8(sp)
  ld x30, 30*8(sp)
  ld x31, 31*8(sp)
.endm

#else /* C */

typedef unsigned long uint64_t;
typedef long int64_t;
typedef unsigned int uint32_t;
typedef int int32_t;
typedef unsigned short uint16_t;
typedef short int16_t;
typedef unsigned char uint8_t;
typedef signed char int8_t;
typedef unsigned long size_t;
typedef unsigned long uintptr_t;

#define STR_(x) #x
#define STR(x) STR_(x)

#define csr_read(csr) ({ uint64_t v_; asm volatile("csrr %0, " STR(csr) : "=r"(v_) :: "memory"); v_; })
#define csr_write(csr, val) ({ asm volatile("csrw " STR(csr) ", %0" :: "rK"((uint64_t)(val)) : "memory"); })
#define csr_set(csr, val) ({ asm volatile("csrs " STR(csr) ", %0" :: "rK"((uint64_t)(val)) : "memory"); })
#define csr_clear(csr, val) ({ asm volatile("csrc " STR(csr) ", %0" :: "rK"((uint64_t)(val)) : "memory"); })
#define csr_swap(csr, val) ({ uint64_t v_; asm volatile("csrrw %0, " STR(csr) ", %1" : "=r"(v_) : "rK"((uint64_t)(val)) : "memory"); v_; })

#define mmio_write32(addr, v) (*(volatile uint32_t *)(uintptr_t)(addr) = (v))
#define mmio_read32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define mmio_write64(addr, v) (*(volatile uint64_t *)(uintptr_t)(addr) = (v))
#define mmio_read64(addr) (*(volatile uint64_t *)(uintptr_t)(addr))

/* Trap frame: x[0..31] (x[2] = interrupted sp), x[32] = epc. */
struct frame {
  uint64_t x[32];
  uint64_t epc;
  uint64_t pad;
};

/* What the trap handlers record when a test expects traps. */
struct trap_record {
  uint64_t count;   /* traps taken since trap_expect() */
  uint64_t cause;   /* mcause / scause of the last one */
  uint64_t tval;    /* mtval / stval */
  uint64_t epc;     /* mepc / sepc */
  uint64_t prev;    /* previous privilege (MPP, or SPP for S traps) */
  uint64_t mode;    /* PRV_M or PRV_S: which handler took it */
  uint64_t status;  /* mstatus / sstatus at trap entry */
};

extern volatile struct trap_record trap;
/* When non-zero, an expected exception resumes here instead of after the faulting instruction. */
extern volatile uint64_t trap_resume;
/* Optional interrupt handlers; when a handler is null the interrupt is unexpected. */
extern void (*volatile m_irq_handler)(uint64_t cause, struct frame *f);
extern void (*volatile s_irq_handler)(uint64_t cause, struct frame *f);

void putchar_(int c);
void puts_(const char *s);
void printf_(const char *fmt, ...);
__attribute__((noreturn)) void exit(int code);

/* Start expecting exceptions: they are recorded in `trap` and skipped. */
void trap_expect(void);
/* Stop expecting exceptions (an exception afterwards is reported and ends the test). */
void trap_done(void);

/* a0, a1, a2 as the boot ROM left them at _start. */
extern uint64_t boot_regs[3];

uint64_t run_lower(int mode, uint64_t (*fn)(uint64_t), uint64_t arg);
extern char s_trap_entry[];

/* Checks. */
void group_begin(const char *name);
void group_end(void);
void check_eq(int line, const char *name, uint64_t got, uint64_t expected);
int finish(void); /* prints PASS or FAIL, returns the exit code */

/* Passes when got is either value (where QEMU 7.2, the reference, departs from the spec). */
#define CHECK_EITHER(name, got, a, b)                                           \
  ({                                                                            \
    uint64_t g_ = (uint64_t)(got);                                              \
    check_eq(__LINE__, (name), g_, g_ == (uint64_t)(b) ? g_ : (uint64_t)(a));   \
  })
#define CHECK(name, got, expected) check_eq(__LINE__, (name), (uint64_t)(got), (uint64_t)(expected))

/* The test's name, printed on each group line (defined by each test program). */
extern const char test_name[];

static inline void fence_i(void) { asm volatile("fence.i" ::: "memory"); }
static inline void sfence_vma(void) { asm volatile("sfence.vma" ::: "memory"); }

#endif /* __ASSEMBLER__ */
#endif /* FERRY_HARNESS_H */
