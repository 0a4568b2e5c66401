/**
 * The hostile-input mutations of src/hostile.test.ts, by the million: each iteration takes
 * one of two valid streams of the tiny machine (one with XBZRLE pages), mutates it (bit
 * flips, random bytes, a framing number set to 0 / max / max signed / ±1 / random,
 * truncation, a chunk deleted or duplicated), loads it from chunks of random size, and runs
 * the analyzer on it. Anything but success or a MigrationError is a bug: printed, and the
 * input saved to the temp dir. Prints figures at the end (and every 10 s).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MigrationError } from "@ferryvm/vmstate";
import { analyzeMigration, streamFieldMap } from "../src/analyze.ts";
import { fieldValues, flipBits, loadUntrusted } from "../src/hostile.ts";
import { createTinyMachine, populateTinyMachine, saveTinyMachine, tinyStreamWithXbzrle } from "../src/testing.ts";

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export async function main(argv: string[], wasmPath: string): Promise<void> {
  const arg = (name: string, dflt: number) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const seconds = arg("seconds", 120);
  const seed = arg("seed", Date.now() & 0xffffffff);
  const random = rng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const kernelsWasm = readFileSync(wasmPath);

  const src = createTinyMachine({ ramPages: 2, kernelsWasm });
  populateTinyMachine(src);
  const plain = await saveTinyMachine(src);
  const xbzrle = (await tinyStreamWithXbzrle(kernelsWasm)).bytes;
  const bases = [
    { name: "plain", bytes: plain, fields: streamFieldMap(plain), target: createTinyMachine({ ramPages: 2, kernelsWasm }) },
    { name: "xbzrle", bytes: xbzrle, fields: streamFieldMap(xbzrle), target: createTinyMachine({ ramPages: 4, kernelsWasm }) },
  ];

  const strategies = ["bitflip", "bytes", "field", "truncate", "delete", "duplicate"] as const;
  const counts = new Map<string, number>();
  const outcomes = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  let loads = 0;
  let ok = 0;
  let bugs = 0;
  let analyzerBugs = 0;
  let maxMs = 0;
  let loadMs = 0;
  let analyzeMs = 0;
  let maxRss = 0;
  let maxArrayBuffers = 0;
  const t0 = performance.now();
  let lastReport = t0;

  console.log(`fuzz: seed ${seed}, ${seconds} s, streams plain ${plain.length} B (${bases[0]!.fields.length} fields), xbzrle ${xbzrle.length} B (${bases[1]!.fields.length} fields)`);
  while (performance.now() - t0 < seconds * 1000) {
    const base = bases[int(bases.length)]!;
    const strategy = strategies[int(strategies.length)]!;
    let bytes: Uint8Array;
    const b = base.bytes;
    switch (strategy) {
      case "bitflip":
        bytes = flipBits(b, Array.from({ length: 1 + int(8) }, () => int(b.length * 8)));
        break;
      case "bytes":
        bytes = b.slice();
        for (let n = 1 + int(4); n > 0; n--) bytes[int(b.length)] = int(256);
        break;
      case "field": {
        const f = base.fields[int(base.fields.length)]!;
        const values = fieldValues(b, f);
        let v = random() < 0.8 && values.length > 0 ? values[int(values.length)]! : BigInt(int(2 ** 31)) % (1n << BigInt(f.size * 8));
        bytes = b.slice();
        for (let i = f.size - 1; i >= 0; i--) {
          bytes[f.offset + i] = Number(v & 0xffn);
          v >>= 8n;
        }
        break;
      }
      case "truncate":
        bytes = b.subarray(0, int(b.length));
        break;
      case "delete": {
        const at = int(b.length);
        const n = 1 + int(64);
        bytes = concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + n)));
        break;
      }
      case "duplicate": {
        const at = int(b.length);
        const n = 1 + int(64);
        bytes = concat(b.subarray(0, at + n), b.subarray(at));
        break;
      }
    }
    bump(counts, strategy);
    const start = performance.now();
    try {
      const r = await loadUntrusted(base.target, bytes, random() < 0.5 ? 0 : 1 + int(5000));
      if (r.ok) ok++;
      else bump(outcomes, r.error.name);
    } catch (e) {
      bugs++;
      const file = join(tmpdir(), `ferry-fuzz-bug-${bugs}.mig`);
      writeFileSync(file, bytes);
      console.log(`BUG (${strategy} on ${base.name}): ${e instanceof Error ? e.stack : String(e)} — input in ${file}`);
    }
    const ms = performance.now() - start;
    if (ms > maxMs) maxMs = ms;
    loadMs += ms;
    const a0 = performance.now();
    try {
      analyzeMigration(bytes, { memory: random() < 0.1 });
    } catch (e) {
      if (!(e instanceof MigrationError)) {
        analyzerBugs++;
        const file = join(tmpdir(), `ferry-fuzz-analyzer-bug-${analyzerBugs}.mig`);
        writeFileSync(file, bytes);
        console.log(`ANALYZER BUG (${strategy} on ${base.name}): ${e instanceof Error ? e.stack : String(e)} — input in ${file}`);
      }
    }
    analyzeMs += performance.now() - a0;
    loads++;
    if ((loads & 255) === 0) {
      const mem = process.memoryUsage();
      maxRss = Math.max(maxRss, mem.rss);
      maxArrayBuffers = Math.max(maxArrayBuffers, mem.arrayBuffers);
      const now = performance.now();
      if (now - lastReport > 10_000) {
        lastReport = now;
        console.log(`  ${loads} inputs, ${(loads / ((now - t0) / 1000)).toFixed(0)}/s, bugs ${bugs}, analyzer bugs ${analyzerBugs}`);
      }
    }
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify(
      {
        seed,
        seconds: Math.round(secs),
        inputs: loads,
        perSecond: Math.round(loads / secs),
        loadedOk: ok,
        rejected: Object.fromEntries(outcomes),
        strategies: Object.fromEntries(counts),
        loaderBugs: bugs,
        analyzerBugs,
        loadSeconds: Number((loadMs / 1000).toFixed(1)),
        analyzeSeconds: Number((analyzeMs / 1000).toFixed(1)),
        slowestLoadMs: Number(maxMs.toFixed(2)),
        maxRssMiB: Math.round(maxRss / 2 ** 20),
        maxArrayBuffersMiB: Math.round(maxArrayBuffers / 2 ** 20),
      },
      null,
      2,
    ),
  );
  if (bugs + analyzerBugs > 0) process.exitCode = 1;
}
