import { describe, expect, it } from "vitest";
import fc from "fast-check";
import xxhash from "xxhash-wasm";
import { kernelBench, rng } from "./testing/kernel-bench.ts";
import { xxh64Ts } from "./xxhash.ts";

const kb = kernelBench();
const { k, u8 } = kb;
const A = kb.slot(0);

describe("zero-page detection", () => {
  it("finds a single non-zero byte anywhere in a page, in both twins", () => {
    u8.fill(0, A, A + 8192);
    expect(k.buffer_is_zero(A, 4096)).toBe(1);
    expect(k.buffer_is_zero_scalar(A, 4096)).toBe(1);
    for (let i = 0; i < 4096; i += 37) {
      u8[A + i] = 0x80;
      expect(k.buffer_is_zero(A, 4096)).toBe(0);
      expect(k.buffer_is_zero_scalar(A, 4096)).toBe(0);
      u8[A + i] = 0;
    }
    u8[A + 4096] = 1; // just past the page
    expect(k.buffer_is_zero(A, 4096)).toBe(1);
  });

  it("agrees between twins on odd lengths", () => {
    fc.assert(
      fc.property(fc.nat(300), fc.option(fc.nat(299), { nil: undefined }), (len, hot) => {
        u8.fill(0, A, A + 512);
        if (hot !== undefined && hot < len) u8[A + hot] = 1;
        const expected = hot === undefined || hot >= len ? 1 : 0;
        expect(k.buffer_is_zero(A, len)).toBe(expected);
        expect(k.buffer_is_zero_scalar(A, len)).toBe(expected);
      }),
    );
  });

  it("marks zero pages in a bitmap", () => {
    const pages = 70;
    const out = kb.slot(8);
    u8.fill(0, A, A + pages * 4096);
    u8[A + 3 * 4096 + 5] = 1;
    u8[A + 69 * 4096 + 4095] = 1;
    expect(k.zero_page_scan(A, pages, 4096, out)).toBe(68);
    const words = new BigUint64Array(kb.memory.buffer, out, 2);
    expect(words[0]).toBe(~(1n << 3n) & ((1n << 64n) - 1n));
    expect(words[1]).toBe((1n << 5n) - 1n);
  });
});

describe("bitmap scans", () => {
  function fillBitmap(nbits: number, density: number, seed: number): number[] {
    const next = rng(seed);
    u8.fill(0, A, A + Math.ceil(nbits / 64) * 8 + 64);
    const set: number[] = [];
    for (let i = 0; i < nbits; i++) {
      if (next() % 10000 < density * 10000) {
        u8[A + (i >> 3)] |= 1 << (i & 7);
        set.push(i);
      }
    }
    return set;
  }

  it("find_next_bit visits exactly the set bits, in both twins", () => {
    for (const [nbits, density] of [[1000, 0.01], [64 * 40 + 7, 0.001], [5000, 0.5], [129, 1]] as const) {
      const set = fillBitmap(nbits, density, nbits);
      for (const find of [k.find_next_bit, k.find_next_bit_scalar]) {
        const seen: number[] = [];
        for (let b = find(A, nbits, 0); b < nbits; b = find(A, nbits, b + 1)) seen.push(b);
        expect(seen).toEqual(set);
        expect(find(A, nbits, nbits + 5)).toBe(nbits);
      }
    }
  });

  it("ignores set bits past nbits", () => {
    u8.fill(0xff, A, A + 64);
    u8.fill(0, A, A + 8); // bits 0..63 clear, 64.. set
    expect(k.find_next_bit(A, 64, 0)).toBe(64);
    expect(k.find_next_bit_scalar(A, 64, 0)).toBe(64);
    expect(k.count_bits(A, 70)).toBe(6);
    expect(k.count_bits_scalar(A, 70)).toBe(6);
  });

  it("counts and collects set bits like a plain loop", () => {
    for (const density of [0, 0.001, 0.1, 0.9]) {
      const nbits = 262144 + 13;
      const set = fillBitmap(nbits, density, 99);
      expect(k.count_bits(A, nbits)).toBe(set.length);
      expect(k.count_bits_scalar(A, nbits)).toBe(set.length);
      const out = kb.slot(40);
      for (const collect of [k.collect_bits, k.collect_bits_scalar]) {
        const got: number[] = [];
        let from = 0;
        for (;;) {
          const n = collect(A, nbits, from, out, 1000);
          if (n === 0) break;
          const batch = new Uint32Array(kb.memory.buffer, out, n);
          got.push(...batch);
          from = batch[n - 1]! + 1;
        }
        expect(got).toEqual(set);
      }
    }
  });

  it("sync_bitmap moves live bits into the synced bitmap and counts only new ones", () => {
    const live = new BigUint64Array(kb.memory.buffer, A, 4);
    const synced = new BigUint64Array(kb.memory.buffer, A + 64, 4);
    live.set([0b1011n, 0n, 1n << 63n, 5n]);
    synced.set([0b0001n, 0n, 0n, 0n]);
    expect(k.sync_bitmap(A, A + 64, 4)).toBe(2 + 1 + 2);
    expect(Array.from(live)).toEqual([0n, 0n, 0n, 0n]);
    expect(Array.from(synced)).toEqual([0b1011n, 0n, 1n << 63n, 5n]);
    expect(k.test_and_clear_bit(A + 64, 1)).toBe(1);
    expect(k.test_and_clear_bit(A + 64, 1)).toBe(0);
    expect(k.set_bit_range(A, 60, 70)).toBe(70);
    expect(k.set_bit_range(A, 62, 3)).toBe(0);
    expect(k.count_bits(A, 256)).toBe(70);
    expect(k.find_next_bit(A, 256, 0)).toBe(60);
    expect(k.find_next_bit(A, 256, 130)).toBe(256);
  });
});

describe("XXH64 page hash", () => {
  it("matches xxhash-wasm and the TypeScript version on every length up to 300", async () => {
    const { h64Raw } = await xxhash();
    const next = rng(5);
    for (let i = 0; i < 4096; i++) u8[A + i] = next() & 0xff;
    for (let len = 0; len <= 300; len++) {
      const data = u8.slice(A + 1, A + 1 + len);
      const expected = h64Raw(data, 0n);
      expect(BigInt.asUintN(64, k.xxh64(A + 1, len, 0n))).toBe(expected);
      expect(BigInt.asUintN(64, k.xxh64_scalar(A + 1, len, 0n))).toBe(expected);
      if (len % 37 === 0) expect(xxh64Ts(data)).toBe(expected);
    }
  });

  it("hashes each page like xxhash-wasm, four at a time and one at a time", async () => {
    const { h64Raw } = await xxhash();
    const next = rng(17);
    for (const [pages, size] of [[11, 4096], [6, 32], [4, 96]] as const) {
      for (let i = 0; i < pages * size; i++) u8[A + i] = next() & 0xff;
      u8.fill(0, A + 2 * size, A + 3 * size); // one zero page
      const out = kb.slot(20);
      for (const hashPages of [k.xxh64_pages, k.xxh64_pages_scalar]) {
        new BigUint64Array(kb.memory.buffer, out, pages).fill(0n);
        hashPages(A, pages, size, out);
        const got = Array.from(new BigUint64Array(kb.memory.buffer, out, pages));
        const expected = Array.from({ length: pages }, (_, p) => h64Raw(u8.slice(A + p * size, A + (p + 1) * size), 0n));
        expect(got).toEqual(expected);
      }
    }
  });

  it("matches xxhash-wasm on whole pages and with a seed", async () => {
    const { h64Raw } = await xxhash();
    const len = 64 * 4096;
    const next = rng(11);
    for (let i = 0; i < len; i++) u8[A + i] = next() & 0xff;
    const data = u8.slice(A, A + len);
    for (const seed of [0n, 1n, 0xdeadbeefcafebaben]) {
      expect(BigInt.asUintN(64, k.xxh64(A, len, seed))).toBe(h64Raw(data, seed));
      expect(BigInt.asUintN(64, k.xxh64_scalar(A, len, seed))).toBe(h64Raw(data, seed));
    }
  });
});

describe("incoming zero-page records", () => {
  function records(pages: number[], flags = 0x22, fill = 0): Uint8Array {
    const out = new Uint8Array(pages.length * 9);
    const v = new DataView(out.buffer);
    pages.forEach((p, i) => {
      v.setBigUint64(i * 9, (BigInt(p) * 4096n) | BigInt(flags));
      out[i * 9 + 8] = fill;
    });
    return out;
  }

  it("clears written pages that are not zero, leaves never-written ones unread, and stops before anything else", () => {
    const host = kb.slot(5); // 4 pages of "RAM"
    const touched = kb.slot(3);
    const src = kb.slot(4);
    u8.fill(0, touched, touched + 8);
    u8.fill(0x11, host, host + 4 * 4096); // page contents: junk everywhere
    u8[touched] = 0b0101; // pages 0 and 2 were written; 1 and 3 never (their junk proves they are not read)
    const recs = records([0, 1, 2, 3]);
    u8.set(recs, src);
    expect(k.load_zero_records(src, recs.length, host, 4, touched, 0x22)).toBe(36);
    expect(u8.subarray(host, host + 4096).every((b) => b === 0)).toBe(true);
    expect(u8[host + 4096]).toBe(0x11);
    expect(u8.subarray(host + 8192, host + 12288).every((b) => b === 0)).toBe(true);
    expect(u8[host + 3 * 4096]).toBe(0x11);
    // touched = 0: the memory cannot tell, every page is checked
    u8.fill(0x11, host, host + 4 * 4096);
    expect(k.load_zero_records(src, recs.length, host, 4, 0, 0x22)).toBe(36);
    expect(u8.subarray(host, host + 4 * 4096).every((b) => b === 0)).toBe(true);
    // stops: another flag, a fill byte, a page outside the block, a record cut short
    const stops: [Uint8Array, number][] = [
      [new Uint8Array([...records([0]), ...records([1], 0x02)]), 9],
      [new Uint8Array([...records([0]), ...records([1], 0x22, 7)]), 9],
      [new Uint8Array([...records([0]), ...records([4])]), 9],
      [records([0, 1]).subarray(0, 17), 9],
    ];
    for (const [bytes, used] of stops) {
      u8.set(bytes, src);
      expect(k.load_zero_records(src, bytes.length, host, 4, 0, 0x22)).toBe(used);
    }
  });
});

describe("page-run records", () => {
  it("writes a zero record or a page record (with the page's bytes) per listed page, clears their bits and counts the pages", () => {
    const bitmap = kb.slot(3);
    const list = kb.slot(1);
    const zeros = kb.slot(1) + 0x800;
    const host = kb.slot(5); // 4 pages
    const out = kb.slot(6);
    const normals = kb.slot(1) + 0xc00;
    u8.fill(0, bitmap, bitmap + 64);
    for (let p = 0; p < 4; p++) u8.fill(p + 1, host + p * 4096, host + (p + 1) * 4096);
    const pages = [1, 2, 3]; // first = 1: zeros bit 0 = page 1
    new Uint32Array(u8.buffer, list, 3).set(pages);
    u8[bitmap] = 0b1111; // pages 0..3 dirty; 0 is not listed
    new Uint32Array(u8.buffer, zeros, 1)[0] = 0b010; // page 2 is zero
    const len = k.page_run_records(bitmap, list, 3, zeros, 1, host, 0x22, 0x28, out, normals);
    expect(len).toBe(4104 + 9 + 4104);
    expect(new Uint32Array(u8.buffer, normals, 1)[0]).toBe(2);
    expect(u8[bitmap]).toBe(0b0001);
    const v = new DataView(u8.buffer, out, len);
    expect(v.getBigUint64(0)).toBe((1n * 4096n) | 0x28n);
    expect(u8.subarray(out + 8, out + 4104).every((b) => b === 2)).toBe(true);
    expect(v.getBigUint64(4104)).toBe((2n * 4096n) | 0x22n);
    expect(v.getUint8(4112)).toBe(0);
    expect(v.getBigUint64(4113)).toBe((3n * 4096n) | 0x28n);
    expect(u8.subarray(out + 4121, out + 4121 + 4096).every((b) => b === 4)).toBe(true);
  });
});
