/**
 * A minimal device tree for the `virt` board: memory, cpus with their timebase, and the
 * devices this machine models so far. The full tree as QEMU's create_fdt() builds it comes
 * with the complete board.
 *
 * @module
 */

import { FdtBuilder } from "./fdt.ts";

export interface VirtFdtOptions {
  ramBase: number;
  ramSize: number;
  harts: number;
}

export function buildPlaceholderFdt(options: VirtFdtOptions): Uint8Array {
  const f = new FdtBuilder();
  f.begin("")
    .prop("#address-cells", 2)
    .prop("#size-cells", 2)
    .prop("compatible", "riscv-virtio")
    .prop("model", "riscv-virtio,qemu");
  f.begin("chosen").prop("stdout-path", "/soc/serial@10000000").end();
  f.begin(`memory@${options.ramBase.toString(16)}`)
    .prop("device_type", "memory")
    .prop("reg", [0, options.ramBase, Math.floor(options.ramSize / 2 ** 32), options.ramSize >>> 0])
    .end();
  f.begin("cpus").prop("#address-cells", 1).prop("#size-cells", 0).prop("timebase-frequency", 10_000_000);
  for (let i = 0; i < options.harts; i++) {
    f.begin(`cpu@${i}`)
      .prop("device_type", "cpu")
      .prop("reg", i)
      .prop("status", "okay")
      .prop("compatible", "riscv")
      .prop("riscv,isa", "rv64imac")
      .prop("mmu-type", "riscv,sv48");
    f.begin("interrupt-controller")
      .prop("#interrupt-cells", 1)
      .prop("interrupt-controller")
      .prop("compatible", "riscv,cpu-intc")
      .prop("phandle", i + 1)
      .end();
    f.end();
  }
  f.end();
  f.begin("soc").prop("#address-cells", 2).prop("#size-cells", 2).prop("compatible", "simple-bus").prop("ranges");
  f.begin("serial@10000000")
    .prop("clock-frequency", 0x384000)
    .prop("reg", [0, 0x1000_0000, 0, 0x100])
    .prop("compatible", "ns16550a")
    .end();
  f.begin("test@100000")
    .prop("reg", [0, 0x10_0000, 0, 0x1000])
    .prop("compatible", ["sifive,test1", "sifive,test0", "syscon"].join("\0"))
    .end();
  const ext: number[] = [];
  for (let i = 0; i < options.harts; i++) ext.push(i + 1, 3, i + 1, 7);
  f.begin("clint@2000000")
    .prop("interrupts-extended", ext)
    .prop("reg", [0, 0x200_0000, 0, 0x10000])
    .prop("compatible", ["sifive,clint0", "riscv,clint0"].join("\0"))
    .end();
  f.end();
  f.end();
  return f.finish();
}
