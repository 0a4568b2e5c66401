/**
 * A virtio device behind a virtio-mmio transport, in the stream layout QEMU 7.2 writes for it
 * (hw/virtio/virtio.c virtio_save/virtio_load, virtio-mmio.c save_config/save_extra_state):
 * the device's section (`virtio-blk` v2, `virtio-rng` v1, `virtio-console` v3) holds one
 * field, `virtio`, whose bytes are
 *
 * ```
 * be32 host_features_sel, guest_features_sel, guest_page_shift   (virtio-mmio save_config)
 * u8 status, u8 isr, be16 queue_sel, be32 guest_features_lo
 * be32 config_len, config bytes
 * be32 queue count, then per queue: be32 num, be32 align, be64 desc, be16 last_avail_idx
 * the device's own part (virtio-blk: the request list, 0-terminated, each request preceded by
 *   its be32 queue index when num-queues > 1; virtio-serial: config, port map and ports;
 *   virtio-rng: nothing)
 * the device's own vmsd (QEMU's vdc->vmsd; virtio-rng-device: no fields, the subsection
 *   virtio-rng-device/quota with quota_remaining, period_start)
 * vmstate_virtio's subsections: virtio/64bit_features, virtio/virtqueues (1024 × avail,
 *   used), virtio/ringsize, virtio/broken, virtio/extra_state (virtio-mmio's vmstate:
 *   virtio_mmio/state with guest_features[2] and 1024 queue registers), virtio/started ...
 * ```
 *
 * QEMU writes that with hand-written code; here it is one engine description (`virtio`, a
 * struct whose fields are the hand-written part and whose subsections are vmstate_virtio's),
 * so the wire bytes are QEMU's and the vmdesc names every field. `virtio/ferryvm` carries
 * what QEMU does not migrate (config generation, legacy ring alignment, host input of the
 * console not yet delivered).
 *
 * post_load recomputes the transport and virtqueue shadow state as virtio_load does: ring
 * addresses, used_idx from the used ring in (already loaded) RAM, signalled_used invalid,
 * and checks the guest's avail index against the queue size.
 *
 * Our virtio-blk completes each request inside the notify that submits it, so our saves hold
 * an empty request list (one 0 byte). A QEMU stream's list (requests stopped on an I/O error:
 * `1, VirtQueueElementOld` each, then 0) loads, and those requests are served when the VM
 * runs again, as QEMU restarts them; requests loaded but not yet served are saved back in the
 * same form.
 *
 * @module
 */

import {
  MigrationError,
  vmstateBool,
  vmstateInt64,
  vmstateStruct,
  vmstateStructArray,
  vmstateStructVarray,
  vmstateUint16,
  vmstateUint32,
  vmstateUint32Array,
  vmstateUint64,
  vmstateUint8,
  vmstateValidate,
  vmstateVBuffer,
  vmstateVarrayUint32,
  type VMStateDescription,
  type VMStateField,
} from "@ferryvm/vmstate";
import { VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_F_VERSION_1, VIRTIO_QUEUE_MAX, type VirtioMmio } from "./virtio-mmio.ts";
import { VirtioBlk, type VirtioBlkRequest } from "./virtio-blk.ts";
import { VirtioConsole } from "./virtio-console.ts";
import { VirtioRng } from "./virtio-rng.ts";
import { VIRTQUEUE_MAX_SIZE, type VirtqueueElement } from "./virtqueue.ts";

/** The per-queue part of the hand-written layout. */
export interface VirtqueueSaveState {
  num: number;
  /** vring.align (virtio-mmio has variable ring alignment: QUEUE_ALIGN of legacy drivers). */
  align: number;
  desc: bigint;
  last_avail_idx: number;
}

/** virtio/virtqueues entry (QEMU's vmstate_virtqueue). */
export interface VirtqueueRings {
  avail: bigint;
  used: bigint;
}

/** virtio_mmio/queue_state (QEMU's VirtIOMMIOQueue). */
export interface VirtioMmioQueueState {
  num: number;
  enabled: boolean;
  desc: Uint32Array;
  avail: Uint32Array;
  used: Uint32Array;
}

/** virtio-mmio's extra state (QEMU's vmstate_virtio_mmio over VirtIOMMIOProxy). */
export interface VirtioMmioExtraState {
  guest_features: Uint32Array;
  vqs: VirtioMmioQueueState[];
}

/** A virtio-serial port as QEMU saves it (no element popped: ours never holds one). */
export interface VirtioSerialPortState {
  id: number;
  guest_connected: number;
  host_connected: number;
  elem_popped: number;
}

const MAX_CONFIG = 4096;
/** Requests a virtio-blk request list may hold (the queue size). */
const MAX_REQUESTS = 256;
/** QEMU's VirtQueueElementOld (x86-64 layout, little-endian): index, out_num, in_num, pad, in_addr[1024], out_addr[1024], in_sg[1024], out_sg[1024]. */
const VQ_MAX = 1024;
const VQ_ELEMENT_OLD_SIZE = 16 + 8 * VQ_MAX * 2 + 16 * VQ_MAX * 2;

/** A request as QEMU's qemu_put_virtqueue_element writes it. */
export function encodeVirtqueueElementOld(el: VirtqueueElement): Uint8Array {
  const b = new Uint8Array(VQ_ELEMENT_OLD_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, el.index, true);
  v.setUint32(4, el.out.length, true);
  v.setUint32(8, el.in.length, true);
  const sg = 16 + 16 * VQ_MAX;
  el.in.forEach((x, i) => {
    v.setBigUint64(16 + 8 * i, x.addr, true);
    v.setBigUint64(sg + 16 * i + 8, BigInt(x.len), true);
  });
  el.out.forEach((x, i) => {
    v.setBigUint64(16 + 8 * VQ_MAX + 8 * i, x.addr, true);
    v.setBigUint64(sg + 16 * VQ_MAX + 16 * i + 8, BigInt(x.len), true);
  });
  return b;
}

/** Reads a VirtQueueElementOld, checking its counts (qemu_get_virtqueue_element). */
export function decodeVirtqueueElementOld(b: Uint8Array, queueSize: number): VirtqueueElement {
  if (b.length !== VQ_ELEMENT_OLD_SIZE) throw new RangeError(`virtqueue element of ${b.length} bytes (expected ${VQ_ELEMENT_OLD_SIZE})`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const index = v.getUint32(0, true);
  const outNum = v.getUint32(4, true);
  const inNum = v.getUint32(8, true);
  if (index >= queueSize) throw new RangeError(`virtqueue element index ${index} >= queue size ${queueSize}`);
  if (outNum > VQ_MAX || inNum > VQ_MAX || outNum + inNum > VQ_MAX) throw new RangeError(`virtqueue element with ${outNum} + ${inNum} buffers`);
  const sg = 16 + 16 * VQ_MAX;
  const len = (at: number) => {
    const l = v.getBigUint64(at, true);
    if (l > 0xffff_ffffn) throw new RangeError(`virtqueue element buffer length ${l}`);
    return Number(l);
  };
  return {
    index,
    in: Array.from({ length: inNum }, (_, i) => ({ addr: v.getBigUint64(16 + 8 * i, true), len: len(sg + 16 * i + 8) })),
    out: Array.from({ length: outNum }, (_, i) => ({
      addr: v.getBigUint64(16 + 8 * VQ_MAX + 8 * i, true),
      len: len(sg + 16 * VQ_MAX + 16 * i + 8),
    })),
  };
}
/** QEMU's VIRTIO_DEVICE_ENDIAN_LITTLE. */
const VIRTIO_DEVICE_ENDIAN_LITTLE = 1;
const MAX_PENDING_INPUT = 1 << 20;

function lo(v: bigint): number {
  return Number(v & 0xffff_ffffn);
}
function hi(v: bigint): number {
  return Number((v >> 32n) & 0xffff_ffffn);
}
function join(a: Uint32Array): bigint {
  return (BigInt(a[1]!) << 32n) | BigInt(a[0]!);
}

/** The object the `virtio` field describes: a transport and its device. */
export class VirtioState {
  readonly transport: VirtioMmio;
  readonly local_queues: number;
  host_features_sel = 0;
  guest_features_sel = 0;
  guest_page_shift = 0;
  status = 0;
  isr = 0;
  queue_sel = 0;
  guest_features_lo = 0;
  config_len = 0;
  config: Uint8Array = new Uint8Array(0);
  num_queues = 0;
  vq: VirtqueueSaveState[];
  // virtio-blk's request list: rq{i} (non-zero: a request follows), rq{i}_vq (its queue, with
  // more than one queue) and rq{i}_elem.
  readonly rq_elem_size = VQ_ELEMENT_OLD_SIZE;
  [key: `rq${number}`]: number;
  [key: `rq${number}_vq`]: number;
  [key: `rq${number}_elem`]: Uint8Array;
  // virtio-serial's part.
  cols = 0;
  rows = 0;
  max_nr_ports = 0;
  ports_words = 1;
  ports_map: Uint32Array = new Uint32Array(1);
  nr_active_ports = 0;
  ports: VirtioSerialPortState[] = [{ id: 0, guest_connected: 0, host_connected: 0, elem_popped: 0 }];
  // vmstate_virtio's subsections.
  guest_features = 0n;
  features64Loaded = false;
  rings: VirtqueueRings[] = [];
  ringsLoaded = false;
  ring_default: Uint32Array = new Uint32Array(VIRTIO_QUEUE_MAX);
  broken = false;
  extra_state: VirtioMmioExtraState = { guest_features: new Uint32Array(2), vqs: [] };
  extraLoaded = false;
  started = false;
  /** Always little-endian here (VIRTIO_DEVICE_ENDIAN_LITTLE); a QEMU stream saying otherwise fails. */
  device_endian = VIRTIO_DEVICE_ENDIAN_LITTLE;
  // virtio/ferryvm
  generation = 0;
  /** virtio-blk's write cache enable (QEMU keeps it in the block backend and does not migrate it). */
  wce = 1;
  ferryvmLoaded = false;
  pending_len = 0;
  pending_input: Uint8Array = new Uint8Array(0);
  // virtio-rng-device/quota: the rate limit's quota and period start (-1: no period runs).
  rng_quota_remaining = 0n;
  rng_period_start = -1n;
  rngQuotaLoaded = false;
  /** Set by prepareLoad, cleared by capture: the device's own vmsd always loads, saves when it has something. */
  loading = false;

  constructor(transport: VirtioMmio) {
    this.transport = transport;
    this.local_queues = transport.queues.length;
    this.vq = Array.from({ length: this.local_queues }, () => ({ num: 0, align: 0, desc: 0n, last_avail_idx: 0 }));
    this.#allocQueueTables();
    this.#clearRequests();
  }

  #clearRequests(): void {
    for (let i = 0; i <= MAX_REQUESTS; i++) {
      this[`rq${i}`] = 0;
      this[`rq${i}_vq`] = 0;
      this[`rq${i}_elem`] = new Uint8Array(0);
    }
  }

  #allocQueueTables(): void {
    this.rings = Array.from({ length: VIRTIO_QUEUE_MAX }, () => ({ avail: 0n, used: 0n }));
    this.extra_state = {
      guest_features: new Uint32Array(2),
      vqs: Array.from({ length: VIRTIO_QUEUE_MAX }, () => ({
        num: 0,
        enabled: false,
        desc: new Uint32Array(2),
        avail: new Uint32Array(2),
        used: new Uint32Array(2),
      })),
    };
    this.ring_default.fill(0);
  }

  /** Legacy drivers' QUEUE_NUM lands in the staged registers too. */
  legacyOrNum(num: number): number {
    return this.transport.legacy ? num : 0;
  }

  get hostFeatures(): bigint {
    return this.transport.hostFeatures;
  }

  /** The object the device's own vmsd (QEMU's vdc->vmsd) describes: this one, as QEMU's is the VirtIODevice. */
  get device_state(): VirtioState {
    return this;
  }

  capture(): void {
    const t = this.transport;
    const dev = t.device!;
    this.loading = false;
    if (dev instanceof VirtioRng) {
      this.rng_quota_remaining = dev.quotaRemaining;
      this.rng_period_start = BigInt(dev.periodStartNs);
    }
    this.host_features_sel = t.hostFeaturesSel;
    this.guest_features_sel = t.guestFeaturesSel;
    this.guest_page_shift = t.guestPageShift;
    this.status = t.status;
    this.isr = t.isr;
    this.queue_sel = t.queueSel;
    this.guest_features = t.features;
    this.guest_features_lo = lo(t.features);
    this.config = dev.config();
    this.config_len = this.config.length;
    this.num_queues = this.local_queues;
    this.#allocQueueTables();
    this.extra_state.guest_features[0] = t.guestFeatures[0]!;
    this.extra_state.guest_features[1] = t.guestFeatures[1]!;
    t.queues.forEach((q, i) => {
      const st = t.stagedQueues[i]!;
      this.vq[i] = { num: q.num, align: st.align, desc: q.descAddr, last_avail_idx: q.lastAvailIdx };
      this.rings[i] = { avail: q.availAddr, used: q.usedAddr };
      this.ring_default[i] = q.numMax;
      const e = this.extra_state.vqs[i]!;
      e.num = st.num;
      e.enabled = q.ready;
      e.desc.set([lo(st.desc), hi(st.desc)]);
      e.avail.set([lo(st.avail), hi(st.avail)]);
      e.used.set([lo(st.used), hi(st.used)]);
    });
    this.broken = t.broken;
    this.started = (t.status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0;
    this.generation = t.generation;
    this.wce = dev instanceof VirtioBlk ? dev.wce : 1;
    this.#clearRequests();
    if (dev instanceof VirtioBlk) {
      dev.inflight.slice(0, MAX_REQUESTS).forEach((el, i) => {
        this[`rq${i}`] = 1;
        this[`rq${i}_vq`] = el.queue ?? 0;
        this[`rq${i}_elem`] = encodeVirtqueueElementOld(el);
      });
    }
    if (dev instanceof VirtioConsole) {
      const cfg = new DataView(this.config.buffer, this.config.byteOffset, this.config.length);
      this.cols = cfg.getUint16(0, true);
      this.rows = cfg.getUint16(2, true);
      this.max_nr_ports = cfg.getUint32(4, true);
      this.ports_words = Math.ceil(this.max_nr_ports / 32);
      this.ports_map = new Uint32Array(this.ports_words);
      this.ports_map[0] = 1;
      this.nr_active_ports = 1;
      // Port 0 is a console without multiport: connected on both ends once the driver is up.
      this.ports = [{ id: 0, guest_connected: this.started ? 1 : 0, host_connected: 1, elem_popped: 0 }];
      this.pending_input = dev.inputBytes;
      this.pending_len = this.pending_input.length;
    } else {
      this.pending_input = new Uint8Array(0);
      this.pending_len = 0;
    }
  }

  prepareLoad(): void {
    this.features64Loaded = false;
    this.ringsLoaded = false;
    this.extraLoaded = false;
    this.broken = false;
    this.started = false;
    this.device_endian = VIRTIO_DEVICE_ENDIAN_LITTLE;
    this.generation = this.transport.generation;
    this.config = new Uint8Array(0);
    this.pending_len = 0;
    this.pending_input = new Uint8Array(0);
    this.ports_map = new Uint32Array(1);
    this.ports = [{ id: 0, guest_connected: 0, host_connected: 0, elem_popped: 0 }];
    this.ferryvmLoaded = false;
    this.rngQuotaLoaded = false;
    this.rng_quota_remaining = 0n;
    this.rng_period_start = -1n;
    this.loading = true;
    this.wce = 1;
    this.#clearRequests();
    this.#allocQueueTables();
  }

  #fail(message: string): never {
    throw new MigrationError(`vmstate: virtio (${this.transport.device?.typeName ?? "none"}): ${message}`);
  }

  restore(): void {
    const t = this.transport;
    const dev = t.device!;
    if (this.device_endian !== VIRTIO_DEVICE_ENDIAN_LITTLE) this.#fail(`device_endian ${this.device_endian} is not little-endian`);
    const features = this.features64Loaded ? this.guest_features : BigInt(this.guest_features_lo);
    if ((features & ~t.hostFeatures) !== 0n) {
      this.#fail(`features 0x${features.toString(16)} unsupported; allowed features: 0x${t.hostFeatures.toString(16)}`);
    }
    if (this.host_features_sel > 1 || this.guest_features_sel > 1) {
      this.#fail(`feature selectors ${this.host_features_sel}/${this.guest_features_sel} out of range 0..1`);
    }
    if (this.guest_page_shift > 31) this.#fail(`guest_page_shift ${this.guest_page_shift} exceeds 31`);
    if (this.queue_sel >= VIRTIO_QUEUE_MAX) this.#fail(`queue_sel ${this.queue_sel} exceeds ${VIRTIO_QUEUE_MAX - 1}`);
    const modern = (t.hostFeatures >> BigInt(VIRTIO_F_VERSION_1)) & 1n;
    const requests: VirtioBlkRequest[] = [];
    const perQueue = new Array<number>(this.local_queues).fill(0);
    for (let i = 0; i < MAX_REQUESTS && this[`rq${i}`] !== 0; i++) {
      try {
        const queue = this[`rq${i}_vq`];
        // QEMU's virtio_blk_load_device: "Invalid virtqueue index in request list".
        if (queue >= this.local_queues) throw new RangeError(`invalid virtqueue index in request list: 0x${queue.toString(16)} (the device has ${this.local_queues} queues)`);
        const el = decodeVirtqueueElementOld(this[`rq${i}_elem`], this.vq[queue]?.num ?? 0);
        for (const x of [...el.in, ...el.out]) {
          if (x.len > 0 && t.memory.view(x.addr, x.len) === undefined) throw new RangeError(`buffer 0x${x.addr.toString(16)}+0x${x.len.toString(16)} is not RAM`);
        }
        requests.push(queue === 0 ? el : { ...el, queue });
        perQueue[queue]!++;
      } catch (e) {
        this.#fail(`request ${i}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    for (let i = 0; i < this.local_queues; i++) {
      const s = this.vq[i]!;
      if (s.num === 0 || s.num > VIRTQUEUE_MAX_SIZE) this.#fail(`queue ${i}: size ${s.num} out of range 1..${VIRTQUEUE_MAX_SIZE}`);
    }
    t.hostFeaturesSel = this.host_features_sel;
    t.guestFeaturesSel = this.guest_features_sel;
    t.guestPageShift = this.guest_page_shift;
    t.status = this.status;
    t.isr = this.isr;
    t.queueSel = this.queue_sel;
    t.restoreFeatures(features);
    t.broken = this.broken;
    t.generation = this.generation >>> 0;
    if (this.extraLoaded) {
      t.guestFeatures[0] = this.extra_state.guest_features[0]!;
      t.guestFeatures[1] = this.extra_state.guest_features[1]!;
    } else {
      t.guestFeatures[0] = lo(features);
      t.guestFeatures[1] = hi(features);
    }
    t.queues.forEach((q, i) => {
      const s = this.vq[i]!;
      const st = t.stagedQueues[i]!;
      q.num = s.num;
      q.descAddr = s.desc;
      q.lastAvailIdx = s.last_avail_idx;
      st.align = s.align;
      if (this.ringsLoaded) {
        q.availAddr = this.rings[i]!.avail;
        q.usedAddr = this.rings[i]!.used;
      } else if (q.descAddr !== 0n) {
        // Legacy rings follow the descriptor table (virtio_queue_update_rings).
        q.availAddr = q.descAddr + BigInt(q.num * 16);
        const align = BigInt(st.align > 0 ? st.align : 4096);
        const availEnd = q.availAddr + BigInt(4 + 2 * q.num + 2);
        q.usedAddr = ((availEnd + align - 1n) / align) * align;
      } else {
        q.availAddr = 0n;
        q.usedAddr = 0n;
      }
      if (this.extraLoaded) {
        const e = this.extra_state.vqs[i]!;
        if (e.num > VIRTQUEUE_MAX_SIZE) this.#fail(`virtio_mmio/state: queue ${i} size ${e.num} exceeds ${VIRTQUEUE_MAX_SIZE}`);
        st.num = e.num;
        st.desc = join(e.desc);
        st.avail = join(e.avail);
        st.used = join(e.used);
        q.ready = e.enabled;
      } else {
        st.num = this.legacyOrNum(q.num);
        q.ready = modern ? false : q.descAddr !== 0n;
      }
      q.signalledUsed = 0;
      q.signalledUsedValid = false;
      q.usedIdx = 0;
      if (q.descAddr !== 0n) {
        const avail = t.memory.view(q.availAddr + 2n, 2);
        const used = t.memory.view(q.usedAddr + 2n, 2);
        if (avail === undefined || used === undefined) this.#fail(`queue ${i}: rings at 0x${q.availAddr.toString(16)}/0x${q.usedAddr.toString(16)} are not RAM`);
        const availIdx = avail[0]! | (avail[1]! << 8);
        const nheads = (availIdx - q.lastAvailIdx) & 0xffff;
        if (nheads > q.num) {
          this.#fail(
            `queue ${i}: size 0x${q.num.toString(16)}: guest index 0x${availIdx.toString(16)} inconsistent with host index 0x${q.lastAvailIdx.toString(16)}: delta 0x${nheads.toString(16)}`,
          );
        }
        q.usedIdx = used[0]! | (used[1]! << 8);
        const inuse = (q.lastAvailIdx - q.usedIdx) & 0xffff;
        if (inuse > q.num) {
          this.#fail(`queue ${i}: size 0x${q.num.toString(16)} < last_avail_idx 0x${q.lastAvailIdx.toString(16)} - used_idx 0x${q.usedIdx.toString(16)}`);
        }
        if (inuse !== perQueue[i]) {
          this.#fail(`queue ${i}: ${inuse} requests in use (used index 0x${q.usedIdx.toString(16)}) but ${perQueue[i]} in the stream's request list`);
        }
      }
    });
    // QEMU's saved config bytes may be stale (it refreshes them only on a guest read): take
    // the writable part from our own streams only.
    if (dev instanceof VirtioBlk) {
      dev.wce = this.wce;
      const idle = perQueue.findIndex((n, i) => n > 0 && t.queues[i]!.descAddr === 0n);
      if (idle >= 0) this.#fail(`request list for queue ${idle}, which is not set up`);
      dev.inflight = requests;
    }
    if (dev instanceof VirtioConsole) dev.inputBytes = this.pending_input;
    if (dev instanceof VirtioRng) this.#restoreRngQuota(dev);
  }

  /**
   * virtio-rng-device/quota when it came; otherwise what a stream without it (an older machine type,
   * or an older release) means: a full quota and a period starting now.
   */
  #restoreRngQuota(dev: VirtioRng): void {
    if (!this.rngQuotaLoaded || !dev.limited) {
      dev.resetQuota();
      return;
    }
    const quota = this.rng_quota_remaining;
    const start = this.rng_period_start;
    if (quota < 0n) this.#fail(`virtio-rng-device/quota: quota_remaining ${quota} is negative`);
    if (start < -1n) this.#fail(`virtio-rng-device/quota: period_start ${start} is neither -1 (no period) nor a time`);
    // A quota above this side's max-bytes is this side's; a period cannot start in the future.
    dev.quotaRemaining = quota > dev.maxBytes ? dev.maxBytes : quota;
    dev.periodStartNs = start < 0n ? -1 : Math.min(Number(start), dev.nowNs());
  }
}


/** What the device's section holds: the one `virtio` field. */
export interface VirtioDeviceSectionState {
  virtio: VirtioState;
}

const vmstateVirtqueueSave: VMStateDescription<VirtqueueSaveState> = {
  name: "virtio/queue",
  version_id: 1,
  minimum_version_id: 1,
  fields: [vmstateUint32("num"), vmstateUint32("align"), vmstateUint64("desc"), vmstateUint16("last_avail_idx")],
};

const vmstateVirtqueueRings: VMStateDescription<VirtqueueRings> = {
  name: "virtqueue_state",
  version_id: 1,
  minimum_version_id: 1,
  fields: [vmstateUint64("avail", { name: "vring.avail" }), vmstateUint64("used", { name: "vring.used" })],
};

const vmstateVirtioMmioQueueState: VMStateDescription<VirtioMmioQueueState> = {
  name: "virtio_mmio/queue_state",
  version_id: 1,
  minimum_version_id: 1,
  fields: [
    vmstateUint16("num"),
    vmstateBool("enabled"),
    vmstateUint32Array("desc", 2),
    vmstateUint32Array("avail", 2),
    vmstateUint32Array("used", 2),
  ],
};

/** virtio-mmio's vmstate (written by save_extra_state inside virtio/extra_state). */
export const vmstateVirtioMmio: VMStateDescription<VirtioMmioExtraState> = {
  name: "virtio_mmio",
  version_id: 1,
  minimum_version_id: 1,
  fields: [],
  subsections: [{
    name: "virtio_mmio/state",
    version_id: 1,
    minimum_version_id: 1,
    fields: [
      vmstateUint32Array("guest_features", 2),
      vmstateStructArray<VirtioMmioExtraState, "vqs">("vqs", VIRTIO_QUEUE_MAX, vmstateVirtioMmioQueueState),
    ],
  }],
};

const vmstateVirtioSerialPort: VMStateDescription<VirtioSerialPortState> = {
  name: "virtio-serial/port",
  version_id: 1,
  minimum_version_id: 1,
  fields: [vmstateUint32("id"), vmstateUint8("guest_connected"), vmstateUint8("host_connected"), vmstateUint32("elem_popped")],
};

/**
 * virtio-blk's request list (virtio_blk_save_device): a non-zero byte, then a request, as long
 * as requests follow; then 0. Each marker exists when the one before it was non-zero.
 */
function requestListFields(): VMStateField<VirtioState>[] {
  const fields: VMStateField<VirtioState>[] = [];
  for (let i = 0; i <= MAX_REQUESTS; i++) {
    const prev = `rq${i - 1}` as const;
    fields.push(vmstateUint8<VirtioState>(`rq${i}` as never, { test: (s) => i === 0 || s[prev] !== 0 }));
    // With more than one queue, the request's queue index (be32) follows the marker.
    if (i < MAX_REQUESTS) {
      fields.push(vmstateUint32<VirtioState>(`rq${i}_vq` as never, { test: (s) => s[`rq${i}`] !== 0 && s.local_queues > 1 }));
    }
    if (i === MAX_REQUESTS) {
      fields.push(vmstateValidate("rq_count_valid", (s) => {
        if (s[prev] !== 0 && s[`rq${i}`] !== 0) throw new MigrationError(`vmstate: virtio-blk: more than ${MAX_REQUESTS} requests in flight`);
        return true;
      }));
    } else {
      fields.push(vmstateVBuffer<VirtioState>(`rq${i}_elem` as never, "rq_elem_size" as never, {
        alloc: { max: VQ_ELEMENT_OLD_SIZE },
        test: (s) => s[`rq${i}`] !== 0,
      }));
    }
  }
  return fields;
}

/**
 * New state of virtio-rng (from virt-1.1): the rate limit's quota and period start. Sent when
 * the device's migrateQuota (x-migrate-quota) holds and a limit is set; a stream without it
 * loads as before (restore's fallback: a full quota, a period starting at load time).
 */
export const vmstateVirtioRngQuota: VMStateDescription<VirtioState> = {
  name: "virtio-rng-device/quota",
  version_id: 1,
  minimum_version_id: 1,
  needed: (s) => rngQuotaNeeded(s),
  post_load: (s) => {
    s.rngQuotaLoaded = true;
  },
  fields: [
    vmstateInt64("rng_quota_remaining", { name: "quota_remaining" }),
    vmstateInt64("rng_period_start", { name: "period_start" }),
  ],
};

function rngQuotaNeeded(s: VirtioState): boolean {
  const dev = s.transport.device;
  return dev instanceof VirtioRng && dev.migrateQuota && dev.limited;
}

/**
 * virtio-rng's own vmsd (QEMU's vdc->vmsd, which virtio_save writes after the device's part
 * and before vmstate_virtio's subsections): no fields, the quota subsection. Its subsections
 * cannot hang off the device section ("virtio-rng"): the inner "virtio" description would
 * claim any subsection whose name starts with "virtio" and fail on it, in QEMU as here. It is
 * always looked for on load; on save it appears (in the vmdesc) only with its subsection, so an
 * rng without a limit or with x-migrate-quota off writes the same bytes and vmdesc as before.
 */
export const vmstateVirtioRngDevice: VMStateDescription<VirtioState> = {
  name: "virtio-rng-device",
  version_id: 1,
  minimum_version_id: 1,
  fields: [],
  subsections: [vmstateVirtioRngQuota],
};

/** The device's own part (vdc->save) for each device type. */
const DEVICE_FIELDS: Record<string, VMStateField<VirtioState>[]> = {
  "virtio-blk": requestListFields(),
  "virtio-rng": [
    vmstateStruct<VirtioState, "device_state">("device_state", vmstateVirtioRngDevice, {
      name: "virtio-rng-device",
      test: (s) => s.loading || rngQuotaNeeded(s),
    }),
  ],
  "virtio-console": [
    vmstateUint16("cols"),
    vmstateUint16("rows"),
    vmstateUint32("max_nr_ports"),
    vmstateValidate("max_nr_ports_valid", (s) => {
      if (s.max_nr_ports !== 1) throw new MigrationError(`vmstate: virtio-console/max_nr_ports: loaded value ${s.max_nr_ports} != local value 1`);
      return true;
    }),
    vmstateVarrayUint32("ports_map", "ports_words"),
    vmstateUint32("nr_active_ports"),
    vmstateValidate("nr_active_ports_valid", (s) => {
      if (s.nr_active_ports > 1) throw new MigrationError(`vmstate: virtio-console/nr_active_ports: ${s.nr_active_ports} exceeds 1`);
      return true;
    }),
    vmstateStructVarray<VirtioState, "ports">("ports", "nr_active_ports", vmstateVirtioSerialPort),
    vmstateValidate("elem_popped_valid", (s) => {
      if (s.ports.slice(0, s.nr_active_ports).some((p) => p.elem_popped !== 0)) {
        throw new MigrationError("vmstate: virtio-console: a port holds a popped element, which FerryVM cannot take");
      }
      return true;
    }),
  ],
};

/**
 * QEMU loads the queues a stream has into the device's first ones and says only "Invalid
 * number of virtqueues" past 1024; a count that differs from ours fails, naming the device,
 * both counts and (for virtio-blk) the property that sets them.
 */
function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? "" : "s"}`;
}

function numQueuesMismatch(s: VirtioState): string {
  const dev = s.transport.device!;
  const head = `vmstate: virtio/num_queues: loaded value ${s.num_queues} != local value ${s.local_queues}`;
  const what = dev instanceof VirtioBlk ? "request queue" : "virtqueue";
  const counts = `the stream's ${dev.typeName} has ${plural(s.num_queues, what)}, this one has ${s.local_queues}`;
  if (dev instanceof VirtioBlk) {
    return `${head}: ${counts} (num-queues must be the same on both sides: use the source's machine type or -global ${dev.typeName}.num-queues=${s.num_queues})`;
  }
  return `${head}: ${counts}`;
}

function virtioSub(
  name: string,
  needed: (s: VirtioState) => boolean,
  fields: VMStateField<VirtioState>[],
  loaded?: (s: VirtioState) => void,
): VMStateDescription<VirtioState> {
  return {
    name: `virtio/${name}`,
    version_id: 1,
    minimum_version_id: 1,
    needed,
    fields,
    ...(loaded === undefined ? {} : { post_load: (s: VirtioState) => loaded(s) }),
  };
}

function vmstateVirtio(kind: string): VMStateDescription<VirtioState> {
  return {
    name: "virtio",
    version_id: 1,
    minimum_version_id: 1,
    fields: [
      vmstateUint32("host_features_sel"),
      vmstateUint32("guest_features_sel"),
      vmstateUint32("guest_page_shift"),
      vmstateUint8("status"),
      vmstateUint8("isr"),
      vmstateUint16("queue_sel"),
      vmstateUint32("guest_features_lo"),
      vmstateUint32("config_len"),
      vmstateVBuffer("config", "config_len", { alloc: { max: MAX_CONFIG } }),
      vmstateValidate("config_len_valid", (s) => {
        const local = s.transport.device!.config().length;
        if (s.config_len !== local) throw new MigrationError(`vmstate: virtio/config_len: loaded value ${s.config_len} != local value ${local}`);
        return true;
      }),
      vmstateUint32("num_queues"),
      vmstateValidate("num_queues_valid", (s) => {
        if (s.num_queues !== s.local_queues) throw new MigrationError(numQueuesMismatch(s));
        return true;
      }),
      vmstateStructVarray<VirtioState, "vq">("vq", "num_queues", vmstateVirtqueueSave),
      ...DEVICE_FIELDS[kind]!,
    ],
    subsections: [
      virtioSub("device_endian", (s) => s.device_endian !== VIRTIO_DEVICE_ENDIAN_LITTLE, [vmstateUint8("device_endian")]),
      virtioSub("64bit_features", (s) => s.hostFeatures >> 32n !== 0n, [vmstateUint64("guest_features")], (s) => {
        s.features64Loaded = true;
      }),
      virtioSub(
        "virtqueues",
        (s) => ((s.hostFeatures >> BigInt(VIRTIO_F_VERSION_1)) & 1n) === 1n,
        [vmstateStructArray<VirtioState, "rings">("rings", VIRTIO_QUEUE_MAX, vmstateVirtqueueRings, { name: "vq" })],
        (s) => {
          s.ringsLoaded = true;
        },
      ),
      virtioSub(
        "ringsize",
        (s) => s.vq.some((q, i) => q.num !== s.ring_default[i]),
        [vmstateUint32Array("ring_default", VIRTIO_QUEUE_MAX, { name: "vq" })],
      ),
      virtioSub("broken", (s) => s.broken, [vmstateBool("broken")]),
      virtioSub("extra_state", (s) => !s.transport.legacy, [vmstateStruct("extra_state", vmstateVirtioMmio)], (s) => {
        s.extraLoaded = true;
      }),
      virtioSub("started", (s) => s.started, [vmstateBool("started")]),
      virtioSub("ferryvm", (s) => s.generation !== 0 || s.pending_len !== 0 || s.wce !== 1, [
        vmstateUint32("generation"),
        vmstateUint8("wce"),
        vmstateUint32("pending_len"),
        vmstateVBuffer("pending_input", "pending_len", { alloc: { max: MAX_PENDING_INPUT } }),
      ], (s) => {
        s.ferryvmLoaded = true;
      }),
    ],
  };
}

/** The section description of a virtio device type (`virtio-blk`, `virtio-rng`, `virtio-console`). */
export function vmstateVirtioDevice(kind: "virtio-blk" | "virtio-rng" | "virtio-console"): VMStateDescription<VirtioDeviceSectionState> {
  const inner = vmstateVirtio(kind);
  return {
    name: kind,
    version_id: kind === "virtio-blk" ? 2 : kind === "virtio-console" ? 3 : 1,
    minimum_version_id: kind === "virtio-blk" ? 2 : kind === "virtio-console" ? 3 : 1,
    pre_save: (s) => s.virtio.capture(),
    pre_load: (s) => s.virtio.prepareLoad(),
    post_load: (s) => s.virtio.restore(),
    fields: [vmstateStruct("virtio", inner)],
  };
}

/** The vmsd name QEMU uses for a device type name, or undefined for devices QEMU has no section for. */
export function virtioVmsdName(typeName: string): "virtio-blk" | "virtio-rng" | "virtio-console" | undefined {
  if (typeName === "virtio-blk-device") return "virtio-blk";
  if (typeName === "virtio-rng-device") return "virtio-rng";
  if (typeName === "virtio-serial-device") return "virtio-console";
  return undefined;
}
