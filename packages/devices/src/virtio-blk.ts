/**
 * virtio-blk (virtio 1.2 §5.2, QEMU 7.2 hw/block/virtio-blk.c) over a raw image. `numQueues`
 * request queues of 256 (QEMU's num-queues; MQ and config num_queues when more than one; each
 * queue serves its own requests and completes them on itself); the features QEMU 7.2 offers
 * by default (SEG_MAX, GEOMETRY, BLK_SIZE, TOPOLOGY, FLUSH with a write-back cache,
 * CONFIG_WCE, DISCARD, WRITE_ZEROES; RO when read-only) and its config values. Backing I/O is synchronous (the run loop is one thread;
 * a request completes before the notify write returns).
 *
 * ```
 * request: virtio_blk_outhdr { type u32, ioprio u32, sector u64 } | data... | status u8
 * types: IN 0, OUT 1, FLUSH 4, GET_ID 8, DISCARD 11, WRITE_ZEROES 13
 * status: OK 0, IOERR 1, UNSUPP 2
 * ```
 *
 * @module
 */

import { VIRTIO_QUEUE_MAX, type VirtioContext, type VirtioDevice } from "./virtio-mmio.ts";
import { totalLength, VirtqueueError, type Virtqueue, type VirtqueueElement } from "./virtqueue.ts";

export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_BLK_F_SIZE_MAX = 1;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_GEOMETRY = 4;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;
export const VIRTIO_BLK_F_TOPOLOGY = 10;
export const VIRTIO_BLK_F_CONFIG_WCE = 11;
export const VIRTIO_BLK_F_MQ = 12;
export const VIRTIO_BLK_F_DISCARD = 13;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;

export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_SCSI_CMD = 2;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_BARRIER = 0x8000_0000;
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;
export const VIRTIO_BLK_ID_BYTES = 20;
export const VIRTIO_BLK_SECTOR_SIZE = 512;
/** QEMU's BDRV_REQUEST_MAX_SECTORS: default max-discard-sectors / max-write-zeroes-sectors. */
export const BDRV_REQUEST_MAX_SECTORS = 0x3f_ffff;
/**
 * Config space size with WRITE_ZEROES: offsetof(write_zeroes_may_unmap) + 1 = 57, QEMU 7.2's
 * config_len (virtio_get_config_size; its migration stream carries 57). Reads past it return
 * all ones, as QEMU's.
 */
export const VIRTIO_BLK_CONFIG_SIZE = 57;
export const VIRTIO_BLK_QUEUE_SIZE = 256;

/** The disk's bytes: a raw image. */
export interface BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  read(offset: number, into: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
  flush(): void;
}

/** A backend over bytes in memory (tests, small images). */
export class MemoryBlockBackend implements BlockBackend {
  readonly bytes: Uint8Array;
  readonly readOnly: boolean;
  flushes = 0;
  constructor(bytes: Uint8Array, readOnly = false) {
    this.bytes = bytes;
    this.readOnly = readOnly;
  }
  get size(): number {
    return this.bytes.length;
  }
  read(offset: number, into: Uint8Array): void {
    into.set(this.bytes.subarray(offset, offset + into.length));
  }
  write(offset: number, data: Uint8Array): void {
    this.bytes.set(data, offset);
  }
  flush(): void {
    this.flushes++;
  }
}

export interface VirtioBlkOptions {
  backend: BlockBackend;
  /**
   * QEMU's `num-queues`: request queues, 1..VIRTIO_QUEUE_MAX (1024). Default 1 (QEMU 7.2's
   * virtio-blk-device resolves its "auto" default to 1; the machine type picks the value).
   */
  numQueues?: number;
  /** QEMU's `serial` property (GET_ID); empty by default. */
  serial?: string;
  /** Host-side I/O errors (the request completes with IOERR). */
  onError?: (message: string) => void;
}

const BIT = (n: number): bigint => 1n << BigInt(n);

/** A request the device holds: an element and the queue it came from (0 when absent). */
export interface VirtioBlkRequest extends VirtqueueElement {
  readonly queue?: number;
}

export class VirtioBlk implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly typeName = "virtio-blk-device";
  readonly queueSizes: readonly number[];
  readonly features: bigint;
  /** Request queues (QEMU's conf.num_queues). */
  readonly numQueues: number;
  readonly backend: BlockBackend;
  /** Write cache enabled (config wce; QEMU's default cache=writeback). */
  wce = 1;
  #serial: string;
  #onError: (m: string) => void;

  constructor(options: VirtioBlkOptions) {
    this.backend = options.backend;
    this.#serial = options.serial ?? "";
    this.#onError = options.onError ?? (() => {});
    const n = options.numQueues ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`virtio-blk: num-queues property must be larger than 0 (got ${n})`);
    if (n > VIRTIO_QUEUE_MAX) throw new RangeError(`virtio-blk: num-queues property must be at most ${VIRTIO_QUEUE_MAX} (got ${n})`);
    this.numQueues = n;
    this.queueSizes = new Array<number>(n).fill(VIRTIO_BLK_QUEUE_SIZE);
    let f = BIT(VIRTIO_BLK_F_SEG_MAX) | BIT(VIRTIO_BLK_F_GEOMETRY) | BIT(VIRTIO_BLK_F_TOPOLOGY) |
      BIT(VIRTIO_BLK_F_BLK_SIZE) | BIT(VIRTIO_BLK_F_FLUSH) | BIT(VIRTIO_BLK_F_CONFIG_WCE) |
      BIT(VIRTIO_BLK_F_DISCARD) | BIT(VIRTIO_BLK_F_WRITE_ZEROES);
    if (this.backend.readOnly) f |= BIT(VIRTIO_BLK_F_RO);
    if (n > 1) f |= BIT(VIRTIO_BLK_F_MQ);
    this.features = f;
  }

  /** Capacity in 512-byte sectors. */
  get capacity(): number {
    return Math.floor(this.backend.size / VIRTIO_BLK_SECTOR_SIZE);
  }

  reset(): void {
    this.wce = 1;
    this.inflight = [];
  }

  config(): Uint8Array {
    const c = new Uint8Array(VIRTIO_BLK_CONFIG_SIZE);
    const dv = new DataView(c.buffer);
    const sectors = this.capacity;
    dv.setBigUint64(0, BigInt(sectors), true);
    dv.setUint32(8, 0, true); // size_max
    dv.setUint32(12, VIRTIO_BLK_QUEUE_SIZE - 2, true); // seg_max (seg-max-adjust)
    // geometry as QEMU's guess_chs_for_size: 16 heads, 63 sectors
    const cyls = Math.min(16383, Math.max(2, Math.floor(sectors / (16 * 63))));
    dv.setUint16(16, cyls, true);
    c[18] = 16;
    c[19] = 63;
    dv.setUint32(20, VIRTIO_BLK_SECTOR_SIZE, true); // blk_size
    c[24] = 0; // physical_block_exp
    c[25] = 0; // alignment_offset
    dv.setUint16(26, 0, true); // min_io_size
    dv.setUint32(28, 0, true); // opt_io_size
    c[32] = this.wce;
    dv.setUint16(34, this.numQueues, true); // num_queues
    dv.setUint32(36, BDRV_REQUEST_MAX_SECTORS, true); // max_discard_sectors
    dv.setUint32(40, 1, true); // max_discard_seg
    dv.setUint32(44, 1, true); // discard_sector_alignment
    dv.setUint32(48, BDRV_REQUEST_MAX_SECTORS, true); // max_write_zeroes_sectors
    dv.setUint32(52, 1, true); // max_write_zeroes_seg
    c[56] = 1; // write_zeroes_may_unmap
    return c;
  }

  configWrite(offset: number, data: Uint8Array): void {
    // Only `wce` (offset 32) is writable (CONFIG_WCE).
    if (offset === 32 && data.length === 1) this.wce = data[0]! ? 1 : 0;
  }

  /**
   * Requests a migration stream had in flight (QEMU's request list): served at the next poll
   * once the driver is up, as QEMU's virtio_blk_dma_restart_cb does when the VM resumes. Each
   * completes on its own queue (`queue`, 0 when absent).
   */
  inflight: VirtioBlkRequest[] = [];

  poll(ctx: VirtioContext): void {
    if (this.inflight.length === 0) return;
    const requests = this.inflight;
    this.inflight = [];
    for (const el of requests) {
      const queue = ctx.queues[el.queue ?? 0];
      if (queue === undefined) continue;
      queue.push(el, this.#request(queue, el));
      ctx.notify(queue);
    }
  }

  handleQueue(ctx: VirtioContext, queue: Virtqueue): void {
    for (;;) {
      const el = queue.pop();
      if (el === null) break;
      const inLen = this.#request(queue, el);
      queue.push(el, inLen);
      ctx.notify(queue);
    }
  }

  /** Serves one request; returns the used length (all writable bytes, as QEMU's in_len). */
  #request(q: Virtqueue, el: VirtqueueElement): number {
    const inTotal = totalLength(el.in);
    if (totalLength(el.out) < 16) throw new VirtqueueError("virtio-blk missing headers");
    if (inTotal < 1) throw new VirtqueueError("virtio-blk missing headers");
    const hdr = q.readOut(el, 16);
    const dv = new DataView(hdr.buffer);
    const type = dv.getUint32(0, true);
    const sector = dv.getBigUint64(8, true);
    const dataIn = inTotal - 1; // the last writable byte is the status
    let status = VIRTIO_BLK_S_OK;
    const finish = (s: number): number => {
      q.writeIn(el, Uint8Array.of(s), inTotal - 1);
      return inTotal;
    };
    try {
      // As QEMU: the OUT bit gives the direction, the BARRIER bit (31) is ignored.
      switch (type & ~(VIRTIO_BLK_T_OUT | VIRTIO_BLK_T_BARRIER)) {
        case VIRTIO_BLK_T_IN: {
          if (type & VIRTIO_BLK_T_OUT) {
            const len = totalLength(el.out) - 16;
            if (!this.#rangeOk(sector, len)) return finish(VIRTIO_BLK_S_IOERR);
            if (this.backend.readOnly) return finish(VIRTIO_BLK_S_IOERR);
            let off = Number(sector) * VIRTIO_BLK_SECTOR_SIZE;
            for (const v of q.outViews(el, 16, len)) {
              this.backend.write(off, v);
              off += v.length;
            }
            if (!this.wce) this.backend.flush();
          } else {
            if (!this.#rangeOk(sector, dataIn)) return finish(VIRTIO_BLK_S_IOERR);
            let off = Number(sector) * VIRTIO_BLK_SECTOR_SIZE;
            for (const v of q.inViews(el, 0, dataIn)) {
              this.backend.read(off, v);
              off += v.length;
            }
          }
          break;
        }
        case VIRTIO_BLK_T_FLUSH:
          this.backend.flush();
          break;
        case VIRTIO_BLK_T_GET_ID: {
          const id = new TextEncoder().encode(this.#serial + "\0");
          const n = Math.min(id.length, dataIn, VIRTIO_BLK_ID_BYTES);
          q.writeIn(el, id.subarray(0, n), 0);
          break;
        }
        case VIRTIO_BLK_T_DISCARD & ~VIRTIO_BLK_T_OUT:
        case VIRTIO_BLK_T_WRITE_ZEROES & ~VIRTIO_BLK_T_OUT:
          if (!(type & VIRTIO_BLK_T_OUT) || totalLength(el.out) - 16 > 16) {
            status = VIRTIO_BLK_S_UNSUPP;
            break;
          }
          status = this.#discardOrZeroes(q, el, (type & ~VIRTIO_BLK_T_BARRIER) === VIRTIO_BLK_T_WRITE_ZEROES);
          break;
        default:
          status = VIRTIO_BLK_S_UNSUPP;
      }
    } catch (e) {
      if (e instanceof VirtqueueError) throw e;
      this.#onError(`virtio-blk: ${e instanceof Error ? e.message : String(e)}`);
      status = VIRTIO_BLK_S_IOERR;
    }
    return finish(status);
  }

  /** QEMU's virtio_blk_sect_range_ok: a multiple of the block size inside the disk. */
  #rangeOk(sector: bigint, bytes: number): boolean {
    if (bytes % VIRTIO_BLK_SECTOR_SIZE !== 0) return false;
    const end = sector + BigInt(bytes / VIRTIO_BLK_SECTOR_SIZE);
    return sector <= BigInt(this.capacity) && end <= BigInt(this.capacity);
  }

  /** One segment { sector u64, num_sectors u32, flags u32 } (QEMU supports one). */
  #discardOrZeroes(q: Virtqueue, el: VirtqueueElement, zeroes: boolean): number {
    const seg = q.readOut(el).subarray(16);
    if (seg.length !== 16) throw new VirtqueueError("virtio-blk discard/write_zeroes header too short");
    const dv = new DataView(seg.buffer, seg.byteOffset, 16);
    const sector = dv.getBigUint64(0, true);
    const num = dv.getUint32(8, true);
    const flags = dv.getUint32(12, true);
    if (flags & ~(zeroes ? 1 : 0)) return VIRTIO_BLK_S_UNSUPP;
    if (num > BDRV_REQUEST_MAX_SECTORS) return VIRTIO_BLK_S_IOERR;
    if (!this.#rangeOk(sector, num * VIRTIO_BLK_SECTOR_SIZE)) return VIRTIO_BLK_S_IOERR;
    if (this.backend.readOnly) return VIRTIO_BLK_S_IOERR;
    // A discard may leave the data (QEMU punches holes when it can); write-zeroes zeroes.
    if (zeroes) {
      const chunk = new Uint8Array(Math.min(num * VIRTIO_BLK_SECTOR_SIZE, 1 << 20));
      let off = Number(sector) * VIRTIO_BLK_SECTOR_SIZE;
      let left = num * VIRTIO_BLK_SECTOR_SIZE;
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        this.backend.write(off, chunk.subarray(0, n));
        off += n;
        left -= n;
      }
    }
    return VIRTIO_BLK_S_OK;
  }
}
