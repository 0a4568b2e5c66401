/* The boot protocol of QEMU's virt board with -bios none: the registers the reset vector in
   the mrom (0x1000) hands over, the mrom's words, fw_dynamic_info, the FDT header, and the
   memory map's edges (RAM size, MMIO holes). */
#include "tests.h"

const char test_name[] = "boot";

static uint32_t be32(uint64_t addr) {
  volatile uint8_t *p = (volatile uint8_t *)addr;
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int main(void) {
  group_begin("registers at entry");
  CHECK("a0 = hartid", boot_regs[0], 0);
  CHECK("a1 = FDT at the top of 128 MiB RAM, 2 MiB aligned", boot_regs[1], 0x87e00000UL);
  CHECK("a2 = fw_dynamic_info in the mrom", boot_regs[2], 0x1028);
  group_end();

  group_begin("reset state");
  CHECK("MTIP pending at reset (mtimecmp 0, as QEMU)", csr_read(mip) & (1UL << IRQ_M_TIMER), 1UL << IRQ_M_TIMER);
  csr_set(menvcfg, 1UL << 63); /* STCE */
  CHECK("Sstc on, stimecmp never written: STIP clear (as QEMU)", csr_read(mip) & (1UL << IRQ_S_TIMER), 0);
  csr_clear(menvcfg, 1UL << 63);
  group_end();

  group_begin("reset vector");
  volatile uint32_t *rom = (volatile uint32_t *)0x1000;
  CHECK("auipc t0, 0", rom[0], 0x00000297);
  CHECK("addi a2, t0, 40", rom[1], 0x02828613);
  CHECK("csrr a0, mhartid", rom[2], 0xf1402573);
  CHECK("ld a1, 32(t0)", rom[3], 0x0202b583);
  CHECK("ld t0, 24(t0)", rom[4], 0x0182b283);
  CHECK("jr t0", rom[5], 0x00028067);
  CHECK("start address", *(volatile uint64_t *)0x1018, 0x80000000UL);
  CHECK("FDT address", *(volatile uint64_t *)0x1020, 0x87e00000UL);
  volatile uint64_t *info = (volatile uint64_t *)0x1028;
  CHECK("fw_dynamic_info magic", info[0], 0x4942534f);
  CHECK("fw_dynamic_info version", info[1], 2);
  CHECK("fw_dynamic_info next_mode", info[3], 1);
  CHECK("fw_dynamic_info options", info[4], 0);
  CHECK("fw_dynamic_info boot_hart", info[5], 0);
  group_end();

  group_begin("device tree");
  uint64_t fdt = boot_regs[1];
  CHECK("magic", be32(fdt), 0xd00dfeed);
  uint32_t total = be32(fdt + 4);
  CHECK("totalsize fits the 1 MiB slot", total > 64 && total <= 0x100000, 1);
  CHECK("version 17", be32(fdt + 20), 17);
  group_end();

  group_begin("memory map edges");
  trap_expect();
  uint64_t v = *(volatile uint64_t *)0x87fffff8UL;
  (void)v;
  CHECK("last RAM word readable", trap.count, 0);
  trap_expect();
  v = *(volatile uint64_t *)0x88000000UL;
  CHECK("first byte past RAM: load access fault", trap.cause, CAUSE_LOAD_ACCESS);
  trap_expect();
  v = *(volatile uint32_t *)0x87fffffeUL; /* misaligned, half in RAM */
  CHECK("misaligned load straddling RAM's end faults", trap.cause, CAUSE_LOAD_ACCESS);
  trap_done();
  group_end();
  return finish();
}
