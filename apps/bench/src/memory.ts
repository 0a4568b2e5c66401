/**
 * Page kernels and dirty-bitmap scans of @ferryvm/memory, each beside its scalar twin, a
 * plain TypeScript version and this machine's memory bandwidth (read-only pass and copy,
 * from WebAssembly), all measured in the same run.
 */
import {
  KERNEL_SCRATCH_BASE,
  loadPageKernelsSync,
  xbzrleDecodeRaw,
  xbzrleEncode,
  xxh64Ts,
  type PageKernelExports,
} from "@ferryvm/memory";
import xxhash from "xxhash-wasm";
import { gbPerSecond, measure, type BenchContext, type BenchGroup, type BenchResult } from "./harness.ts";

const PAGE = 4096;
const MiB = 1 << 20;
/** Large passes: well past the last-level cache. */
const BIG = 256 * MiB;
/** Page-pair sets for XBZRLE: 256 pages (1 MiB) per pattern. */
const PAIRS = 256;

const BASE = 16 * MiB;
const BIG_A = BASE; // BIG bytes, zero (zero-page scan, read pass, hash)
const BIG_B = BIG_A + BIG; // BIG / 2 bytes, copy target
const BITMAP = BIG_B + BIG / 2; // 32 KiB: 1 GiB of pages
const COLLECT = BITMAP + 64 * 1024; // 1 MiB of u32 page indices
const OLD = COLLECT + MiB;
const NEW = OLD + PAIRS * PAGE;
const ENC = NEW + PAIRS * PAGE; // 2 pages per encoding slot
const DEC = ENC + PAIRS * 2 * PAGE;
const END = DEC + PAIRS * PAGE;

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

interface Env {
  k: PageKernelExports;
  memory: WebAssembly.Memory;
  u8: Uint8Array;
  readBw: number;
  copyBw: number;
}

function bandwidth(env: Env): void {
  const { k } = env;
  const read = measure(() => void k.read_pass(BIG_A, BIG), { runs: 5, minSeconds: 0.05 });
  const copy = measure(() => k.copy_pass(BIG_B, BIG_A, BIG / 2), { runs: 5, minSeconds: 0.05 });
  env.readBw = gbPerSecond(BIG, read);
  env.copyBw = gbPerSecond(BIG / 2, copy);
}

function limits(env: Env): Record<string, number> {
  return { "read-bandwidth": env.readBw, "copy-bandwidth": env.copyBw };
}

function zeroScan(env: Env): BenchResult {
  const { k, memory } = env;
  const pages = BIG / PAGE;
  const out = COLLECT;
  const simd = measure(() => void k.zero_page_scan(BIG_A, pages, PAGE, out), { runs: 5, minSeconds: 0.05 });
  const scalar = measure(
    () => {
      for (let p = 0; p < pages; p++) k.buffer_is_zero_scalar(BIG_A + p * PAGE, PAGE);
    },
    { runs: 3, minSeconds: 0.05 },
  );
  const words = new Float64Array(memory.buffer, BIG_A, BIG / 8);
  const ts = measure(
    () => {
      let zeros = 0;
      for (let p = 0; p < pages; p++) {
        let zero = true;
        for (let i = p * 512, end = i + 512; i < end; i++) {
          if (words[i] !== 0) {
            zero = false;
            break;
          }
        }
        if (zero) zeros++;
      }
      if (zeros < 0) throw new Error("unreachable");
    },
    { runs: 3, minSeconds: 0.05 },
  );
  return {
    name: "zero-page scan (all-zero RAM)",
    unit: "GB/s",
    value: gbPerSecond(BIG, simd),
    baselines: { scalar: gbPerSecond(BIG, scalar), ts: gbPerSecond(BIG, ts), ...limits(env) },
  };
}

function pageHash(env: Env, h64Raw: (data: Uint8Array, seed?: bigint) => bigint): BenchResult {
  const { k, u8 } = env;
  const pages = BIG / PAGE;
  const out = COLLECT;
  const fourWay = measure(() => k.xxh64_pages(BIG_A, pages, PAGE, out), { runs: 5, minSeconds: 0.05 });
  const onePage = measure(() => k.xxh64_pages_scalar(BIG_A, pages, PAGE, out), { runs: 5, minSeconds: 0.05 });
  const wholeScalar = measure(() => void k.xxh64_scalar(BIG_A, BIG, 0n), { runs: 3, minSeconds: 0.05 });
  const wholeSimd = measure(() => void k.xxh64(BIG_A, BIG, 0n), { runs: 3, minSeconds: 0.05 });
  const small = u8.subarray(OLD, OLD + MiB);
  const ts = measure(() => void xxh64Ts(small), { runs: 3, minSeconds: 0.05 });
  const chunk = u8.slice(BIG_A, BIG_A + 32 * MiB);
  const lib = measure(() => void h64Raw(chunk, 0n), { runs: 3, minSeconds: 0.05 });
  return {
    name: "page hash XXH64 per page (4 pages side by side)",
    unit: "GB/s",
    value: gbPerSecond(BIG, fourWay),
    baselines: {
      scalar: gbPerSecond(BIG, onePage),
      "whole-buffer scalar": gbPerSecond(BIG, wholeScalar),
      "whole-buffer i64x2": gbPerSecond(BIG, wholeSimd),
      ts: gbPerSecond(MiB, ts),
      "xxhash-wasm": gbPerSecond(32 * MiB, lib),
      ...limits(env),
    },
  };
}

function bitmapScans(env: Env): BenchResult[] {
  const { k, u8, memory } = env;
  const nbits = (1 << 30) / PAGE;
  const words = new Uint32Array(memory.buffer, BITMAP, nbits / 32);
  const out: BenchResult[] = [];
  for (const pct of [0.1, 1, 10, 100]) {
    const next = rng(pct * 1000);
    u8.fill(0, BITMAP, BITMAP + nbits / 8);
    let set = 0;
    for (let i = 0; i < nbits; i++) {
      if (pct === 100 || next() % 100000 < pct * 1000) {
        u8[BITMAP + (i >> 3)]! |= 1 << (i & 7);
        set++;
      }
    }
    const simd = measure(() => void k.collect_bits(BITMAP, nbits, 0, COLLECT, nbits), { minSeconds: 0.01 });
    const scalar = measure(() => void k.collect_bits_scalar(BITMAP, nbits, 0, COLLECT, nbits), { minSeconds: 0.01 });
    const perCall = measure(
      () => {
        for (let b = k.find_next_bit(BITMAP, nbits, 0); b < nbits; b = k.find_next_bit(BITMAP, nbits, b + 1));
      },
      { minSeconds: 0.01 },
    );
    const collected = new Uint32Array(memory.buffer, COLLECT, nbits);
    const ts = measure(
      () => {
        let n = 0;
        for (let w = 0; w < words.length; w++) {
          let word = words[w]!;
          while (word !== 0) {
            const low = word & -word;
            collected[n++] = w * 32 + 31 - Math.clz32(low);
            word ^= low;
          }
        }
      },
      { minSeconds: 0.01 },
    );
    const us = (s: number) => s * 1e6;
    out.push({
      name: `bitmap scan 1 GiB, ${pct}% dirty (visit every set bit)`,
      unit: "µs/scan",
      value: us(simd),
      baselines: {
        scalar: us(scalar),
        "find_next_bit per call": us(perCall),
        ts: us(ts),
        "read-bandwidth": us(nbits / 8 / (env.readBw * 1e9)),
      },
    });
    const ns = (s: number) => (s * 1e9) / set;
    out.push({
      name: `bitmap scan 1 GiB, ${pct}% dirty, per set bit`,
      unit: "ns/bit",
      value: ns(simd),
      baselines: { scalar: ns(scalar), "find_next_bit per call": ns(perCall), ts: ns(ts) },
    });
  }
  return out;
}

type Pattern = { name: string; make: (old: Uint8Array, cur: Uint8Array, next: () => number) => void };

const PATTERNS: Pattern[] = [
  { name: "unchanged", make: () => undefined },
  ...[1, 10, 50].map((pct) => ({
    name: `scattered ${pct}%`,
    make: (_old: Uint8Array, cur: Uint8Array, next: () => number) => {
      for (let i = 0; i < PAGE; i++) if (next() % 1000 < pct * 10) cur[i] = cur[i]! ^ (1 + (next() % 255));
    },
  })),
  ...[1, 6, 32].map((runs) => ({
    name: `64-byte runs ×${runs}`,
    make: (_old: Uint8Array, cur: Uint8Array, next: () => number) => {
      // runs at distinct 64-byte slots, every byte of a run changed
      const slots = new Set<number>();
      while (slots.size < runs) slots.add(next() % (PAGE / 64));
      for (const s of slots) for (let i = s * 64; i < s * 64 + 64; i++) cur[i] = cur[i]! ^ (1 + (next() % 255));
    },
  })),
];

function xbzrle(env: Env): BenchResult[] {
  const { k, u8 } = env;
  const results: BenchResult[] = [];
  const bytes = PAIRS * PAGE;
  const dlen = 2 * PAGE; // room for a whole encoding, so every pattern is encoded in full
  for (const pattern of PATTERNS) {
    const next = rng(pattern.name.length * 7919);
    for (let p = 0; p < PAIRS; p++) {
      const old = u8.subarray(OLD + p * PAGE, OLD + (p + 1) * PAGE);
      const cur = u8.subarray(NEW + p * PAGE, NEW + (p + 1) * PAGE);
      for (let i = 0; i < PAGE; i++) old[i] = next() & 0xff;
      cur.set(old);
      pattern.make(old, cur, next);
    }
    const lengths = new Int32Array(PAIRS);
    const encodeWith = (fn: PageKernelExports["xbzrle_encode"]) => () => {
      for (let p = 0; p < PAIRS; p++) lengths[p] = fn(OLD + p * PAGE, NEW + p * PAGE, PAGE, ENC + p * dlen, dlen);
    };
    const encSimd = measure(encodeWith(k.xbzrle_encode));
    const encScalar = measure(encodeWith(k.xbzrle_encode_scalar));
    const encTs = measure(() => {
      for (let p = 0; p < PAIRS; p++) {
        xbzrleEncode(
          u8.subarray(OLD + p * PAGE, OLD + (p + 1) * PAGE),
          u8.subarray(NEW + p * PAGE, NEW + (p + 1) * PAGE),
          u8.subarray(ENC + p * dlen, ENC + (p + 1) * dlen),
        );
      }
    });
    encodeWith(k.xbzrle_encode)();
    let encodedBytes = 0;
    for (let p = 0; p < PAIRS; p++) encodedBytes += Math.max(0, lengths[p]!);
    results.push({
      name: `XBZRLE encode, ${pattern.name} (${Math.round(encodedBytes / PAIRS)} B/page)`,
      unit: "GB/s",
      value: gbPerSecond(bytes, encSimd),
      baselines: { scalar: gbPerSecond(bytes, encScalar), ts: gbPerSecond(bytes, encTs), ...limits(env) },
    });
    if (pattern.name === "unchanged") continue;
    u8.copyWithin(DEC, OLD, OLD + bytes);
    const decodeWith = (fn: PageKernelExports["xbzrle_decode"]) => () => {
      for (let p = 0; p < PAIRS; p++) {
        if (fn(ENC + p * dlen, lengths[p]!, DEC + p * PAGE, PAGE) < 0) throw new Error("decode failed");
      }
    };
    const decSimd = measure(decodeWith(k.xbzrle_decode));
    const decScalar = measure(decodeWith(k.xbzrle_decode_scalar));
    const decTs = measure(() => {
      for (let p = 0; p < PAIRS; p++) {
        xbzrleDecodeRaw(u8.subarray(ENC + p * dlen, ENC + p * dlen + lengths[p]!), u8.subarray(DEC + p * PAGE, DEC + (p + 1) * PAGE));
      }
    });
    if (u8.subarray(DEC, DEC + bytes).some((v, i) => v !== u8[NEW + i])) throw new Error(`XBZRLE ${pattern.name}: decode mismatch`);
    results.push({
      name: `XBZRLE decode, ${pattern.name}`,
      unit: "GB/s",
      value: gbPerSecond(bytes, decSimd),
      baselines: { scalar: gbPerSecond(bytes, decScalar), ts: gbPerSecond(bytes, decTs), ...limits(env) },
    });
  }
  return results;
}

/** Page kernels of @ferryvm/memory. */
export const memory: BenchGroup = {
  name: "memory",
  async run(context: BenchContext): Promise<BenchResult[]> {
    const { h64Raw } = await xxhash();
    const bytes = Math.ceil(END / 65536) * 65536;
    const mem = new WebAssembly.Memory({ initial: bytes / 65536, maximum: bytes / 65536, shared: true });
    if (BASE < KERNEL_SCRATCH_BASE) throw new Error("bench buffers overlap the fixed areas");
    const env: Env = { k: loadPageKernelsSync({ memory: mem }), memory: mem, u8: new Uint8Array(mem.buffer), readBw: 0, copyBw: 0 };
    // touch every page once so the first timed pass does not pay for page faults
    env.u8.fill(1, BIG_A, END);
    env.u8.fill(0, BIG_A, END);
    env.k.read_pass(BIG_A, BIG);
    context.log("memory: bandwidth");
    bandwidth(env);
    const results: BenchResult[] = [
      { name: "read bandwidth (wasm, 256 MiB pass)", unit: "GB/s", value: env.readBw, baselines: {} },
      { name: "copy bandwidth (wasm memory.copy)", unit: "GB/s", value: env.copyBw, baselines: {} },
    ];
    context.log("memory: zero-page scan");
    results.push(zeroScan(env));
    context.log("memory: page hash");
    results.push(pageHash(env, h64Raw));
    context.log("memory: dirty-bitmap scans");
    results.push(...bitmapScans(env));
    context.log("memory: XBZRLE");
    results.push(...xbzrle(env));
    return results;
  },
};
