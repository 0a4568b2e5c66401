/**
 * QEMU's `riscv_mtimer` (hw/intc/riscv_aclint.c, v1): mtimecmp per hart, a VARRAY whose
 * length is the local hart count (not on the wire). QEMU 7.2 does not save time_delta (a
 * guest write to mtime); we do, in `riscv_mtimer/ferryvm`, sent only when it is not zero.
 * post_load re-arms the timers: the harts compare mtime against mtimecmp themselves.
 *
 * @module
 */

import type { Cpu } from "@ferryvm/cpu-wasm";
import { vmstateInfoUint64, vmstateInt64, vmstateVarrayUint32, type VMStateDescription } from "@ferryvm/vmstate";
import type { VirtualClock } from "./clock.ts";

export class MtimerState {
  readonly num_harts: number;
  readonly timecmp: BigUint64Array;
  time_delta = 0n;
  readonly #cpu: Cpu;
  readonly #clock: VirtualClock;

  constructor(cpu: Cpu, clock: VirtualClock) {
    this.#cpu = cpu;
    this.#clock = clock;
    this.num_harts = cpu.harts;
    this.timecmp = new BigUint64Array(cpu.harts);
  }

  capture(): void {
    for (let i = 0; i < this.num_harts; i++) this.timecmp[i] = this.#cpu.hart(i).mtimecmp;
    this.time_delta = this.#clock.mtimeDelta;
  }

  restore(): void {
    for (let i = 0; i < this.num_harts; i++) this.#cpu.hart(i).mtimecmp = this.timecmp[i]!;
    this.#clock.mtimeDelta = this.time_delta;
    this.#cpu.mtime = this.#clock.mtime;
  }
}

export const vmstateRiscvMtimer: VMStateDescription<MtimerState> = {
  name: "riscv_mtimer",
  version_id: 1,
  minimum_version_id: 1,
  pre_save: (s) => s.capture(),
  pre_load: (s) => {
    s.time_delta = 0n;
  },
  post_load: (s) => s.restore(),
  fields: [vmstateVarrayUint32<MtimerState, bigint>("timecmp", "num_harts", { info: vmstateInfoUint64 })],
  subsections: [{
    name: "riscv_mtimer/ferryvm",
    version_id: 1,
    minimum_version_id: 1,
    needed: (s) => s.time_delta !== 0n,
    fields: [vmstateInt64("time_delta")],
  }],
};
