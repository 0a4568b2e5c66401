/**
 * The RAM section (QEMU 7.2's migration/ram.c), idstr "ram", instance 0, version 4: an
 * iterative section over the VM's `GuestMemory`.
 *
 * Records start with be64 `offset | flags` (flags in the low 12 bits). Setup sends
 * `total | MEM_SIZE` and the block list (str8 idstr + be64 used length, in ram_list order:
 * largest max length first, ties in creation order — qemu_ram_add keeps the list sorted so).
 * Pages are ZERO (+ fill byte), PAGE (+ 4096 bytes) or XBZRLE (+ u8 1, be16 len, delta);
 * without CONTINUE a str8 block idstr follows the be64. Every START/PART/END ends with EOS.
 *
 * Save side: the "migration" dirty client of GuestMemory; every page is dirty at setup; a
 * round walks the blocks from where the last one stopped (ram_find_and_save_block). XBZRLE,
 * when enabled, starts after the first full pass and only for pages in the cache.
 *
 * Pending bytes: QEMU counts dirty pages × page size. Here: per block, dirty pages × the
 * expected cost of one, from a uniform sample of its dirty pages (128 over all blocks for
 * the estimate, 1024 for the exact figure after a sync): a zero page weighs ZERO_PAGE_COST
 * (9 bytes on the wire, but the time of a 4 KiB scan on each side), another page 4104 — or, once XBZRLE runs, the measured mean XBZRLE record
 * (header + delta, overflows at 4096) weighted by the cache hit rate.
 *
 * @module
 */

import { KERNEL_SCRATCH_BASE, MEMORY_SCRATCH_SIZE, qemuRamResize, XbzrleCache, type DirtyBitmap, type GuestMemory, type RamBlock } from "@ferryvm/memory";
import { MigrationError } from "@ferryvm/vmstate";
import { ENCODING_FLAG_XBZRLE, RamSaveFlag, TARGET_PAGE_SIZE } from "./constants.ts";
import { hex, printable } from "./errors.ts";
import type { PendingBytes, SaveStateEntry, SaveVmHandlers, SaveVmIterateContext, SaveVmRegistry } from "./handlers.ts";
import type { QemuFileReader, QemuFileWriter } from "./qemu-file.ts";

/** The RAM section's version (loaders accept exactly this one). */
export const RAM_SECTION_VERSION = 4;

const FLAG_MASK = TARGET_PAGE_SIZE - 1;
const MAX_WAIT_MS = 50;
const FLUSH_BYTES = 1 << 20;
/**
 * What a zero page weighs in the pending figure, in wire-byte equivalents: 9 bytes on the
 * wire, but a 4 KiB scan on the source and a 4 KiB check on the destination — about 1/8 of
 * a normal page's time, measured on loopback (0.4 µs against 3.3 µs). The bandwidth the
 * switch-over divides by is counted in the same unit ({@link RamMigration.zeroPageExtraCost}).
 */
export const ZERO_PAGE_COST = 512;
/** Dirty pages sampled for the pending estimate, and for the exact figure after a sync. */
const PENDING_SAMPLES = 128;
const PENDING_EXACT_SAMPLES = 1024;
/** Pages one run covers (1 MiB): one zero-page scan, one dirty-bit collection. */
const RUN_PAGES = 256;
/** Kernel scratch of the RAM section (main thread): the run's dirty pages (u32), its zero bitmap. */
const RUN_LIST = KERNEL_SCRATCH_BASE + MEMORY_SCRATCH_SIZE;
const RUN_ZERO = RUN_LIST + RUN_PAGES * 4;
/** A snapshot of the page XBZRLE encodes (page-aligned, after the run lists). */
const XBZRLE_SNAPSHOT = RUN_LIST + 0x1000;
/** The incoming side's slice of zero-page records for load_zero_records (512 records). */
const LOAD_RUN = RUN_LIST + 0x3000;
const LOAD_RUN_BYTES = 512 * 9;
/**
 * page_run_records' count of page records, and its staging area: STAGE_PAGES pages a call,
 * the rate limit's granularity (as the per-page loop checks it every 16 pages).
 */
const RUN_COUNT = RUN_LIST + 0x4400;
const PAGE_STAGE = RUN_LIST + 0x5000;
const STAGE_PAGES = 16;
/** Most pages probed per block when sampling (a sparse dirty set gets fewer samples). */
const MAX_PROBES = 1 << 16;

/** Options of the RAM section. */
export interface RamMigrationOptions {
  /** The dirty-memory client to use (default "migration"). */
  dirtyClient?: string;
  /** The xbzrle capability. */
  xbzrle?: boolean;
  /** xbzrle-cache-size in bytes (default 64 MiB, QEMU's). */
  xbzrleCacheSize?: number;
  /**
   * The x-ignore-shared capability: each MEM_SIZE entry also carries the block's guest
   * address (be64). No block is shared here, so every block is still sent.
   */
  ignoreShared?: boolean;
  /** Whether the guest runs (bytes sent then count as precopy-bytes, else downtime-bytes). */
  vmRunning?: () => boolean;
}

/** The `ram` member of query-migrate, with QEMU's names. */
export interface RamCounters {
  transferred: number;
  remaining: number;
  total: number;
  duplicate: number;
  skipped: number;
  normal: number;
  "normal-bytes": number;
  "dirty-sync-count": number;
  "page-size": number;
  "multifd-bytes": number;
  "postcopy-requests": number;
  "precopy-bytes": number;
  "downtime-bytes": number;
  "postcopy-bytes": number;
}

/** The `xbzrle-cache` member of query-migrate. */
export interface XbzrleCounters {
  "cache-size": number;
  bytes: number;
  pages: number;
  "cache-miss": number;
  "cache-miss-rate": number;
  "encoding-rate": number;
  overflow: number;
}

/** The blocks a RAM section covers, in QEMU's ram_list order. */
export function migratableBlocks(memory: GuestMemory): RamBlock[] {
  return memory.ramBlocks
    .map((b, i) => ({ b, i }))
    .filter(({ b }) => b.migratable)
    .sort((x, y) => y.b.maxLength - x.b.maxLength || x.i - y.i)
    .map(({ b }) => b);
}

interface PageSearch {
  block: number;
  page: number;
  completeRound: boolean;
}

/** The RAM section: save and load handlers over one GuestMemory. */
export class RamMigration implements SaveVmHandlers {
  readonly memory: GuestMemory;
  readonly #options: RamMigrationOptions;
  #blocks: RamBlock[] = [];
  #dirty: DirtyBitmap | undefined;
  // save state (RAMState)
  #lastSeenBlock = -1;
  #lastPage = 0;
  #lastSentBlock: RamBlock | undefined;
  #xbzrleEnabled = false;
  #lastStage = false;
  #dirtyPages = 0;
  #probeSeed = 1;
  #bulkStageDone = false;
  #memView: Uint8Array | undefined;
  readonly #idstrs = new Map<RamBlock, Uint8Array>();
  #cache: XbzrleCache | undefined;
  readonly #zeroPage = new Uint8Array(TARGET_PAGE_SIZE);
  #counters: RamCounters = RamMigration.#emptyCounters();
  #xbzrleCounters: XbzrleCounters = { "cache-size": 0, bytes: 0, pages: 0, "cache-miss": 0, "cache-miss-rate": 0, "encoding-rate": 0, overflow: 0 };
  // load state
  #loadBlock: RamBlock | undefined;
  #loadEos = false;
  #loadIdBytes: Uint8Array | undefined;
  #loadIdBlock: RamBlock | undefined;
  readonly #loadBuf = new Uint8Array(TARGET_PAGE_SIZE);
  readonly #touchedBits = new Map<RamBlock, Int32Array | undefined>();

  constructor(memory: GuestMemory, options: RamMigrationOptions = {}) {
    this.memory = memory;
    this.#options = options;
  }

  static #emptyCounters(): RamCounters {
    return {
      transferred: 0, remaining: 0, total: 0, duplicate: 0, skipped: 0, normal: 0, "normal-bytes": 0,
      "dirty-sync-count": 0, "page-size": TARGET_PAGE_SIZE, "multifd-bytes": 0, "postcopy-requests": 0,
      "precopy-bytes": 0, "downtime-bytes": 0, "postcopy-bytes": 0,
    };
  }

  /** Registers the section as QEMU does: "ram", instance 0, version 4. */
  register(registry: SaveVmRegistry): SaveStateEntry {
    return registry.registerSaveVmLive("ram", 0, RAM_SECTION_VERSION, this);
  }

  /** query-migrate's `ram` figures. */
  counters(): RamCounters {
    return { ...this.#counters, remaining: this.#dirtyPages * TARGET_PAGE_SIZE };
  }

  /** query-migrate's `xbzrle-cache` figures. */
  xbzrleCounters(): XbzrleCounters {
    return { ...this.#xbzrleCounters };
  }

  /**
   * Whether the first pass over every block is done (QEMU's end of the bulk stage): until
   * then the switch-over waits — the first pass has to be sent anyway, better while the
   * guest runs.
   */
  get bulkStageDone(): boolean {
    return this.#bulkStageDone || this.#dirtyPages === 0;
  }

  /**
   * Whether pages go through the XBZRLE cache now (from the second pass on). Each then costs
   * a read of its cached copy and a write of its slot, memory time that its few wire bytes
   * do not show: the switch-over counts pages for it (see MigrationState).
   */
  get xbzrleActive(): boolean {
    return this.#xbzrleEnabled;
  }

  /** What the zero pages sent so far weigh beyond their wire bytes (ZERO_PAGE_COST - 9 each). */
  get zeroPageExtraCost(): number {
    return this.#counters.duplicate * (ZERO_PAGE_COST - 9);
  }

  /** Dirty pages left to send (migration_dirty_pages). */
  get dirtyPages(): number {
    return this.#dirtyPages;
  }

  #transferred(n: number): void {
    this.#counters.transferred += n;
    if (this.#options.vmRunning?.()) this.#counters["precopy-bytes"] += n;
    else this.#counters["downtime-bytes"] += n;
  }

  /** migration_bitmap_sync: moves the live dirty bits into the synced bitmap. */
  #bitmapSync(): void {
    const dirty = this.#dirty!;
    dirty.sync(); // every block at once: one sync barrier
    this.#dirtyPages = 0;
    for (const b of this.#blocks) this.#dirtyPages += dirty.count(b);
    this.#counters["dirty-sync-count"]++;
  }

  // ---- save side -------------------------------------------------------------------

  save_setup(f: QemuFileWriter): void {
    this.#blocks = migratableBlocks(this.memory);
    this.#dirty = this.memory.dirty(this.#options.dirtyClient ?? "migration");
    this.#lastSeenBlock = -1;
    this.#lastPage = 0;
    this.#lastSentBlock = undefined;
    this.#xbzrleEnabled = false;
    this.#bulkStageDone = false;
    this.#lastStage = false;
    this.#counters = RamMigration.#emptyCounters();
    this.#cache = undefined;
    if (this.#options.xbzrle) {
      const size = this.#options.xbzrleCacheSize ?? 64 << 20;
      this.#cache = new XbzrleCache(size, { pageSize: TARGET_PAGE_SIZE });
      this.#xbzrleCounters = { "cache-size": size, bytes: 0, pages: 0, "cache-miss": 0, "cache-miss-rate": 0, "encoding-rate": 0, overflow: 0 };
    }
    let total = 0;
    for (const b of this.#blocks) {
      this.#dirty.setAll(b);
      total += b.usedLength;
    }
    this.#counters.total = total;
    this.#bitmapSync();
    f.putBe64(BigInt(total) | BigInt(RamSaveFlag.MEM_SIZE));
    for (const b of this.#blocks) {
      f.putStr8(b.idstr);
      f.putBe64(BigInt(b.usedLength));
      if (this.#options.ignoreShared) f.putBe64(BigInt(b.base ?? 0));
    }
    f.putBe64(BigInt(RamSaveFlag.EOS));
  }

  async save_live_iterate(f: QemuFileWriter, ctx: SaveVmIterateContext): Promise<boolean> {
    const t0 = performance.now();
    let done = false;
    for (let i = 0; !ctx.rateLimited(); i++) {
      const pages = this.#findAndSaveBlock(f, ctx);
      if (pages === 0) {
        done = true;
        break;
      }
      if (f.pendingBytes >= FLUSH_BYTES) await f.flush();
      if ((i & 7) === 7 && performance.now() - t0 > MAX_WAIT_MS) break;
    }
    f.putBe64Number(RamSaveFlag.EOS);
    this.#transferred(8);
    return done;
  }

  async save_live_complete_precopy(f: QemuFileWriter): Promise<void> {
    this.#lastStage = true;
    this.#bitmapSync();
    while (this.#findAndSaveBlock(f) !== 0) {
      if (f.pendingBytes >= FLUSH_BYTES) await f.flush();
    }
    f.putBe64Number(RamSaveFlag.EOS); // not counted in transferred, as in QEMU 7.2
  }

  /**
   * Expected cost of the dirty pages in wire-byte equivalents (see the module comment; a
   * zero page weighs ZERO_PAGE_COST): per block, the mean cost
   * of a uniform sample of its dirty pages times its dirty count. The sample probes evenly
   * spaced pages (from a moving offset) and keeps those that are dirty: unbiased, unlike
   * taking the next dirty page after each probe (the tail of a pass would be sampled at its
   * start only). About `samples` dirty pages over all blocks, in proportion to their counts.
   */
  pendingWireBytes(samples = PENDING_SAMPLES): number {
    const dirty = this.#dirty;
    if (dirty === undefined) return this.#dirtyPages * (TARGET_PAGE_SIZE + 8);
    const other = this.#otherPageCost();
    let total = 0;
    for (const b of this.#blocks) {
      const count = dirty.count(b);
      if (count === 0) continue;
      const want = Math.max(8, Math.ceil((samples * count) / Math.max(1, this.#dirtyPages)));
      const probes = Math.min(b.pages, MAX_PROBES, Math.ceil((want * b.pages) / count));
      const stride = b.pages / probes;
      this.#probeSeed = (Math.imul(this.#probeSeed, 1103515245) + 12345) >>> 0;
      const offset = (this.#probeSeed / 4294967296) * stride;
      const bits = new Uint32Array(b.memory.buffer, b.syncedBitmapOffsets[dirty.client]!, Math.ceil(b.pages / 32));
      let n = 0;
      let zero = 0;
      for (let i = 0; i < probes; i++) {
        const p = Math.floor(offset + i * stride);
        if (((bits[p >>> 5]! >>> (p & 31)) & 1) === 0) continue;
        n++;
        if (this.memory.isZeroPage(b, p)) zero++;
      }
      total += n === 0 ? count * other : (count * (zero * ZERO_PAGE_COST + (n - zero) * other)) / n;
    }
    return Math.ceil(total);
  }

  /** Expected wire bytes of a dirty page that is not zero (a normal page, or XBZRLE's mean). */
  #otherPageCost(): number {
    const x = this.#xbzrleCounters;
    if (!this.#xbzrleEnabled || x.pages === 0) return TARGET_PAGE_SIZE + 8;
    const hit = x.pages / (x.pages + x["cache-miss"]);
    return hit * (x.bytes / x.pages + 8) + (1 - hit) * (TARGET_PAGE_SIZE + 8);
  }

  state_pending_estimate(): PendingBytes {
    if (this.#dirtyPages === 0) return { must_precopy: 0, can_postcopy: 0 };
    return { must_precopy: this.pendingWireBytes(), can_postcopy: 0 };
  }

  /** After a bitmap sync, with a larger sample: the switch-over is decided on this figure. */
  state_pending_exact(): PendingBytes {
    if (!this.#lastStage && this.#dirty !== undefined) this.#bitmapSync();
    if (this.#dirtyPages === 0) return { must_precopy: 0, can_postcopy: 0 };
    return { must_precopy: this.pendingWireBytes(PENDING_EXACT_SAMPLES), can_postcopy: 0 };
  }

  save_cleanup(): void {
    this.#cache = undefined;
  }

  /** find_dirty_block: true when pss points at a dirty page; `again` false when a full round found nothing. */
  #findDirtyBlock(pss: PageSearch): { found: boolean; again: boolean } {
    const block = this.#blocks[pss.block]!;
    const next = this.#dirty!.findNext(block, pss.page);
    pss.page = next < 0 ? block.pages : next;
    if (pss.completeRound && pss.block === this.#lastSeenBlock && pss.page >= this.#lastPage) {
      return { found: false, again: false };
    }
    if (next < 0) {
      pss.page = 0;
      pss.block++;
      if (pss.block === this.#blocks.length) {
        pss.block = 0;
        pss.completeRound = true;
        this.#bulkStageDone = true;
        if (this.#options.xbzrle) this.#xbzrleEnabled = true;
      }
      return { found: false, again: true };
    }
    return { found: true, again: true };
  }

  /**
   * ram_find_and_save_block, a run at a time: finds the next dirty page, then sends the dirty
   * pages of the next RUN_PAGES pages of its block — one zero-page scan (the wasm kernel)
   * over the run, records built in place in the writer's buffer. Returns the pages sent
   * (0: none is dirty any more); stops early when `ctx` says the rate limit is reached.
   */
  #findAndSaveBlock(f: QemuFileWriter, ctx?: SaveVmIterateContext): number {
    if (this.#blocks.length === 0) return 0;
    const pss: PageSearch = { block: Math.max(0, this.#lastSeenBlock), page: this.#lastPage, completeRound: false };
    if (this.#lastSeenBlock < 0) this.#lastSeenBlock = 0;
    let pages = 0;
    let again = true;
    do {
      const r = this.#findDirtyBlock(pss);
      again = r.again;
      if (r.found) {
        const block = this.#blocks[pss.block]!;
        const sent = this.#saveRun(f, block, pss.page, ctx);
        pages += sent.pages;
        pss.page = sent.next;
      }
    } while (pages === 0 && again);
    this.#lastSeenBlock = pss.block;
    this.#lastPage = pss.page;
    return pages;
  }

  /** Sends the dirty pages of `block` in [first, first + RUN_PAGES); returns pages sent and where to go on. */
  #saveRun(f: QemuFileWriter, block: RamBlock, first: number, ctx: SaveVmIterateContext | undefined): { pages: number; next: number } {
    const k = this.memory.kernels;
    const synced = block.syncedBitmapOffsets[this.#dirty!.client]!;
    const limit = Math.min(block.pages, first + RUN_PAGES);
    const n = k.collect_bits(synced, limit, first, RUN_LIST, RUN_PAGES);
    if (n === 0) return { pages: 0, next: limit };
    const list = new Uint32Array(this.memory.memory.buffer, RUN_LIST, n);
    const last = list[n - 1]!;
    const zeros = new Uint32Array(this.memory.memory.buffer, RUN_ZERO, RUN_PAGES / 32);
    // Pages never written since the memory was created are zero: no need to read them. A
    // page written after this check is dirty again (its migration bit was cleared before the
    // sync that preceded us), so the next pass sends it.
    const untouched = this.#untouched(block, first, last);
    if (untouched) zeros.fill(0xffff_ffff);
    else k.zero_page_scan(block.pageHostOffset(first), last - first + 1, TARGET_PAGE_SIZE, RUN_ZERO);
    const mem = this.#mem();
    if (!this.#xbzrleEnabled && block === this.#lastSentBlock) {
      // Pages of the block sent last: the kernel builds the records (page bytes copied with
      // memory.copy) in a staging area, STAGE_PAGES at a time, and each slice is one put. A
      // never-written run is all zero-page records (9 bytes each): one slice (an idle guest's
      // RAM goes at memory speed).
      const slice = untouched ? n : STAGE_PAGES;
      let done = 0;
      while (done < n) {
        const m = Math.min(n - done, slice);
        const len = k.page_run_records(
          synced, RUN_LIST + done * 4, m, RUN_ZERO, first, block.hostOffset,
          RamSaveFlag.ZERO | RamSaveFlag.CONTINUE, RamSaveFlag.PAGE | RamSaveFlag.CONTINUE, PAGE_STAGE, RUN_COUNT,
        );
        const normal = new Uint32Array(this.memory.memory.buffer, RUN_COUNT, 1)[0]!;
        f.putBytes(mem.subarray(PAGE_STAGE, PAGE_STAGE + len));
        this.#dirtyPages -= m;
        this.#counters.normal += normal;
        this.#counters["normal-bytes"] += normal * TARGET_PAGE_SIZE;
        this.#counters.duplicate += m - normal;
        this.#transferred(len);
        done += m;
        if (done < n && ctx !== undefined && ctx.rateLimited()) break;
      }
      return { pages: done, next: done === n ? limit : list[done]! };
    }
    const bits = new Uint32Array(this.memory.memory.buffer, synced, Math.ceil(block.pages / 32));
    let sent = 0;
    let bytes = 0;
    let i = 0;
    for (; i < n; i++) {
      if ((i & 15) === 15 && ctx !== undefined && ctx.rateLimited()) break;
      const page = list[i]!;
      const word = page >>> 5;
      const bit = 1 << (page & 31);
      if ((bits[word]! & bit) === 0) continue; // sent meanwhile
      bits[word] = bits[word]! & ~bit; // migration_bitmap_clear_dirty (this thread owns the synced bitmap)
      this.#dirtyPages--;
      const rel = page - first;
      const zero = ((zeros[rel >>> 5]! >>> (rel & 31)) & 1) !== 0;
      const offset = page * TARGET_PAGE_SIZE;
      if (this.#xbzrleEnabled) {
        this.#transferred(bytes);
        bytes = 0;
        sent += this.#saveTargetPage(f, block, page, zero);
        continue;
      }
      const id = block === this.#lastSentBlock ? undefined : this.#idstrBytes(block);
      const header = id === undefined ? 8 : 9 + id.length;
      const flags = (zero ? RamSaveFlag.ZERO : RamSaveFlag.PAGE) | (id === undefined ? RamSaveFlag.CONTINUE : 0);
      const at = f.reserveOffset(header + (zero ? 1 : TARGET_PAGE_SIZE));
      const buf = f.buffer;
      const view = f.view;
      view.setUint32(at, Math.floor(offset / 0x1_0000_0000));
      view.setUint32(at + 4, (offset >>> 0) | flags);
      if (id !== undefined) {
        buf[at + 8] = id.length;
        buf.set(id, at + 9);
        this.#lastSentBlock = block;
      }
      if (zero) {
        buf[at + header] = 0;
        bytes += header + 1;
        this.#counters.duplicate++;
      } else {
        const host = block.hostOffset + offset;
        buf.set(mem.subarray(host, host + TARGET_PAGE_SIZE), at + header);
        bytes += header + TARGET_PAGE_SIZE;
        this.#counters.normal++;
        this.#counters["normal-bytes"] += TARGET_PAGE_SIZE;
      }
      sent++;
    }
    this.#transferred(bytes);
    return { pages: sent, next: i === n ? limit : list[i]! };
  }

  /** Whether no page of `block` in [first, last] was ever written (GuestMemory.touchedBits). */
  #untouched(block: RamBlock, first: number, last: number): boolean {
    const bits = this.#touchedOf(block);
    if (bits === undefined) return false;
    for (let w = first >>> 5; w <= last >>> 5; w++) {
      let word = Atomics.load(bits, w);
      if (w === first >>> 5) word &= ~((1 << (first & 31)) - 1) | 0;
      if (w === last >>> 5 && (last & 31) !== 31) word &= (1 << ((last & 31) + 1)) - 1;
      if (word !== 0) return false;
    }
    return true;
  }

  /** Whether page `page` of `block` was ever written (true when the memory cannot tell). */
  #touched(block: RamBlock, page: number): boolean {
    const bits = this.#touchedOf(block);
    return bits === undefined || (Atomics.load(bits, page >>> 5) & (1 << (page & 31))) !== 0;
  }

  /** Records that the loader wrote page `page` of `block`. */
  #touch(block: RamBlock, page: number): void {
    const bits = this.#touchedOf(block);
    if (bits !== undefined) Atomics.or(bits, page >>> 5, 1 << (page & 31));
  }

  #touchedOf(block: RamBlock): Int32Array | undefined {
    let bits = this.#touchedBits.get(block);
    if (bits === undefined && !this.#touchedBits.has(block)) {
      bits = this.memory.touchedBits(block);
      this.#touchedBits.set(block, bits);
    }
    return bits;
  }

  /** A byte view of the whole linear memory (the buffer never grows: made once). */
  #mem(): Uint8Array {
    const buffer = this.memory.memory.buffer;
    if (this.#memView === undefined || this.#memView.buffer !== buffer) this.#memView = new Uint8Array(buffer);
    return this.#memView;
  }

  #idstrBytes(block: RamBlock): Uint8Array {
    let id = this.#idstrs.get(block);
    if (id === undefined) {
      id = new TextEncoder().encode(block.idstr);
      this.#idstrs.set(block, id);
    }
    return id;
  }

  /** save_page_header: be64 offset|flags, then the idstr unless it is the last block sent. */
  #savePageHeader(f: QemuFileWriter, block: RamBlock, offset: number, flags: number): number {
    if (block === this.#lastSentBlock) flags |= RamSaveFlag.CONTINUE;
    f.putBe64Number(offset + flags);
    if (flags & RamSaveFlag.CONTINUE) return 8;
    f.putStr8(block.idstr);
    this.#lastSentBlock = block;
    return 9 + this.#idstrBytes(block).length;
  }

  /** ram_save_target_page with XBZRLE on: a zero page, an XBZRLE page or a normal page. Returns pages sent (0: skipped). */
  #saveTargetPage(f: QemuFileWriter, block: RamBlock, page: number, zero: boolean): number {
    const offset = page * TARGET_PAGE_SIZE;
    if (zero) {
      const len = this.#savePageHeader(f, block, offset, RamSaveFlag.ZERO) + 1;
      f.putU8(0);
      this.#counters.duplicate++;
      this.#transferred(len);
      if (this.#xbzrleEnabled) this.#cache!.insert(block.ramAddr + offset, this.#zeroPage, this.#counters["dirty-sync-count"]);
      return 1;
    }
    let data = block.page(page);
    if (this.#xbzrleEnabled) {
      const r = this.#saveXbzrlePage(f, block, offset, data);
      if (r.pages !== -1) return r.pages;
      data = r.data;
    }
    this.#transferred(this.#savePageHeader(f, block, offset, RamSaveFlag.PAGE));
    f.putBytes(data);
    this.#transferred(TARGET_PAGE_SIZE);
    this.#counters.normal++;
    this.#counters["normal-bytes"] += TARGET_PAGE_SIZE;
    return 1;
  }

  /** save_xbzrle_page: -1 = send `data` as a normal page; 0 = unchanged, skipped; 1 = sent. */
  #saveXbzrlePage(f: QemuFileWriter, block: RamBlock, offset: number, current: Uint8Array): { pages: number; data: Uint8Array } {
    const cache = this.#cache!;
    const addr = block.ramAddr + offset;
    const age = this.#counters["dirty-sync-count"];
    const x = this.#xbzrleCounters;
    if (!cache.isCached(addr, age)) {
      x["cache-miss"]++;
      if (!this.#lastStage && cache.insert(addr, current, age)) return { pages: -1, data: cache.get(addr)! };
      return { pages: -1, data: current };
    }
    x.pages++;
    const prev = cache.get(addr)!;
    // QEMU encodes a copy of the page (XBZRLE.current_buf): a running vCPU may change it meanwhile.
    const mem = this.#mem();
    const host = block.hostOffset + offset;
    mem.copyWithin(XBZRLE_SNAPSHOT, host, host + TARGET_PAGE_SIZE);
    const snapshot = mem.subarray(XBZRLE_SNAPSHOT, XBZRLE_SNAPSHOT + TARGET_PAGE_SIZE);
    void current;
    // The SIMD encoder (byte-identical with QEMU's xbzrle.c): undefined when it overflows a page.
    const encoded = this.memory.xbzrle.encode(prev, XBZRLE_SNAPSHOT);
    const len = encoded === undefined ? -1 : encoded.length;
    let data: Uint8Array = snapshot;
    if (!this.#lastStage && len !== 0) {
      prev.set(snapshot);
      data = prev;
    }
    if (len === 0) return { pages: 0, data };
    if (len < 0) {
      x.overflow++;
      x.bytes += TARGET_PAGE_SIZE;
      return { pages: -1, data };
    }
    let bytes = this.#savePageHeader(f, block, offset, RamSaveFlag.XBZRLE);
    f.putU8(ENCODING_FLAG_XBZRLE);
    f.putBe16(len);
    f.putBytes(encoded!);
    bytes += len + 3;
    x.bytes += bytes - 8;
    this.#transferred(bytes);
    return { pages: 1, data };
  }

  // ---- load side -------------------------------------------------------------------

  load_setup(): void {
    this.#loadBlock = undefined;
    this.#loadIdBytes = undefined;
  }

  #findBlock(idstr: string): RamBlock | undefined {
    return this.memory.ramBlocks.find((b) => b.idstr === idstr);
  }

  /** ram_block_from_stream. */
  async #blockFromStream(f: QemuFileReader, flags: number): Promise<RamBlock> {
    if (flags & RamSaveFlag.CONTINUE) {
      if (this.#loadBlock === undefined) throw new MigrationError(`ram: CONTINUE flag (flags ${hex(flags)}) without a previous block`);
      return this.#loadBlock;
    }
    const id = await f.readStr8("ram: block idstr");
    const block = this.#findBlock(id);
    if (block === undefined) throw new MigrationError(`ram: can't find RAM block '${printable(id)}'`);
    if (!block.migratable) throw new MigrationError(`ram: RAM block '${id}' should not be migrated`);
    this.#loadBlock = block;
    return block;
  }

  /**
   * The block list after MEM_SIZE (ram_load_precopy's "Synchronize RAM block list"). A block
   * whose length differs is resized when it is resizeable and the length fits its max length
   * (qemu_ram_resize), else the load fails with QEMU's text and ours.
   *
   * QEMU does not notice a local block missing from the stream; we fail for one of ordinary
   * RAM (the guest would run on whatever the destination held there) but accept a missing
   * read-only block: a ROM's contents come from the destination's own firmware image, the
   * guest cannot have changed them, and a source that registers it under another idstr or
   * not at all (an older or newer release) must still migrate. The ROM keeps the
   * destination's contents.
   */
  async #loadMemSize(f: QemuFileReader, total: bigint): Promise<void> {
    const seen = new Set<RamBlock>();
    let left = total;
    while (left > 0n) {
      const id = await f.readStr8("ram: MEM_SIZE block idstr");
      const length = await f.readU64(`ram: MEM_SIZE used length of '${id}'`);
      const block = this.#findBlock(id);
      if (block === undefined) throw new MigrationError(`ram: unknown RAM block '${printable(id)}', cannot accept migration`);
      if (!block.migratable) throw new MigrationError(`ram: RAM block '${id}' should not be migrated`);
      if (seen.has(block)) throw new MigrationError(`ram: RAM block '${id}' listed twice in MEM_SIZE`);
      seen.add(block);
      if (length > left) throw new MigrationError(`ram: RAM block lengths exceed the MEM_SIZE total ${hex(total)}`);
      if (length !== BigInt(block.usedLength)) {
        const local = block.usedLength;
        try {
          qemuRamResize(block, length);
        } catch (e) {
          const why = block.resizeable
            ? `its max length is ${hex(block.maxLength)}`
            : "it is not resizeable";
          throw new MigrationError(
            `ram: ${e instanceof Error ? e.message : String(e)} (RAM block '${id}' has used length ${hex(length)} in the stream but ${hex(local)} here, and ${why})`,
            { cause: e },
          );
        }
      }
      if (this.#options.ignoreShared) await f.readU64(`ram: MEM_SIZE guest address of '${id}'`);
      left -= length;
    }
    for (const b of migratableBlocks(this.memory)) {
      if (seen.has(b) || b.readonly) continue;
      throw new MigrationError(`ram: RAM block '${b.idstr}' (${hex(b.usedLength)} bytes) is missing from the stream`);
    }
  }

  async load_state(f: QemuFileReader, versionId: number): Promise<void> {
    if (versionId !== RAM_SECTION_VERSION) {
      throw new MigrationError(`ram: stream version ${versionId} not supported (need ${RAM_SECTION_VERSION})`);
    }
    for (;;) {
      const window = f.contiguous();
      const used = this.#loadInPlace(window);
      if (used > 0) f.advance(used);
      if (this.#loadEos) return;
      // the next record is not whole in the window, or is not a plain page: one at a time
      if (await this.#loadRecord(f)) return;
    }
  }

  /**
   * Decodes whole ZERO/PAGE/EOS records straight from `w` (no copy but the page's own, no
   * allocation per page); stops before anything else — a record cut by the window's end,
   * another kind, an unknown block, a bad offset — for {@link #loadRecord}, which reads it
   * again with every check and error text. Returns the bytes consumed; sets #loadEos.
   */
  #loadInPlace(w: Uint8Array): number {
    this.#loadEos = false;
    const n = w.length;
    if (n < 8) return 0;
    const view = new DataView(w.buffer, w.byteOffset, n);
    const mem = this.#mem();
    const kernels = this.memory.kernels;
    let i = 0;
    while (n - i >= 8) {
      const hi = view.getUint32(i);
      const lo = view.getUint32(i + 4);
      const flags = lo & FLAG_MASK;
      const kind = flags & ~RamSaveFlag.CONTINUE;
      if (kind === RamSaveFlag.EOS) {
        this.#loadEos = true;
        return i + 8;
      }
      if (kind !== RamSaveFlag.ZERO && kind !== RamSaveFlag.PAGE) return i;
      let block = this.#loadBlock;
      if (flags === (RamSaveFlag.ZERO | RamSaveFlag.CONTINUE) && block !== undefined && block.migratable) {
        // A run of zero pages of the current block (an idle guest's RAM): the kernel applies
        // as many as it can, a slice of the window at a time.
        const take = Math.min(n - i, LOAD_RUN_BYTES);
        mem.set(w.subarray(i, i + take), LOAD_RUN);
        const touched = this.#touchedOf(block);
        const used = kernels.load_zero_records(
          LOAD_RUN, take, block.hostOffset, block.usedLength / TARGET_PAGE_SIZE, touched === undefined ? 0 : touched.byteOffset, flags,
        );
        if (used > 0) {
          i += used;
          continue;
        }
      }
      let j = i + 8;
      if ((flags & RamSaveFlag.CONTINUE) === 0) {
        if (j >= n) return i;
        const len = w[j]!;
        if (j + 1 + len > n) return i;
        block = this.#blockByIdBytes(w.subarray(j + 1, j + 1 + len));
        j += 1 + len;
      }
      if (block === undefined || !block.migratable) return i;
      const addr = hi * 0x1_0000_0000 + (lo - flags);
      if (addr >= block.usedLength) return i;
      const host = block.hostOffset + addr;
      const page = addr / TARGET_PAGE_SIZE;
      if (kind === RamSaveFlag.ZERO) {
        if (j >= n) return i;
        const ch = w[j]!;
        j += 1;
        // ram_handle_compressed: leave a page that already holds zeros untouched (one never
        // written here is zero without reading it)
        if (ch !== 0 || (this.#touched(block, page) && kernels.buffer_is_zero(host, TARGET_PAGE_SIZE) === 0)) {
          mem.fill(ch, host, host + TARGET_PAGE_SIZE);
          this.#touch(block, page);
        }
      } else {
        if (j + TARGET_PAGE_SIZE > n) return i;
        mem.set(w.subarray(j, j + TARGET_PAGE_SIZE), host);
        this.#touch(block, page);
        j += TARGET_PAGE_SIZE;
      }
      this.#loadBlock = block;
      i = j;
    }
    return i;
  }

  /** The block whose idstr is `bytes` (the last one looked up is kept). */
  #blockByIdBytes(bytes: Uint8Array): RamBlock | undefined {
    const last = this.#loadIdBytes;
    if (last !== undefined && last.length === bytes.length && last.every((b, k) => b === bytes[k])) return this.#loadIdBlock;
    const block = this.#findBlock(new TextDecoder().decode(bytes));
    this.#loadIdBytes = bytes.slice();
    this.#loadIdBlock = block;
    return block;
  }

  /** One record through the checked reads (ram_load_precopy's loop body); true at EOS. */
  async #loadRecord(f: QemuFileReader): Promise<boolean> {
    const at = f.position;
    const word = await f.readU64("ram: record header");
    const flags = Number(word & BigInt(FLAG_MASK));
    const addr = word & ~BigInt(FLAG_MASK);
    if (flags & RamSaveFlag.COMPRESS_PAGE) throw new MigrationError(`ram: unexpected compressed page (flags ${hex(flags)} at offset ${at})`);
    let block: RamBlock | undefined;
    let page = 0;
    if (flags & (RamSaveFlag.ZERO | RamSaveFlag.PAGE | RamSaveFlag.XBZRLE)) {
      block = await this.#blockFromStream(f, flags);
      if (addr >= BigInt(block.usedLength)) {
        throw new MigrationError(`ram: illegal RAM offset ${hex(addr)} in block '${block.idstr}' (used length ${hex(block.usedLength)}) at offset ${at}`);
      }
      page = Number(addr) / TARGET_PAGE_SIZE;
    }
    switch (flags & ~RamSaveFlag.CONTINUE) {
      case RamSaveFlag.MEM_SIZE:
        await this.#loadMemSize(f, addr);
        return false;
      case RamSaveFlag.ZERO: {
        const ch = await f.readU8(`ram: fill byte of page ${hex(addr)} of '${block!.idstr}'`);
        const host = block!.pageHostOffset(page);
        if (ch !== 0 || (this.#touched(block!, page) && this.memory.kernels.buffer_is_zero(host, TARGET_PAGE_SIZE) === 0)) {
          block!.page(page).fill(ch);
          this.#touch(block!, page);
        }
        return false;
      }
      case RamSaveFlag.PAGE:
        this.#touch(block!, page);
        await f.readInto(block!.page(page), `ram: page ${hex(addr)} of '${block!.idstr}'`);
        return false;
      case RamSaveFlag.XBZRLE:
        this.#touch(block!, page);
        await this.#loadXbzrle(f, block!, page, addr);
        return false;
      case RamSaveFlag.EOS:
        return true;
      default:
        if (flags & RamSaveFlag.HOOK) throw new MigrationError(`ram: RDMA hook flag (flags ${hex(flags)}) not supported at offset ${at}`);
        throw new MigrationError(`ram: unknown combination of migration flags ${hex(flags)} at offset ${at}`);
    }
  }

  /** load_xbzrle: u8 1, be16 len ≤ page size, the delta applied onto the current page. */
  async #loadXbzrle(f: QemuFileReader, block: RamBlock, page: number, addr: bigint): Promise<void> {
    const where = `ram: XBZRLE page ${hex(addr)} of '${block.idstr}'`;
    const encoding = await f.readU8(`${where}: encoding`);
    const len = await f.readU16(`${where}: length`);
    if (encoding !== ENCODING_FLAG_XBZRLE) throw new MigrationError(`${where}: wrong encoding flag ${hex(encoding)} (expected 0x1)`);
    if (len > TARGET_PAGE_SIZE) throw new MigrationError(`${where}: length ${len} exceeds the page size ${TARGET_PAGE_SIZE}`);
    const data = this.#loadBuf.subarray(0, len);
    await f.readInto(data, `${where}: data`);
    try {
      this.memory.xbzrle.decode(data, block.pageHostOffset(page));
    } catch (e) {
      throw new MigrationError(`${where}: decode error: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
}
