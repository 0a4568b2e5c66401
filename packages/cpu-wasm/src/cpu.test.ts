import { describe, it, expect } from "vitest";
import { Cpu, CSR_NUMBERS, ExitReason, CPU_HART_AREA_BASE, CPU_HART_BLOCK_SIZE } from "./mod.ts";

const bus = { read: () => undefined, write: () => false };
const memory = (pages: number) => new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });

describe("Cpu", () => {
  it("create() loads the wasm next to the sources and resets every hart to M-mode", async () => {
    const cpu = await Cpu.create({ memory: memory(64), harts: 2, mmio: bus });
    expect(cpu.harts).toBe(2);
    expect(cpu.hart(1).priv).toBe(3);
    expect(cpu.hart(1).csr("mhartid")).toBe(1n);
    expect(cpu.hart(1).base).toBe(CPU_HART_AREA_BASE + CPU_HART_BLOCK_SIZE);
  });

  it("refuses a memory too small for its harts, bad hart counts and out-of-range harts", () => {
    expect(() => Cpu.createSync({ memory: memory(17), harts: 2, mmio: bus })).toThrow(RangeError);
    expect(() => Cpu.createSync({ memory: memory(64), harts: 0, mmio: bus })).toThrow(RangeError);
    const cpu = Cpu.createSync({ memory: memory(64), harts: 1, mmio: bus });
    expect(() => cpu.hart(1)).toThrow(RangeError);
    expect(() => cpu.run(1, 10)).toThrow(RangeError);
  });

  it("validates the RAM region table", () => {
    const cpu = Cpu.createSync({ memory: memory(64), harts: 1, mmio: bus });
    const r = { base: 0x8000_0000, size: 0x1000, hostOffset: 0x30_0000 };
    expect(() => cpu.setRegions(Array.from({ length: 9 }, () => r))).toThrow(/limit of 8/);
    expect(() => cpu.setRegions([{ ...r, base: 0x8000_0800 }])).toThrow(/multiples of 4096/);
    expect(() => cpu.setRegions([{ ...r, hostOffset: 0x40_0000 }])).toThrow(/beyond the linear memory/);
    expect(() => cpu.setRegions([{ ...r, dirtyBitmaps: [0, 0, 0, 0, 0] }])).toThrow(/dirty bitmaps/);
  });

  it("names CSRs by their spec names and rejects unknown ones", () => {
    expect(CSR_NUMBERS["mstatus"]).toBe(0x300);
    expect(CSR_NUMBERS["pmpaddr15"]).toBe(0x3bf);
    expect(CSR_NUMBERS["mhpmevent31"]).toBe(0x33f);
    const cpu = Cpu.createSync({ memory: memory(64), harts: 1, mmio: bus });
    expect(() => cpu.hart(0).csr("nosuchcsr")).toThrow(RangeError);
    expect(() => cpu.hart(0).setCsr("mhartid", 1n)).toThrow(/read-only/);
  });

  it("keeps the hart waiting in WFI across run() calls until an enabled interrupt is pending", () => {
    const cpu = Cpu.createSync({ memory: memory(64), harts: 1, mmio: bus });
    const h = cpu.hart(0);
    h.wfi = true;
    h.setCsr("mie", 0x800n);
    expect(cpu.run(0, 10)).toBe(ExitReason.Wfi);
    expect(h.lastRetired).toBe(0n);
    h.mipExternal = 0x800;
    // Wakes, then fetches from address 0 (nothing mapped): the access fault goes to mtvec = 0.
    expect(cpu.run(0, 1)).toBe(ExitReason.Budget);
    expect(h.wfi).toBe(false);
  });
});
