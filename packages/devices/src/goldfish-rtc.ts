/**
 * Goldfish RTC (QEMU 7.2 hw/rtc/goldfish_rtc.c), at 0x10_1000 on `virt`, irq 11. Time is
 * nanoseconds since the epoch from the host's clock (QEMU's default rtc clock, `-rtc
 * clock=host`), plus an offset the guest moves by writing TIME_LOW/TIME_HIGH.
 *
 * ```
 * +0x00 TIME_LOW   (read latches TIME_HIGH)   +0x04 TIME_HIGH
 * +0x08 ALARM_LOW  (write arms the alarm)     +0x0c ALARM_HIGH
 * +0x10 IRQ_ENABLED                           +0x14 CLEAR_ALARM (w)
 * +0x18 ALARM_STATUS (r)                      +0x1c CLEAR_INTERRUPT (w)
 * ```
 * The alarm fires when the count reaches ALARM; the machine calls {@link GoldfishRtc.poll}.
 * Accesses are 4 bytes (QEMU's valid sizes); unknown offsets read 0 and ignore writes.
 *
 * @module
 */

import type { AccessSize, MmioDevice } from "./bus.ts";

export const GOLDFISH_RTC_SIZE = 0x1000;
export const RTC_TIME_LOW = 0x00;
export const RTC_TIME_HIGH = 0x04;
export const RTC_ALARM_LOW = 0x08;
export const RTC_ALARM_HIGH = 0x0c;
export const RTC_IRQ_ENABLED = 0x10;
export const RTC_CLEAR_ALARM = 0x14;
export const RTC_ALARM_STATUS = 0x18;
export const RTC_CLEAR_INTERRUPT = 0x1c;

const U64 = (1n << 64n) - 1n;

export interface GoldfishRtcOptions {
  /** The rtc clock in ns (default: host wall-clock time). */
  nowNs?: () => bigint;
  onIrq?: (level: boolean) => void;
  onGuestError?: (message: string) => void;
}

export function hostClockNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

export class GoldfishRtc implements MmioDevice {
  tickOffset = 0n;
  alarmNext = 0n;
  alarmRunning = 0;
  irqPending = 0;
  irqEnabled = 0;
  timeHigh = 0;
  #now: () => bigint;
  #irq: (level: boolean) => void;
  #guestError: (m: string) => void;

  constructor(options: GoldfishRtcOptions = {}) {
    this.#now = options.nowNs ?? hostClockNs;
    this.#irq = options.onIrq ?? (() => {});
    this.#guestError = options.onGuestError ?? (() => {});
  }

  /** QEMU's reset leaves the count running on the clock (tick_offset 0 with a host clock). */
  reset(): void {
    this.alarmNext = 0n;
    this.alarmRunning = 0;
    this.irqPending = 0;
    this.irqEnabled = 0;
    this.#update();
  }

  /** Current count (ns). */
  get count(): bigint {
    return (this.tickOffset + this.#now()) & U64;
  }

  /** Fires the alarm when its time has come. */
  poll(): void {
    if (this.alarmRunning && this.count >= this.alarmNext) this.#interrupt();
  }

  /** Nanoseconds until the running alarm fires (0 = now), or -1 when none runs. */
  nsUntilAlarm(): number {
    if (!this.alarmRunning) return -1;
    const d = this.alarmNext - this.count;
    return d <= 0n ? 0 : Number(d);
  }

  read(offset: number, size: AccessSize): number | undefined {
    if (size !== 4) return undefined;
    switch (offset) {
      case RTC_TIME_LOW: {
        const r = this.count;
        this.timeHigh = Number(r >> 32n);
        return Number(r & 0xffff_ffffn);
      }
      case RTC_TIME_HIGH:
        return this.timeHigh;
      case RTC_ALARM_LOW:
        return Number(this.alarmNext & 0xffff_ffffn);
      case RTC_ALARM_HIGH:
        return Number(this.alarmNext >> 32n);
      case RTC_IRQ_ENABLED:
        return this.irqEnabled;
      case RTC_ALARM_STATUS:
        return this.alarmRunning;
      default:
        this.#guestError(`goldfish_rtc: read of offset 0x${offset.toString(16)} is unimplemented`);
        return 0;
    }
  }

  write(offset: number, size: AccessSize, value: number | bigint): boolean {
    if (size !== 4) return false;
    const v = BigInt.asUintN(32, BigInt(value));
    switch (offset) {
      case RTC_TIME_LOW: {
        const cur = this.count;
        this.tickOffset = (this.tickOffset + ((cur & ~0xffff_ffffn) | v) - cur) & U64;
        break;
      }
      case RTC_TIME_HIGH: {
        const cur = this.count;
        this.tickOffset = (this.tickOffset + ((v << 32n) | (cur & 0xffff_ffffn)) - cur) & U64;
        break;
      }
      case RTC_ALARM_LOW:
        this.alarmNext = (this.alarmNext & ~0xffff_ffffn & U64) | v;
        this.#setAlarm();
        break;
      case RTC_ALARM_HIGH:
        this.alarmNext = (v << 32n) | (this.alarmNext & 0xffff_ffffn);
        break;
      case RTC_IRQ_ENABLED:
        this.irqEnabled = Number(v & 1n);
        this.#update();
        break;
      case RTC_CLEAR_ALARM:
        this.alarmRunning = 0;
        break;
      case RTC_CLEAR_INTERRUPT:
        this.irqPending = 0;
        this.#update();
        break;
      default:
        this.#guestError(`goldfish_rtc: write of offset 0x${offset.toString(16)} is unimplemented`);
    }
    return true;
  }

  #setAlarm(): void {
    if (this.alarmNext <= this.count) {
      this.alarmRunning = 0;
      this.#interrupt();
    } else {
      this.alarmRunning = 1;
    }
  }

  #interrupt(): void {
    this.alarmRunning = 0;
    this.irqPending = 1;
    this.#update();
  }

  #update(): void {
    this.#irq((this.irqPending & this.irqEnabled) !== 0);
  }
}
