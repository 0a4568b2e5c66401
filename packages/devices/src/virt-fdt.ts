/**
 * The `virt` board's device tree as QEMU 7.2's create_fdt() (hw/riscv/virt.c) builds it, node
 * for node and in the same order (libfdt puts each new node and property first, so QEMU's
 * tree reads in reverse creation order; this writer emits that final order directly).
 *
 * Phandles are QEMU's: for each hart from the last to the first, the cpu then its interrupt
 * controller; then the PLIC; then the finisher (sifive_test) the syscon nodes point at.
 *
 * Left out, as this machine does not model them: fw-cfg, the CFI flash banks, the PCIe host
 * and the (empty) platform bus. A guest probing them would meet unmapped addresses.
 *
 * @module
 */

import { FdtBuilder } from "./fdt.ts";

/** What our harts implement, in QEMU's riscv,isa spelling. */
export const VIRT_ISA_STRING = "rv64imac_zicsr_zifencei_zihintpause_sstc";
export const VIRT_UART_CLOCK = 0x384000;
export const VIRT_TIMEBASE_FREQ = 10_000_000;

export interface VirtFdtOptions {
  ramBase: number;
  ramSize: number;
  harts: number;
  /** `-append`: /chosen/bootargs (left out when empty, as QEMU). */
  bootargs?: string;
  /** `-initrd`: linux,initrd-start / linux,initrd-end (one cell each, as QEMU 7.2). */
  initrd?: { start: number; end: number };
  /** /chosen/rng-seed (32 bytes); random when not given. */
  rngSeed?: Uint8Array;
  /** riscv,isa of every cpu; default {@link VIRT_ISA_STRING}. */
  isa?: string;
  /** mmu-type of every cpu; default "riscv,sv48" (QEMU 7.2's for rv64), "riscv,none" with mmu=off. */
  mmuType?: string;
}

const VIRTIO_COUNT = 8;

function hex(n: number): string {
  return n.toString(16);
}

function reg(base: number, size: number): number[] {
  return [Math.floor(base / 2 ** 32), base >>> 0, Math.floor(size / 2 ** 32), size >>> 0];
}

/** QEMU's PMU event map for `virt` (create_fdt_pmu via riscv_pmu_generate_fdt_node). */
const PMU_EVENTS = [
  0x01, 0x01, 0x7fff9, 0x02, 0x02, 0x7fffc, 0x10019, 0x10019, 0x7fff8, 0x1001b, 0x1001b, 0x7fff8, 0x10021, 0x10021,
  0x7fff8, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/** Builds the DTB QEMU's `virt` gives the guest for the same options. */
export function buildVirtFdt(options: VirtFdtOptions): Uint8Array {
  const { ramBase, ramSize, harts } = options;
  const isa = options.isa ?? VIRT_ISA_STRING;
  // Phandles as QEMU allocates them.
  const cpuPhandle: number[] = [];
  const intcPhandle: number[] = [];
  let next = 1;
  for (let cpu = harts - 1; cpu >= 0; cpu--) {
    cpuPhandle[cpu] = next++;
    intcPhandle[cpu] = next++;
  }
  const plicPhandle = next++;
  const testPhandle = next++;

  const f = new FdtBuilder();
  f.begin("")
    .prop("#address-cells", 2)
    .prop("#size-cells", 2)
    .prop("compatible", "riscv-virtio")
    .prop("model", "riscv-virtio,qemu");

  f.begin("pmu").prop("riscv,event-to-mhpmcounters", PMU_EVENTS).prop("compatible", "riscv,pmu").end();

  f.begin("chosen");
  if (options.initrd !== undefined) {
    f.prop("linux,initrd-end", options.initrd.end >>> 0).prop("linux,initrd-start", options.initrd.start >>> 0);
  }
  f.prop("rng-seed", options.rngSeed ?? randomSeed());
  if (options.bootargs !== undefined && options.bootargs !== "") f.prop("bootargs", options.bootargs);
  f.prop("stdout-path", "/soc/serial@10000000").end();

  for (const [name, value] of [["poweroff", 0x5555], ["reboot", 0x7777]] as const) {
    f.begin(name)
      .prop("value", value)
      .prop("offset", 0)
      .prop("regmap", testPhandle)
      .prop("compatible", `syscon-${name}`)
      .end();
  }

  f.begin(`memory@${hex(ramBase)}`).prop("device_type", "memory").prop("reg", reg(ramBase, ramSize)).end();

  f.begin("cpus").prop("#address-cells", 1).prop("#size-cells", 0).prop("timebase-frequency", VIRT_TIMEBASE_FREQ);
  for (let cpu = 0; cpu < harts; cpu++) {
    f.begin(`cpu@${hex(cpu)}`)
      .prop("phandle", cpuPhandle[cpu]!)
      .prop("device_type", "cpu")
      .prop("reg", cpu)
      .prop("status", "okay")
      .prop("compatible", "riscv")
      .prop("riscv,isa", isa)
      .prop("mmu-type", options.mmuType ?? "riscv,sv48");
    f.begin("interrupt-controller")
      .prop("#interrupt-cells", 1)
      .prop("interrupt-controller")
      .prop("compatible", "riscv,cpu-intc")
      .prop("phandle", intcPhandle[cpu]!)
      .end();
    f.end();
  }
  f.begin("cpu-map").begin("cluster0");
  for (let cpu = 0; cpu < harts; cpu++) f.begin(`core${cpu}`).prop("cpu", cpuPhandle[cpu]!).end();
  f.end().end();
  f.end();

  f.begin("soc").prop("#address-cells", 2).prop("#size-cells", 2).prop("compatible", "simple-bus").prop("ranges");
  f.begin("rtc@101000")
    .prop("interrupts", 11)
    .prop("interrupt-parent", plicPhandle)
    .prop("reg", reg(0x10_1000, 0x1000))
    .prop("compatible", "google,goldfish-rtc")
    .end();
  f.begin("serial@10000000")
    .prop("interrupts", 10)
    .prop("interrupt-parent", plicPhandle)
    .prop("clock-frequency", VIRT_UART_CLOCK)
    .prop("reg", reg(0x1000_0000, 0x100))
    .prop("compatible", "ns16550a")
    .end();
  f.begin("test@100000")
    .prop("phandle", testPhandle)
    .prop("reg", reg(0x10_0000, 0x1000))
    .prop("compatible", ["sifive,test1", "sifive,test0", "syscon"].join("\0"))
    .end();
  for (let i = VIRTIO_COUNT - 1; i >= 0; i--) {
    const base = 0x1000_1000 + i * 0x1000;
    f.begin(`virtio_mmio@${hex(base)}`)
      .prop("interrupts", 1 + i)
      .prop("interrupt-parent", plicPhandle)
      .prop("reg", reg(base, 0x1000))
      .prop("compatible", "virtio,mmio")
      .end();
  }
  const plicCells: number[] = [];
  const clintCells: number[] = [];
  for (let cpu = 0; cpu < harts; cpu++) {
    plicCells.push(intcPhandle[cpu]!, 11, intcPhandle[cpu]!, 9);
    clintCells.push(intcPhandle[cpu]!, 3, intcPhandle[cpu]!, 7);
  }
  f.begin("plic@c000000")
    .prop("phandle", plicPhandle)
    .prop("riscv,ndev", 96)
    .prop("reg", reg(0x0c00_0000, 0x60_0000))
    .prop("interrupts-extended", plicCells)
    .prop("interrupt-controller")
    .prop("compatible", ["sifive,plic-1.0.0", "riscv,plic0"].join("\0"))
    .prop("#address-cells", 0)
    .prop("#interrupt-cells", 1)
    .end();
  f.begin("clint@2000000")
    .prop("interrupts-extended", clintCells)
    .prop("reg", reg(0x200_0000, 0x10000))
    .prop("compatible", ["sifive,clint0", "riscv,clint0"].join("\0"))
    .end();
  f.end();
  f.end();
  return f.finish();
}

/** @deprecated the full tree is {@link buildVirtFdt}. */
export function buildPlaceholderFdt(options: VirtFdtOptions): Uint8Array {
  return buildVirtFdt(options);
}

function randomSeed(): Uint8Array {
  const seed = new Uint8Array(32);
  globalThis.crypto.getRandomValues(seed);
  return seed;
}
