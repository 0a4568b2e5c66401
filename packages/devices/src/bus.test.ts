import { describe, expect, it } from "vitest";
import { SystemBus, type MmioDevice } from "./bus.ts";

function recorder(): MmioDevice & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    read: (off, size) => { log.push(`r${off}/${size}`); return off; },
    write: (off, size, v) => { log.push(`w${off}/${size}=${v}`); return true; },
  };
}

describe("SystemBus", () => {
  it("dispatches to the device with window-relative offsets", () => {
    const bus = new SystemBus();
    const a = recorder();
    const b = recorder();
    bus.map("a", 0x1000, 0x100, a);
    bus.map("b", 0x2000, 0x10, b);
    expect(bus.read(0x1008, 4, 0)).toBe(8);
    expect(bus.write(0x2004, 1, 7, 0)).toBe(true);
    expect(a.log).toEqual(["r8/4"]);
    expect(b.log).toEqual(["w4/1=7"]);
  });

  it("answers unmapped addresses and accesses running past a window as faults", () => {
    const bus = new SystemBus();
    bus.map("a", 0x1000, 0x10, recorder());
    expect(bus.read(0x3000, 4, 0)).toBeUndefined();
    expect(bus.write(0x3000, 4, 1, 0)).toBe(false);
    expect(bus.read(0x100c, 8, 0)).toBeUndefined();
  });

  it("rejects overlapping mappings", () => {
    const bus = new SystemBus();
    bus.map("a", 0x1000, 0x100, recorder());
    expect(() => bus.map("b", 0x10f0, 0x100, recorder())).toThrow(/overlaps a/);
  });
});
