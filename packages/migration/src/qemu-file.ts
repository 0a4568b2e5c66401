/**
 * QEMUFile: the buffered byte stream every part of a migration reads and writes
 * (QEMU's migration/qemu-file.c). Integers are big-endian; `str8` = u8 length + bytes.
 *
 * - `QemuFileWriter` buffers `put*` calls synchronously and hands full buffers to a
 *   `ByteSink`; `flush()` waits for the sink (backpressure).
 * - `QemuFileReader` pulls chunks from a `ByteSource` into one buffer. Hot paths call
 *   `fill(n)` once and then the synchronous `get*` calls; `read*` do both. Large reads
 *   (`readInto`, `skip`) go around the buffer. A stream that ends early fails with a
 *   `ShortReadError` naming the offset, the bytes needed and the bytes left.
 *
 * Both count bytes (`position`), as QEMU's `qemu_file_total_transferred`.
 *
 * @module
 */

import { MigrationError, ShortReadError, type VMStateInput, type VMStateOutput } from "@ferryvm/vmstate";
import { ChannelWriteError } from "./errors.ts";

const utf8 = new TextEncoder();

/** Default buffer size of readers and writers (QEMU's IO_BUF_SIZE is 32 KiB). */
export const QEMU_FILE_BUFFER_SIZE = 65536;

/** Where a writer's bytes go. A returned promise holds the writer back until it settles. */
export interface ByteSink {
  /**
   * Takes `chunk`. A sink that can tell when it no longer references the chunk (a Node
   * stream's write callback) calls `release` then, and the writer reuses the buffer; a sink
   * that keeps chunks (MemorySink) never calls it.
   */
  write(chunk: Uint8Array, release?: () => void): void | Promise<void>;
  close?(): void | Promise<void>;
}

/** Where a reader's bytes come from: a whole array, or chunks (sync or async, e.g. a Node stream). */
export type ByteSource = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;

/** A sink keeping every chunk in memory. */
export class MemorySink implements ByteSink {
  readonly #chunks: Uint8Array[] = [];
  #length = 0;
  closed = false;

  write(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  close(): void {
    this.closed = true;
  }

  get length(): number {
    return this.#length;
  }

  /** Everything written, as one array. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** A sink over a WHATWG `WritableStream` (waits for `ready` before each write). */
export function writableStreamSink(stream: WritableStream<Uint8Array>): ByteSink {
  const writer = stream.getWriter();
  return {
    async write(chunk) {
      await writer.ready;
      await writer.write(chunk);
    },
    close: () => writer.close(),
  };
}

/** strerror texts of the errors a connection's read can end with (Node gives "read ECONNRESET"). */
const READ_ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNRESET: "Connection reset by peer",
  EPIPE: "Broken pipe",
  ETIMEDOUT: "Connection timed out",
  ENOTCONN: "Transport endpoint is not connected",
  EBADF: "Bad file descriptor",
  EIO: "Input/output error",
};

function describe(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && READ_ERRNO_TEXT[code] !== undefined) return READ_ERRNO_TEXT[code];
  return e instanceof Error ? e.message : String(e);
}

/** The writing half of a QEMUFile. */
export class QemuFileWriter implements VMStateOutput {
  readonly #sink: ByteSink;
  readonly #size: number;
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #position = 0;
  #error: MigrationError | undefined;
  #tail: Promise<void> = Promise.resolve();

  /** Buffers the sink released, for reuse (no garbage per chunk on a socket). */
  readonly #free: Uint8Array[] = [];
  readonly #ours = new WeakSet<ArrayBuffer>();

  constructor(sink: ByteSink, options: { bufferSize?: number } = {}) {
    this.#sink = sink;
    this.#size = Math.max(64, options.bufferSize ?? QEMU_FILE_BUFFER_SIZE);
    this.#buf = this.#newBuffer();
    this.#view = new DataView(this.#buf.buffer);
  }

  #newBuffer(): Uint8Array {
    const b = new Uint8Array(this.#size);
    this.#ours.add(b.buffer);
    return b;
  }

  /** Bytes put so far. */
  get position(): number {
    return this.#position;
  }

  /** Bytes put but not yet handed to the sink. */
  get pendingBytes(): number {
    return this.#queued + this.#len;
  }

  /** The sink's failure, once a write failed (later puts are dropped). */
  get error(): MigrationError | undefined {
    return this.#error;
  }

  #queueBuffer(): void {
    if (this.#len === 0) return;
    this.#queue.push(this.#buf.subarray(0, this.#len));
    this.#queued += this.#len;
    this.#buf = this.#free.pop() ?? this.#newBuffer();
    this.#view = new DataView(this.#buf.buffer);
    this.#len = 0;
  }

  #reserve(n: number): number {
    if (this.#len + n > this.#size) this.#queueBuffer();
    const at = this.#len;
    this.#len += n;
    this.#position += n;
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

  /** be64 of a non-negative safe integer, without a BigInt (hot paths: RAM record headers). */
  putBe64Number(v: number): void {
    const at = this.#reserve(8);
    this.#view.setUint32(at, Math.floor(v / 0x1_0000_0000));
    this.#view.setUint32(at + 4, v >>> 0);
  }

  /**
   * Reserves `n` bytes (≤ the buffer size) and returns the buffer and the offset to write
   * them at: records are built in place, with no intermediate copy. Write them before any
   * other put.
   */
  reserve(n: number): { buf: Uint8Array; view: DataView; at: number } {
    if (n > this.#size) throw new RangeError(`QEMUFile: reserve(${n}) exceeds the buffer of ${this.#size} bytes`);
    const at = this.#reserve(n);
    return { buf: this.#buf, view: this.#view, at };
  }

  /**
   * {@link reserve} without the result object, for per-page loops: returns the offset in
   * {@link buffer} / {@link view}, which stay valid until the next put.
   */
  reserveOffset(n: number): number {
    if (n > this.#size) throw new RangeError(`QEMUFile: reserve(${n}) exceeds the buffer of ${this.#size} bytes`);
    return this.#reserve(n);
  }

  /** The buffer the last {@link reserveOffset} points into. */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  /** A DataView of {@link buffer}. */
  get view(): DataView {
    return this.#view;
  }

  /** Copies `bytes` (the caller may reuse its array at once). */
  putBytes(bytes: Uint8Array): void {
    if (bytes.length >= this.#size >> 1) {
      this.#queueBuffer();
      this.#queue.push(bytes.slice());
      this.#queued += bytes.length;
      this.#position += bytes.length;
      return;
    }
    const at = this.#reserve(bytes.length);
    this.#buf.set(bytes, at);
  }

  /** u8 length + bytes; fails on strings longer than 255 bytes. */
  putStr8(str: string): void {
    const bytes = utf8.encode(str);
    if (bytes.length > 255) throw new RangeError(`QEMUFile: string of ${bytes.length} bytes does not fit a str8`);
    this.putU8(bytes.length);
    this.putBytes(bytes);
  }

  /** Hands everything put so far to the sink and waits for it. Rejects once a write failed. */
  flush(): Promise<void> {
    this.#queueBuffer();
    this.#tail = this.#tail.then(() => this.#drain());
    return this.#tail;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length !== 0) {
      if (this.#error !== undefined) {
        this.#queue = [];
        this.#queued = 0;
        break;
      }
      const chunk = this.#queue.shift()!;
      this.#queued -= chunk.length;
      const whole = chunk.buffer as ArrayBuffer;
      const release = this.#ours.has(whole) ? () => void (this.#free.length < 32 && this.#free.push(new Uint8Array(whole))) : undefined;
      try {
        await this.#sink.write(chunk, release);
      } catch (e) {
        // The channel's own text, as QEMU's error-desc ("Unable to write to socket: ...").
        this.#error = new ChannelWriteError(describe(e), { cause: e });
      }
    }
    if (this.#error !== undefined) throw this.#error;
  }

  /** Flushes, then closes the sink. */
  async close(): Promise<void> {
    await this.flush();
    await this.#sink.close?.();
  }
}

function chunksOf(source: ByteSource): AsyncIterator<Uint8Array> | Iterator<Uint8Array> {
  if (source instanceof Uint8Array) return [source][Symbol.iterator]();
  if ("getReader" in source && typeof source.getReader === "function") {
    const reader = source.getReader();
    return {
      async next(): Promise<IteratorResult<Uint8Array>> {
        const r = await reader.read();
        return r.done ? { done: true, value: undefined } : { done: false, value: r.value };
      },
    };
  }
  if (Symbol.asyncIterator in source) return (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  return (source as Iterable<Uint8Array>)[Symbol.iterator]();
}

/** The reading half of a QEMUFile. */
export class QemuFileReader implements VMStateInput {
  readonly #chunks: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #start = 0;
  #end = 0;
  #pending: Uint8Array = new Uint8Array(0);
  #done = false;
  #position = 0;

  constructor(source: ByteSource, options: { bufferSize?: number } = {}) {
    this.#chunks = chunksOf(source);
    this.#buf = new Uint8Array(Math.max(1024, options.bufferSize ?? QEMU_FILE_BUFFER_SIZE));
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Stream offset of the next unread byte. */
  get position(): number {
    return this.#position;
  }

  /** Bytes readable now by the synchronous `get*` calls. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Largest `fill(n)`. */
  get bufferSize(): number {
    return this.#buf.length;
  }

  /** Next chunk into `#pending`; false at the end of the stream. */
  async #pull(): Promise<boolean> {
    while (this.#pending.length === 0) {
      if (this.#done) return false;
      let r: IteratorResult<Uint8Array>;
      try {
        r = await this.#chunks.next();
      } catch (e) {
        throw new MigrationError(`QEMUFile: read failed at offset ${this.#position + this.buffered}: ${describe(e)}`, {
          cause: e,
        });
      }
      if (r.done) {
        this.#done = true;
        return false;
      }
      this.#pending = r.value;
    }
    return true;
  }

  /** Buffers up to `n` bytes; returns how many are buffered (fewer only at the end). */
  async #fillUpTo(n: number): Promise<number> {
    if (n > this.#buf.length) {
      throw new RangeError(`QEMUFile: fill(${n}) exceeds the buffer of ${this.#buf.length} bytes`);
    }
    if (this.#start + n > this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    while (this.#end - this.#start < n) {
      if (this.#pending.length === 0 && !(await this.#pull())) break;
      const take = Math.min(this.#pending.length, this.#buf.length - this.#end);
      this.#buf.set(this.#pending.subarray(0, take), this.#end);
      this.#end += take;
      this.#pending = this.#pending.subarray(take);
    }
    return this.#end - this.#start;
  }

  /** Waits until `n` (≤ bufferSize) bytes are buffered; `ShortReadError` if the stream ends first. */
  async fill(n: number, what?: string): Promise<void> {
    if (this.#end - this.#start >= n) return;
    const got = await this.#fillUpTo(n);
    if (got < n) throw new ShortReadError(this.#position, n, got, what === undefined ? "QEMUFile" : `QEMUFile: ${what}`);
  }

  /**
   * The bytes readable now without waiting, contiguous (the buffer's, else the current
   * chunk's): a view, valid until the next read. Hot loops decode records from it in place
   * and then {@link advance}; a record that does not fit goes through the `read*` calls.
   */
  contiguous(): Uint8Array {
    if (this.#end > this.#start) return this.#buf.subarray(this.#start, this.#end);
    return this.#pending;
  }

  /** Consumes `n` bytes of what {@link contiguous} returned. */
  advance(n: number): void {
    if (this.#end > this.#start) {
      if (n > this.#end - this.#start) throw new RangeError(`QEMUFile: advance(${n}) past the buffered bytes`);
      this.#start += n;
    } else {
      if (n > this.#pending.length) throw new RangeError(`QEMUFile: advance(${n}) past the current chunk`);
      this.#pending = this.#pending.subarray(n);
    }
    this.#position += n;
  }

  /** Waits for more bytes when none is readable now; false at the end of the stream. */
  async more(): Promise<boolean> {
    if (this.#end > this.#start || this.#pending.length !== 0) return true;
    return this.#pull();
  }

  /** Up to `n` upcoming bytes, not consumed (a view, valid until the next read). */
  async peek(n: number): Promise<Uint8Array> {
    const got = await this.#fillUpTo(n);
    return this.#buf.subarray(this.#start, this.#start + Math.min(n, got));
  }

  /** Whether the stream has no more bytes. */
  async atEnd(): Promise<boolean> {
    return (await this.#fillUpTo(1)) === 0;
  }

  #take(n: number): number {
    const at = this.#start;
    if (this.#end - at < n) throw new ShortReadError(this.#position, n, this.#end - at, "QEMUFile: unbuffered read");
    this.#start = at + n;
    this.#position += n;
    return at;
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

  /** A copy of the next `n` buffered bytes. */
  getBytes(n: number): Uint8Array {
    const at = this.#take(n);
    return this.#buf.slice(at, at + n);
  }

  async readU8(what?: string): Promise<number> {
    if (this.#end - this.#start < 1) await this.fill(1, what);
    return this.getU8();
  }

  async readU16(what?: string): Promise<number> {
    if (this.#end - this.#start < 2) await this.fill(2, what);
    return this.getBe16();
  }

  async readU32(what?: string): Promise<number> {
    if (this.#end - this.#start < 4) await this.fill(4, what);
    return this.getBe32();
  }

  async readU64(what?: string): Promise<bigint> {
    if (this.#end - this.#start < 8) await this.fill(8, what);
    return this.getBe64();
  }

  /** Reads exactly `dest.length` bytes into `dest`, straight from the source past the buffer. */
  async readInto(dest: Uint8Array, what?: string): Promise<void> {
    const startOffset = this.#position;
    let done = Math.min(dest.length, this.#end - this.#start);
    dest.set(this.#buf.subarray(this.#start, this.#start + done));
    this.#start += done;
    this.#position += done;
    while (done < dest.length) {
      if (this.#pending.length === 0 && !(await this.#pull())) {
        throw new ShortReadError(startOffset, dest.length, done, what === undefined ? "QEMUFile" : `QEMUFile: ${what}`);
      }
      const take = Math.min(this.#pending.length, dest.length - done);
      dest.set(this.#pending.subarray(0, take), done);
      this.#pending = this.#pending.subarray(take);
      done += take;
      this.#position += take;
    }
  }

  /**
   * Reads `n` bytes into a new array; `n` (from the stream) is checked against `max`
   * before anything is allocated.
   */
  async readBytes(n: number, max: number, what?: string): Promise<Uint8Array> {
    if (!Number.isSafeInteger(n) || n < 0 || n > max) {
      throw new MigrationError(`QEMUFile: ${what ?? "length"} ${n} exceeds ${max} at offset ${this.#position}`);
    }
    const out = new Uint8Array(n);
    await this.readInto(out, what);
    return out;
  }

  /** u8 length + that many bytes, decoded as UTF-8 (QEMU's idstrs are ASCII). */
  async readStr8(what?: string): Promise<string> {
    const len = await this.readU8(what);
    if (this.#end - this.#start < len) await this.fill(len, what);
    const at = this.#take(len);
    return new TextDecoder().decode(this.#buf.subarray(at, at + len));
  }

  /** Discards `n` bytes. */
  async skip(n: number, what?: string): Promise<void> {
    const startOffset = this.#position;
    let done = Math.min(n, this.#end - this.#start);
    this.#start += done;
    this.#position += done;
    while (done < n) {
      if (this.#pending.length === 0 && !(await this.#pull())) {
        throw new ShortReadError(startOffset, n, done, what === undefined ? "QEMUFile" : `QEMUFile: ${what}`);
      }
      const take = Math.min(this.#pending.length, n - done);
      this.#pending = this.#pending.subarray(take);
      done += take;
      this.#position += take;
    }
  }
}
