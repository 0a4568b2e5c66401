/**
 * Dirty-page tracking: one bitmap pair per client per RAM block (QEMU's DIRTY_MEMORY_*
 * clients, here e.g. "migration" and "snapshot").
 *
 * ```
 *  CPU store slow path ──atomic.or──▶ live bitmap ──sync (atomic xchg)──▶ synced bitmap
 *  device writes (DMA) ──atomic.or──▶     (one per client)                (the client's view:
 *                                                                        count, find, clear)
 * ```
 *
 * A sync moves each live word with an atomic exchange, so a bit set while the sync runs is
 * either moved now or left for the next sync. The CPU keeps a store-TLB entry only for pages
 * dirty in every client; after the exchange the sync calls the VM's *sync barrier*, which
 * makes every hart drop its store entries (and waits for it) before the caller reads pages:
 * a store through an entry filled before the exchange lands before the barrier returns, so
 * the page read after the sync holds it.
 */
import type { PageKernelExports } from "./kernels.ts";
import type { RamBlock } from "./ram-block.ts";

/**
 * Called after bits were moved out of the live bitmaps; must return once every hart dropped
 * its store-TLB entries: for a hart running in a worker, set its flushRequest and wait until
 * the hart cleared it (at its next safe point); for a hart run on this thread between slices,
 * call `cpu.tlbFlushStores(hart)`.
 */
export type SyncBarrier = () => void;

const COLLECT_MAX = 1024;

/** The dirty bitmap of one client over every RAM block. */
export class DirtyBitmap {
  readonly name: string;
  readonly client: number;
  #kernels: PageKernelExports;
  #blocks: readonly RamBlock[];
  #barrier: () => SyncBarrier | undefined;
  #collect: Uint32Array;
  #collectOffset: number;

  /** @internal built by GuestMemory */
  constructor(
    name: string,
    client: number,
    context: {
      kernels: PageKernelExports;
      blocks: readonly RamBlock[];
      barrier: () => SyncBarrier | undefined;
      memory: WebAssembly.Memory;
      collectOffset: number;
    },
  ) {
    this.name = name;
    this.client = client;
    this.#kernels = context.kernels;
    this.#blocks = context.blocks;
    this.#barrier = context.barrier;
    this.#collectOffset = context.collectOffset;
    this.#collect = new Uint32Array(context.memory.buffer, context.collectOffset, COLLECT_MAX);
  }

  /**
   * Moves every page dirtied since the last sync into this client's synced bitmap (all
   * blocks, or one), then runs the sync barrier. Returns how many pages became dirty in the
   * synced bitmap (QEMU's num_dirty_pages_period).
   */
  sync(block?: RamBlock): number {
    let fresh = 0;
    for (const b of block === undefined ? this.#blocks : [block]) {
      fresh += this.#kernels.sync_bitmap(b.bitmapOffsets[this.client]!, b.syncedBitmapOffsets[this.client]!, b.bitmapSize / 8);
    }
    this.#barrier()?.();
    return fresh;
  }

  /** Dirty pages in the synced bitmap of `block`, or of every block. */
  count(block?: RamBlock): number {
    let n = 0;
    for (const b of block === undefined ? this.#blocks : [block]) {
      n += this.#kernels.count_bits(b.syncedBitmapOffsets[this.client]!, b.pages);
    }
    return n;
  }

  /** The first dirty page at or after `fromPage` in `block`'s synced bitmap, or -1. */
  findNext(block: RamBlock, fromPage = 0): number {
    const pages = block.pages;
    const next = this.#kernels.find_next_bit(block.syncedBitmapOffsets[this.client]!, pages, fromPage);
    return next >= pages ? -1 : next;
  }

  /** Clears `page` in the synced bitmap; returns whether it was dirty (migration_bitmap_clear_dirty). */
  testAndClear(block: RamBlock, page: number): boolean {
    checkPage(block, page);
    return this.#kernels.test_and_clear_bit(block.syncedBitmapOffsets[this.client]!, page) !== 0;
  }

  /** Whether `page` is dirty in the synced bitmap. */
  test(block: RamBlock, page: number): boolean {
    checkPage(block, page);
    const word = new BigUint64Array(block.memory.buffer, block.syncedBitmapOffsets[this.client]! + (page >>> 6) * 8, 1);
    return ((word[0]! >> BigInt(page & 63)) & 1n) === 1n;
  }

  /** Marks every page of `block` (or of every block) dirty in the synced bitmap, as a migration's first pass wants. */
  setAll(block?: RamBlock): void {
    for (const b of block === undefined ? this.#blocks : [block]) {
      this.#kernels.set_bit_range(b.syncedBitmapOffsets[this.client]!, 0, b.pages);
    }
  }

  /** Clears the synced bitmap of `block` (or of every block). */
  clear(block?: RamBlock): void {
    for (const b of block === undefined ? this.#blocks : [block]) {
      new Uint8Array(b.memory.buffer, b.syncedBitmapOffsets[this.client]!, b.bitmapSize).fill(0);
    }
  }

  /**
   * The dirty pages of `block` from `fromPage` on, ascending, read in batches from the synced
   * bitmap as iteration goes (pages cleared meanwhile ahead of the cursor are skipped). The
   * iterator does not clear; use {@link testAndClear}.
   */
  *pages(block: RamBlock, fromPage = 0): IterableIterator<number> {
    const bitmap = block.syncedBitmapOffsets[this.client]!;
    let next = fromPage;
    for (;;) {
      const n = this.#kernels.collect_bits(bitmap, block.pages, next, this.#collectOffset, COLLECT_MAX);
      if (n === 0) return;
      const batch = this.#collect.slice(0, n);
      for (const page of batch) yield page;
      next = batch[n - 1]! + 1;
    }
  }
}

function checkPage(block: RamBlock, page: number): void {
  if (!Number.isInteger(page) || page < 0 || page >= block.pages) {
    throw new RangeError(`page ${page} is outside RAM block ${block.idstr} (${block.pages} pages)`);
  }
}

/**
 * Per-vCPU dirty rate from the harts' counters of pages they dirtied (the CPU's store slow
 * path counts them): pages per second since the previous sample.
 */
export class DirtyRateMeter {
  #read: () => readonly bigint[];
  #last: readonly bigint[];
  #lastTime: number;

  constructor(readCounters: () => readonly bigint[]) {
    this.#read = readCounters;
    this.#last = readCounters();
    this.#lastTime = performance.now();
  }

  /** Pages per second per hart since the last call (or construction). */
  sample(): number[] {
    const now = performance.now();
    const counts = this.#read();
    const seconds = (now - this.#lastTime) / 1000;
    const rates = counts.map((c, i) => Number(c - (this.#last[i] ?? 0n)) / Math.max(seconds, 1e-9));
    this.#last = counts;
    this.#lastTime = now;
    return rates;
  }
}
