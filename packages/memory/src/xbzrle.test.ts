import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { kernelBench, rng } from "./testing/kernel-bench.ts";
import { Xbzrle, XbzrleError, xbzrleDecode, xbzrleDecodeRaw, xbzrleEncode } from "./xbzrle.ts";

const PAGE = 4096;
const kb = kernelBench();
const { k, u8 } = kb;
const OLD = kb.slot(0);
const NEW = kb.slot(1);
const DST = kb.slot(2);
const DST2 = kb.slot(3);
const SRC = kb.slot(4);
const PAGE_AT = kb.slot(5) + 64; // guard bytes before and after

function loadPages(old: Uint8Array, cur: Uint8Array): void {
  u8.set(old, OLD);
  u8.set(cur, NEW);
}

/** Encodes with all three encoders; they must agree; returns the bytes (or -1 / 0). */
function encodeAll(old: Uint8Array, cur: Uint8Array, limit = PAGE): Uint8Array | -1 {
  loadPages(old, cur);
  const simd = k.xbzrle_encode(OLD, NEW, cur.length, DST, limit);
  const scalar = k.xbzrle_encode_scalar(OLD, NEW, cur.length, DST2, limit);
  const tsDst = new Uint8Array(limit);
  const ts = xbzrleEncode(old, cur, tsDst);
  expect(simd).toBe(scalar);
  expect(simd).toBe(ts);
  if (simd < 0) return -1;
  const out = u8.slice(DST, DST + simd);
  expect(u8.slice(DST2, DST2 + simd)).toEqual(out);
  expect(tsDst.subarray(0, simd)).toEqual(out);
  return out;
}

/** Decodes `enc` onto `base` with all three decoders; they must agree on result and bytes. */
function decodeAll(enc: Uint8Array, base: Uint8Array): { r: number; page: Uint8Array } {
  u8.set(enc, SRC);
  const results: number[] = [];
  const pages: Uint8Array[] = [];
  for (const decode of [k.xbzrle_decode, k.xbzrle_decode_scalar]) {
    u8.fill(0xa5, PAGE_AT - 64, PAGE_AT + base.length + 64);
    u8.set(base, PAGE_AT);
    results.push(decode(SRC, enc.length, PAGE_AT, base.length));
    // guard bytes around the page stay untouched
    expect(u8.subarray(PAGE_AT - 64, PAGE_AT).every((b) => b === 0xa5)).toBe(true);
    expect(u8.subarray(PAGE_AT + base.length, PAGE_AT + base.length + 64).every((b) => b === 0xa5)).toBe(true);
    pages.push(u8.slice(PAGE_AT, PAGE_AT + base.length));
  }
  const tsPage = base.slice();
  results.push(xbzrleDecodeRaw(enc, tsPage));
  pages.push(tsPage);
  expect(results[1]).toBe(results[0]);
  expect(results[2]).toBe(results[0]);
  if (results[0]! >= 0) {
    expect(pages[1]).toEqual(pages[0]);
    expect(pages[2]).toEqual(pages[0]);
  }
  return { r: results[0]!, page: pages[0]! };
}

function randomPage(seed: number): Uint8Array {
  const next = rng(seed);
  const p = new Uint8Array(PAGE);
  for (let i = 0; i < PAGE; i++) p[i] = next() & 0xff;
  return p;
}

describe("XBZRLE encoder", () => {
  it("encodes an unchanged page to nothing", () => {
    const old = randomPage(1);
    expect(encodeAll(old, old.slice())).toEqual(new Uint8Array(0));
  });

  it("encodes hand-worked pages byte-exactly", () => {
    const old = new Uint8Array(PAGE);
    const cur = old.slice();
    cur[0] = 0x11; // nzrun at the very start: zrun of 0 first
    cur[5] = 0x22;
    cur[6] = 0x33;
    cur[200] = 0x44; // zrun of 193 = 0x41 0x01 in ULEB128
    cur.fill(0x55, 3900, 3900 + 130); // nzrun of 130 = 0x82 0x01
    const expected = [
      /* zrun 0 */ 0x00, /* nzrun 1 */ 0x01, 0x11,
      /* zrun 4 */ 0x04, /* nzrun 2 */ 0x02, 0x22, 0x33,
      /* zrun 193 */ 0xc1, 0x01, /* nzrun 1 */ 0x01, 0x44,
      /* zrun 3699 */ 0xf3, 0x1c, /* nzrun 130 */ 0x82, 0x01, ...new Array<number>(130).fill(0x55),
      /* the trailing zrun of 66 bytes is not written */
    ];
    expect(encodeAll(old, cur)).toEqual(Uint8Array.from(expected));
  });

  it("encodes a change in the last byte and a whole-page change", () => {
    const old = new Uint8Array(PAGE);
    const last = old.slice();
    last[PAGE - 1] = 7;
    expect(encodeAll(old, last)).toEqual(Uint8Array.from([/* zrun 4095 */ 0xff, 0x1f, /* nzrun 1 */ 0x01, 0x07]));
    const full = new Uint8Array(PAGE).fill(1);
    // 1 + 2 + 4096 bytes do not fit in one page: overflow
    expect(encodeAll(old, full)).toBe(-1);
    expect(encodeAll(old, full, PAGE + 2)).toBe(-1);
    const enc = encodeAll(old, full, PAGE + 3);
    expect(enc).not.toBe(-1);
    expect((enc as Uint8Array).subarray(0, 3)).toEqual(Uint8Array.from([/* zrun 0 */ 0x00, /* nzrun 4096 */ 0x80, 0x20]));
  });

  it("reports overflow at exactly QEMU's limits", () => {
    const old = new Uint8Array(PAGE);
    const cur = old.slice();
    cur[PAGE - 1] = 1; // encoding: 0xff 0x1f 0x01 0x01 = 4 bytes, ending the page
    expect(encodeAll(old, cur, 4)).toEqual(Uint8Array.from([0xff, 0x1f, 0x01, 0x01]));
    expect(encodeAll(old, cur, 3)).toBe(-1); // run data does not fit
    expect(encodeAll(old, cur, 2)).toBe(-1); // 2 bytes must fit before the nzrun length
    expect(encodeAll(old, cur, 1)).toBe(-1); // 2 bytes must fit before the zrun length
    cur[PAGE - 1] = 0;
    cur[10] = 1;
    // QEMU checks "2 bytes fit" at the top of each round even when only a trailing zrun is left
    cur[20] = 1; // 0x0a 0x01 0x01 0x09 0x01 0x01 = 6 bytes, then a trailing zrun
    expect(encodeAll(old, cur, 8)).toEqual(Uint8Array.from([0x0a, 0x01, 0x01, 0x09, 0x01, 0x01]));
    expect(encodeAll(old, cur, 7)).toBe(-1);
  });

  it("twins agree on scattered and run patterns around 64-byte chunk edges", () => {
    const old = randomPage(7);
    for (const [start, len] of [[0, 1], [15, 2], [63, 1], [63, 2], [64, 64], [127, 130], [4032, 64], [4095, 1], [1, 4094]] as const) {
      const cur = old.slice();
      for (let i = start; i < start + len; i++) cur[i] = cur[i]! ^ 0xff;
      const enc = encodeAll(old, cur, PAGE + 16);
      expect(enc).not.toBe(-1);
      expect(decodeAll(enc as Uint8Array, old).page).toEqual(cur);
    }
  });

  it("round-trips random page pairs through every encoder and decoder", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0x7fffffff }),
        fc.array(fc.tuple(fc.nat(PAGE - 1), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 255 })), { maxLength: 40 }),
        fc.constantFrom(4096, 2048, 4160, 64, 72, 8),
        (seed, edits, len) => {
          const old = randomPage(seed).subarray(0, len);
          const cur = old.slice();
          for (const [at, n, x] of edits) for (let i = at; i < Math.min(len, at + n); i++) cur[i] = cur[i]! ^ x;
          const enc = encodeAll(old, cur, len);
          if (enc === -1) return;
          const { r, page } = decodeAll(enc, old);
          expect(r).toBeGreaterThanOrEqual(0);
          expect(page).toEqual(cur);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("encodes scattered byte changes identically in all twins", () => {
    for (const pct of [1, 10, 50, 90]) {
      const next = rng(pct);
      const old = randomPage(pct + 100);
      const cur = old.slice();
      for (let i = 0; i < PAGE; i++) if (next() % 100 < pct) cur[i] = cur[i]! ^ (1 + (next() % 255));
      const enc = encodeAll(old, cur, PAGE * 3);
      expect(enc).not.toBe(-1);
      expect(decodeAll(enc as Uint8Array, old).page).toEqual(cur);
    }
  });
});

describe("XBZRLE decoder", () => {
  const base = new Uint8Array(PAGE).fill(9);
  const cases: [string, number[], number][] = [
    ["an input ending inside a run header", [0x05], -1],
    ["a zrun with no nzrun after it", [0x05, 0x01, 0x07, 0x04], -1],
    ["a truncated ULEB128 length", [0x00, 0x01, 0x07, 0x83], -2],
    ["a ULEB128 length over 14 bits", [0x80, 0x80, 0x01], -3],
    ["a zero-length zrun after the first", [0x00, 0x01, 0x07, 0x00, 0x01, 0x07], -4],
    ["a zero-length nzrun", [0x05, 0x00, 0x07], -5],
    ["a zrun running past the page", [0x81, 0x20, 0x01, 0x07], -6],
    ["an nzrun running past the page", [0xff, 0x1f, 0x02, 0x07, 0x08], -6],
    ["an nzrun running past the input", [0x05, 0x04, 0x07, 0x08], -7],
  ];
  for (const [what, bytes, code] of cases) {
    it(`rejects ${what}`, () => {
      const { r } = decodeAll(Uint8Array.from(bytes), base);
      expect(r).toBe(code);
      expect(() => xbzrleDecode(Uint8Array.from(bytes), base.slice())).toThrow(XbzrleError);
    });
  }

  it("accepts an empty input (unchanged page) and a leading zero zrun", () => {
    expect(decodeAll(new Uint8Array(0), base).r).toBe(0);
    const { r, page } = decodeAll(Uint8Array.from([0x00, 0x02, 0x01, 0x02]), base);
    expect(r).toBe(2);
    expect(Array.from(page.subarray(0, 3))).toEqual([1, 2, 9]);
  });

  it("never writes outside the page on random inputs", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(16, 100, 4096), (input, len) => {
        decodeAll(input, base.subarray(0, len));
      }),
      { numRuns: 2000 },
    );
  });

  it("says why an input was rejected", () => {
    expect(() => xbzrleDecode(Uint8Array.from([0x05, 0x00, 0x07]), base.slice())).toThrow(/zero-length nzrun/);
  });
});

describe("Xbzrle", () => {
  it("encodes and decodes pages in linear memory", () => {
    const codec = new Xbzrle(k, kb.memory, { scratch: DST });
    const old = randomPage(3);
    const cur = old.slice();
    cur[100] = cur[100]! ^ 1;
    loadPages(old, cur);
    const enc = codec.encode(OLD, NEW)!.slice();
    expect(enc).toEqual(Uint8Array.from([0x64, 0x01, cur[100]!]));
    expect(codec.encode(OLD, OLD)!.length).toBe(0);
    expect(codec.encode(old, NEW)).toEqual(enc); // an old copy outside linear memory
    u8.set(old, PAGE_AT);
    codec.decode(enc, PAGE_AT);
    expect(u8.slice(PAGE_AT, PAGE_AT + PAGE)).toEqual(cur);
    expect(() => codec.decode(Uint8Array.from([0x05, 0x00, 0x07]), PAGE_AT)).toThrow(/zero-length nzrun/);
  });
});
