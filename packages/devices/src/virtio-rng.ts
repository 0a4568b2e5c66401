/**
 * virtio-rng (virtio 1.2 §5.4, QEMU 7.2 hw/virtio/virtio-rng.c): one request queue of 8;
 * every writable buffer the guest offers is filled with random bytes from the host's CSPRNG
 * (Web Crypto `getRandomValues`, as `node:crypto`'s). No device-specific features or config.
 *
 * Rate limiting as QEMU's `max-bytes` and `period` properties: at most `maxBytes` bytes per
 * period of `periodMs` virtual milliseconds. A period starts when the device serves the guest
 * with none running (QEMU arms its rate-limit timer there); the buffer that crosses the quota
 * gets the bytes left (its used length says how many), later ones wait in the ring until the
 * period ends, when the quota is full again. QEMU ends the period with a QEMU_CLOCK_VIRTUAL
 * timer; here the machine's run loop calls {@link VirtioRng.poll} every round, which looks at
 * `nowNs()`, and {@link VirtioRng.nextDeadlineNs} tells an idle machine when to look.
 * Without a limit (`maxBytes` INT64_MAX, the default) nothing is counted.
 *
 * @module
 */

import type { VirtioContext, VirtioDevice } from "./virtio-mmio.ts";
import { totalLength, type Virtqueue } from "./virtqueue.ts";

export const VIRTIO_ID_RNG = 4;
export const VIRTIO_RNG_QUEUE_SIZE = 8;
/** QEMU's max-bytes default, INT64_MAX: no limit. */
export const VIRTIO_RNG_MAX_BYTES_DEFAULT = 0x7fff_ffff_ffff_ffffn;
/** QEMU's period default in ms (1 << 16). */
export const VIRTIO_RNG_PERIOD_MS_DEFAULT = 1 << 16;
const CHUNK = 65536;

export interface VirtioRngOptions {
  /** Fills a buffer with random bytes (default: Web Crypto). */
  fill?: (buf: Uint8Array) => void;
  /** QEMU's `max-bytes`: bytes per period, 0..INT64_MAX. Default INT64_MAX (no limit). */
  maxBytes?: bigint;
  /** QEMU's `period`: the period in ms, 1..0xffffffff. Default 65536. */
  periodMs?: number;
  /** The virtual clock in ns (the machine's `clock.ns()`). Default: always 0. */
  nowNs?: () => number;
  /**
   * QEMU-style `x-migrate-quota`: with a limit set, the quota and the period's start travel in
   * the `virtio-rng/quota` subsection. Default true (machine types from virt-1.1; the compat
   * list turns it off for virt-1.0).
   */
  migrateQuota?: boolean;
}

export class VirtioRng implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_RNG;
  readonly typeName = "virtio-rng-device";
  readonly queueSizes = [VIRTIO_RNG_QUEUE_SIZE];
  readonly features = 0n;
  readonly maxBytes: bigint;
  readonly periodMs: number;
  readonly migrateQuota: boolean;
  /** Bytes the guest may still take in this period (QEMU's quota_remaining). */
  quotaRemaining: bigint;
  /**
   * Virtual ns at which the running period started; -1 when none runs (QEMU's activate_timer:
   * the next time the device serves the guest starts one).
   */
  periodStartNs = -1;
  #fill: (buf: Uint8Array) => void;
  #now: () => number;

  constructor(options: VirtioRngOptions = {}) {
    this.#fill = options.fill ?? ((b) => {
      for (let i = 0; i < b.length; i += CHUNK) globalThis.crypto.getRandomValues(b.subarray(i, i + CHUNK));
    });
    const max = options.maxBytes ?? VIRTIO_RNG_MAX_BYTES_DEFAULT;
    if (max < 0n || max > VIRTIO_RNG_MAX_BYTES_DEFAULT) {
      throw new RangeError("virtio-rng: 'max-bytes' parameter must be non-negative, and less than 2^63");
    }
    const period = options.periodMs ?? VIRTIO_RNG_PERIOD_MS_DEFAULT;
    if (!Number.isInteger(period) || period <= 0 || period > 0xffff_ffff) {
      throw new RangeError(`virtio-rng: 'period' parameter expects a positive integer (got ${period})`);
    }
    this.maxBytes = max;
    this.periodMs = period;
    this.migrateQuota = options.migrateQuota ?? true;
    this.#now = options.nowNs ?? (() => 0);
    this.quotaRemaining = max;
  }

  /** Whether a rate limit is set (max-bytes below INT64_MAX). */
  get limited(): boolean {
    return this.maxBytes !== VIRTIO_RNG_MAX_BYTES_DEFAULT;
  }

  /** The period in virtual ns. */
  get periodNs(): number {
    return this.periodMs * 1e6;
  }

  /** The virtual clock (ns), as the device reads it. */
  nowNs(): number {
    return this.#now();
  }

  config(): Uint8Array {
    return new Uint8Array(0);
  }

  /** As QEMU's: a reset leaves the quota and the period alone. */
  reset(): void {}

  /** The state a stream without `virtio-rng/quota` leaves: a full quota and a period starting now. */
  resetQuota(): void {
    this.quotaRemaining = this.maxBytes;
    this.periodStartNs = this.limited ? this.#now() : -1;
  }

  handleQueue(ctx: VirtioContext, queue: Virtqueue): void {
    if (!this.limited) {
      for (;;) {
        const el = queue.pop();
        if (el === null) break;
        const bytes = new Uint8Array(totalLength(el.in));
        this.#fill(bytes);
        queue.push(el, queue.writeIn(el, bytes));
        ctx.notify(queue);
      }
      return;
    }
    const now = this.#now();
    this.#expire(now);
    if (this.periodStartNs < 0) this.periodStartNs = now;
    while (this.quotaRemaining > 0n) {
      const el = queue.pop();
      if (el === null) break;
      const len = totalLength(el.in);
      const n = BigInt(len) < this.quotaRemaining ? len : Number(this.quotaRemaining);
      const bytes = new Uint8Array(n);
      this.#fill(bytes);
      queue.push(el, queue.writeIn(el, bytes));
      this.quotaRemaining -= BigInt(n);
      ctx.notify(queue);
    }
  }

  /** Ends the period when it is over and serves what waited for the new quota. */
  poll(ctx: VirtioContext): void {
    if (!this.limited) return;
    this.#expire(this.#now());
    const queue = ctx.queues[0];
    if (queue !== undefined && this.quotaRemaining > 0n && queue.hasWork()) this.handleQueue(ctx, queue);
  }

  /**
   * When requests may be waiting for the quota (it is used up): the virtual ns at which the
   * period ends; -1 otherwise. An idle machine should poll again then.
   */
  nextDeadlineNs(): number {
    if (!this.limited || this.periodStartNs < 0 || this.quotaRemaining > 0n) return -1;
    return this.periodStartNs + this.periodNs;
  }

  /** QEMU's check_rate_limit: the period is over, the quota is full, no period runs. */
  #expire(now: number): void {
    if (this.periodStartNs >= 0 && now >= this.periodStartNs + this.periodNs) {
      this.quotaRemaining = this.maxBytes;
      this.periodStartNs = -1;
    }
  }
}
