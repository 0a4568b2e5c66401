/**
 * A RAM block, as QEMU's RAMBlock: an idstr (e.g. `riscv_virt_board.ram`, `riscv.spike.mrom`),
 * its used length (what migrates) within its max length (what is reserved), its page size and
 * flags, its ram_addr_t offset, and its bytes in the VM's linear memory.
 */
import { TARGET_PAGE_SIZE, type RamBlockPlacement } from "./layout.ts";

/** RAM block flags (QEMU's RAM_* names). */
export const RamFlags = {
  /** Sent by migration (qemu_ram_is_migratable). */
  MIGRATABLE: 1,
  /** Guest stores fault (a ROM); device writes through the API are refused too. */
  READONLY: 2,
  /**
   * The used length may change within the max length (QEMU's RAM_RESIZEABLE): firmware and
   * ROM blocks whose contents may grow in a later release, so an incoming stream from
   * either release loads (qemu_ram_resize).
   */
  RESIZEABLE: 4,
} as const;

/** What a block's resize listeners get (QEMU's RAMBlock `resized` callback). */
export type RamBlockResized = (block: RamBlock, oldLength: number, newLength: number) => void;

export interface RamBlockOptions {
  /** QEMU's idstr. */
  readonly idstr: string;
  /** Bytes reserved (max length), a multiple of the target page size. */
  readonly size: number;
  /** Bytes in use (default: `size`); migration sends only these. */
  readonly usedLength?: number;
  /** Guest-physical address where the block is mapped; omit for an unmapped block. */
  readonly base?: number;
  /** Host page size backing the block (default 4096). */
  readonly pageSize?: number;
  /** Default true. */
  readonly migratable?: boolean;
  /** Default false. */
  readonly readonly?: boolean;
  /** Default false: {@link qemuRamResize} refuses to change the used length (QEMU's RAM_RESIZEABLE). */
  readonly resizeable?: boolean;
}

export class RamBlock {
  readonly idstr: string;
  readonly maxLength: number;
  readonly pageSize: number;
  readonly flags: number;
  /** The block's offset in the ram_addr_t space (blocks in registration order, page aligned). */
  readonly ramAddr: number;
  /** Guest-physical base, or undefined when not mapped. */
  readonly base: number | undefined;
  /** Offset of byte 0 in linear memory. */
  readonly hostOffset: number;
  readonly bitmapOffsets: readonly number[];
  readonly syncedBitmapOffsets: readonly number[];
  readonly bitmapSize: number;
  readonly memory: WebAssembly.Memory;
  #usedLength: number;
  readonly #resized = new Set<RamBlockResized>();

  /** @internal built by GuestMemory */
  constructor(options: RamBlockOptions, placement: RamBlockPlacement, ramAddr: number, memory: WebAssembly.Memory) {
    const used = options.usedLength ?? options.size;
    if (!Number.isInteger(used) || used <= 0 || used > options.size || used % TARGET_PAGE_SIZE !== 0) {
      throw new RangeError(`RAM block ${options.idstr}: used length ${used} must be a multiple of ${TARGET_PAGE_SIZE} in 1..${options.size}`);
    }
    this.idstr = options.idstr;
    this.maxLength = options.size;
    this.pageSize = options.pageSize ?? TARGET_PAGE_SIZE;
    this.flags =
      (options.migratable ?? true ? RamFlags.MIGRATABLE : 0) |
      (options.readonly ? RamFlags.READONLY : 0) |
      (options.resizeable ? RamFlags.RESIZEABLE : 0);
    this.ramAddr = ramAddr;
    this.base = options.base;
    this.hostOffset = placement.hostOffset;
    this.bitmapOffsets = placement.bitmapOffsets;
    this.syncedBitmapOffsets = placement.syncedBitmapOffsets;
    this.bitmapSize = placement.bitmapSize;
    this.memory = memory;
    this.#usedLength = used;
  }

  get usedLength(): number {
    return this.#usedLength;
  }

  /** Target pages in the used length. */
  get pages(): number {
    return this.#usedLength / TARGET_PAGE_SIZE;
  }

  get migratable(): boolean {
    return (this.flags & RamFlags.MIGRATABLE) !== 0;
  }

  get readonly(): boolean {
    return (this.flags & RamFlags.READONLY) !== 0;
  }

  /** Whether {@link qemuRamResize} may change the used length (QEMU's RAM_RESIZEABLE). */
  get resizeable(): boolean {
    return (this.flags & RamFlags.RESIZEABLE) !== 0;
  }

  /**
   * Calls `listener` after each change of the used length (QEMU's `resized` callback): the
   * owner of a mapping of the block (the CPU's region table, a device's ROM size register)
   * follows the new length there. Returns a function that removes the listener.
   */
  onResize(listener: RamBlockResized): () => void {
    this.#resized.add(listener);
    return () => this.#resized.delete(listener);
  }

  /** A view of the used bytes (no copy). */
  get bytes(): Uint8Array {
    return new Uint8Array(this.memory.buffer, this.hostOffset, this.#usedLength);
  }

  /** A view of target page `index` (no copy): what migration sends. */
  page(index: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, this.pageHostOffset(index), TARGET_PAGE_SIZE);
  }

  /** Linear-memory offset of target page `index`, for the page kernels. */
  pageHostOffset(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.pages) {
      throw new RangeError(`page ${index} is outside RAM block ${this.idstr} (${this.pages} pages)`);
    }
    return this.hostOffset + index * TARGET_PAGE_SIZE;
  }

  /**
   * Changes the used length within the max length (whatever the RESIZEABLE flag says: the
   * checked, QEMU-like entry is {@link qemuRamResize}). As qemu_ram_resize, every page of the
   * new used length becomes dirty in every client's live bitmap, then the resize listeners run.
   */
  resize(usedLength: number): void {
    if (!Number.isInteger(usedLength) || usedLength <= 0 || usedLength > this.maxLength || usedLength % TARGET_PAGE_SIZE !== 0) {
      throw new RangeError(
        `RAM block ${this.idstr}: cannot resize to ${usedLength} bytes (max ${this.maxLength}, multiple of ${TARGET_PAGE_SIZE})`,
      );
    }
    const old = this.#usedLength;
    if (old === usedLength) return;
    this.#usedLength = usedLength;
    // cpu_physical_memory_set_dirty_range over the new used length (bit n of the u64 words
    // is bit n & 31 of u32 word n >> 5 on a little-endian memory)
    const pages = usedLength / TARGET_PAGE_SIZE;
    for (const offset of this.bitmapOffsets) {
      const words = new Int32Array(this.memory.buffer, offset, Math.ceil(pages / 32));
      for (let w = 0; w < words.length; w++) {
        const left = pages - w * 32;
        Atomics.or(words, w, left >= 32 ? -1 : (1 << left) - 1);
      }
    }
    for (const listener of this.#resized) listener(this, old, usedLength);
  }
}

/**
 * QEMU's qemu_ram_resize, as the RAM section's loader calls it for a block whose used length
 * in the stream differs from the local one: the length is rounded up to the host page size;
 * a block without RAM_RESIZEABLE, or a length past its max length, is refused with QEMU's
 * text (error_setg_errno(EINVAL): the strerror follows).
 */
export function qemuRamResize(block: RamBlock, newSize: number | bigint): void {
  const size = BigInt(newSize);
  const page = BigInt(TARGET_PAGE_SIZE); // HOST_PAGE_ALIGN
  const aligned = ((size + page - 1n) / page) * page;
  if (aligned === BigInt(block.usedLength)) return;
  const fmt = (v: number | bigint): string => `0x${v.toString(16)}`;
  if (!block.resizeable) {
    throw new Error(`Size mismatch: ${block.idstr}: ${fmt(aligned)} != ${fmt(block.usedLength)}: Invalid argument`);
  }
  if (aligned > BigInt(block.maxLength)) {
    throw new Error(`Size too large: ${block.idstr}: ${fmt(aligned)} > ${fmt(block.maxLength)}: Invalid argument`);
  }
  if (aligned <= 0n) throw new Error(`Size too small: ${block.idstr}: ${fmt(aligned)}: Invalid argument`); // ours: a block is never empty
  block.resize(Number(aligned));
}
