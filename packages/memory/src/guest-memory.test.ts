import { describe, expect, it } from "vitest";
import { GuestMemory } from "./guest-memory.ts";
import { HART_AREA_END, TARGET_PAGE_SIZE, WASM_PAGE_SIZE } from "./layout.ts";
import { XbzrleCache } from "./page-cache.ts";
import { DirtyRateMeter } from "./dirty.ts";
import xxhash from "xxhash-wasm";

function virt(): GuestMemory {
  return GuestMemory.createSync({
    ram: [
      { idstr: "riscv_virt_board.ram", size: 8 << 20, base: 0x8000_0000 },
      { idstr: "riscv_virt_board.mrom", size: 0x10000, base: 0x1000, readonly: true, usedLength: 0x8000 },
    ],
    mmio: [{ name: "uart", base: 0x1000_0000, size: 0x100, ops: { read: () => 0, write: () => undefined } }],
    harts: 2,
    debug: true,
  });
}

describe("GuestMemory", () => {
  it("places RAM blocks, bitmaps and the memory as the layout says", () => {
    const mem = virt();
    const [ram, rom] = mem.ramBlocks;
    expect(ram!.hostOffset % WASM_PAGE_SIZE).toBe(0);
    expect(ram!.bitmapOffsets).toHaveLength(2);
    expect(ram!.syncedBitmapOffsets).toHaveLength(2);
    expect(Math.min(...ram!.bitmapOffsets, ...ram!.syncedBitmapOffsets)).toBeGreaterThanOrEqual(HART_AREA_END);
    expect(Math.max(...ram!.syncedBitmapOffsets, ...rom!.syncedBitmapOffsets)).toBeLessThan(ram!.hostOffset);
    expect(ram!.bitmapSize).toBe((8 << 20) / TARGET_PAGE_SIZE / 8);
    expect(mem.memory.buffer.byteLength).toBe(mem.layout.totalBytes);
    expect(rom!.pages).toBe(8);
    expect(rom!.readonly).toBe(true);
    expect(ram!.migratable).toBe(true);
    expect(mem.cpuRegions()).toEqual([
      { base: 0x8000_0000, size: 8 << 20, hostOffset: ram!.hostOffset, readonly: false, dirtyBitmaps: [...ram!.bitmapOffsets] },
      { base: 0x1000, size: 0x8000, hostOffset: rom!.hostOffset, readonly: true, dirtyBitmaps: [...rom!.bitmapOffsets] },
    ]);
  });

  it("finds RAM and MMIO by guest-physical address and refuses overlaps", () => {
    const mem = virt();
    expect(mem.findRam(0x8000_1234)).toEqual({ block: mem.block("riscv_virt_board.ram"), offset: 0x1234 });
    expect(mem.findRam(0x1000 + 0x8000)).toBeUndefined(); // past the used length
    expect(mem.findMmio(0x1000_0004)?.name).toBe("uart");
    expect(() =>
      GuestMemory.createSync({
        ram: [{ idstr: "ram", size: 0x10000, base: 0x1000_0000 }],
        mmio: [{ name: "uart", base: 0x1000_0000, size: 0x100, ops: { read: () => 0, write: () => undefined } }],
      }),
    ).toThrow(/overlaps/);
  });

  it("marks pages written by devices dirty for every client", () => {
    const mem = virt();
    const ram = mem.block("riscv_virt_board.ram");
    expect(mem.write(0x8000_0ffe, Uint8Array.from([1, 2, 3, 4]))).toBe(4); // 2 pages x 2 clients
    expect(mem.read(0x8000_0ffe, 4)).toEqual(Uint8Array.from([1, 2, 3, 4]));
    expect(ram.page(1)[1]).toBe(4);
    const migration = mem.dirty("migration");
    const snapshot = mem.dirty("snapshot");
    expect(migration.count()).toBe(0); // not synced yet
    expect(migration.sync()).toBe(2);
    expect(migration.count(ram)).toBe(2);
    expect([...migration.pages(ram)]).toEqual([0, 1]);
    expect(() => mem.write(0x1000, Uint8Array.of(1))).toThrow(/read-only/);
    expect(() => mem.write(0x8000_0000 + (8 << 20) - 1, Uint8Array.of(1, 2))).toThrow(/not inside one RAM block/);
    // the snapshot client still sees them: clients sync and clear independently
    expect(migration.testAndClear(ram, 0)).toBe(true);
    expect(migration.testAndClear(ram, 0)).toBe(false);
    expect(snapshot.sync()).toBe(2);
    expect([...snapshot.pages(ram)]).toEqual([0, 1]);
    expect([...migration.pages(ram)]).toEqual([1]);
  });

  it("finds next dirty pages and iterates large bitmaps in batches", () => {
    const mem = virt();
    const ram = mem.block("riscv_virt_board.ram");
    const pages = [3, 64, 65, 1000, 1500, 2047];
    for (const p of pages) mem.write(0x8000_0000 + p * TARGET_PAGE_SIZE, Uint8Array.of(1));
    const m = mem.dirty("migration");
    m.sync();
    expect(m.findNext(ram)).toBe(3);
    expect(m.findNext(ram, 4)).toBe(64);
    expect(m.findNext(ram, 1501)).toBe(2047);
    expect(m.findNext(ram, 2048)).toBe(-1);
    expect(m.test(ram, 1000)).toBe(true);
    expect(m.test(ram, 999)).toBe(false);
    m.setAll(ram);
    expect(m.count(ram)).toBe(2048);
    expect([...m.pages(ram)]).toEqual(Array.from({ length: 2048 }, (_, i) => i));
    m.clear();
    expect(m.count()).toBe(0);
    expect(() => m.testAndClear(ram, 2048)).toThrow(RangeError);
  });

  it("runs the sync barrier after moving the live bits", () => {
    const mem = virt();
    const ram = mem.block("riscv_virt_board.ram");
    const seen: number[] = [];
    mem.setSyncBarrier(() => seen.push(mem.dirty("migration").count(ram)));
    mem.write(0x8000_0000, Uint8Array.of(1));
    mem.dirty("migration").sync();
    expect(seen).toEqual([1]);
  });

  it("checks zero pages and hashes pages and blocks in place", async () => {
    const { h64Raw } = await xxhash();
    const mem = virt();
    const ram = mem.block("riscv_virt_board.ram");
    expect(mem.isZeroPage(ram, 5)).toBe(true);
    mem.write(0x8000_5fff, Uint8Array.of(9));
    expect(mem.isZeroPage(ram, 5)).toBe(false);
    expect(mem.hashPage(ram, 5)).toBe(h64Raw(ram.page(5).slice(), 0n));
    expect(mem.hashBlock(ram)).toBe(h64Raw(ram.bytes.slice(), 0n));
    const hashes = mem.hashPages(ram); // 2048 pages: more than one scratch chunk
    expect(hashes).toHaveLength(2048);
    for (const p of [0, 5, 1535, 1536, 2047]) expect(hashes[p]).toBe(h64Raw(ram.page(p).slice(), 0n));
    expect(hashes[4]).toBe(hashes[6]); // zero pages hash alike
  });

  it("encodes XBZRLE deltas of guest pages against cached copies", () => {
    const mem = virt();
    const ram = mem.block("riscv_virt_board.ram");
    const cache = new XbzrleCache(16 * 4096);
    mem.write(0x8000_3000, new Uint8Array(4096).fill(7));
    cache.insert(ram.ramAddr + 3 * 4096, ram.page(3), 0);
    mem.write(0x8000_3010, Uint8Array.of(1, 2));
    const delta = mem.xbzrle.encode(cache.get(ram.ramAddr + 3 * 4096)!, ram.pageHostOffset(3))!;
    expect(Array.from(delta)).toEqual([/* zrun 16 */ 0x10, /* nzrun 2 */ 0x02, 1, 2]);
    const other = mem.block("riscv_virt_board.mrom");
    new Uint8Array(mem.memory.buffer, other.pageHostOffset(0), 4096).fill(7);
    mem.xbzrle.decode(delta.slice(), other.pageHostOffset(0));
    expect(other.page(0)).toEqual(ram.page(3));
  });

  it("resizes a block's used length within its max length", () => {
    const mem = virt();
    const rom = mem.block("riscv_virt_board.mrom");
    rom.resize(0x10000);
    expect(rom.pages).toBe(16);
    expect(() => rom.resize(0x20000)).toThrow(/cannot resize/);
  });
});

describe("XbzrleCache", () => {
  it("requires a power-of-two number of pages, like QEMU", () => {
    expect(() => new XbzrleCache(3 * 4096)).toThrow(/power-of-two/);
    expect(() => new XbzrleCache(100)).toThrow(/smaller than one target page/);
    expect(new XbzrleCache(64 << 20).slots).toBe(16384);
  });

  it("keeps fresh pages and replaces stale ones (cache_insert)", () => {
    const cache = new XbzrleCache(4 * 4096);
    const a = new Uint8Array(4096).fill(1);
    const b = new Uint8Array(4096).fill(2);
    expect(cache.insert(0x1000, a, 0)).toBe(true);
    expect(cache.get(0x1000)?.[0]).toBe(1);
    expect(cache.isCached(0x1000, 0)).toBe(true);
    // 0x5000 maps to the same slot (4 slots) and the held page is still fresh
    expect(cache.insert(0x5000, b, 1)).toBe(false);
    expect(cache.get(0x5000)).toBeUndefined();
    expect(cache.insert(0x5000, b, 2)).toBe(true);
    expect(cache.get(0x1000)).toBeUndefined();
    expect(cache.get(0x5000)?.[4095]).toBe(2);
    expect(cache.items).toBe(1);
  });
});

describe("DirtyRateMeter", () => {
  it("turns per-hart dirty-page counters into pages per second", async () => {
    const counters = [0n, 0n];
    const meter = new DirtyRateMeter(() => [...counters]);
    counters[0] = 1000n;
    await new Promise((r) => setTimeout(r, 50));
    const [r0, r1] = meter.sample();
    expect(r0).toBeGreaterThan(1000 / 0.5);
    expect(r0).toBeLessThan(1000 / 0.04);
    expect(r1).toBe(0);
  });
});
