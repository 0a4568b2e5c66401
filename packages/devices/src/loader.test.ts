import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isElf, loadImage } from "./loader.ts";
import { PhysicalMemory } from "./physical-memory.ts";

const BASE = 0x8000_0000;

function ram(): { mem: PhysicalMemory; bytes: Uint8Array } {
  const bytes = new Uint8Array(0x10000).fill(0xff);
  const mem = new PhysicalMemory();
  mem.add({ name: "ram", base: BASE, bytes });
  return { mem, bytes };
}

describe("loadImage", () => {
  it("places ELF segments at their physical addresses and zeroes the bss", () => {
    const { mem } = ram();
    const elf = readFileSync(new URL("../test-fixtures/bss.elf", import.meta.url));
    const img = loadImage(mem, elf, { rawAddr: 0n, what: "kernel" });
    const sym = (n: string) => img.elf!.symbol(n)!.value;
    expect(img.entry).toBe(0x8000_0000n);
    expect(img.lowAddr).toBe(0x8000_0000n);
    expect(mem.view(sym("word"), 4)).toEqual(Uint8Array.of(0x44, 0x33, 0x22, 0x11));
    expect(mem.view(sym("zeros"), 256)!.every((b) => b === 0)).toBe(true);
    expect(img.endAddr).toBe(sym("zeros") + 256n);
  });

  it("places a raw image at the given address", () => {
    const { mem, bytes } = ram();
    const img = loadImage(mem, Uint8Array.of(1, 2, 3), { rawAddr: 0x8000_0100n, what: "kernel" });
    expect(isElf(Uint8Array.of(1, 2, 3))).toBe(false);
    expect([...bytes.subarray(0x100, 0x104)]).toEqual([1, 2, 3, 0xff]);
    expect(img).toMatchObject({ lowAddr: 0x8000_0100n, endAddr: 0x8000_0103n, entry: 0x8000_0100n, elf: undefined });
  });

  it("names the image when it does not fit in RAM", () => {
    const { mem } = ram();
    expect(() => loadImage(mem, new Uint8Array(0x20000), { rawAddr: BigInt(BASE), what: "firmware (-bios)" })).toThrow(
      /^firmware \(-bios\): 131072 bytes at 0x80000000 do not fit in guest RAM/,
    );
  });
});
