/**
 * QEMU's `goldfish_rtc` (hw/rtc/goldfish_rtc.c, v3, minimum 0). tick_offset is relative to
 * the host clock (QEMU's default rtc_clock), so the guest's wall clock keeps the host's time
 * across a restore, as QEMU's does. QEMU 7.2 never fills tick_offset_vmstate (only streams
 * before v3 use it, against the virtual clock): we send what we hold, 0 unless a v2 stream
 * set it, as QEMU. post_load lets the next poll fire an alarm that came due (goldfish_rtc_set_alarm).
 *
 * @module
 */

import { vmstateUint32, vmstateUint64, vmstateUint64V, type VMStateDescription } from "@ferryvm/vmstate";
import type { GoldfishRtc } from "./goldfish-rtc.ts";

export class GoldfishRtcState {
  readonly rtc: GoldfishRtc;
  /** Virtual ns now (for tick_offset_vmstate and v2 streams). */
  readonly #virtualNs: () => bigint;
  tick_offset_vmstate = 0n;
  tick_offset = 0n;

  constructor(rtc: GoldfishRtc, virtualNs: () => bigint) {
    this.rtc = rtc;
    this.#virtualNs = virtualNs;
  }

  get alarm_next(): bigint {
    return this.rtc.alarmNext;
  }
  set alarm_next(v: bigint) {
    this.rtc.alarmNext = v;
  }
  get alarm_running(): number {
    return this.rtc.alarmRunning;
  }
  set alarm_running(v: number) {
    this.rtc.alarmRunning = v ? 1 : 0;
  }
  get irq_pending(): number {
    return this.rtc.irqPending;
  }
  set irq_pending(v: number) {
    this.rtc.irqPending = v ? 1 : 0;
  }
  get irq_enabled(): number {
    return this.rtc.irqEnabled;
  }
  set irq_enabled(v: number) {
    this.rtc.irqEnabled = v & 1;
  }
  get time_high(): number {
    return this.rtc.timeHigh;
  }
  set time_high(v: number) {
    this.rtc.timeHigh = v;
  }

  capture(): void {
    this.tick_offset = this.rtc.tickOffset;
    // QEMU 7.2 never sets it after a v3 load or at realize: its streams carry 0 (or what a v2 stream held).
  }

  restore(versionId: number): void {
    this.rtc.tickOffset = versionId < 3
      ? BigInt.asUintN(64, this.tick_offset_vmstate + this.#virtualNs() - (this.rtc.count - this.rtc.tickOffset))
      : this.tick_offset;
  }
}

export const vmstateGoldfishRtc: VMStateDescription<GoldfishRtcState> = {
  name: "goldfish_rtc",
  version_id: 3,
  minimum_version_id: 0,
  pre_save: (s) => s.capture(),
  post_load: (s, versionId) => s.restore(versionId),
  fields: [
    vmstateUint64("tick_offset_vmstate"),
    vmstateUint64("alarm_next"),
    vmstateUint32("alarm_running"),
    vmstateUint32("irq_pending"),
    vmstateUint32("irq_enabled"),
    vmstateUint32("time_high"),
    vmstateUint64V("tick_offset", 3),
  ],
};
