/**
 * Split virtqueues (virtio 1.2 §2.7, QEMU 7.2 hw/virtio/virtio.c): the device's side of the
 * descriptor table, the available ring and the used ring, with indirect descriptors and
 * `VIRTIO_RING_F_EVENT_IDX`.
 *
 * ```
 * desc[i]   (16 bytes)  addr u64, len u32, flags u16 (NEXT 1, WRITE 2, INDIRECT 4), next u16
 * avail                 flags u16, idx u16, ring[num] u16, used_event u16
 * used                  flags u16, idx u16, ring[num] { id u32, len u32 }, avail_event u16
 * ```
 * Everything the guest supplies is checked (ring indexes, descriptor indexes and chain
 * length, indirect tables, buffer addresses); a violation raises {@link VirtqueueError}, which
 * the transport turns into QEMU's `virtio_error` (the device is marked broken and needs a
 * reset) — never a host crash.
 *
 * @module
 */

import type { PhysicalMemory } from "./physical-memory.ts";

export const VRING_DESC_F_NEXT = 1;
export const VRING_DESC_F_WRITE = 2;
export const VRING_DESC_F_INDIRECT = 4;
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
export const VRING_USED_F_NO_NOTIFY = 1;
export const VIRTQUEUE_MAX_SIZE = 1024;

/** A guest error in a virtqueue. */
export class VirtqueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VirtqueueError";
  }
}

/** A guest buffer: guest-physical address and length, checked to lie inside guest RAM. */
export interface VirtqueueBuffer {
  readonly addr: bigint;
  readonly len: number;
}

/** A popped descriptor chain (QEMU's VirtQueueElement). */
export interface VirtqueueElement {
  /** Head descriptor index (what goes back in the used ring). */
  readonly index: number;
  /** Device-readable buffers, in order. */
  readonly out: readonly VirtqueueBuffer[];
  /** Device-writable buffers, in order. */
  readonly in: readonly VirtqueueBuffer[];
}

export class Virtqueue {
  readonly index: number;
  readonly numMax: number;
  num: number;
  ready = false;
  descAddr = 0n;
  availAddr = 0n;
  usedAddr = 0n;
  lastAvailIdx = 0;
  usedIdx = 0;
  /** EVENT_IDX: the used index at the last interrupt, and whether it is meaningful. */
  signalledUsed = 0;
  signalledUsedValid = false;
  /** Negotiated VIRTIO_RING_F_EVENT_IDX. */
  eventIdx = false;
  // Indirect tables are accepted whether or not INDIRECT_DESC was negotiated, as QEMU does.
  #mem: PhysicalMemory;

  constructor(index: number, numMax: number, memory: PhysicalMemory) {
    this.index = index;
    this.numMax = numMax;
    this.num = numMax;
    this.#mem = memory;
  }

  reset(): void {
    this.num = this.numMax;
    this.ready = false;
    this.descAddr = this.availAddr = this.usedAddr = 0n;
    this.lastAvailIdx = this.usedIdx = 0;
    this.signalledUsed = 0;
    this.signalledUsedValid = false;
    this.eventIdx = false;
  }

  #u16(addr: bigint): number {
    const v = this.#mem.view(addr, 2);
    if (v === undefined) throw new VirtqueueError(`virtqueue ${this.index}: ring address 0x${addr.toString(16)} is not RAM`);
    return v[0]! | (v[1]! << 8);
  }

  #setU16(addr: bigint, value: number): void {
    const v = this.#mem.dirtyView(addr, 2);
    if (v === undefined) throw new VirtqueueError(`virtqueue ${this.index}: ring address 0x${addr.toString(16)} is not RAM`);
    v[0] = value & 0xff;
    v[1] = (value >> 8) & 0xff;
  }

  #desc(table: bigint, i: number): { addr: bigint; len: number; flags: number; next: number } {
    const v = this.#mem.view(table + BigInt(i) * 16n, 16);
    if (v === undefined) throw new VirtqueueError(`virtqueue ${this.index}: descriptor table is not RAM`);
    const dv = new DataView(v.buffer, v.byteOffset, 16);
    return { addr: dv.getBigUint64(0, true), len: dv.getUint32(8, true), flags: dv.getUint16(12, true), next: dv.getUint16(14, true) };
  }

  /** The driver's avail.idx. */
  availIdx(): number {
    return this.#u16(this.availAddr + 2n);
  }

  /** Whether the driver made buffers available that the device has not taken. */
  hasWork(): boolean {
    return this.ready && this.availIdx() !== this.lastAvailIdx;
  }

  /** Takes the next available chain, or null when the ring is empty. */
  pop(): VirtqueueElement | null {
    if (!this.ready) return null;
    const availIdx = this.availIdx();
    if (availIdx === this.lastAvailIdx) return null;
    if (((availIdx - this.lastAvailIdx) & 0xffff) > this.num) {
      throw new VirtqueueError(`virtqueue ${this.index}: guest moved used index from ${this.lastAvailIdx} to ${availIdx}`);
    }
    const head = this.#u16(this.availAddr + 4n + BigInt((this.lastAvailIdx % this.num) * 2));
    if (head >= this.num) throw new VirtqueueError(`virtqueue ${this.index}: guest says index ${head} is available`);
    this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
    if (this.eventIdx) this.#setU16(this.usedAddr + 4n + BigInt(this.num * 8), this.lastAvailIdx);

    const out: VirtqueueBuffer[] = [];
    const inb: VirtqueueBuffer[] = [];
    let table = this.descAddr;
    let max = this.num;
    let i = head;
    let d = this.#desc(table, i);
    if (d.flags & VRING_DESC_F_INDIRECT) {
      if (d.len === 0 || d.len % 16 !== 0) throw new VirtqueueError(`virtqueue ${this.index}: invalid size for indirect buffer table`);
      if (d.flags & VRING_DESC_F_NEXT) throw new VirtqueueError(`virtqueue ${this.index}: indirect descriptor with NEXT`);
      max = d.len / 16;
      if (max > VIRTQUEUE_MAX_SIZE * 4) throw new VirtqueueError(`virtqueue ${this.index}: indirect table too large`);
      if (this.#mem.view(d.addr, d.len) === undefined) {
        throw new VirtqueueError(`virtqueue ${this.index}: indirect table at 0x${d.addr.toString(16)} is not RAM`);
      }
      table = d.addr;
      i = 0;
      d = this.#desc(table, 0);
    }
    for (let count = 0; ; count++) {
      if (count >= max) throw new VirtqueueError(`virtqueue ${this.index}: looped descriptor chain`);
      if (d.flags & VRING_DESC_F_INDIRECT) throw new VirtqueueError(`virtqueue ${this.index}: nested indirect descriptor`);
      if (d.len > 0 && this.#mem.view(d.addr, d.len) === undefined) {
        throw new VirtqueueError(
          `virtqueue ${this.index}: buffer 0x${d.addr.toString(16)}+0x${d.len.toString(16)} is not guest RAM`,
        );
      }
      if (d.flags & VRING_DESC_F_WRITE) {
        inb.push({ addr: d.addr, len: d.len });
      } else {
        if (inb.length > 0) throw new VirtqueueError(`virtqueue ${this.index}: incorrect order for descriptors`);
        out.push({ addr: d.addr, len: d.len });
      }
      if (!(d.flags & VRING_DESC_F_NEXT)) break;
      i = d.next;
      if (i >= max) throw new VirtqueueError(`virtqueue ${this.index}: desc next is ${i}`);
      d = this.#desc(table, i);
    }
    return { index: head, out, in: inb };
  }

  /** Gives the chain back through the used ring with `len` bytes written. */
  push(element: VirtqueueElement, len: number): void {
    const slot = this.usedAddr + 4n + BigInt((this.usedIdx % this.num) * 8);
    const v = this.#mem.dirtyView(slot, 8);
    if (v === undefined) throw new VirtqueueError(`virtqueue ${this.index}: used ring is not RAM`);
    const dv = new DataView(v.buffer, v.byteOffset, 8);
    dv.setUint32(0, element.index, true);
    dv.setUint32(4, len >>> 0, true);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this.#setU16(this.usedAddr + 2n, this.usedIdx);
  }

  /** Whether the driver wants an interrupt now (QEMU's virtio_should_notify for split rings). */
  shouldNotify(): boolean {
    if (!this.eventIdx) return (this.#u16(this.availAddr) & VRING_AVAIL_F_NO_INTERRUPT) === 0;
    const old = this.signalledUsed;
    const valid = this.signalledUsedValid;
    const newIdx = this.usedIdx;
    this.signalledUsed = newIdx;
    this.signalledUsedValid = true;
    const usedEvent = this.#u16(this.availAddr + 4n + BigInt(this.num * 2));
    return !valid || ((newIdx - usedEvent - 1) & 0xffff) < ((newIdx - old) & 0xffff);
  }

  /** Copies the readable buffers' bytes (at most `limit`). */
  readOut(element: VirtqueueElement, limit = Infinity): Uint8Array {
    let total = 0;
    for (const b of element.out) total += b.len;
    total = Math.min(total, limit);
    const data = new Uint8Array(total);
    let off = 0;
    for (const b of element.out) {
      if (off >= total) break;
      const n = Math.min(b.len, total - off);
      data.set(this.#mem.view(b.addr, n)!, off);
      off += n;
    }
    return data;
  }

  /** Copies `data` into the writable buffers from byte `offset` on; returns the bytes written. */
  writeIn(element: VirtqueueElement, data: Uint8Array, offset = 0): number {
    let written = 0;
    for (const v of this.inViews(element, offset, data.length)) {
      v.set(data.subarray(written, written + v.length));
      written += v.length;
    }
    return written;
  }

  /** Writable views covering [offset, offset + length) of the element's in-buffers (marked dirty). */
  inViews(element: VirtqueueElement, offset: number, length: number): Uint8Array[] {
    return this.#views(element.in, offset, length, (addr, n) => this.#mem.dirtyView(addr, n)!);
  }

  /** Views of [offset, offset + length) of the out-buffers (for reading). */
  outViews(element: VirtqueueElement, offset: number, length: number): Uint8Array[] {
    return this.#views(element.out, offset, length, (addr, n) => this.#mem.view(addr, n)!);
  }

  /** Views of [offset, offset + length) of a buffer chain (checked against guest memory when popped). */
  #views(
    buffers: readonly VirtqueueBuffer[],
    offset: number,
    length: number,
    view: (addr: bigint, n: number) => Uint8Array,
  ): Uint8Array[] {
    const views: Uint8Array[] = [];
    let pos = 0;
    let left = length;
    for (const b of buffers) {
      if (left <= 0) break;
      if (offset >= pos + b.len) {
        pos += b.len;
        continue;
      }
      const start = Math.max(0, offset - pos);
      const n = Math.min(b.len - start, left);
      views.push(view(b.addr + BigInt(start), n));
      left -= n;
      offset += n;
      pos += b.len;
    }
    return views;
  }
}

export function totalLength(buffers: readonly VirtqueueBuffer[]): number {
  let t = 0;
  for (const b of buffers) t += b.len;
  return t;
}
