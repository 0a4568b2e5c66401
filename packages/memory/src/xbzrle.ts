/**
 * XBZRLE, QEMU 7.2's page delta format (migration/xbzrle.c):
 *
 * ```
 * page   = zrun nzrun | zrun nzrun page
 * zrun   = length                 unchanged bytes; only the first zrun may be 0
 * nzrun  = length byte...         the new values of changed bytes; length >= 1
 * length = ULEB128 <= 0x3FFF      one or two bytes
 * ```
 *
 * Runs are maximal and a trailing zrun is not written, so a pair of pages has one encoding;
 * an unchanged page encodes to nothing. {@link Xbzrle} runs the AssemblyScript kernels on
 * linear memory; `xbzrleEncode`/`xbzrleDecode` here are the plain TypeScript version (the
 * bench's baseline and a third implementation for the tests).
 */
import type { PageKernelExports } from "./kernels.ts";

/** Why an XBZRLE input was rejected (the decoder's negative return codes). */
export const XbzrleDecodeErrors = {
  [-1]: "input ends inside a run (fewer than 2 bytes left before a length)",
  [-2]: "truncated ULEB128 length at the end of the input",
  [-3]: "ULEB128 length longer than 14 bits",
  [-4]: "zero-length zrun after the first run",
  [-5]: "zero-length nzrun",
  [-6]: "run goes past the end of the page",
  [-7]: "nzrun data goes past the end of the input",
} as const satisfies Record<number, string>;

export class XbzrleError extends Error {
  /** The decoder's return code (-1..-7). */
  readonly code: number;
  constructor(code: number, inputLength: number) {
    const reason = (XbzrleDecodeErrors as Record<number, string>)[code] ?? `error ${code}`;
    super(`XBZRLE page rejected: ${reason} (input of ${inputLength} bytes)`);
    this.name = "XbzrleError";
    this.code = code;
  }
}

function putUleb(dst: Uint8Array, d: number, n: number): number {
  if (n < 0x80) {
    dst[d] = n;
    return 1;
  }
  dst[d] = (n & 0x7f) | 0x80;
  dst[d + 1] = n >> 7;
  return 2;
}

/**
 * Plain TypeScript encoder: writes the delta from `old` to `cur` into `dst` (its length is
 * the limit). Returns the encoded length, 0 for an unchanged page, -1 on overflow.
 */
export function xbzrleEncode(old: Uint8Array, cur: Uint8Array, dst: Uint8Array): number {
  const slen = cur.length;
  const dlen = dst.length;
  let d = 0;
  let i = 0;
  while (i < slen) {
    if (d + 2 > dlen) return -1;
    const zStart = i;
    while (i < slen && old[i] === cur[i]) i++;
    if (zStart === 0 && i === slen) return 0;
    if (i === slen) return d;
    d += putUleb(dst, d, i - zStart);
    if (d + 2 > dlen) return -1;
    const nStart = i;
    while (i < slen && old[i] !== cur[i]) i++;
    const n = i - nStart;
    d += putUleb(dst, d, n);
    if (d + n > dlen) return -1;
    dst.set(cur.subarray(nStart, i), d);
    d += n;
  }
  return d;
}

/** Plain TypeScript decoder: returns the decoded extent or a negative error code (see {@link XbzrleDecodeErrors}). */
export function xbzrleDecodeRaw(src: Uint8Array, page: Uint8Array): number {
  const slen = src.length;
  const dlen = page.length;
  let i = 0;
  let d = 0;
  let zrun = true;
  while (i < slen) {
    if (slen - i < 2) return (src[i]! & 0x80) !== 0 ? -2 : -1;
    const at = i;
    let count = src[i]! & 0x7f;
    if (src[i++]! >= 0x80) {
      if (src[i]! >= 0x80) return -3;
      count |= src[i++]! << 7;
    }
    if (zrun) {
      if (at !== 0 && count === 0) return -4;
      d += count;
      if (d > dlen) return -6;
    } else {
      if (count === 0) return -5;
      if (d + count > dlen) return -6;
      if (i + count > slen) return -7;
      page.set(src.subarray(i, i + count), d);
      d += count;
      i += count;
    }
    zrun = !zrun;
  }
  return zrun ? d : -1;
}

/** Plain TypeScript decoder that throws {@link XbzrleError}. */
export function xbzrleDecode(src: Uint8Array, page: Uint8Array): number {
  const r = xbzrleDecodeRaw(src, page);
  if (r < 0) throw new XbzrleError(r, src.length);
  return r;
}

/**
 * XBZRLE on linear memory with the SIMD kernels. Offsets are in the VM's memory; `scratch`
 * (3 pages) is where {@link encode} writes (up to 2 pages) and stages an old page that is not
 * in linear memory, and where {@link decode} stages its input.
 */
export class Xbzrle {
  readonly pageSize: number;
  #kernels: PageKernelExports;
  #memory: WebAssembly.Memory;
  #scratch: number;

  constructor(kernels: PageKernelExports, memory: WebAssembly.Memory, options: { scratch: number; pageSize?: number }) {
    this.#kernels = kernels;
    this.#memory = memory;
    this.#scratch = options.scratch;
    this.pageSize = options.pageSize ?? 4096;
  }

  /**
   * Encodes the page at `cur` against the old copy `old` (an offset in linear memory, or the
   * bytes, e.g. from {@link XbzrleCache.get}). Returns the encoding (a view of
   * the scratch buffer, valid until the next call; empty for an unchanged page) or undefined
   * when it would not fit in `limit` bytes (default: one page, QEMU's rule).
   */
  encode(old: number | Uint8Array, cur: number, limit = this.pageSize): Uint8Array | undefined {
    if (limit > this.pageSize * 2) throw new RangeError(`limit ${limit} exceeds the scratch area (${this.pageSize * 2} bytes)`);
    let oldOffset: number;
    if (typeof old === "number") {
      oldOffset = old;
    } else if (old.buffer === this.#memory.buffer) {
      oldOffset = old.byteOffset;
    } else {
      // a cached copy outside linear memory: staged after the output area
      oldOffset = this.#scratch + this.pageSize * 2;
      new Uint8Array(this.#memory.buffer, oldOffset, this.pageSize).set(old.subarray(0, this.pageSize));
    }
    const n = this.#kernels.xbzrle_encode(oldOffset, cur, this.pageSize, this.#scratch, limit);
    if (n < 0) return undefined;
    return new Uint8Array(this.#memory.buffer, this.#scratch, n);
  }

  /** Applies `encoded` onto the page at `page`; throws {@link XbzrleError} on a malformed input. */
  decode(encoded: Uint8Array, page: number): number {
    const inMemory = encoded.buffer === this.#memory.buffer;
    const src = inMemory ? encoded.byteOffset : this.#scratch;
    if (!inMemory) new Uint8Array(this.#memory.buffer, src, encoded.length).set(encoded);
    const r = this.#kernels.xbzrle_decode(src, encoded.length, page, this.pageSize);
    if (r < 0) throw new XbzrleError(r, encoded.length);
    return r;
  }
}
