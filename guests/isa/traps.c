/* Every synchronous trap cause reachable without paging (page faults are in vm-sv39/vm-sv48):
   mcause, mtval, mepc, the mstatus stack on trap and mret, xRET/WFI privilege rules.
   Instruction-address-misaligned cannot happen: with C every jump target is 2-byte aligned
   (jalr clears bit 0), so cause 0 is never raised. */
#include "tests.h"

const char test_name[] = "traps";

#define HOLE 0x200000UL       /* nothing is mapped between the RTC and the CLINT */
#define RAM_END 0x88000000UL  /* first byte after 128 MiB of RAM */

static uint64_t ill_u(uint64_t w) {
  trap_expect();
  switch (w) {
  case 0: asm volatile("mret"); break;
  case 1: asm volatile("sret"); break;
  case 2: asm volatile("wfi"); break;
  case 3: asm volatile("sfence.vma"); break;
  }
  trap_done();
  return trap.count ? trap.cause : 0;
}

static uint64_t ecall_from(uint64_t unused) {
  trap_expect();
  register uint64_t a7 asm("a7") = 1;
  asm volatile("ecall" : : "r"(a7));
  trap_done();
  return trap.cause;
}

static void test_illegal(void) {
  group_begin("illegal instruction");
  trap_expect();
  asm volatile(".4byte 0x0000000b"); /* custom-0 */
  CHECK("custom-0: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("custom-0: mtval = instruction", trap.tval, 0x0000000b);
  trap_expect();
  asm volatile(".4byte 0xffffffff");
  CHECK("all ones: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("all ones: mtval", trap.tval, 0xffffffff);
  trap_expect();
  asm volatile(".2byte 0x0000");
  CHECK("all zero: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("all zero: mtval", trap.tval, 0);
  trap_expect();
  asm volatile(".4byte 0x0200003b"); /* funct7 = 1 on opcode OP-32, funct3 0: mulw ok; use funct7 = 0x40 with sll */
  CHECK("mulw is legal", trap.count, 0);
  trap_expect();
  asm volatile(".4byte 0x4000103b"); /* sllw with funct7 = 0x20: reserved */
  CHECK("sllw funct7 0x20: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("sllw funct7 0x20: mtval", trap.tval, 0x4000103b);
  trap_expect();
  asm volatile(".4byte 0x00007003"); /* load funct3 = 7: reserved */
  CHECK("load funct3 7: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_expect();
  asm volatile(".4byte 0x00004023"); /* store funct3 = 4: reserved */
  CHECK("store funct3 4: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_expect();
  asm volatile(".4byte 0x02001013"); /* slli with imm bit 11..6 = 0x20 >> ... shamt 32 legal */
  CHECK("slli 32 is legal on RV64", trap.count, 0);
  trap_expect();
  asm volatile(".4byte 0x0200101b"); /* slliw with shamt[5] = 1: reserved */
  CHECK("slliw shamt 32: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_expect();
  asm volatile(".4byte 0x00002067"); /* jalr funct3 = 2 */
  CHECK("jalr funct3 2: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_expect();
  asm volatile(".4byte 0x00002063"); /* branch funct3 = 2 */
  CHECK("branch funct3 2: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_expect();
  asm volatile(".4byte 0x3000302f"); /* AMO funct5 0x06: not an AMO */
  CHECK("AMO funct5 0x06: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_expect();
  asm volatile(".4byte 0x0000500f"); /* misc-mem funct3 5 */
  CHECK("misc-mem funct3 5: cause", trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  trap_done();
  group_end();

  group_begin("privileged instructions from lower modes");
  const char *names[] = {"mret", "sret", "wfi", "sfence.vma"};
  for (uint64_t w = 0; w < 4; w++) {
    CHECK(names[w], run_lower(PRV_U, ill_u, w), CAUSE_ILLEGAL_INSTRUCTION);
  }
  CHECK("sfence.vma from U: mtval", trap.tval, 0x12000073);
  CHECK("mret from S", run_lower(PRV_S, ill_u, 0), CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("mret from S: mtval", trap.tval, 0x30200073);
  csr_set(mstatus, MSTATUS_TSR);
  CHECK("sret from S with TSR", run_lower(PRV_S, ill_u, 1), CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("sret from S with TSR: mtval", trap.tval, 0x10200073);
  csr_clear(mstatus, MSTATUS_TSR);
  csr_set(mstatus, MSTATUS_TW);
  CHECK("wfi from S with TW", run_lower(PRV_S, ill_u, 2), CAUSE_ILLEGAL_INSTRUCTION);
  CHECK("wfi from S with TW: mtval", trap.tval, 0x10500073);
  csr_clear(mstatus, MSTATUS_TW);
  /* wfi from S without TW is legal; a pending delegated STI (SIE = 0) wakes it up */
  csr_write(mideleg, 1UL << IRQ_S_TIMER);
  csr_write(mie, 1UL << IRQ_S_TIMER);
  csr_write(mip, 1UL << IRQ_S_TIMER);
  CHECK("wfi from S without TW", run_lower(PRV_S, ill_u, 2), 0);
  csr_write(mip, 0);
  csr_write(mie, 0);
  csr_write(mideleg, 0);
  group_end();
}

static void test_breakpoint_ecall(void) {
  group_begin("breakpoint");
  uint64_t where;
  trap_expect();
  asm volatile(".option push\n.option norvc\n 1: ebreak\n la %0, 1b\n.option pop" : "=r"(where));
  CHECK("ebreak: cause", trap.cause, CAUSE_BREAKPOINT);
  CHECK("ebreak: mepc", trap.epc, where);
  CHECK("ebreak: mtval", trap.tval, 0);
  trap_expect();
  asm volatile("1: c.ebreak\n la %0, 1b" : "=r"(where));
  CHECK("c.ebreak: cause", trap.cause, CAUSE_BREAKPOINT);
  CHECK("c.ebreak: mepc", trap.epc, where);
  trap_done();
  group_end();

  group_begin("ecall");
  CHECK("ecall from U", run_lower(PRV_U, ecall_from, 0), CAUSE_USER_ECALL);
  CHECK("ecall from U: MPP", trap.prev, PRV_U);
  CHECK("ecall from U: mtval", trap.tval, 0);
  CHECK("ecall from S", run_lower(PRV_S, ecall_from, 0), CAUSE_SUPERVISOR_ECALL);
  CHECK("ecall from S: MPP", trap.prev, PRV_S);
  CHECK("ecall from M", ecall_from(0), CAUSE_MACHINE_ECALL);
  CHECK("ecall from M: MPP", trap.prev, PRV_M);
  CHECK("ecall: mepc is the ecall", *(volatile uint32_t *)trap.epc, 0x00000073);
  group_end();
}

static uint64_t fetch_at(uint64_t addr) {
  trap_expect();
  asm volatile("la t1, 1f\n sd t1, 0(%0)\n jalr %1\n 1:" : : "r"(&trap_resume), "r"(addr)
               : "t1", "ra", "memory");
  trap_done();
  return trap.cause;
}

static uint64_t load_at(uint64_t addr) {
  trap_expect();
  asm volatile("ld t0, 0(%0)" : : "r"(addr) : "t0", "memory");
  trap_done();
  return trap.count ? trap.cause : 0;
}

static uint64_t store_at(uint64_t addr) {
  trap_expect();
  asm volatile("sw zero, 0(%0)" : : "r"(addr) : "memory");
  trap_done();
  return trap.count ? trap.cause : 0;
}

static void test_access_faults(void) {
  group_begin("access faults");
  CHECK("load from a hole", load_at(HOLE), CAUSE_LOAD_ACCESS);
  CHECK("load from a hole: mtval", trap.tval, HOLE);
  CHECK("load past RAM", load_at(RAM_END + 8), CAUSE_LOAD_ACCESS);
  CHECK("load past RAM: mtval", trap.tval, RAM_END + 8);
  CHECK("store to a hole", store_at(HOLE + 4), CAUSE_STORE_ACCESS);
  CHECK("store to a hole: mtval", trap.tval, HOLE + 4);
  CHECK("store past RAM", store_at(RAM_END), CAUSE_STORE_ACCESS);
  CHECK("store past RAM: mtval", trap.tval, RAM_END);
  CHECK("fetch from a hole", fetch_at(HOLE), CAUSE_FETCH_ACCESS);
  CHECK("fetch from a hole: mepc", trap.epc, HOLE);
  CHECK("fetch from a hole: mtval", trap.tval, HOLE);
  CHECK("fetch past RAM", fetch_at(RAM_END + 0x100), CAUSE_FETCH_ACCESS);
  CHECK("fetch past RAM: mtval", trap.tval, RAM_END + 0x100);
  CHECK("load from U: access fault", run_lower(PRV_U, load_at, HOLE), CAUSE_LOAD_ACCESS);
  CHECK("load from U: MPP", trap.prev, PRV_U);
  CHECK("store from S: access fault", run_lower(PRV_S, store_at, RAM_END), CAUSE_STORE_ACCESS);
  CHECK("store from S: MPP", trap.prev, PRV_S);
  CHECK("fetch from U: access fault", run_lower(PRV_U, fetch_at, HOLE), CAUSE_FETCH_ACCESS);
  group_end();
}

static void test_status_stack(void) {
  group_begin("mstatus on trap and mret");
  csr_write(mie, 0);
  csr_set(mstatus, MSTATUS_MIE);
  csr_clear(mstatus, MSTATUS_MPIE);
  trap_expect();
  asm volatile("ebreak");
  trap_done();
  CHECK("in handler: MIE = 0", trap.status & MSTATUS_MIE, 0);
  CHECK("in handler: MPIE = old MIE", trap.status & MSTATUS_MPIE, MSTATUS_MPIE);
  CHECK("in handler: MPP = M", trap.status & MSTATUS_MPP, MSTATUS_MPP);
  uint64_t s = csr_read(mstatus);
  CHECK("after mret: MIE = MPIE", s & MSTATUS_MIE, MSTATUS_MIE);
  CHECK("after mret: MPIE = 1", s & MSTATUS_MPIE, MSTATUS_MPIE);
  CHECK("after mret: MPP = U", s & MSTATUS_MPP, 0);
  csr_clear(mstatus, MSTATUS_MIE);
  trap_expect();
  asm volatile("ebreak");
  trap_done();
  CHECK("MIE 0: MPIE = 0 in handler", trap.status & MSTATUS_MPIE, 0);
  CHECK("MIE 0: MIE stays 0 after mret", csr_read(mstatus) & MSTATUS_MIE, 0);
  /* mret to a lower mode clears MPRV */
  csr_set(mstatus, MSTATUS_MPRV);
  run_lower(PRV_U, load_at, 0x80000000UL);
  CHECK("mret to U clears MPRV", csr_read(mstatus) & MSTATUS_MPRV, 0);
  group_end();
}

int main(void) {
  test_illegal();
  test_breakpoint_ecall();
  test_access_faults();
  test_status_stack();
  return finish();
}
