/**
 * The two byte-stream interfaces the VMState engine reads and writes (the part of QEMU's
 * QEMUFile it uses), and in-memory implementations of both. `@ferryvm/migration`'s
 * `QemuFileWriter`/`QemuFileReader` implement the same interfaces over async channels.
 *
 * Integers are big-endian, as everywhere in QEMU's migration stream.
 *
 * @module
 */

import { ShortReadError } from "./errors.ts";

/** A buffered, synchronous writer (QEMU's `qemu_put_*`). */
export interface VMStateOutput {
  /** Bytes written so far (QEMU's `qemu_file_total_transferred`). */
  readonly position: number;
  putU8(v: number): void;
  putBe16(v: number): void;
  putBe32(v: number): void;
  putBe64(v: bigint): void;
  putBytes(bytes: Uint8Array): void;
}

/**
 * A buffered reader: synchronous `get*` calls read what is buffered, `fill(n)` waits until
 * `n` bytes are (QEMU's `qemu_get_*` and `qemu_peek_*`).
 */
export interface VMStateInput {
  /** Stream offset of the next unread byte. */
  readonly position: number;
  /** Bytes that can be read now without waiting. */
  readonly buffered: number;
  /** Waits until `n` bytes are buffered; throws `ShortReadError` if the stream ends first. */
  fill(n: number): Promise<void>;
  /** Up to `n` (≤ 1024) upcoming bytes without consuming them; fewer at the end of the stream. */
  peek(n: number): Promise<Uint8Array>;
  getU8(): number;
  getBe16(): number;
  getBe32(): number;
  getBe64(): bigint;
  /** Reads exactly `dest.length` bytes into `dest`. */
  readInto(dest: Uint8Array): Promise<void>;
  /** Discards `n` bytes. */
  skip(n: number): Promise<void>;
}

/** An in-memory `VMStateOutput` that grows as needed. */
export class ByteWriter implements VMStateOutput {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  constructor(initialCapacity = 256) {
    this.#buf = new Uint8Array(Math.max(16, initialCapacity));
    this.#view = new DataView(this.#buf.buffer);
  }

  get position(): number {
    return this.#len;
  }

  /** The bytes written so far (a copy). */
  bytes(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  #reserve(n: number): number {
    const at = this.#len;
    if (at + n > this.#buf.length) {
      const grown = new Uint8Array(Math.max(this.#buf.length * 2, at + n));
      grown.set(this.#buf.subarray(0, at));
      this.#buf = grown;
      this.#view = new DataView(grown.buffer);
    }
    this.#len = at + n;
    return at;
  }

  putU8(v: number): void {
    const at = this.#reserve(1);
    this.#buf[at] = v;
  }

  putBe16(v: number): void {
    const at = this.#reserve(2);
    this.#view.setUint16(at, v);
  }

  putBe32(v: number): void {
    const at = this.#reserve(4);
    this.#view.setUint32(at, v >>> 0);
  }

  putBe64(v: bigint): void {
    const at = this.#reserve(8);
    this.#view.setBigUint64(at, BigInt.asUintN(64, v));
  }

  putBytes(bytes: Uint8Array): void {
    const at = this.#reserve(bytes.length);
    this.#buf.set(bytes, at);
  }
}

/** An in-memory `VMStateInput` over one `Uint8Array`. */
export class ByteReader implements VMStateInput {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #pos = 0;

  constructor(bytes: Uint8Array) {
    this.#buf = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get position(): number {
    return this.#pos;
  }

  get buffered(): number {
    return this.#buf.length - this.#pos;
  }

  #take(n: number): number {
    const at = this.#pos;
    if (n > this.#buf.length - at) throw new ShortReadError(at, n, this.#buf.length - at);
    this.#pos = at + n;
    return at;
  }

  fill(n: number): Promise<void> {
    if (n > this.#buf.length - this.#pos) {
      return Promise.reject(new ShortReadError(this.#pos, n, this.#buf.length - this.#pos));
    }
    return Promise.resolve();
  }

  peek(n: number): Promise<Uint8Array> {
    return Promise.resolve(this.#buf.subarray(this.#pos, Math.min(this.#buf.length, this.#pos + n)));
  }

  getU8(): number {
    return this.#buf[this.#take(1)]!;
  }

  getBe16(): number {
    return this.#view.getUint16(this.#take(2));
  }

  getBe32(): number {
    return this.#view.getUint32(this.#take(4));
  }

  getBe64(): bigint {
    return this.#view.getBigUint64(this.#take(8));
  }

  readInto(dest: Uint8Array): Promise<void> {
    try {
      const at = this.#take(dest.length);
      dest.set(this.#buf.subarray(at, at + dest.length));
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  skip(n: number): Promise<void> {
    try {
      this.#take(n);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
