import { describe, expect, it } from "vitest";
import { ElfError, parseElf, patchElfU64 } from "./elf.ts";

interface TestSegment { paddr: bigint; vaddr?: bigint; data: number[]; memsz?: number; type?: number }

/** Builds a minimal ELF64 LE image: header, program headers, segment bytes, .symtab, .strtab. */
function buildElf(opts: {
  segments: TestSegment[];
  symbols?: { name: string; value: bigint; shndx?: number }[];
  entry?: bigint;
  machine?: number;
  type?: number;
}): Uint8Array {
  const segs = opts.segments;
  const syms = opts.symbols ?? [];
  const phoff = 64;
  let cursor = phoff + 56 * segs.length;
  const segOffsets = segs.map((s) => { const o = cursor; cursor += s.data.length; return o; });
  const strtab: number[] = [0];
  const nameOffs = syms.map((s) => {
    const o = strtab.length;
    for (const c of new TextEncoder().encode(s.name)) strtab.push(c);
    strtab.push(0);
    return o;
  });
  const strOff = cursor; cursor += strtab.length;
  cursor = (cursor + 7) & ~7;
  const symOff = cursor; cursor += 24 * (syms.length + 1);
  const shoff = cursor; cursor += 64 * 3;
  const b = new Uint8Array(cursor);
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(0x10, opts.type ?? 2, true);
  dv.setUint16(0x12, opts.machine ?? 243, true);
  dv.setUint32(0x14, 1, true);
  dv.setBigUint64(0x18, opts.entry ?? 0x8000_0000n, true);
  dv.setBigUint64(0x20, BigInt(phoff), true);
  dv.setBigUint64(0x28, BigInt(shoff), true);
  dv.setUint16(0x34, 64, true);
  dv.setUint16(0x36, 56, true);
  dv.setUint16(0x38, segs.length, true);
  dv.setUint16(0x3a, 64, true);
  dv.setUint16(0x3c, 3, true);
  segs.forEach((s, i) => {
    const o = phoff + 56 * i;
    dv.setUint32(o, s.type ?? 1, true);
    dv.setUint32(o + 4, 7, true);
    dv.setBigUint64(o + 8, BigInt(segOffsets[i]!), true);
    dv.setBigUint64(o + 16, s.vaddr ?? s.paddr, true);
    dv.setBigUint64(o + 24, s.paddr, true);
    dv.setBigUint64(o + 32, BigInt(s.data.length), true);
    dv.setBigUint64(o + 40, BigInt(s.memsz ?? s.data.length), true);
    b.set(s.data, segOffsets[i]!);
  });
  b.set(strtab, strOff);
  syms.forEach((s, i) => {
    const o = symOff + 24 * (i + 1);
    dv.setUint32(o, nameOffs[i]!, true);
    dv.setUint8(o + 4, 0x11);
    dv.setUint16(o + 6, s.shndx ?? 1, true);
    dv.setBigUint64(o + 8, s.value, true);
  });
  // section 1: .symtab (link 2), section 2: .strtab
  const s1 = shoff + 64;
  dv.setUint32(s1 + 4, 2, true);
  dv.setBigUint64(s1 + 24, BigInt(symOff), true);
  dv.setBigUint64(s1 + 32, BigInt(24 * (syms.length + 1)), true);
  dv.setUint32(s1 + 40, 2, true);
  dv.setBigUint64(s1 + 56, 24n, true);
  const s2 = shoff + 128;
  dv.setUint32(s2 + 4, 3, true);
  dv.setBigUint64(s2 + 24, BigInt(strOff), true);
  dv.setBigUint64(s2 + 32, BigInt(strtab.length), true);
  return b;
}

describe("parseElf", () => {
  it("reads the entry point and PT_LOAD segments with their bss size", () => {
    const elf = parseElf(buildElf({
      entry: 0x8000_0010n,
      segments: [
        { paddr: 0x8000_0000n, data: [1, 2, 3, 4], memsz: 0x100 },
        { paddr: 0x8000_1000n, vaddr: 0xffff_ffff_8000_1000n, data: [9] },
        { paddr: 0x9000_0000n, data: [5], type: 4 },
      ],
    }));
    expect(elf.entry).toBe(0x8000_0010n);
    expect(elf.segments).toHaveLength(2);
    expect(elf.segments[0]!.paddr).toBe(0x8000_0000n);
    expect(elf.segments[0]!.filesz).toBe(4);
    expect(elf.segments[0]!.memsz).toBe(0x100);
    expect([...elf.segments[0]!.data]).toEqual([1, 2, 3, 4]);
    expect(elf.segments[1]!.vaddr).toBe(0xffff_ffff_8000_1000n);
    expect(elf.segments[1]!.paddr).toBe(0x8000_1000n);
  });

  it("looks up defined symbols by name and skips undefined ones", () => {
    const elf = parseElf(buildElf({
      segments: [{ paddr: 0x8000_0000n, data: [0] }],
      symbols: [
        { name: "tohost", value: 0x8000_1000n },
        { name: "fromhost", value: 0x8000_1040n },
        { name: "extern_thing", value: 0n, shndx: 0 },
      ],
    }));
    expect(elf.symbol("tohost")?.value).toBe(0x8000_1000n);
    expect(elf.symbol("fromhost")?.value).toBe(0x8000_1040n);
    expect(elf.symbol("extern_thing")).toBeUndefined();
    expect(elf.symbol("missing")).toBeUndefined();
    expect(elf.symbols.map((s) => s.name)).toEqual(["tohost", "fromhost"]);
  });

  it("rejects a file that is not ELF", () => {
    const bytes = buildElf({ segments: [] });
    bytes[1] = 0x46;
    expect(() => parseElf(bytes)).toThrow(/bad magic/);
    expect(() => parseElf(new Uint8Array(10))).toThrow(ElfError);
  });

  it("rejects 32-bit, big-endian and non-RISC-V files", () => {
    const c32 = buildElf({ segments: [] });
    c32[4] = 1;
    expect(() => parseElf(c32)).toThrow(/ELFCLASS64/);
    const be = buildElf({ segments: [] });
    be[5] = 2;
    expect(() => parseElf(be)).toThrow(/little-endian/);
    expect(() => parseElf(buildElf({ segments: [], machine: 62 }))).toThrow(/EM_RISCV/);
  });

  it("rejects relocatable objects and accepts ET_DYN", () => {
    expect(() => parseElf(buildElf({ segments: [], type: 1 }))).toThrow(/not loadable/);
    expect(parseElf(buildElf({ segments: [], type: 3 })).type).toBe(3);
  });

  it("rejects a segment that runs past the end of the file", () => {
    const bytes = buildElf({ segments: [{ paddr: 0x8000_0000n, data: [1, 2, 3, 4] }] });
    new DataView(bytes.buffer).setBigUint64(64 + 32, 0x10000n, true);
    new DataView(bytes.buffer).setBigUint64(64 + 40, 0x10000n, true);
    expect(() => parseElf(bytes)).toThrow(/runs past the end/);
  });

  it("rejects p_filesz larger than p_memsz", () => {
    const bytes = buildElf({ segments: [{ paddr: 0x8000_0000n, data: [1, 2, 3, 4] }] });
    new DataView(bytes.buffer).setBigUint64(64 + 40, 2n, true);
    expect(() => parseElf(bytes)).toThrow(/larger than p_memsz/);
  });
});

describe("patchElfU64", () => {
  const bytes = (): Uint8Array => buildElf({
    segments: [{ paddr: 0x8000_0000n, data: Array.from({ length: 32 }, (_, i) => i) }],
    symbols: [
      { name: "count", value: 0x8000_0008n },
      { name: "outside", value: 0x8000_0100n },
    ],
  });

  it("writes the word at the symbol in a copy and leaves the input alone", () => {
    const original = bytes();
    const patched = patchElfU64(original, "count", 0x1122_3344_5566_7788n);
    const seg = parseElf(patched).segments[0]!;
    expect(Array.from(seg.data.subarray(8, 16))).toEqual([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    expect(Array.from(seg.data.subarray(0, 8))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(parseElf(original).segments[0]!.data.subarray(8, 16))).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
  });

  it("names a missing symbol or one outside the loaded bytes", () => {
    expect(() => patchElfU64(bytes(), "nope", 1n)).toThrow(new ElfError("no symbol nope"));
    expect(() => patchElfU64(bytes(), "outside", 1n)).toThrow(new ElfError("symbol outside is not in a loaded segment"));
  });
});
