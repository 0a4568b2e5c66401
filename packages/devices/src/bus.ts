/**
 * The system bus: guest-physical MMIO ranges dispatched to device models, as QEMU's
 * memory-region tree does for the `virt` board's I/O. RAM and ROM are not on it (the CPU
 * reaches them directly through its region table); an address nothing claims is an access
 * fault, as on QEMU.
 *
 * @module
 */

export type AccessSize = 1 | 2 | 4 | 8;

/** A device's register window. Offsets are relative to the window's base. */
export interface MmioDevice {
  /** Value read (number below 2^53, or bigint), or undefined for an invalid access (access fault). */
  read(offset: number, size: AccessSize, hart: number): number | bigint | undefined;
  /** `value` is a number for sizes up to 4 and a bigint for 8; false = invalid access (access fault). */
  write(offset: number, size: AccessSize, value: number | bigint, hart: number): boolean;
}

export interface BusMapping {
  readonly name: string;
  readonly base: number;
  readonly size: number;
  readonly device: MmioDevice;
}

/** Address-range dispatch; implements the CPU's `MmioBus`. */
export class SystemBus {
  #maps: BusMapping[] = [];
  #last: BusMapping | undefined;

  /** Maps `device` at [base, base + size); throws if it overlaps another mapping. */
  map(name: string, base: number, size: number, device: MmioDevice): void {
    for (const m of this.#maps) {
      if (base < m.base + m.size && m.base < base + size) {
        throw new RangeError(
          `${name} at 0x${base.toString(16)}+0x${size.toString(16)} overlaps ${m.name} at 0x${m.base.toString(16)}+0x${m.size.toString(16)}`,
        );
      }
    }
    this.#maps.push({ name, base, size, device });
    this.#maps.sort((a, b) => a.base - b.base);
  }

  get mappings(): readonly BusMapping[] {
    return this.#maps;
  }

  find(addr: number): BusMapping | undefined {
    const last = this.#last;
    if (last !== undefined && addr >= last.base && addr < last.base + last.size) return last;
    for (const m of this.#maps) {
      if (addr >= m.base && addr < m.base + m.size) {
        this.#last = m;
        return m;
      }
    }
    return undefined;
  }

  read(addr: number, size: AccessSize, hart: number): number | bigint | undefined {
    const m = this.find(addr);
    if (m === undefined || addr + size > m.base + m.size) return undefined;
    return m.device.read(addr - m.base, size, hart);
  }

  write(addr: number, size: AccessSize, value: number | bigint, hart: number): boolean {
    const m = this.find(addr);
    if (m === undefined || addr + size > m.base + m.size) return false;
    return m.device.write(addr - m.base, size, value, hart);
  }
}

/** Bits of a written value as a bigint, whatever form the bus delivered it in. */
export function toBigInt(value: number | bigint): bigint {
  if (typeof value === "bigint") return value;
  return value < 0 ? BigInt(value >>> 0) : BigInt(value);
}

/** A read result in the bus's form: a number when it fits in 53 bits, else a bigint. */
export function fromBigInt(value: bigint): number | bigint {
  return value <= 0x1f_ffff_ffff_ffffn ? Number(value) : value;
}
