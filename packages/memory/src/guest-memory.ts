/**
 * The address space of one VM: its RAM blocks and MMIO regions on the guest-physical bus,
 * all RAM in one shared `WebAssembly.Memory` laid out by {@link computeLayout}, and the dirty
 * bitmaps of each client. Device writes into guest RAM (DMA, virtio) go through
 * {@link GuestMemory.write}, which marks the pages dirty for every client.
 */
import {
  computeLayout,
  KERNEL_SCRATCH_BASE,
  TARGET_PAGE_SIZE,
  WASM_PAGE_SIZE,
  type MemoryLayout,
} from "./layout.ts";
import { loadPageKernels, loadPageKernelsSync, type LoadKernelsOptions, type PageKernelExports } from "./kernels.ts";
import { RamBlock, type RamBlockOptions } from "./ram-block.ts";
import { DirtyBitmap, type SyncBarrier } from "./dirty.ts";
import { Xbzrle } from "./xbzrle.ts";

/** Callbacks of an MMIO region; `offset` is relative to the region base. */
export interface MmioOps {
  read(offset: number, size: 1 | 2 | 4 | 8): number | bigint;
  write(offset: number, size: 1 | 2 | 4 | 8, value: number | bigint): void;
}

export interface MmioRegionOptions {
  readonly name: string;
  readonly base: number;
  readonly size: number;
  readonly ops: MmioOps;
}

export interface GuestMemoryOptions {
  readonly ram: readonly RamBlockOptions[];
  readonly mmio?: readonly MmioRegionOptions[];
  /** Harts whose blocks the layout reserves (default 1). */
  readonly harts?: number;
  /** Dirty-memory client names, at most 4 (the CPU's region table limit); default ["migration", "snapshot"]. */
  readonly dirtyClients?: readonly string[];
  /** Use the page kernels' debug build. */
  readonly debug?: boolean;
  /** The page kernels' module bytes (a browser without file access); default: build/memory.wasm. */
  readonly kernelsWasm?: BufferSource;
  /** An existing memory of the right size (e.g. received by a worker); default: a new shared one. */
  readonly memory?: WebAssembly.Memory;
}

/** What the CPU's region table needs per RAM region (cpu-wasm's RamRegion). */
export interface CpuRamRegion {
  base: number;
  size: number;
  hostOffset: number;
  readonly: boolean;
  dirtyBitmaps: number[];
}

/**
 * Bytes of kernel scratch GuestMemory uses from KERNEL_SCRATCH_BASE (main thread only):
 * bitmap iteration 4 KiB, page hashes 12 KiB, XBZRLE 3 pages. Others start after it.
 */
export const MEMORY_SCRATCH_SIZE = 0x7000;
const COLLECT_OFFSET = KERNEL_SCRATCH_BASE;
const HASH_OFFSET = KERNEL_SCRATCH_BASE + 0x1000;
const HASH_CHUNK_PAGES = 0x3000 / 8;
const XBZRLE_OFFSET = KERNEL_SCRATCH_BASE + 0x4000;

/**
 * A dirty-memory client that is never synced or cleared: its live bitmap records every page
 * written since the memory was created (CPU stores, device DMA, loaders, incoming migration).
 * A fresh `WebAssembly.Memory` is zero, so a page without its bit is known to hold zeros:
 * migration sends it as a zero page without reading it, and an incoming zero page over it is
 * skipped. See {@link GuestMemory.touchedBits}.
 */
export const TOUCHED_CLIENT = "touched";

/**
 * The clients a GuestMemory has unless told otherwise. Add {@link TOUCHED_CLIENT} only when
 * every write to guest RAM goes through the CPU, `write`/`markDirty` or the migration loader —
 * a write through `RamBlock.bytes` is not tracked, and a page written that way would then be
 * taken for zero (the `virt` machine opts in).
 */
export const DEFAULT_DIRTY_CLIENTS: readonly string[] = Object.freeze(["migration", "snapshot"]);

export class GuestMemory {
  readonly memory: WebAssembly.Memory;
  readonly layout: MemoryLayout;
  readonly kernels: PageKernelExports;
  readonly ramBlocks: readonly RamBlock[];
  readonly mmioRegions: readonly MmioRegionOptions[];
  readonly dirtyClients: readonly string[];
  #dirty: DirtyBitmap[];
  #barrier: SyncBarrier | undefined;
  #xbzrle: Xbzrle | undefined;
  /** Whether the linear memory was created here (so it started zeroed). */
  readonly #fresh: boolean;

  /** Creates the address space; Node reads the page kernels synchronously. */
  static createSync(options: GuestMemoryOptions): GuestMemory {
    const { layout, memory } = prepare(options);
    return new GuestMemory(options, layout, memory, loadPageKernelsSync(kernelOptions(options, memory)), options.memory === undefined);
  }

  static async create(options: GuestMemoryOptions): Promise<GuestMemory> {
    const { layout, memory } = prepare(options);
    return new GuestMemory(options, layout, memory, await loadPageKernels(kernelOptions(options, memory)), options.memory === undefined);
  }

  private constructor(options: GuestMemoryOptions, layout: MemoryLayout, memory: WebAssembly.Memory, kernels: PageKernelExports, fresh: boolean) {
    this.#fresh = fresh;
    this.memory = memory;
    this.layout = layout;
    this.kernels = kernels;
    let ramAddr = 0;
    this.ramBlocks = options.ram.map((spec, i) => {
      const block = new RamBlock(spec, layout.blocks[i]!, ramAddr, memory);
      ramAddr += Math.ceil(spec.size / WASM_PAGE_SIZE) * WASM_PAGE_SIZE;
      return block;
    });
    this.mmioRegions = [...(options.mmio ?? [])];
    checkOverlaps(this.ramBlocks, this.mmioRegions);
    this.dirtyClients = [...(options.dirtyClients ?? DEFAULT_DIRTY_CLIENTS)];
    this.#dirty = this.dirtyClients.map(
      (name, client) =>
        new DirtyBitmap(name, client, {
          kernels,
          blocks: this.ramBlocks,
          barrier: () => this.#barrier,
          memory,
          collectOffset: COLLECT_OFFSET,
        }),
    );
  }

  /** XBZRLE encode/decode on this memory (target pages, scratch inside MEMORY_SCRATCH_SIZE). */
  get xbzrle(): Xbzrle {
    this.#xbzrle ??= new Xbzrle(this.kernels, this.memory, { scratch: XBZRLE_OFFSET, pageSize: TARGET_PAGE_SIZE });
    return this.#xbzrle;
  }

  /**
   * The {@link TOUCHED_CLIENT} live bitmap of `block` (one bit per target page, set once the
   * page was written), or undefined when this memory cannot tell (no such client, or a linear
   * memory passed in that may not have started zeroed). A clear bit means the page is zero.
   */
  touchedBits(block: RamBlock): Int32Array | undefined {
    const client = this.dirtyClients.indexOf(TOUCHED_CLIENT);
    if (client < 0 || !this.#fresh) return undefined;
    return new Int32Array(this.memory.buffer, block.bitmapOffsets[client]!, block.bitmapSize >> 2);
  }

  /** The dirty bitmap of client `name` (e.g. "migration"). */
  dirty(name: string): DirtyBitmap {
    const bitmap = this.#dirty.find((d) => d.name === name);
    if (bitmap === undefined) throw new Error(`no dirty-memory client "${name}"; clients: ${this.dirtyClients.join(", ")}`);
    return bitmap;
  }

  /**
   * Sets what every sync runs after moving the live bits: the machine makes every hart drop
   * its store-TLB entries there (and waits for a hart running in a worker to do so).
   */
  setSyncBarrier(barrier: SyncBarrier | undefined): void {
    this.#barrier = barrier;
  }

  block(idstr: string): RamBlock {
    const block = this.ramBlocks.find((b) => b.idstr === idstr);
    if (block === undefined) throw new Error(`no RAM block "${idstr}"`);
    return block;
  }

  /** The RAM block mapped at guest-physical `addr`, and the offset in it; undefined if none. */
  findRam(addr: number): { block: RamBlock; offset: number } | undefined {
    for (const block of this.ramBlocks) {
      if (block.base !== undefined && addr >= block.base && addr < block.base + block.usedLength) {
        return { block, offset: addr - block.base };
      }
    }
    return undefined;
  }

  findMmio(addr: number): MmioRegionOptions | undefined {
    return this.mmioRegions.find((r) => addr >= r.base && addr < r.base + r.size);
  }

  /** The regions for cpu-wasm's `Cpu.setRegions` (mapped blocks, every client's live bitmap). */
  cpuRegions(): CpuRamRegion[] {
    return this.ramBlocks
      .filter((b) => b.base !== undefined)
      .map((b) => ({
        base: b.base!,
        size: b.usedLength,
        hostOffset: b.hostOffset,
        readonly: b.readonly,
        dirtyBitmaps: [...b.bitmapOffsets],
      }));
  }

  /** Whether page `page` of `block` is all zeros (the zero-page check migration runs first). */
  isZeroPage(block: RamBlock, page: number): boolean {
    return this.kernels.buffer_is_zero(block.pageHostOffset(page), TARGET_PAGE_SIZE) !== 0;
  }

  /** XXH64 of page `page` of `block`, hashed in place (the scalar kernel: i64x2.mul is emulated on x64, so it is the faster twin). */
  hashPage(block: RamBlock, page: number, seed = 0n): bigint {
    return BigInt.asUintN(64, this.kernels.xxh64_scalar(block.pageHostOffset(page), TARGET_PAGE_SIZE, seed));
  }

  /**
   * The page hash of every page of `block`: XXH64 (seed 0) of each target page, hashed in
   * place four pages at a time; compare two VMs' arrays to find the pages that differ.
   */
  hashPages(block: RamBlock): BigUint64Array {
    const hashes = new BigUint64Array(block.pages);
    const chunk = HASH_CHUNK_PAGES;
    const view = new BigUint64Array(this.memory.buffer, HASH_OFFSET, chunk);
    for (let first = 0; first < block.pages; first += chunk) {
      const n = Math.min(chunk, block.pages - first);
      this.kernels.xxh64_pages(block.pageHostOffset(first), n, TARGET_PAGE_SIZE, HASH_OFFSET);
      hashes.set(view.subarray(0, n), first);
    }
    return hashes;
  }

  /** XXH64 of the used length of `block`, hashed in place (end-to-end RAM checks). */
  hashBlock(block: RamBlock, seed = 0n): bigint {
    return BigInt.asUintN(64, this.kernels.xxh64_scalar(block.hostOffset, block.usedLength, seed));
  }

  /** Copies `length` bytes of guest RAM at guest-physical `addr` (device reads, DMA). */
  read(addr: number, length: number): Uint8Array {
    const { block, offset } = this.#ramRange(addr, length);
    return new Uint8Array(this.memory.buffer, block.hostOffset + offset, length).slice();
  }

  /**
   * Writes `data` into guest RAM at guest-physical `addr` (device writes, DMA) and marks the
   * pages dirty in every client. Returns how many pages were newly dirty (live bitmaps).
   */
  write(addr: number, data: Uint8Array): number {
    const { block, offset } = this.#ramRange(addr, data.length);
    if (block.readonly) throw new Error(`RAM block ${block.idstr} is read-only: device write at 0x${addr.toString(16)} refused`);
    new Uint8Array(this.memory.buffer, block.hostOffset + offset, data.length).set(data);
    return this.markDirty(block, offset, data.length);
  }

  /** Marks the pages of [offset, offset + length) of `block` dirty in every client's live bitmap. */
  markDirty(block: RamBlock, offset: number, length: number): number {
    if (length <= 0) return 0;
    const first = Math.floor(offset / TARGET_PAGE_SIZE);
    const last = Math.floor((offset + length - 1) / TARGET_PAGE_SIZE);
    let fresh = 0;
    for (const bitmap of block.bitmapOffsets) fresh += this.kernels.set_bit_range(bitmap, first, last - first + 1);
    return fresh;
  }

  #ramRange(addr: number, length: number): { block: RamBlock; offset: number } {
    const hit = this.findRam(addr);
    if (hit === undefined || hit.offset + length > hit.block.usedLength) {
      throw new RangeError(`guest-physical range 0x${addr.toString(16)}+${length} is not inside one RAM block`);
    }
    return hit;
  }
}

function kernelOptions(options: GuestMemoryOptions, memory: WebAssembly.Memory): LoadKernelsOptions {
  return options.kernelsWasm === undefined
    ? { memory, debug: options.debug ?? false }
    : { memory, debug: options.debug ?? false, wasm: options.kernelsWasm };
}

function prepare(options: GuestMemoryOptions): { layout: MemoryLayout; memory: WebAssembly.Memory } {
  const clients = options.dirtyClients?.length ?? DEFAULT_DIRTY_CLIENTS.length;
  if (clients > 4) throw new RangeError(`${clients} dirty-memory clients: the CPU's region table holds at most 4`);
  const layout = computeLayout(
    options.ram.map((r) => ({ idstr: r.idstr, size: r.size })),
    { harts: options.harts ?? 1, dirtyClients: clients },
  );
  let memory = options.memory;
  if (memory === undefined) {
    memory = new WebAssembly.Memory({ initial: layout.wasmPages, maximum: layout.wasmPages, shared: true });
  } else if (memory.buffer.byteLength < layout.totalBytes) {
    throw new RangeError(`the memory has ${memory.buffer.byteLength} bytes; the layout needs ${layout.totalBytes}`);
  }
  return { layout, memory };
}

function checkOverlaps(blocks: readonly RamBlock[], mmio: readonly MmioRegionOptions[]): void {
  const ranges = [
    ...blocks.filter((b) => b.base !== undefined).map((b) => ({ name: b.idstr, base: b.base!, size: b.maxLength })),
    ...mmio.map((r) => ({ name: r.name, base: r.base, size: r.size })),
  ].sort((a, b) => a.base - b.base);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1]!;
    if (prev.base + prev.size > ranges[i]!.base) {
      throw new RangeError(`${ranges[i]!.name} at 0x${ranges[i]!.base.toString(16)} overlaps ${prev.name}`);
    }
  }
}
