/**
 * QEMU's `timer` section (softmmu/cpu-timers.c, v2): the virtual clock. QEMU saves it while
 * the VM is stopped, when cpu_clock_offset holds QEMU_CLOCK_VIRTUAL's frozen value in ns and
 * cpu_ticks_offset the frozen tick count (host TSC ticks, which no riscv guest sees): ours
 * are the virtual clock's ns, the ticks at the offset from it a loaded stream had. With icount the `timer/icount` subsection carries the time as
 * qemu_icount_bias (our instruction count is already folded into it).
 *
 * @module
 */

import type { Cpu } from "@ferryvm/cpu-wasm";
import { vmstateInt64, vmstateInt64V, vmstateUnused, type VMStateDescription } from "@ferryvm/vmstate";
import type { VirtualClock } from "./clock.ts";

/** The `timer` section's object (QEMU's TimersState) over the machine's clock. */
export class TimersState {
  cpu_ticks_offset = 0n;
  cpu_clock_offset = 0n;
  qemu_icount_bias = 0n;
  qemu_icount = 0n;
  readonly clock: VirtualClock;
  readonly #cpu: Cpu | undefined;
  /** cpu_ticks_offset minus cpu_clock_offset: QEMU's ticks are host TSC ticks, not guest-visible here; kept as loaded. */
  #ticksDelta = 0n;

  constructor(clock: VirtualClock, cpu?: Cpu) {
    this.clock = clock;
    this.#cpu = cpu;
  }

  capture(): void {
    const ns = BigInt(this.clock.ns());
    this.cpu_ticks_offset = BigInt.asIntN(64, ns + this.#ticksDelta);
    this.cpu_clock_offset = ns;
    this.qemu_icount_bias = ns;
    this.qemu_icount = 0n;
  }

  restore(): void {
    const ns = this.clock.icount ? this.qemu_icount_bias : this.cpu_clock_offset;
    if (ns < 0n || ns > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`timer: virtual clock of ${ns} ns is out of range`);
    }
    this.clock.restoreNs(Number(ns));
    this.#ticksDelta = BigInt.asIntN(64, this.cpu_ticks_offset - this.cpu_clock_offset);
    if (this.#cpu !== undefined) this.#cpu.mtime = this.clock.mtime;
  }
}

/** QEMU's `timer` (v2, minimum 1). */
export const vmstateTimers: VMStateDescription<TimersState> = {
  name: "timer",
  version_id: 2,
  minimum_version_id: 1,
  pre_save: (s) => s.capture(),
  pre_load: (s) => {
    // Without timer/icount in the stream, an icount clock continues from cpu_clock_offset.
    s.qemu_icount_bias = -1n;
  },
  post_load: (s) => {
    if (s.clock.icount && s.qemu_icount_bias < 0n) s.qemu_icount_bias = s.cpu_clock_offset;
    s.restore();
  },
  fields: [vmstateInt64("cpu_ticks_offset"), vmstateUnused(8), vmstateInt64V("cpu_clock_offset", 2)],
  subsections: [{
    name: "timer/icount",
    version_id: 1,
    minimum_version_id: 1,
    needed: (s) => s.clock.icount,
    fields: [vmstateInt64("qemu_icount_bias"), vmstateInt64("qemu_icount")],
  }],
};
