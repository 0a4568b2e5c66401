/**
 * virtio-mmio transport (virtio 1.2 §4.2, QEMU 7.2 hw/virtio/virtio-mmio.c): version 2
 * (modern) by default, version 1 (legacy) with `legacy: true` (QEMU's `force-legacy`, whose
 * default there is on). An empty slot answers magic, version and vendor, reads 0 elsewhere
 * and ignores writes, as QEMU's.
 *
 * ```
 * 0x000 MagicValue "virt"   0x004 Version      0x008 DeviceID        0x00c VendorID "QEMU"
 * 0x010 DeviceFeatures      0x014 DeviceFeaturesSel                  0x020 DriverFeatures
 * 0x024 DriverFeaturesSel   0x028 GuestPageSize (v1)  0x030 QueueSel 0x034 QueueNumMax
 * 0x038 QueueNum            0x03c QueueAlign (v1)     0x040 QueuePFN (v1)  0x044 QueueReady
 * 0x050 QueueNotify         0x060 InterruptStatus     0x064 InterruptACK   0x070 Status
 * 0x080/0x084 QueueDesc     0x090/0x094 QueueDriver   0x0a0/0x0a4 QueueDevice
 * 0x0b0/0x0b4 SHMLen (-1: none)   0x0fc ConfigGeneration   0x100+ device config
 * ```
 * Accesses of 8 bytes or unaligned ones fault (QEMU's default valid sizes); register accesses
 * of 1 or 2 bytes read 0 and are ignored (QEMU logs them); config space takes 1, 2 and 4 bytes. A guest error in a queue marks the device broken (status
 * DEVICE_NEEDS_RESET, a config interrupt) until the driver resets it.
 *
 * @module
 */

import type { AccessSize, MmioDevice } from "./bus.ts";
import type { PhysicalMemory } from "./physical-memory.ts";
import { Virtqueue, VirtqueueError, VIRTQUEUE_MAX_SIZE } from "./virtqueue.ts";

export const VIRTIO_MMIO_SIZE = 0x1000;
export const VIRT_MAGIC = 0x74726976;
export const VIRT_VERSION = 2;
export const VIRT_VERSION_LEGACY = 1;
export const VIRT_VENDOR = 0x554d4551;

export const VIRTIO_MMIO_MAGIC_VALUE = 0x000;
export const VIRTIO_MMIO_VERSION = 0x004;
export const VIRTIO_MMIO_DEVICE_ID = 0x008;
export const VIRTIO_MMIO_VENDOR_ID = 0x00c;
export const VIRTIO_MMIO_DEVICE_FEATURES = 0x010;
export const VIRTIO_MMIO_DEVICE_FEATURES_SEL = 0x014;
export const VIRTIO_MMIO_DRIVER_FEATURES = 0x020;
export const VIRTIO_MMIO_DRIVER_FEATURES_SEL = 0x024;
export const VIRTIO_MMIO_GUEST_PAGE_SIZE = 0x028;
export const VIRTIO_MMIO_QUEUE_SEL = 0x030;
export const VIRTIO_MMIO_QUEUE_NUM_MAX = 0x034;
export const VIRTIO_MMIO_QUEUE_NUM = 0x038;
export const VIRTIO_MMIO_QUEUE_ALIGN = 0x03c;
export const VIRTIO_MMIO_QUEUE_PFN = 0x040;
export const VIRTIO_MMIO_QUEUE_READY = 0x044;
export const VIRTIO_MMIO_QUEUE_NOTIFY = 0x050;
export const VIRTIO_MMIO_INTERRUPT_STATUS = 0x060;
export const VIRTIO_MMIO_INTERRUPT_ACK = 0x064;
export const VIRTIO_MMIO_STATUS = 0x070;
export const VIRTIO_MMIO_QUEUE_DESC_LOW = 0x080;
export const VIRTIO_MMIO_QUEUE_DESC_HIGH = 0x084;
export const VIRTIO_MMIO_QUEUE_AVAIL_LOW = 0x090;
export const VIRTIO_MMIO_QUEUE_AVAIL_HIGH = 0x094;
export const VIRTIO_MMIO_QUEUE_USED_LOW = 0x0a0;
export const VIRTIO_MMIO_QUEUE_USED_HIGH = 0x0a4;
export const VIRTIO_MMIO_SHM_LEN_LOW = 0x0b0;
export const VIRTIO_MMIO_SHM_LEN_HIGH = 0x0b4;
export const VIRTIO_MMIO_CONFIG_GENERATION = 0x0fc;
export const VIRTIO_MMIO_CONFIG = 0x100;
export const VIRTIO_MMIO_INT_VRING = 1;
export const VIRTIO_MMIO_INT_CONFIG = 2;

export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;
export const VIRTIO_CONFIG_S_FAILED = 0x80;

export const VIRTIO_F_NOTIFY_ON_EMPTY = 24;
export const VIRTIO_F_ANY_LAYOUT = 27;
export const VIRTIO_RING_F_INDIRECT_DESC = 28;
export const VIRTIO_RING_F_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;
/** QEMU's maximum number of queues per device. */
export const VIRTIO_QUEUE_MAX = 1024;

/** Features every QEMU virtio device offers by default (DEFINE_VIRTIO_COMMON_FEATURES, less queue_reset). */
export const VIRTIO_COMMON_FEATURES =
  (1n << BigInt(VIRTIO_RING_F_INDIRECT_DESC)) |
  (1n << BigInt(VIRTIO_RING_F_EVENT_IDX)) |
  (1n << BigInt(VIRTIO_F_NOTIFY_ON_EMPTY)) |
  (1n << BigInt(VIRTIO_F_ANY_LAYOUT));

/** What the transport offers a device model. */
export interface VirtioContext {
  readonly memory: PhysicalMemory;
  readonly queues: readonly Virtqueue[];
  /** Negotiated features. */
  readonly features: bigint;
  /** Signals the used ring of `queue` (interrupt when the driver wants one). */
  notify(queue: Virtqueue): void;
  /** Signals a config change. */
  notifyConfig(): void;
  /** Whether the driver set DRIVER_OK (and the device is not broken). */
  readonly driverOk: boolean;
}

/** A virtio device model behind the transport. */
export interface VirtioDevice {
  /** virtio device ID (2 block, 3 console, 4 entropy). */
  readonly deviceId: number;
  /** QEMU's type name (e.g. "virtio-blk-device"). */
  readonly typeName: string;
  /** Queue sizes the device has (queue_size per queue). */
  readonly queueSizes: readonly number[];
  /** Device feature bits (the transport adds VERSION_1 and the common ones). */
  readonly features: bigint;
  /** Device config space. */
  config(): Uint8Array;
  configWrite?(offset: number, data: Uint8Array): void;
  /** The driver notified `queue`. May throw VirtqueueError. */
  handleQueue(ctx: VirtioContext, queue: Virtqueue): void;
  reset(): void;
  /** The machine calls this each loop round (pending host input, completions). */
  poll?(ctx: VirtioContext): void;
  /**
   * Virtual ns at which `poll` has work that time makes due (virtio-rng's next period), or -1
   * for none: an idle machine wakes up then (a device's QEMU_CLOCK_VIRTUAL timer).
   */
  nextDeadlineNs?(): number;
}

export interface VirtioMmioOptions {
  memory: PhysicalMemory;
  device?: VirtioDevice;
  /** QEMU's force-legacy (version 1 registers). Default false. */
  legacy?: boolean;
  onIrq?: (level: boolean) => void;
  onGuestError?: (message: string) => void;
}

const LO = 0xffff_ffffn;

export class VirtioMmio implements MmioDevice, VirtioContext {
  readonly device: VirtioDevice | undefined;
  readonly legacy: boolean;
  readonly memory: PhysicalMemory;
  readonly queues: Virtqueue[];
  hostFeatures: bigint;
  features = 0n;
  status = 0;
  isr = 0;
  generation = 0;
  queueSel = 0;
  hostFeaturesSel = 0;
  guestFeaturesSel = 0;
  guestFeatures = [0, 0];
  guestPageShift = 0;
  /** Per queue: (modern) staged QueueNum / ring addresses; (legacy) alignment. */
  #staged: { num: number; desc: bigint; avail: bigint; used: bigint; align: number }[];
  #broken = false;
  #irq: (level: boolean) => void;
  #guestError: (m: string) => void;

  constructor(options: VirtioMmioOptions) {
    this.device = options.device;
    this.legacy = options.legacy ?? false;
    this.memory = options.memory;
    this.#irq = options.onIrq ?? (() => {});
    this.#guestError = options.onGuestError ?? (() => {});
    const sizes = this.device?.queueSizes ?? [];
    this.queues = sizes.map((n, i) => new Virtqueue(i, n, options.memory));
    // QueueNum as the driver wrote it, 0 until then (QEMU's proxy vqs[].num).
    this.#staged = sizes.map(() => ({ num: 0, desc: 0n, avail: 0n, used: 0n, align: 4096 }));
    this.hostFeatures = this.device === undefined
      ? 0n
      : this.device.features | VIRTIO_COMMON_FEATURES | (this.legacy ? 0n : 1n << BigInt(VIRTIO_F_VERSION_1));
  }

  /**
   * The queue registers the driver wrote (QEMU's VirtIOMMIOProxy vqs: num, desc, avail, used
   * before QUEUE_READY copies them into the queue; align for legacy rings). For save/restore.
   */
  get stagedQueues(): { num: number; desc: bigint; avail: bigint; used: bigint; align: number }[] {
    return this.#staged;
  }

  /** Whether the device faulted on a bad ring and waits for a reset (QEMU's vdev->broken). */
  get broken(): boolean {
    return this.#broken;
  }
  set broken(v: boolean) {
    this.#broken = v;
  }

  /** Sets the negotiated features as a driver write would (a restore). */
  restoreFeatures(features: bigint): void {
    this.#setFeatures(features);
  }

  get driverOk(): boolean {
    return (this.status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0 && !this.#broken;
  }

  reset(): void {
    this.status = 0;
    this.isr = 0;
    this.features = 0n;
    this.queueSel = 0;
    this.hostFeaturesSel = 0;
    this.guestFeaturesSel = 0;
    this.guestFeatures = [0, 0];
    this.guestPageShift = 0;
    this.#broken = false;
    for (const q of this.queues) q.reset();
    for (const s of this.#staged) Object.assign(s, { desc: 0n, avail: 0n, used: 0n, align: 4096 });
    for (const s of this.#staged) s.num = 0;
    this.device?.reset();
    this.#updateIrq();
  }

  notify(queue: Virtqueue): void {
    if (queue.shouldNotify()) {
      this.isr |= VIRTIO_MMIO_INT_VRING;
      this.#updateIrq();
    }
  }

  notifyConfig(): void {
    this.generation = (this.generation + 1) >>> 0;
    if (!(this.status & VIRTIO_CONFIG_S_DRIVER_OK)) return;
    this.isr |= VIRTIO_MMIO_INT_CONFIG;
    this.#updateIrq();
  }

  /** Runs the device's host-side work (input, completions). */
  poll(): void {
    if (this.device?.poll === undefined || !this.driverOk) return;
    this.#guarded(() => this.device!.poll!(this));
  }

  /** The device's next deadline in virtual ns (see {@link VirtioDevice.nextDeadlineNs}), -1 for none. */
  nextDeadlineNs(): number {
    if (this.device?.nextDeadlineNs === undefined || !this.driverOk) return -1;
    return this.device.nextDeadlineNs();
  }

  read(offset: number, size: AccessSize): number | undefined {
    // QEMU's default valid sizes for virtio_mem_ops: 1..4 bytes, aligned; others fault.
    if (size === 8 || (offset & (size - 1)) !== 0) return undefined;
    const dev = this.device;
    if (dev === undefined) {
      if (offset === VIRTIO_MMIO_MAGIC_VALUE) return VIRT_MAGIC;
      if (offset === VIRTIO_MMIO_VERSION) return this.legacy ? VIRT_VERSION_LEGACY : VIRT_VERSION;
      if (offset === VIRTIO_MMIO_VENDOR_ID) return VIRT_VENDOR;
      return 0;
    }
    if (offset >= VIRTIO_MMIO_CONFIG) {
      const cfg = dev.config();
      const o = offset - VIRTIO_MMIO_CONFIG;
      if (o + size > cfg.length) return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffff_ffff;
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + cfg[o + i]!;
      return v;
    }
    if (size !== 4) {
      this.#guestError("virtio_mmio: wrong size access to register!");
      return 0;
    }
    const q = this.queues[this.queueSel];
    switch (offset) {
      case VIRTIO_MMIO_MAGIC_VALUE:
        return VIRT_MAGIC;
      case VIRTIO_MMIO_VERSION:
        return this.legacy ? VIRT_VERSION_LEGACY : VIRT_VERSION;
      case VIRTIO_MMIO_DEVICE_ID:
        return dev.deviceId;
      case VIRTIO_MMIO_VENDOR_ID:
        return VIRT_VENDOR;
      case VIRTIO_MMIO_DEVICE_FEATURES:
        if (this.legacy) return this.hostFeaturesSel ? 0 : Number(this.hostFeatures & LO);
        return Number((this.hostFeatures >> BigInt(32 * this.hostFeaturesSel)) & LO);
      case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return q === undefined ? 0 : VIRTQUEUE_MAX_SIZE;
      case VIRTIO_MMIO_QUEUE_PFN:
        if (!this.legacy) break;
        return q === undefined ? 0 : Number(q.descAddr >> BigInt(this.guestPageShift)) >>> 0;
      case VIRTIO_MMIO_QUEUE_READY:
        if (this.legacy) break;
        return q?.ready ? 1 : 0;
      case VIRTIO_MMIO_INTERRUPT_STATUS:
        return this.isr;
      case VIRTIO_MMIO_STATUS:
        return this.status;
      case VIRTIO_MMIO_CONFIG_GENERATION:
        if (this.legacy) break;
        return this.generation;
      case VIRTIO_MMIO_SHM_LEN_LOW:
      case VIRTIO_MMIO_SHM_LEN_HIGH:
        return 0xffff_ffff;
    }
    this.#guestError(`virtio_mmio: bad or write-only register read 0x${offset.toString(16)}`);
    return 0;
  }

  write(offset: number, size: AccessSize, value: number | bigint): boolean {
    if (size === 8 || (offset & (size - 1)) !== 0) return false;
    const dev = this.device;
    if (dev === undefined) return true;
    const v = Number(BigInt.asUintN(32, BigInt(value)));
    if (offset >= VIRTIO_MMIO_CONFIG) {
      if (dev.configWrite === undefined) return true;
      const data = new Uint8Array(size);
      for (let i = 0; i < size; i++) data[i] = (v >>> (8 * i)) & 0xff;
      dev.configWrite(offset - VIRTIO_MMIO_CONFIG, data);
      return true;
    }
    if (size !== 4) {
      this.#guestError("virtio_mmio: wrong size access to register!");
      return true;
    }
    const sel = this.queueSel;
    const q = this.queues[sel];
    const st = this.#staged[sel];
    switch (offset) {
      case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        this.hostFeaturesSel = v ? 1 : 0;
        return true;
      case VIRTIO_MMIO_DRIVER_FEATURES:
        if (this.legacy) {
          if (this.guestFeaturesSel) this.#guestError("virtio_mmio: guest features with sel > 0 in legacy mode");
          else this.#setFeatures(BigInt(v));
        } else {
          this.guestFeatures[this.guestFeaturesSel] = v;
        }
        return true;
      case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        this.guestFeaturesSel = v ? 1 : 0;
        return true;
      case VIRTIO_MMIO_GUEST_PAGE_SIZE:
        if (!this.legacy) break;
        this.guestPageShift = v === 0 ? 0 : 31 - Math.clz32(v & -v);
        return true;
      case VIRTIO_MMIO_QUEUE_SEL:
        if (v < VIRTIO_QUEUE_MAX) this.queueSel = v;
        return true;
      case VIRTIO_MMIO_QUEUE_NUM:
        if (q !== undefined && st !== undefined && v > 0 && v <= VIRTQUEUE_MAX_SIZE) {
          q.num = v;
          st.num = v;
          if (this.legacy) this.#legacyRings(q, st);
        }
        return true;
      case VIRTIO_MMIO_QUEUE_ALIGN:
        if (!this.legacy) break;
        if (st !== undefined && q !== undefined) {
          st.align = v;
          this.#legacyRings(q, st);
        }
        return true;
      case VIRTIO_MMIO_QUEUE_PFN:
        if (!this.legacy) break;
        if (v === 0) {
          this.reset();
        } else if (q !== undefined && st !== undefined) {
          q.descAddr = BigInt(v) << BigInt(this.guestPageShift);
          this.#legacyRings(q, st);
          q.ready = true;
        }
        return true;
      case VIRTIO_MMIO_QUEUE_READY:
        if (this.legacy) break;
        if (q !== undefined && st !== undefined) {
          if (v) {
            q.num = st.num === 0 ? q.numMax : st.num;
            q.descAddr = st.desc;
            q.availAddr = st.avail;
            q.usedAddr = st.used;
            q.ready = true;
          } else {
            q.ready = false;
          }
        }
        return true;
      case VIRTIO_MMIO_QUEUE_NOTIFY:
        if (v < VIRTIO_QUEUE_MAX) {
          const nq = this.queues[v];
          if (nq !== undefined && nq.ready && !this.#broken && nq.descAddr !== 0n) {
            this.#guarded(() => dev.handleQueue(this, nq));
          }
        }
        return true;
      case VIRTIO_MMIO_INTERRUPT_ACK:
        this.isr &= ~v;
        this.#updateIrq();
        return true;
      case VIRTIO_MMIO_STATUS:
        if (!this.legacy && v & VIRTIO_CONFIG_S_FEATURES_OK) {
          this.#setFeatures((BigInt(this.guestFeatures[1]!) << 32n) | BigInt(this.guestFeatures[0]!));
        }
        this.status = v & 0xff;
        if (this.status === 0) this.reset();
        else if (this.driverOk) this.poll();
        return true;
      case VIRTIO_MMIO_QUEUE_DESC_LOW:
      case VIRTIO_MMIO_QUEUE_DESC_HIGH:
      case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
      case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
      case VIRTIO_MMIO_QUEUE_USED_LOW:
      case VIRTIO_MMIO_QUEUE_USED_HIGH: {
        if (this.legacy) break;
        if (st === undefined) return true;
        const key = offset < VIRTIO_MMIO_QUEUE_AVAIL_LOW ? "desc" : offset < VIRTIO_MMIO_QUEUE_USED_LOW ? "avail" : "used";
        const high = (offset & 4) !== 0;
        const old = st[key];
        st[key] = high ? (BigInt(v) << 32n) | (old & LO) : (old & ~LO) | BigInt(v);
        return true;
      }
    }
    this.#guestError(`virtio_mmio: bad or read-only register write 0x${offset.toString(16)}`);
    return true;
  }

  #setFeatures(guest: bigint): void {
    this.features = guest & this.hostFeatures;
    const eventIdx = (this.features >> BigInt(VIRTIO_RING_F_EVENT_IDX)) & 1n;
    for (const q of this.queues) q.eventIdx = eventIdx === 1n;
  }

  /** Legacy layout: avail after the descriptors, used at the next `align` boundary. */
  #legacyRings(q: Virtqueue, st: { align: number }): void {
    if (q.descAddr === 0n) return;
    q.availAddr = q.descAddr + BigInt(q.num * 16);
    const align = BigInt(st.align > 0 ? st.align : 4096);
    const availEnd = q.availAddr + BigInt(4 + 2 * q.num + 2);
    q.usedAddr = ((availEnd + align - 1n) / align) * align;
  }

  #guarded(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      this.#guestError(`${this.device?.typeName ?? "virtio"}: ${e.message}`);
      this.#broken = true;
      this.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
      if (!this.legacy) this.notifyConfig();
    }
  }

  #updateIrq(): void {
    this.#irq(this.isr !== 0);
  }
}
