import { describe, expect, it } from "vitest";
import { createMachine, resolveMachineConfig } from "./machine.ts";
import {
  findMachineType,
  formatMachineHelp,
  HW_COMPAT_1_0,
  MACHINE_TYPES,
  RV64_CPU_CLASS,
  VIRTIO_BLK_CLASS,
  VIRTIO_RNG_CLASS,
} from "./machine-types.ts";
import { formatDeviceHelp, parseGlobalProperty, PropertyError, resolveProperties } from "./properties.ts";
import { MemoryBlockBackend } from "./virtio-blk.ts";

describe("machine types", () => {
  it("make virt an alias of the newest type, which is the default", () => {
    expect(findMachineType("virt").name).toBe("virt-1.1");
    expect(findMachineType("virt-1.0").name).toBe("virt-1.0");
    expect(MACHINE_TYPES.filter((m) => m.isDefault).map((m) => m.name)).toEqual(["virt-1.1"]);
    expect(() => findMachineType("virt-0.9")).toThrow(/unsupported machine type 'virt-0.9' \(known: virt, virt-1.1, virt-1.0\)/);
  });

  it("list like QEMU's -M help", () => {
    expect(formatMachineHelp()).toBe(
      "Supported machines are:\n" +
        "virt                 RISC-V VirtIO board (alias of virt-1.1)\n" +
        "virt-1.1             RISC-V VirtIO board (default)\n" +
        "virt-1.0             RISC-V VirtIO board\n",
    );
  });

  it("apply every later release's compat entries to an older type, and none to the newest", () => {
    expect(findMachineType("virt").compat).toEqual([]);
    expect(findMachineType("virt-1.0").compat).toEqual(HW_COMPAT_1_0);
  });
});

describe("device properties", () => {
  it("resolve in QEMU's order: default, compat list, -global, the device's own option", () => {
    const compat = [{ driver: "virtio-blk-device", property: "num-queues", value: "1" }];
    expect(resolveProperties(VIRTIO_BLK_CLASS).number("num-queues")).toBe(0xffff);
    expect(resolveProperties(VIRTIO_BLK_CLASS, { compat, machineType: "virt-1.0" }).origin("num-queues")).toBe("compat virt-1.0");
    const g = resolveProperties(VIRTIO_BLK_CLASS, { compat, globals: [parseGlobalProperty("virtio-blk-device.num-queues=3")] });
    expect([g.number("num-queues"), g.origin("num-queues")]).toEqual([3, "-global"]);
    const o = resolveProperties(VIRTIO_BLK_CLASS, { compat, globals: [parseGlobalProperty("virtio-blk-device.num-queues=3")], options: { "num-queues": "4" } });
    expect(o.number("num-queues")).toBe(4);
  });

  it("take a global or compat entry naming a parent type (riscv-cpu reaches rv64-riscv-cpu)", () => {
    const p = resolveProperties(RV64_CPU_CLASS, { globals: [{ driver: "riscv-cpu", property: "c", value: "off" }] });
    expect(p.bool("c")).toBe(false);
    expect(p.bool("m")).toBe(true);
  });

  it("reject unknown properties, bad values and extensions this CPU lacks, naming them", () => {
    expect(() => resolveProperties(VIRTIO_BLK_CLASS, { options: { "num-queue": "2" } })).toThrow(
      new PropertyError("Property 'virtio-blk-device.num-queue' not found"),
    );
    expect(() => resolveProperties(VIRTIO_BLK_CLASS, { options: { "num-queues": "x" } })).toThrow("Parameter 'num-queues' expects uint16");
    expect(() => resolveProperties(VIRTIO_BLK_CLASS, { options: { "num-queues": "70000" } })).toThrow(/maximum: 65535/);
    expect(() => resolveProperties(RV64_CPU_CLASS, { options: { c: "maybe" } })).toThrow("Parameter 'c' expects 'on' or 'off'");
    expect(() => resolveProperties(RV64_CPU_CLASS, { options: { f: "on" } })).toThrow(/FerryVM's CPU does not implement 'f'/);
    expect(resolveProperties(RV64_CPU_CLASS, { options: { f: "off" } }).bool("f")).toBe(false);
    expect(() => resolveProperties(RV64_CPU_CLASS, { globals: [{ driver: "riscv-cpu", property: "q", value: "on" }] })).toThrow(
      "can't apply global riscv-cpu.q=on: Property 'rv64-riscv-cpu.q' not found",
    );
  });

  it("print -device DRIVER,help with types and defaults", () => {
    expect(formatDeviceHelp(VIRTIO_RNG_CLASS)).toMatch(/^virtio-rng-device options:\n  max-bytes=<uint64> +- .*\(default: 9223372036854775807\)\n  period=<uint32> +- .*\(default: 65536\)/);
  });
});

describe("a machine built from a machine type", () => {
  const backend = () => new MemoryBlockBackend(new Uint8Array(4096));

  it("takes num-queues from the type: one per hart from virt-1.1, one for virt-1.0", () => {
    const spec = { type: "virtio-blk-device" as const, backend: backend() };
    expect(resolveMachineConfig({ virtio: [spec] }).virtio[0]!.number("num-queues")).toBe(0xffff);
    expect(resolveMachineConfig({ machineType: "virt-1.0", virtio: [spec] }).virtio[0]!.number("num-queues")).toBe(1);
    expect(() => resolveMachineConfig({ virtio: [{ ...spec, properties: { "num-queues": "0" } }] })).toThrow(/num-queues property must be greater than 0/);
  });

  it("refuses an unknown machine type or a -global for a device type it does not have", () => {
    expect(() => resolveMachineConfig({ machineType: "pc" })).toThrow(/unsupported machine type 'pc'/);
    expect(() => resolveMachineConfig({ globals: [{ driver: "e1000", property: "mac", value: "x" }] })).toThrow(/no device type 'e1000'/);
  });

  it("gives the guest the CPU it asked for: misa and the device tree's riscv,isa follow -cpu rv64,c=off,m=off", async () => {
    const m = await createMachine({ ramSize: 16 << 20, cpuProperties: { c: "off", m: "off" } });
    expect(m.cpu.isa(0).c).toBe(false);
    const dtb = new TextDecoder("latin1").decode(m.buildFdt());
    expect(dtb).toContain("rv64ia_zicsr_zifencei_zihintpause_sstc\0");
    const full = new TextDecoder("latin1").decode((await createMachine({ ramSize: 16 << 20 })).buildFdt());
    expect(full).toContain("rv64imac_zicsr_zifencei_zihintpause_sstc\0");
    expect(full).toContain("riscv,sv48\0");
    // QEMU 7.2 with -cpu rv64,mmu=off: mmu-type = "riscv,none"
    const noMmu = new TextDecoder("latin1").decode((await createMachine({ ramSize: 16 << 20, cpuProperties: { mmu: "off" } })).buildFdt());
    expect(noMmu).toContain("riscv,none\0");
    expect(noMmu).not.toContain("riscv,sv48\0");
  });
});
