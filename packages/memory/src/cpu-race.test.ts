/**
 * The real race: a RISC-V guest (cpu-wasm, in a worker thread on the VM's shared memory)
 * stores all over 64 pages while the main thread syncs the migration bitmap over and over,
 * each sync followed by the barrier (flushRequest, then wait until the hart acknowledged at its
 * next safe point), and copies every reported page to a shadow. After the guest stops and a
 * last sync, the shadow must equal guest RAM: no store was missed by the bitmap.
 *
 * cpu-wasm is loaded from its build output (packages/cpu-wasm/dist) by path, so this package
 * takes no dependency on it; `pnpm test` builds every package first.
 */
import { existsSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { GuestMemory } from "./guest-memory.ts";
import { KERNEL_SCRATCH_BASE, TARGET_PAGE_SIZE } from "./layout.ts";

const CPU_DIST = new URL("../../cpu-wasm/dist/src/mod.js", import.meta.url);

// RV64I encodings (just what the guest below needs).
const r = (f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number) =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const i = (imm: number, rs1: number, f3: number, rd: number, op: number) =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const auipc = (rd: number, imm20: number) => ((imm20 << 12) | (rd << 7) | 0x17) >>> 0;
const lui = (rd: number, imm20: number) => ((imm20 << 12) | (rd << 7) | 0x37) >>> 0;
const addi = (rd: number, rs1: number, imm: number) => i(imm, rs1, 0, rd, 0x13);
const slli = (rd: number, rs1: number, sh: number) => i(sh, rs1, 1, rd, 0x13);
const srli = (rd: number, rs1: number, sh: number) => i(sh, rs1, 5, rd, 0x13);
const xor = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 4, rd, 0x33);
const and = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 7, rd, 0x33);
const add = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 0, rd, 0x33);
const sd = (rs2: number, rs1: number, imm: number) =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (3 << 12) | ((imm & 0x1f) << 7) | 0x23) >>> 0;
const jal = (rd: number, off: number) =>
  ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20) | (((off >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) >>> 0;

const RAM_BASE = 0x8000_0000;
const DATA_OFFSET = 0x10_0000; // data pages at RAM_BASE + 1 MiB
const DATA_PAGES = 64;

/** xorshift64 over a 64-page area: sd counter, (state & mask) + base; forever. */
const GUEST = [
  auipc(5, DATA_OFFSET >> 12), //        x5 = data base
  addi(6, 0, 1234), //                   x6 = xorshift state
  lui(7, (DATA_PAGES * TARGET_PAGE_SIZE) >> 12),
  addi(7, 7, -8), //                     x7 = offset mask (8-byte aligned)
  addi(30, 0, 0), //                     x30 = counter
  slli(28, 6, 13), //                    loop:
  xor(6, 6, 28),
  srli(28, 6, 7),
  xor(6, 6, 28),
  slli(28, 6, 17),
  xor(6, 6, 28),
  and(28, 6, 7),
  add(29, 5, 28),
  addi(30, 30, 1),
  sd(30, 29, 0),
  jal(0, -40), //                        j loop
];

const WORKER = `
const { workerData, parentPort } = require("node:worker_threads");
(async () => {
  const { Cpu } = await import(workerData.cpuUrl);
  const { memory, regions, ctl } = workerData;
  const cpu = Cpu.createSync({ memory, harts: 1, mmio: { read: () => undefined, write: () => false } });
  cpu.setRegions(regions);
  cpu.reset(0, BigInt(regions[0].base));
  const i32 = new Int32Array(memory.buffer);
  parentPort.postMessage({ started: true });
  let runs = 0;
  while (Atomics.load(i32, ctl >> 2) === 0) {
    cpu.run(0, 20000);
    runs++;
  }
  parentPort.postMessage({ runs, dirtyPages: cpu.hart(0).dirtyPages.toString(), counter: cpu.hart(0).x[30].toString() });
})();
`;

describe("dirty bitmap sync racing with a guest on cpu-wasm in a worker", () => {
  it.skipIf(!existsSync(CPU_DIST))("reports every page the guest stores to, with no store lost", async () => {
    const mem = GuestMemory.createSync({
      ram: [{ idstr: "riscv_virt_board.ram", size: 2 << 20, base: RAM_BASE }],
      dirtyClients: ["migration", "snapshot"],
    });
    const ram = mem.block("riscv_virt_board.ram");
    const code = new Uint32Array(mem.memory.buffer, ram.hostOffset, GUEST.length);
    code.set(GUEST);
    const i32 = new Int32Array(mem.memory.buffer);
    const ctl = KERNEL_SCRATCH_BASE + 0x1_0000;
    // hart 0's flushRequest: the worker's Cpu has the layout; ask it through the HartView offset
    const { H_FLUSH_REQUEST, CPU_HART_AREA_BASE } = (await import(CPU_DIST.href)) as { H_FLUSH_REQUEST: number; CPU_HART_AREA_BASE: number };
    const flush = (CPU_HART_AREA_BASE + H_FLUSH_REQUEST) >> 2;
    let barriers = 0;
    mem.setSyncBarrier(() => {
      Atomics.store(i32, flush, 1);
      while (Atomics.load(i32, flush) !== 0) Atomics.wait(i32, flush, 1, 0.05);
      barriers++;
    });
    const migration = mem.dirty("migration");
    const shadow = new Uint8Array(ram.usedLength);
    const reported = new Set<number>();
    migration.setAll(ram);
    const copyDirty = () => {
      for (const page of migration.pages(ram)) {
        if (!migration.testAndClear(ram, page)) continue;
        reported.add(page);
        shadow.set(ram.page(page), page * TARGET_PAGE_SIZE);
      }
    };
    copyDirty(); // the first pass sends every page, as migration does
    expect(reported.size).toBe(ram.pages);
    reported.clear();
    const worker = new Worker(WORKER, {
      eval: true,
      workerData: { cpuUrl: CPU_DIST.href, memory: mem.memory, regions: mem.cpuRegions(), ctl },
    });
    const messages: Array<Record<string, unknown>> = [];
    const done = new Promise<void>((resolve, reject) => {
      worker.on("message", (m: Record<string, unknown>) => {
        messages.push(m);
        if ("runs" in m) resolve();
      });
      worker.on("error", reject);
    });
    await new Promise<void>((resolve) => worker.once("message", () => resolve()));
    let rounds = 0;
    let fresh = 0;
    const until = performance.now() + 1500;
    while (performance.now() < until) {
      fresh += migration.sync();
      copyDirty();
      rounds++;
      if (rounds % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    Atomics.store(i32, ctl >> 2, 1);
    await done;
    await worker.terminate();
    mem.setSyncBarrier(undefined);
    migration.sync();
    copyDirty();
    const last = messages.at(-1)!;
    expect(BigInt(last.counter as string)).toBeGreaterThan(100_000n); // the guest really stored a lot
    expect(rounds).toBeGreaterThan(50);
    expect(barriers).toBe(rounds);
    expect(fresh).toBeGreaterThan(rounds); // pages were re-dirtied between syncs, not just once
    const dataFirst = DATA_OFFSET / TARGET_PAGE_SIZE;
    for (let p = dataFirst; p < dataFirst + DATA_PAGES; p++) expect(reported.has(p), `page ${p}`).toBe(true);
    expect(reported.size).toBe(DATA_PAGES); // after the first pass, only the pages the guest stored to

    const differing: number[] = [];
    for (let p = 0; p < ram.pages; p++) {
      const a = ram.page(p);
      const b = shadow.subarray(p * TARGET_PAGE_SIZE, (p + 1) * TARGET_PAGE_SIZE);
      if (!a.every((v, k) => v === b[k])) differing.push(p);
    }
    expect(differing).toEqual([]);
    // the hart counted the pages it dirtied (its dirty rate)
    expect(BigInt(last.dirtyPages as string)).toBeGreaterThanOrEqual(BigInt(DATA_PAGES));
  });
});
