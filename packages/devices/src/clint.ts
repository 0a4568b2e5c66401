/**
 * CLINT (QEMU hw/intc/riscv_aclint.c: an ACLINT MSWI followed by an MTIMER), at 0x200_0000
 * on `virt`, 10 MHz timebase.
 *
 * ```
 * +0x0000 + 4·hart   msip      u32  bit 0 drives the hart's MSIP       (4-byte accesses only)
 * +0x4000 + 8·hart   mtimecmp  u64  MTIP = mtime >= mtimecmp           (4- or 8-byte accesses)
 * +0xbff8            mtime     u64
 * ```
 * The CPU derives MTIP from the hart's `mtimecmp` and the machine area's `mtime` itself, so
 * this model stores mtimecmp straight into the hart state. Time comes from a {@link Timebase}.
 *
 * @module
 */

import { fromBigInt, toBigInt, type AccessSize, type MmioDevice } from "./bus.ts";

export const CLINT_SIZE = 0x10000;
export const CLINT_MSIP = 0x0000;
export const CLINT_MTIMECMP = 0x4000;
export const CLINT_MTIME = 0xbff8;
/** End of the MTIMER window (0x4000 + 0x8000); QEMU leaves the rest of the 64 KiB unmapped. */
export const CLINT_MTIMER_END = 0xc000;
export const CLINT_TIMEBASE_FREQ = 10_000_000;
export const MIP_MSIP = 1 << 3;

/** The parts of a hart the CLINT drives (a cpu-wasm `HartView` has them). */
export interface ClintHart {
  mtimecmp: bigint;
  mipExternal: number;
}

/** The machine's mtime source. */
export interface Timebase {
  /** Current mtime in 10 MHz ticks. */
  readonly mtime: bigint;
  /** Sets mtime (a guest write to the mtime register). */
  setMtime(value: bigint): void;
}

const U64 = 0xffff_ffff_ffff_ffffn;
const LO = 0xffff_ffffn;

export class Clint implements MmioDevice {
  #harts: number;
  #hart: (i: number) => ClintHart;
  #time: Timebase;

  constructor(options: { harts: number; hart: (i: number) => ClintHart; timebase: Timebase }) {
    this.#harts = options.harts;
    this.#hart = options.hart;
    this.#time = options.timebase;
  }

  /** QEMU's reset: mtimecmp 0 (so MTIP is pending at boot), msip clear, mtime 0. */
  reset(): void {
    for (let i = 0; i < this.#harts; i++) {
      const h = this.#hart(i);
      h.mtimecmp = 0n;
      h.mipExternal &= ~MIP_MSIP;
    }
    this.#time.setMtime(0n);
  }

  read(offset: number, size: AccessSize): number | bigint | undefined {
    if (offset < CLINT_MTIMECMP) {
      if (size !== 4 || (offset & 3) !== 0) return undefined;
      const i = offset >> 2;
      if (i >= this.#harts) return 0;
      return (this.#hart(i).mipExternal & MIP_MSIP) !== 0 ? 1 : 0;
    }
    if (offset >= CLINT_MTIMER_END || size < 4 || (offset & (size - 1)) !== 0) return undefined;
    const t = offset - CLINT_MTIMECMP;
    if (t < this.#harts * 8) {
      const v = this.#hart(t >> 3).mtimecmp;
      if ((t & 7) === 0) return fromBigInt(size === 4 ? v & LO : v);
      return fromBigInt(v >> 32n);
    }
    if (offset === CLINT_MTIME) {
      const v = this.#time.mtime;
      return fromBigInt(size === 4 ? v & LO : v);
    }
    if (offset === CLINT_MTIME + 4) return fromBigInt(this.#time.mtime >> 32n);
    return 0;
  }

  write(offset: number, size: AccessSize, value: number | bigint): boolean {
    const v = toBigInt(value) & U64;
    if (offset < CLINT_MTIMECMP) {
      if (size !== 4 || (offset & 3) !== 0) return false;
      const i = offset >> 2;
      if (i < this.#harts) {
        const h = this.#hart(i);
        h.mipExternal = (v & 1n) !== 0n ? h.mipExternal | MIP_MSIP : h.mipExternal & ~MIP_MSIP;
      }
      return true;
    }
    if (offset >= CLINT_MTIMER_END || size < 4 || (offset & (size - 1)) !== 0) return false;
    const t = offset - CLINT_MTIMECMP;
    if (t < this.#harts * 8) {
      const h = this.#hart(t >> 3);
      if ((t & 7) === 0) {
        h.mtimecmp = size === 4 ? (h.mtimecmp & ~LO & U64) | (v & LO) : v;
      } else if (size === 4) {
        h.mtimecmp = ((v & LO) << 32n) | (h.mtimecmp & LO);
      }
      return true;
    }
    if (offset === CLINT_MTIME) {
      const now = this.#time.mtime;
      this.#time.setMtime(size === 4 ? (now & ~LO & U64) | (v & LO) : v);
    } else if (offset === CLINT_MTIME + 4 && size === 4) {
      this.#time.setMtime(((v & LO) << 32n) | (this.#time.mtime & LO));
    }
    return true;
  }
}
