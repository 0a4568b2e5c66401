/**
 * Guest-physical access to RAM and ROM blocks from TypeScript (loaders, HTIF), through views of
 * the VM's linear memory. Every write goes through {@link PhysicalMemory.write} and friends,
 * which report the written range to the block's `markDirty` (the dirty bitmaps of
 * `@ferryvm/memory`), so migration sees device writes as it sees the CPU's. `view()` is for
 * reading.
 *
 * @module
 */

export interface PhysicalMemoryBlock {
  readonly name: string;
  /** Guest-physical base address. */
  readonly base: number;
  /** A view of the block's bytes in linear memory. */
  readonly bytes: Uint8Array;
  /** Called after a write of [offset, offset + length) of the block. */
  readonly markDirty?: (offset: number, length: number) => void;
}

export class PhysicalMemory {
  #blocks: PhysicalMemoryBlock[] = [];

  add(block: PhysicalMemoryBlock): void {
    this.#blocks.push(block);
  }

  get blocks(): readonly PhysicalMemoryBlock[] {
    return this.#blocks;
  }

  /** A view of [addr, addr + length) when it lies inside one block, else undefined. */
  view(addr: bigint | number, length: number): Uint8Array | undefined {
    const a = Number(addr);
    if (!Number.isSafeInteger(a) || a < 0) return undefined;
    for (const b of this.#blocks) {
      if (a >= b.base && a + length <= b.base + b.bytes.length) {
        return b.bytes.subarray(a - b.base, a - b.base + length);
      }
    }
    return undefined;
  }

  /** The block holding all of [addr, addr + length), or undefined. */
  blockFor(addr: bigint | number, length: number): PhysicalMemoryBlock | undefined {
    const a = Number(addr);
    return this.#blocks.find((b) => a >= b.base && a + length <= b.base + b.bytes.length);
  }

  /**
   * A view of [addr, addr + length) for a device to fill (DMA into guest memory); the range is
   * marked dirty now, so fill it before the next dirty-bitmap sync (same thread: before the
   * next run slice). Undefined when the range is not inside one block.
   */
  dirtyView(addr: bigint | number, length: number): Uint8Array | undefined {
    const v = this.view(addr, length);
    if (v !== undefined && length > 0) this.#dirty(addr, length);
    return v;
  }

  readU64(addr: bigint | number): bigint | undefined {
    const v = this.view(addr, 8);
    if (v === undefined) return undefined;
    return new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0, true);
  }

  writeU64(addr: bigint | number, value: bigint): boolean {
    const v = this.view(addr, 8);
    if (v === undefined) return false;
    new DataView(v.buffer, v.byteOffset, 8).setBigUint64(0, BigInt.asUintN(64, value), true);
    this.#dirty(addr, 8);
    return true;
  }

  /** Copies `data` to guest-physical `addr`; throws a RangeError naming the range if it is not RAM/ROM. */
  write(addr: bigint | number, data: Uint8Array): void {
    const v = this.view(addr, data.length);
    if (v === undefined) {
      throw new RangeError(
        `cannot place ${data.length} bytes at 0x${BigInt(addr).toString(16)}: not inside guest RAM or ROM`,
      );
    }
    v.set(data);
    this.#dirty(addr, data.length);
  }

  /** Zeroes [addr, addr + length); throws like {@link write}. */
  zero(addr: bigint | number, length: number): void {
    const v = this.view(addr, length);
    if (v === undefined) {
      throw new RangeError(
        `cannot clear ${length} bytes at 0x${BigInt(addr).toString(16)}: not inside guest RAM or ROM`,
      );
    }
    v.fill(0);
    this.#dirty(addr, length);
  }

  #dirty(addr: bigint | number, length: number): void {
    const b = this.blockFor(addr, length);
    b?.markDirty?.(Number(addr) - b.base, length);
  }
}
