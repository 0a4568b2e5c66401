/**
 * SiFive PLIC (QEMU 7.2 hw/intc/sifive_plic.c), at 0x0c00_0000 on `virt`: 96 sources, 7
 * priority levels, two contexts per hart (M then S, QEMU's hart-config "MS").
 *
 * ```
 * +0x000000 + 4·irq            priority   (source 0 does not exist; WARL: value % 8)
 * +0x001000 + 4·word           pending    (read-only, 3 words)
 * +0x002000 + 0x80·ctx + 4·w   enable     (3 words per context)
 * +0x200000 + 0x1000·ctx       threshold  (WARL: value % 8)
 * +0x200004 + 0x1000·ctx       claim (read) / complete (write)
 * ```
 * Only 4-byte accesses are valid. As in QEMU a raised line sets the source's pending bit (a
 * lowered line leaves it); a claim clears pending and sets the claimed bit; a complete clears
 * claimed. A context's interrupt is asserted when some enabled, pending, unclaimed source has
 * a priority above its threshold; context 2h drives hart h's MEIP, 2h+1 its SEIP. Invalid
 * registers read 0 and ignore writes (QEMU logs them as guest errors).
 *
 * @module
 */

import type { AccessSize, MmioDevice } from "./bus.ts";

export const PLIC_SIZE = 0x60_0000;
export const PLIC_NUM_SOURCES = 96;
export const PLIC_NUM_PRIORITIES = 7;
export const PLIC_PRIORITY_BASE = 0x4;
export const PLIC_PENDING_BASE = 0x1000;
export const PLIC_ENABLE_BASE = 0x2000;
export const PLIC_ENABLE_STRIDE = 0x80;
export const PLIC_CONTEXT_BASE = 0x20_0000;
export const PLIC_CONTEXT_STRIDE = 0x1000;
export const PLIC_CONTEXT_THRESHOLD = 0;
export const PLIC_CONTEXT_CLAIM = 4;
export const MIP_SEIP = 1 << 9;
export const MIP_MEIP = 1 << 11;

/** The part of a hart the PLIC drives (a cpu-wasm `HartView` has it). */
export interface PlicHart {
  mipExternal: number;
}

export interface PlicOptions {
  harts: number;
  hart: (i: number) => PlicHart;
  /** Invalid accesses (QEMU's LOG_GUEST_ERROR). */
  onGuestError?: (message: string) => void;
  /** Called after an output line may have risen (a hart to wake). */
  onAssert?: () => void;
}

const WORDS = (PLIC_NUM_SOURCES + 31) >> 5;

export class Plic implements MmioDevice {
  readonly harts: number;
  /** Contexts: 2 per hart (M, S). */
  readonly numContexts: number;
  /** Index = source (0..96; QEMU's priority window reaches one past the last source). */
  readonly sourcePriority = new Uint32Array(PLIC_NUM_SOURCES + 1);
  readonly targetPriority: Uint32Array;
  readonly pending = new Uint32Array(WORDS);
  readonly claimed = new Uint32Array(WORDS);
  readonly enable: Uint32Array;
  #hart: (i: number) => PlicHart;
  #guestError: (m: string) => void;
  #onAssert: () => void;

  constructor(options: PlicOptions) {
    this.harts = options.harts;
    this.numContexts = options.harts * 2;
    this.targetPriority = new Uint32Array(this.numContexts);
    this.enable = new Uint32Array(this.numContexts * WORDS);
    this.#hart = options.hart;
    this.#guestError = options.onGuestError ?? (() => {});
    this.#onAssert = options.onAssert ?? (() => {});
  }

  reset(): void {
    this.sourcePriority.fill(0);
    this.targetPriority.fill(0);
    this.pending.fill(0);
    this.claimed.fill(0);
    this.enable.fill(0);
    this.update();
  }

  /** An interrupt line: a raise (level true) sets the source pending, as QEMU's irq_request. */
  setIrq(irq: number, level: boolean): void {
    if (!level || irq <= 0 || irq >= PLIC_NUM_SOURCES) return;
    this.pending[irq >> 5]! |= 1 << (irq & 31);
    this.update();
  }

  /** A line function for a device model. */
  irqLine(irq: number): (level: boolean) => void {
    return (level) => this.setIrq(irq, level);
  }

  /** The best claimable source of a context (0 = none). */
  claimable(ctx: number): number {
    let maxIrq = 0;
    let maxPrio = this.targetPriority[ctx]!;
    for (let i = 0; i < WORDS; i++) {
      const bits = this.pending[i]! & ~this.claimed[i]! & this.enable[ctx * WORDS + i]!;
      if (bits === 0) continue;
      for (let j = 0; j < 32; j++) {
        if ((bits & (1 << j)) === 0) continue;
        const irq = (i << 5) + j;
        const prio = this.sourcePriority[irq]!;
        if (prio > maxPrio) {
          maxIrq = irq;
          maxPrio = prio;
        }
      }
    }
    return maxIrq;
  }

  /** Recomputes every context's output into the harts' MEIP/SEIP. */
  update(): void {
    let raised = false;
    for (let h = 0; h < this.harts; h++) {
      const hart = this.#hart(h);
      const old = hart.mipExternal;
      let v = old & ~(MIP_MEIP | MIP_SEIP);
      if (this.claimable(2 * h) !== 0) v |= MIP_MEIP;
      if (this.claimable(2 * h + 1) !== 0) v |= MIP_SEIP;
      if (v !== old) {
        hart.mipExternal = v;
        if (v & ~old) raised = true;
      }
    }
    if (raised) this.#onAssert();
  }

  read(offset: number, size: AccessSize): number | undefined {
    if (size !== 4 || (offset & 3) !== 0) return undefined;
    if (between(offset, PLIC_PRIORITY_BASE, PLIC_NUM_SOURCES << 2)) {
      return this.sourcePriority[((offset - PLIC_PRIORITY_BASE) >> 2) + 1]!;
    }
    if (between(offset, PLIC_PENDING_BASE, PLIC_NUM_SOURCES >> 3)) {
      return this.pending[(offset - PLIC_PENDING_BASE) >> 2]!;
    }
    if (between(offset, PLIC_ENABLE_BASE, this.numContexts * PLIC_ENABLE_STRIDE)) {
      const ctx = Math.floor((offset - PLIC_ENABLE_BASE) / PLIC_ENABLE_STRIDE);
      const word = (offset & (PLIC_ENABLE_STRIDE - 1)) >> 2;
      if (word < WORDS) return this.enable[ctx * WORDS + word]!;
    } else if (between(offset, PLIC_CONTEXT_BASE, this.numContexts * PLIC_CONTEXT_STRIDE)) {
      const ctx = Math.floor((offset - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE);
      const reg = offset & (PLIC_CONTEXT_STRIDE - 1);
      if (reg === PLIC_CONTEXT_THRESHOLD) return this.targetPriority[ctx]!;
      if (reg === PLIC_CONTEXT_CLAIM) {
        const irq = this.claimable(ctx);
        if (irq !== 0) {
          this.pending[irq >> 5]! &= ~(1 << (irq & 31));
          this.claimed[irq >> 5]! |= 1 << (irq & 31);
        }
        this.update();
        return irq;
      }
    }
    this.#guestError(`sifive_plic: invalid register read 0x${offset.toString(16)}`);
    return 0;
  }

  write(offset: number, size: AccessSize, value: number | bigint): boolean {
    if (size !== 4 || (offset & 3) !== 0) return false;
    const v = Number(BigInt.asUintN(32, BigInt(value)));
    if (between(offset, PLIC_PRIORITY_BASE, PLIC_NUM_SOURCES << 2)) {
      this.sourcePriority[((offset - PLIC_PRIORITY_BASE) >> 2) + 1] = v % (PLIC_NUM_PRIORITIES + 1);
      this.update();
    } else if (between(offset, PLIC_PENDING_BASE, PLIC_NUM_SOURCES >> 3)) {
      this.#guestError(`sifive_plic: invalid pending write 0x${offset.toString(16)}`);
    } else if (between(offset, PLIC_ENABLE_BASE, this.numContexts * PLIC_ENABLE_STRIDE)) {
      const ctx = Math.floor((offset - PLIC_ENABLE_BASE) / PLIC_ENABLE_STRIDE);
      const word = (offset & (PLIC_ENABLE_STRIDE - 1)) >> 2;
      if (word < WORDS) {
        this.enable[ctx * WORDS + word] = v;
        // QEMU does not re-evaluate here; the next event does. We do so now, so a source
        // already pending asserts as soon as it is enabled (QEMU's next update gives the same).
        this.update();
      } else {
        this.#guestError(`sifive_plic: invalid enable write 0x${offset.toString(16)}`);
      }
    } else if (between(offset, PLIC_CONTEXT_BASE, this.numContexts * PLIC_CONTEXT_STRIDE)) {
      const ctx = Math.floor((offset - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE);
      const reg = offset & (PLIC_CONTEXT_STRIDE - 1);
      if (reg === PLIC_CONTEXT_THRESHOLD) {
        this.targetPriority[ctx] = v % (PLIC_NUM_PRIORITIES + 1);
        this.update();
      } else if (reg === PLIC_CONTEXT_CLAIM) {
        if (v < PLIC_NUM_SOURCES) {
          this.claimed[v >> 5]! &= ~(1 << (v & 31));
          this.update();
        }
      } else {
        this.#guestError(`sifive_plic: invalid context write 0x${offset.toString(16)}`);
      }
    } else {
      this.#guestError(`sifive_plic: invalid register write 0x${offset.toString(16)}`);
    }
    return true;
  }
}

function between(addr: number, base: number, size: number): boolean {
  return addr >= base && addr <= base + size - 1;
}
