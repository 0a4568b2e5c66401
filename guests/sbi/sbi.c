/* An S-mode kernel for OpenSBI (-bios default, -kernel sbi.elf): the SBI calls a kernel
   makes at boot (base, timer, IPI, HSM, SRST probing), a timer interrupt through
   sbi_set_timer, a self-IPI, an illegal instruction redirected by OpenSBI to S, Sv39 paging,
   then power-off through SRST. Prints through the SBI console, so FerryVM's and QEMU's runs
   of OpenSBI plus this kernel can be compared after OpenSBI's banner. */
#include "tests.h"

const char test_name[] = "sbi";

struct sbiret {
  int64_t error;
  int64_t value;
};

static struct sbiret sbi_call(uint64_t ext, uint64_t fid, uint64_t a0, uint64_t a1, uint64_t a2) {
  register uint64_t r0 asm("a0") = a0;
  register uint64_t r1 asm("a1") = a1;
  register uint64_t r2 asm("a2") = a2;
  register uint64_t r6 asm("a6") = fid;
  register uint64_t r7 asm("a7") = ext;
  asm volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r6), "r"(r7) : "memory");
  return (struct sbiret){(int64_t)r0, (int64_t)r1};
}

#define EXT_BASE 0x10
#define EXT_TIME 0x54494d45
#define EXT_IPI 0x735049
#define EXT_RFENCE 0x52464e43
#define EXT_HSM 0x48534d
#define EXT_SRST 0x53525354

static volatile uint64_t s_timer_count, s_soft_count;

static void s_irq(uint64_t cause, struct frame *f) {
  if ((cause & 63) == IRQ_S_TIMER) {
    s_timer_count++;
    sbi_call(EXT_TIME, 0, -1UL, 0, 0);
  } else if ((cause & 63) == IRQ_S_SOFT) {
    s_soft_count++;
    csr_clear(sip, 1UL << IRQ_S_SOFT);
  }
}

static uint64_t pt_root[512] __attribute__((aligned(4096)));

int main(void) {
  printf_("sbi: S-mode kernel started on hart %u\n", boot_regs[0]);

  group_begin("base");
  struct sbiret r = sbi_call(EXT_BASE, 0, 0, 0, 0);
  CHECK("get_spec_version: ok", r.error, 0);
  CHECK("spec version >= 0.2", r.value >= 2, 1);
  r = sbi_call(EXT_BASE, 1, 0, 0, 0);
  CHECK("implementation is OpenSBI", r.value, 1);
  static const uint64_t exts[] = {EXT_TIME, EXT_IPI, EXT_RFENCE, EXT_HSM, EXT_SRST};
  for (int i = 0; i < 5; i++) CHECK("probe_extension", sbi_call(EXT_BASE, 3, exts[i], 0, 0).value != 0, 1);
  CHECK("probe of an unknown extension", sbi_call(EXT_BASE, 3, 0x12345678, 0, 0).value, 0);
  CHECK("unknown extension: not supported", sbi_call(0x12345678, 0, 0, 0, 0).error, -2);
  CHECK("FDT address passed in a1", boot_regs[1], 0x87e00000UL);
  group_end();

  group_begin("HSM");
  r = sbi_call(EXT_HSM, 2, 0, 0, 0);
  CHECK("hart 0 started", r.value, 0);
  CHECK("hart 1 does not exist", sbi_call(EXT_HSM, 2, 1, 0, 0).error, -3);
  group_end();

  group_begin("timer");
  s_irq_handler = s_irq;
  csr_write(sie, (1UL << IRQ_S_TIMER) | (1UL << IRQ_S_SOFT));
  csr_set(sstatus, MSTATUS_SIE);
  uint64_t t0 = csr_read(time);
  sbi_call(EXT_TIME, 0, t0 + 10000, 0, 0); /* 1 ms */
  while (!s_timer_count && csr_read(time) < t0 + 10000000) asm volatile("wfi");
  CHECK("timer interrupt after sbi_set_timer", s_timer_count, 1);
  CHECK("not before its time", csr_read(time) >= t0 + 10000, 1);
  group_end();

  group_begin("IPI");
  r = sbi_call(EXT_IPI, 0, 1, 0, 0); /* hart mask 1, base 0: this hart */
  CHECK("send_ipi: ok", r.error, 0);
  t0 = csr_read(time);
  while (!s_soft_count && csr_read(time) < t0 + 10000000) asm volatile("wfi");
  CHECK("software interrupt from the self-IPI", s_soft_count, 1);
  csr_clear(sstatus, MSTATUS_SIE);
  group_end();

  group_begin("traps redirected to S");
  trap_expect();
  asm volatile(".4byte 0x0000000b");
  CHECK("illegal instruction: scause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("illegal instruction: stval", trap.tval, 0x0000000b);
  trap_expect();
  asm volatile("ebreak");
  CHECK("ebreak: scause", trap.cause, CAUSE_BREAKPOINT);
  trap_expect();
  asm volatile("csrr t0, mstatus" ::: "t0");
  CHECK("M CSR from S: illegal", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_done();
  uint64_t v;
  static volatile uint8_t buf[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  asm volatile("ld %0, 3(%1)" : "=r"(v) : "r"(buf) : "memory");
  CHECK("misaligned load", v, 0x0b0a090807060504UL);
  group_end();

  group_begin("Sv39 in S");
  pt_root[0] = 0xc7;                              /* MMIO gigapage */
  pt_root[2] = (0x80000000UL >> 12 << 10) | 0xcf; /* RAM gigapage */
  pt_root[3] = (0x80000000UL >> 12 << 10) | 0x43; /* read-only alias, A set */
  csr_write(satp, (8UL << 60) | ((uint64_t)pt_root >> 12));
  sfence_vma();
  static volatile uint64_t word = 0x5a5a;
  CHECK("alias reads the word", *(volatile uint64_t *)((uint64_t)&word + 0x40000000UL), 0x5a5a);
  trap_expect();
  *(volatile uint64_t *)((uint64_t)&word + 0x40000000UL) = 1;
  trap_done();
  CHECK("store to the alias: store page fault in S", trap.cause, CAUSE_STORE_PAGE_FAULT);
  CHECK("rfence sfence.vma: ok", sbi_call(EXT_RFENCE, 1, 1, 0, 0).error, 0);
  csr_write(satp, 0);
  sfence_vma();
  group_end();

  int code = finish();
  if (code == 0) sbi_call(EXT_SRST, 0, 0, 0, 0); /* shutdown, no reason */
  return code;
}
