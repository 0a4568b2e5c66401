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
} as const;

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

  /** @internal built by GuestMemory */
  constructor(options: RamBlockOptions, placement: RamBlockPlacement, ramAddr: number, memory: WebAssembly.Memory) {
    const used = options.usedLength ?? options.size;
    if (!Number.isInteger(used) || used <= 0 || used > options.size || used % TARGET_PAGE_SIZE !== 0) {
      throw new RangeError(`RAM block ${options.idstr}: used length ${used} must be a multiple of ${TARGET_PAGE_SIZE} in 1..${options.size}`);
    }
    this.idstr = options.idstr;
    this.maxLength = options.size;
    this.pageSize = options.pageSize ?? TARGET_PAGE_SIZE;
    this.flags = (options.migratable ?? true ? RamFlags.MIGRATABLE : 0) | (options.readonly ? RamFlags.READONLY : 0);
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

  /** Changes the used length (qemu_ram_resize), within the max length. */
  resize(usedLength: number): void {
    if (!Number.isInteger(usedLength) || usedLength <= 0 || usedLength > this.maxLength || usedLength % TARGET_PAGE_SIZE !== 0) {
      throw new RangeError(
        `RAM block ${this.idstr}: cannot resize to ${usedLength} bytes (max ${this.maxLength}, multiple of ${TARGET_PAGE_SIZE})`,
      );
    }
    this.#usedLength = usedLength;
  }
}
