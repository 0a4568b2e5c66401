/**
 * The machine's virtual clock (QEMU_CLOCK_VIRTUAL) and the CLINT timebase derived from it.
 *
 * Two modes, as QEMU's: real time (virtual time follows the host's monotonic clock while the
 * machine runs) and `icount` (virtual time = retired instructions << shift, so a run is
 * deterministic; when every hart waits, time jumps to the next timer deadline).
 *
 * @module
 */

import { CLINT_TIMEBASE_FREQ, type Timebase } from "./clint.ts";

const NS_PER_TICK = 1_000_000_000 / CLINT_TIMEBASE_FREQ;

export interface VirtualClockOptions {
  /** Instruction counting: each instruction takes 2^shift ns of virtual time. */
  icountShift?: number;
  /** Host monotonic time in ms (defaults to performance.now). */
  hostNowMs?: () => number;
}

export class VirtualClock implements Timebase {
  readonly icountShift: number | undefined;
  #hostNow: () => number;
  /** Real-time mode: virtual ns at `#hostStart`; undefined while stopped. */
  #baseNs = 0;
  #hostStart: number | undefined;
  /** icount mode: virtual ns. */
  #icountNs = 0;
  /** mtime = ns / 100 + delta (guest writes to mtime move the delta, as QEMU's time_delta). */
  #mtimeDelta = 0n;

  constructor(options: VirtualClockOptions = {}) {
    this.icountShift = options.icountShift;
    this.#hostNow = options.hostNowMs ?? (() => performance.now());
  }

  get icount(): boolean {
    return this.icountShift !== undefined;
  }

  /** Starts virtual time flowing (real-time mode). */
  start(): void {
    if (this.#hostStart === undefined) this.#hostStart = this.#hostNow();
  }

  /** Freezes virtual time (a stopped VM's clock does not move). */
  stop(): void {
    if (this.#hostStart !== undefined) {
      this.#baseNs = this.ns();
      this.#hostStart = undefined;
    }
  }

  /** Current virtual time in ns. */
  ns(): number {
    if (this.icountShift !== undefined) return this.#icountNs;
    if (this.#hostStart === undefined) return this.#baseNs;
    return this.#baseNs + Math.floor((this.#hostNow() - this.#hostStart) * 1e6);
  }

  /** icount mode: accounts retired instructions. */
  addInstructions(count: number): void {
    if (this.icountShift !== undefined) this.#icountNs += count * 2 ** this.icountShift;
  }

  /** icount mode: jumps idle time forward to `ns`. */
  warpTo(ns: number): void {
    if (this.icountShift !== undefined && ns > this.#icountNs) this.#icountNs = ns;
  }

  get mtime(): bigint {
    return BigInt(Math.floor(this.ns() / NS_PER_TICK)) + this.#mtimeDelta;
  }

  setMtime(value: bigint): void {
    this.#mtimeDelta = value - BigInt(Math.floor(this.ns() / NS_PER_TICK));
  }

  /** Virtual ns at which mtime reaches `mtime`. */
  nsForMtime(mtime: bigint): number {
    return Number(mtime - this.#mtimeDelta) * NS_PER_TICK;
  }

  /** mtime minus the virtual clock's ticks (moved by guest writes to mtime; QEMU's time_delta). */
  get mtimeDelta(): bigint {
    return this.#mtimeDelta;
  }

  set mtimeDelta(v: bigint) {
    this.#mtimeDelta = v;
  }

  /** Sets the virtual time (a restore): `ns` from now on, in either mode. */
  restoreNs(ns: number): void {
    if (!Number.isSafeInteger(ns) || ns < 0) throw new RangeError(`virtual clock: bad time ${ns} ns`);
    if (this.icountShift !== undefined) {
      this.#icountNs = ns;
    } else {
      this.#baseNs = ns;
      if (this.#hostStart !== undefined) this.#hostStart = this.#hostNow();
    }
  }

  reset(): void {
    this.#baseNs = 0;
    this.#icountNs = 0;
    this.#mtimeDelta = 0n;
    if (this.#hostStart !== undefined) this.#hostStart = this.#hostNow();
  }
}
