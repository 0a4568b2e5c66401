/**
 * Sync-and-clear racing with a writer in another thread. The worker plays the CPU's store
 * path: a store to a page without a store-TLB entry sets the page's bit in every client's
 * live bitmap (atomic OR), stores, and fills the entry; later stores to it go straight to
 * RAM. Between batches of stores (its safe points) it honours flushRequest by dropping its
 * entries and acknowledging. The main thread migrates: sync (atomic exchange, then the
 * barrier waits for the acknowledgement), copies every reported page to a shadow, over and
 * over; at the end the shadow must equal RAM and every written page must have been reported.
 */
import { describe, expect, it } from "vitest";
import { Worker } from "node:worker_threads";
import { GuestMemory } from "./guest-memory.ts";
import { KERNEL_SCRATCH_BASE, TARGET_PAGE_SIZE } from "./layout.ts";

const WORKER = `
const { workerData } = require("node:worker_threads");
const { memory, ram, pages, bitmaps, ctl, seed } = workerData;
const i32 = new Int32Array(memory.buffer);
const u32 = new Uint32Array(memory.buffer);
const big = new BigUint64Array(memory.buffer);
const FLUSH = ctl / 4, STOP = FLUSH + 1, STORES = FLUSH + 2, ACKS = FLUSH + 3, WRITTEN = FLUSH + 16;
const tlb = new Uint8Array(pages);
let x = seed, counter = 1;
const next = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
while (Atomics.load(i32, STOP) === 0) {
  for (let n = 0; n < 32; n++) {
    const page = next() % pages;
    const at = ram + page * 4096 + ((next() % 1024) << 2);
    if (tlb[page] === 0) {
      const mask = 1n << BigInt(page & 63);
      let all = true;
      for (const b of bitmaps) if ((Atomics.or(big, (b >> 3) + (page >> 6), mask) & mask) === 0n) all = false;
      u32[at >> 2] = counter++;
      Atomics.store(i32, WRITTEN + page, 1);
      // fill the entry only when the bit was already set in every client (as the CPU does)
      if (all) tlb[page] = 1;
    } else {
      u32[at >> 2] = counter++;
    }
  }
  Atomics.add(i32, STORES, 32);
  if (Atomics.load(i32, FLUSH) !== 0) {
    tlb.fill(0);
    Atomics.add(i32, ACKS, 1);
    Atomics.store(i32, FLUSH, 0);
    Atomics.notify(i32, FLUSH);
  }
}
`;

describe("dirty bitmap sync racing with a writer thread", () => {
  it("never loses a write: every written page is reported and the copy equals RAM", async () => {
    const pages = 512;
    const mem = GuestMemory.createSync({ ram: [{ idstr: "ram", size: pages * TARGET_PAGE_SIZE, base: 0 }] });
    const ram = mem.block("ram");
    const ctl = KERNEL_SCRATCH_BASE + 0x10000;
    const i32 = new Int32Array(mem.memory.buffer);
    const FLUSH = ctl / 4;
    const STORES = FLUSH + 2;
    const WRITTEN = FLUSH + 16;
    mem.setSyncBarrier(() => {
      Atomics.store(i32, FLUSH, 1);
      while (Atomics.load(i32, FLUSH) !== 0) Atomics.wait(i32, FLUSH, 1, 50);
    });
    const migration = mem.dirty("migration");
    const shadow = new Uint8Array(ram.usedLength);
    const reported = new Uint8Array(pages);
    const copyDirty = () => {
      for (const page of migration.pages(ram)) {
        if (!migration.testAndClear(ram, page)) continue;
        reported[page] = 1;
        shadow.set(ram.page(page), page * TARGET_PAGE_SIZE);
      }
    };
    const worker = new Worker(WORKER, {
      eval: true,
      workerData: {
        memory: mem.memory,
        ram: ram.hostOffset,
        pages,
        bitmaps: ram.bitmapOffsets,
        ctl,
        seed: 12345,
      },
    });
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    while (Atomics.load(i32, STORES) === 0) await new Promise((r) => setTimeout(r, 1));
    let syncs = 0;
    let found = 0;
    const until = performance.now() + 1500;
    while (performance.now() < until) {
      found += migration.sync();
      copyDirty();
      syncs++;
    }
    Atomics.store(i32, FLUSH + 1, 1);
    await exited;
    mem.setSyncBarrier(undefined);
    migration.sync();
    copyDirty();
    const stores = Atomics.load(i32, STORES);
    expect(syncs).toBeGreaterThan(100);
    expect(stores).toBeGreaterThan(10_000);
    expect(found).toBeGreaterThan(syncs); // pages kept being re-dirtied between syncs
    for (let p = 0; p < pages; p++) if (Atomics.load(i32, WRITTEN + p) === 1) expect(reported[p], `page ${p}`).toBe(1);
    const differing: number[] = [];
    for (let p = 0; p < pages; p++) {
      const a = ram.page(p);
      const b = shadow.subarray(p * TARGET_PAGE_SIZE, (p + 1) * TARGET_PAGE_SIZE);
      if (!a.every((v, i) => v === b[i])) differing.push(p);
    }
    expect(differing).toEqual([]);
  });
});
