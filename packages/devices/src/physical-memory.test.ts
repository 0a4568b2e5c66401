import { describe, expect, it } from "vitest";
import { PhysicalMemory } from "./physical-memory.ts";

describe("PhysicalMemory", () => {
  function setup() {
    const marks: [string, number, number][] = [];
    const mem = new PhysicalMemory();
    mem.add({ name: "rom", base: 0x1000, bytes: new Uint8Array(0x1000), markDirty: (o, l) => marks.push(["rom", o, l]) });
    mem.add({ name: "ram", base: 0x8000_0000, bytes: new Uint8Array(0x2000), markDirty: (o, l) => marks.push(["ram", o, l]) });
    return { mem, marks };
  }

  it("reports every write's block-relative range to the block's markDirty", () => {
    const { mem, marks } = setup();
    mem.write(0x8000_0010, Uint8Array.of(1, 2, 3));
    mem.writeU64(0x8000_1000n, 5n);
    mem.zero(0x1008, 16);
    expect(marks).toEqual([["ram", 0x10, 3], ["ram", 0x1000, 8], ["rom", 8, 16]]);
    expect(mem.readU64(0x8000_1000)).toBe(5n);
  });

  it("refuses ranges outside one block and leaves the bitmaps alone", () => {
    const { mem, marks } = setup();
    expect(mem.writeU64(0x8000_1ffcn, 1n)).toBe(false);
    expect(() => mem.write(0x3000, Uint8Array.of(1))).toThrow(/0x3000: not inside guest RAM or ROM/);
    expect(mem.view(0x1ff8, 16)).toBeUndefined();
    expect(marks).toEqual([]);
  });
});
