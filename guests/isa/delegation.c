/* Exception and interrupt delegation to S-mode: medeleg/mideleg, scause/stval/sepc, the
   sstatus stack (SPP/SPIE/SIE) and sret, stvec modes, what is never delegated. */
#include "tests.h"

const char test_name[] = "delegation";

static uint64_t do_illegal(uint64_t unused) {
  trap_expect();
  asm volatile(".4byte 0x0000000b");
  trap_done();
  return trap.mode;
}

static uint64_t do_ecall(uint64_t unused) {
  trap_expect();
  register uint64_t a7 asm("a7") = 1;
  asm volatile("ecall" : : "r"(a7));
  trap_done();
  return trap.mode;
}

static uint64_t do_ebreak(uint64_t unused) {
  trap_expect();
  asm volatile("ebreak");
  trap_done();
  return trap.mode;
}

static uint64_t do_load_fault(uint64_t unused) {
  trap_expect();
  asm volatile("ld t0, 0(%0)" : : "r"(0x200000UL) : "t0");
  trap_done();
  return trap.mode;
}

/* In S: set SIE and SPIE as given, trap, and report sstatus after the sret. */
static uint64_t s_status_probe(uint64_t sie) {
  if (sie)
    csr_set(sstatus, MSTATUS_SIE);
  else
    csr_clear(sstatus, MSTATUS_SIE);
  trap_expect();
  asm volatile("ebreak");
  trap_done();
  return csr_read(sstatus);
}

static volatile uint64_t irq_seen, irq_cause, irq_mode;

static void s_irq(uint64_t cause, struct frame *f) {
  irq_seen++;
  irq_cause = cause;
  irq_mode = PRV_S;
  csr_clear(sip, 1UL << IRQ_S_SOFT);
  csr_clear(sie, 1UL << IRQ_S_TIMER); /* S cannot clear STIP: mask it */
}

static void m_irq(uint64_t cause, struct frame *f) {
  irq_seen++;
  irq_cause = cause;
  irq_mode = PRV_M;
  csr_clear(mip, (1UL << IRQ_S_SOFT) | (1UL << IRQ_S_TIMER));
}

/* In S or U: raise SSIP (from S) with SIE as given; return how many interrupts were seen. */
static uint64_t s_soft_irq(uint64_t sie) {
  if (sie & 2) { /* U: cannot touch sip; M has set SSIP before */
    for (volatile int i = 0; i < 100; i++) {
    }
    return irq_seen;
  }
  if (sie)
    csr_set(sstatus, MSTATUS_SIE);
  else
    csr_clear(sstatus, MSTATUS_SIE);
  csr_set(sip, 1UL << IRQ_S_SOFT);
  for (volatile int i = 0; i < 100; i++) {
  }
  uint64_t n = irq_seen;
  csr_clear(sstatus, MSTATUS_SIE);
  csr_clear(sip, 1UL << IRQ_S_SOFT);
  return n;
}

int main(void) {
  csr_write(stvec, (uint64_t)s_trap_entry);

  group_begin("exceptions");
  csr_write(medeleg, 0);
  CHECK("not delegated: U illegal goes to M", run_lower(PRV_U, do_illegal, 0), PRV_M);
  csr_write(medeleg, 1UL << CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("delegated: U illegal goes to S", run_lower(PRV_U, do_illegal, 0), PRV_S);
  CHECK("scause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("stval = instruction", trap.tval, 0x0000000b);
  CHECK("sstatus.SPP = U", trap.prev, PRV_U);
  CHECK("mcause untouched", csr_read(mcause) == CAUSE_ILLEGAL_INSTRUCTION && trap.cause == 2, 0);
  CHECK("delegated: S illegal goes to S", run_lower(PRV_S, do_illegal, 0), PRV_S);
  CHECK("sstatus.SPP = S", trap.prev, PRV_S);
  CHECK("delegated: M illegal stays in M", do_illegal(0), PRV_M);
  csr_write(medeleg, 1UL << CAUSE_USER_ECALL);
  CHECK("delegated ecall from U", run_lower(PRV_U, do_ecall, 0), PRV_S);
  CHECK("scause = 8", trap.cause, CAUSE_USER_ECALL);
  CHECK("ecall from S is not delegated by bit 8", run_lower(PRV_S, do_ecall, 0), PRV_M);
  csr_write(medeleg, 1UL << CAUSE_SUPERVISOR_ECALL);
  CHECK("delegated ecall from S", run_lower(PRV_S, do_ecall, 0), PRV_S);
  CHECK("scause = 9", trap.cause, CAUSE_SUPERVISOR_ECALL);
  csr_write(medeleg, 1UL << CAUSE_BREAKPOINT);
  CHECK("delegated breakpoint", run_lower(PRV_U, do_ebreak, 0), PRV_S);
  CHECK("scause = 3", trap.cause, CAUSE_BREAKPOINT);
  csr_write(medeleg, 1UL << CAUSE_LOAD_ACCESS);
  CHECK("delegated load access fault", run_lower(PRV_U, do_load_fault, 0), PRV_S);
  CHECK("stval = address", trap.tval, 0x200000UL);
  csr_write(medeleg, 0);
  group_end();

  group_begin("sstatus stack and sret");
  csr_write(medeleg, 1UL << CAUSE_BREAKPOINT);
  uint64_t s = run_lower(PRV_S, s_status_probe, 1);
  CHECK("in S handler: SIE = 0", trap.status & MSTATUS_SIE, 0);
  CHECK("in S handler: SPIE = old SIE", trap.status & MSTATUS_SPIE, MSTATUS_SPIE);
  CHECK("in S handler: SPP = S", trap.status & MSTATUS_SPP, MSTATUS_SPP);
  CHECK("after sret: SIE restored", s & MSTATUS_SIE, MSTATUS_SIE);
  CHECK("after sret: SPIE = 1", s & MSTATUS_SPIE, MSTATUS_SPIE);
  CHECK("after sret: SPP = U", s & MSTATUS_SPP, 0);
  s = run_lower(PRV_S, s_status_probe, 0);
  CHECK("SIE 0: SPIE = 0 in handler", trap.status & MSTATUS_SPIE, 0);
  CHECK("SIE 0: SIE stays 0", s & MSTATUS_SIE, 0);
  /* stvec vectored: exceptions still go to the base */
  csr_write(stvec, (uint64_t)s_trap_entry | 1);
  CHECK("vectored stvec: exception to base", run_lower(PRV_U, do_ebreak, 0), PRV_S);
  csr_write(stvec, (uint64_t)s_trap_entry);
  csr_write(medeleg, 0);
  group_end();

  group_begin("interrupts");
  s_irq_handler = s_irq;
  m_irq_handler = m_irq;
  csr_write(mie, (1UL << IRQ_S_SOFT) | (1UL << IRQ_S_TIMER));
  csr_write(mideleg, 1UL << IRQ_S_SOFT);
  irq_seen = 0;
  CHECK("delegated SSI in S, SIE = 0: not taken", run_lower(PRV_S, s_soft_irq, 0), 0);
  irq_seen = 0;
  CHECK("delegated SSI in S, SIE = 1: taken", run_lower(PRV_S, s_soft_irq, 1), 1);
  CHECK("taken by S", irq_mode, PRV_S);
  CHECK("scause", irq_cause, CAUSE_INTERRUPT | IRQ_S_SOFT);
  irq_seen = 0;
  csr_write(mip, 1UL << IRQ_S_SOFT);
  CHECK("delegated SSI in U, SIE = 0: taken", run_lower(PRV_U, s_soft_irq, 2), 1);
  CHECK("taken by S", irq_mode, PRV_S);
  irq_seen = 0;
  csr_set(mstatus, MSTATUS_MIE);
  csr_write(mip, 1UL << IRQ_S_SOFT);
  for (volatile int i = 0; i < 100; i++) {
  }
  CHECK("delegated SSI is never taken in M", irq_seen, 0);
  csr_clear(mstatus, MSTATUS_MIE);
  csr_write(mip, 0);
  csr_write(mideleg, 0);
  irq_seen = 0;
  CHECK("S cannot set a non-delegated SSIP through sip", run_lower(PRV_S, s_soft_irq, 1), 0);
  irq_seen = 0;
  csr_write(mip, 1UL << IRQ_S_SOFT);
  CHECK("not delegated SSI in S (SIE = 0): taken by M", run_lower(PRV_S, s_soft_irq, 2), 1);
  CHECK("taken by M", irq_mode, PRV_M);
  CHECK("mcause", irq_cause, CAUSE_INTERRUPT | IRQ_S_SOFT);
  /* a delegated STI (STIP set by M) in U */
  csr_write(mideleg, 1UL << IRQ_S_TIMER);
  irq_seen = 0;
  csr_write(mip, 1UL << IRQ_S_TIMER);
  CHECK("delegated STI in U: taken", run_lower(PRV_U, s_soft_irq, 2), 1);
  CHECK("taken by S", irq_mode, PRV_S);
  CHECK("scause", irq_cause, CAUSE_INTERRUPT | IRQ_S_TIMER);
  csr_write(mip, 0);
  csr_write(mideleg, 0);
  csr_write(mie, 0);
  group_end();
  return finish();
}
