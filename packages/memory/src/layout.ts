/**
 * The one linear-memory map of a FerryVM virtual machine.
 *
 * Every WebAssembly module of a VM imports the same `WebAssembly.Memory`; this file fixes
 * where each thing lives inside it. Regions below `HART_AREA` are fixed; hart blocks, dirty
 * bitmaps and guest RAM blocks are placed by {@link computeLayout} from the machine's size.
 *
 * ```
 * 0x0000_0000  guard             64 KiB  never written; a stray null pointer reads zeros
 * 0x0001_0000  cpu-wasm statics  64 KiB  asc --memoryBase 65536   (no heap: --runtime stub, no allocation)
 * 0x0002_0000  memory statics    64 KiB  asc --memoryBase 131072
 * 0x0003_0000  (reserved)        64 KiB  a third AssemblyScript module
 * 0x0004_0000  machine area       4 KiB  mtime, RAM region table, tohost (cpu-wasm's MachineArea)
 * 0x0004_1000  kernel scratch   760 KiB  page buffers the TypeScript side hands to the page kernels
 * 0x000F_F000  vCPU control       4 KiB  control words and the MMIO mailbox of a vCPU run in a worker
 * 0x0010_0000  hart blocks       64 KiB each, MAX_HARTS of them: hart state, then its soft TLBs
 * ...          dirty bitmaps     per client, per RAM block: 1 bit per target page, u64 words,
 *                                bit i of word w = page 64·w + i (little-endian, as QEMU's).
 *                                First every client's live bitmap (set by the CPU and by device
 *                                writes), then every client's synced bitmap (what a sync moved
 *                                out of the live one; migration's rb->bmap)
 * ...          RAM blocks        each aligned to 64 KiB (one wasm page), in registration order
 * ```
 *
 * wasm32 addresses 4 GiB; with the areas above and the bitmaps, a VM holds at most about
 * 3.5 GiB of guest RAM ({@link MAX_GUEST_RAM}). The memory is sized once, up front: growing
 * it would detach every TypeScript view.
 */

export const WASM_PAGE_SIZE = 0x1_0000;
export const TARGET_PAGE_BITS = 12;
export const TARGET_PAGE_SIZE = 1 << TARGET_PAGE_BITS;

export const GUARD_BASE = 0x0000_0000;
export const CPU_STATICS_BASE = 0x0001_0000;
export const MEMORY_STATICS_BASE = 0x0002_0000;
export const STATICS_SIZE = 0x1_0000;
export const MACHINE_AREA_BASE = 0x0004_0000;
export const MACHINE_AREA_SIZE = 0x1000;
export const KERNEL_SCRATCH_BASE = 0x0004_1000;
/**
 * The control block of a vCPU worker thread (@ferryvm/devices' vcpu-worker.ts): run/park
 * words, the wake word, the MMIO mailbox, the published clock. Only that module uses it.
 */
export const VCPU_CONTROL_BASE = 0x000f_f000;
export const VCPU_CONTROL_SIZE = 0x1000;
export const KERNEL_SCRATCH_SIZE = VCPU_CONTROL_BASE - KERNEL_SCRATCH_BASE;
export const HART_AREA_BASE = 0x0010_0000;
export const HART_BLOCK_SIZE = 0x1_0000;
export const MAX_HARTS = 32;
export const HART_AREA_END = HART_AREA_BASE + MAX_HARTS * HART_BLOCK_SIZE;

/** The most guest RAM one VM can have in a wasm32 linear memory. */
export const MAX_GUEST_RAM = 3.5 * 1024 * 1024 * 1024;
/** Largest linear memory: 65536 wasm pages (4 GiB). */
export const MAX_LINEAR_MEMORY = 0x1_0000_0000;

export interface RamBlockSpec {
  /** QEMU's idstr, e.g. `riscv_virt_board.ram`. */
  readonly idstr: string;
  /** Size in bytes; a multiple of the target page size. */
  readonly size: number;
}

export interface RamBlockPlacement {
  readonly idstr: string;
  readonly size: number;
  /** Offset of the block's first byte in linear memory. */
  readonly hostOffset: number;
  /** Offset of the block's bitmap for each dirty-memory client, in client order. */
  readonly bitmapOffsets: readonly number[];
  /** Offset of the block's synced bitmap for each dirty-memory client, in client order. */
  readonly syncedBitmapOffsets: readonly number[];
  /** Bytes per bitmap: one bit per page, rounded up to whole u64 words. */
  readonly bitmapSize: number;
}

export interface MemoryLayout {
  readonly harts: number;
  readonly dirtyClients: number;
  readonly blocks: readonly RamBlockPlacement[];
  /** Total linear memory needed, a multiple of the wasm page size. */
  readonly totalBytes: number;
  /** Wasm pages for `new WebAssembly.Memory({ initial, maximum })`. */
  readonly wasmPages: number;
}

/** Offset of hart `index`'s block (its state first, then its soft TLBs). */
export function hartBlockOffset(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_HARTS) {
    throw new RangeError(`hart index ${index} is out of range 0..${MAX_HARTS - 1}`);
  }
  return HART_AREA_BASE + index * HART_BLOCK_SIZE;
}

function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}

/** Places hart blocks, dirty bitmaps and RAM blocks; throws a RangeError naming what does not fit. */
export function computeLayout(
  blocks: readonly RamBlockSpec[],
  options: { harts: number; dirtyClients: number },
): MemoryLayout {
  const { harts, dirtyClients } = options;
  if (!Number.isInteger(harts) || harts < 1 || harts > MAX_HARTS) {
    throw new RangeError(`hart count ${harts} is out of range 1..${MAX_HARTS}`);
  }
  if (!Number.isInteger(dirtyClients) || dirtyClients < 0 || dirtyClients > 8) {
    throw new RangeError(`dirty client count ${dirtyClients} is out of range 0..8`);
  }
  let ramTotal = 0;
  for (const b of blocks) {
    if (!Number.isInteger(b.size) || b.size <= 0 || b.size % TARGET_PAGE_SIZE !== 0) {
      throw new RangeError(`RAM block ${b.idstr}: size ${b.size} is not a positive multiple of ${TARGET_PAGE_SIZE}`);
    }
    ramTotal += b.size;
  }
  if (ramTotal > MAX_GUEST_RAM) {
    throw new RangeError(
      `guest RAM of ${ramTotal} bytes exceeds the ${MAX_GUEST_RAM} bytes a wasm32 VM can address`,
    );
  }
  let cursor = HART_AREA_END;
  const bitmapSizes = blocks.map((b) => alignUp(b.size / TARGET_PAGE_SIZE, 64) / 8);
  const bitmapOffsets = blocks.map((_, i) => {
    const offs: number[] = [];
    for (let c = 0; c < dirtyClients; c++) {
      offs.push(cursor);
      cursor += alignUp(bitmapSizes[i]!, 64);
    }
    return offs;
  });
  const syncedOffsets = blocks.map((_, i) => {
    const offs: number[] = [];
    for (let c = 0; c < dirtyClients; c++) {
      offs.push(cursor);
      cursor += alignUp(bitmapSizes[i]!, 64);
    }
    return offs;
  });
  cursor = alignUp(cursor, WASM_PAGE_SIZE);
  const placed: RamBlockPlacement[] = blocks.map((b, i) => {
    const hostOffset = cursor;
    cursor = alignUp(cursor + b.size, WASM_PAGE_SIZE);
    return {
      idstr: b.idstr,
      size: b.size,
      hostOffset,
      bitmapOffsets: bitmapOffsets[i]!,
      syncedBitmapOffsets: syncedOffsets[i]!,
      bitmapSize: bitmapSizes[i]!,
    };
  });
  if (cursor > MAX_LINEAR_MEMORY) {
    throw new RangeError(
      `the VM needs ${cursor} bytes of linear memory, more than the ${MAX_LINEAR_MEMORY} wasm32 allows; use less guest RAM`,
    );
  }
  return { harts, dirtyClients, blocks: placed, totalBytes: cursor, wasmPages: cursor / WASM_PAGE_SIZE };
}
