// XBZRLE page delta encoding, byte-exact with QEMU 7.2 (migration/xbzrle.c):
//
//   page  = zrun nzrun | zrun nzrun page
//   zrun  = length                      unchanged bytes (only the first may be 0)
//   nzrun = length byte...              changed bytes, the new values verbatim (length >= 1)
//   length = ULEB128, at most 0x3FFF (one or two bytes)
//
// Runs are maximal, so the encoding of a pair of pages is unique; a trailing zrun is not
// written and an unchanged page encodes to 0 bytes. The encoder checks the output limit at the
// same points as QEMU's (before each length: 2 bytes must fit; before run data: it must fit)
// and returns -1 on overflow, so both give up on exactly the same pages.
// The SIMD encoder keeps a 64-bit "byte equal" mask for a 64-byte chunk and finds run ends
// with ctz; the scalar twin compares u64 words then bytes.

export const XBZRLE_OVERFLOW: i32 = -1;
/** Decoder errors (negative return values). */
export const ERR_TRUNCATED: i32 = -1;
export const ERR_TRUNCATED_ULEB128: i32 = -2;
export const ERR_ULEB128_TOO_LONG: i32 = -3;
export const ERR_ZERO_ZRUN: i32 = -4;
export const ERR_ZERO_NZRUN: i32 = -5;
export const ERR_PAST_PAGE: i32 = -6;
export const ERR_PAST_INPUT: i32 = -7;

@inline function eqMask16(a: usize, b: usize): u64 {
  return <u64>i8x16.bitmask(i8x16.eq(v128.load(a), v128.load(b)));
}

/** Bit k set when old[base + k] == new[base + k]; bytes at or past `slen` count as equal. */
@inline function eqMask(old: usize, cur: usize, base: i32, slen: i32): u64 {
  const a = old + <usize>base;
  const b = cur + <usize>base;
  if (base + 64 <= slen) {
    return eqMask16(a, b) | (eqMask16(a + 16, b + 16) << 16) | (eqMask16(a + 32, b + 32) << 32) | (eqMask16(a + 48, b + 48) << 48);
  }
  return eqMaskTail(a, b, slen - base);
}

function eqMaskTail(a: usize, b: usize, n: i32): u64 {
  let m: u64 = ~(<u64>0) << <u64>n;
  for (let k = 0; k < n; k++) {
    if (load<u8>(a + <usize>k) == load<u8>(b + <usize>k)) m |= (<u64>1) << <u64>k;
  }
  return m;
}

@inline function allEqual64(a: usize, b: usize): bool {
  const x0 = v128.xor(v128.load(a), v128.load(b));
  const x1 = v128.xor(v128.load(a, 16), v128.load(b, 16));
  const x2 = v128.xor(v128.load(a, 32), v128.load(b, 32));
  const x3 = v128.xor(v128.load(a, 48), v128.load(b, 48));
  return !v128.any_true(v128.or(v128.or(x0, x1), v128.or(x2, x3)));
}

@inline function putUleb(dst: usize, n: i32): i32 {
  if (n < 0x80) {
    store<u8>(dst, <u8>n);
    return 1;
  }
  store<u8>(dst, <u8>((n & 0x7f) | 0x80));
  store<u8>(dst + 1, <u8>(n >> 7));
  return 2;
}

/**
 * Encodes the delta from the `slen`-byte page `old` to `cur` into `dst` (at most `dlen`
 * bytes). Returns the encoded length, 0 for an unchanged page, or -1 when the encoding would
 * not fit in `dlen` (QEMU's xbzrle_encode_buffer).
 */
export function xbzrle_encode(old: usize, cur: usize, slen: i32, dst: usize, dlen: i32): i32 {
  let d = 0;
  let i = 0;
  let base = 0;
  let eq = eqMask(old, cur, 0, slen);
  while (i < slen) {
    if (d + 2 > dlen) return XBZRLE_OVERFLOW;
    // zrun: the first changed byte at or after i
    if ((i & ~63) != base) {
      base = i & ~63;
      eq = eqMask(old, cur, base, slen);
    }
    let diff = ~eq & (~(<u64>0) << <u64>(i - base));
    while (diff == 0) {
      base += 64;
      while (base + 64 <= slen && allEqual64(old + <usize>base, cur + <usize>base)) base += 64;
      if (base >= slen) break;
      eq = eqMask(old, cur, base, slen);
      diff = ~eq;
    }
    const zEnd = diff == 0 ? slen : base + <i32>ctz(diff);
    if (i == 0 && zEnd == slen) return 0;
    if (zEnd == slen) return d;
    d += putUleb(dst + <usize>d, zEnd - i);
    i = zEnd;
    if (d + 2 > dlen) return XBZRLE_OVERFLOW;
    // nzrun: the first unchanged byte after i (eq is the mask of i's chunk here)
    let same = eq & (~(<u64>0) << <u64>(i - base));
    while (same == 0) {
      base += 64;
      if (base >= slen) break;
      eq = eqMask(old, cur, base, slen);
      same = eq;
    }
    const nEnd = same == 0 ? slen : min(slen, base + <i32>ctz(same));
    const n = nEnd - i;
    d += putUleb(dst + <usize>d, n);
    if (d + n > dlen) return XBZRLE_OVERFLOW;
    const src = cur + <usize>i;
    const out = dst + <usize>d;
    if (n <= 16 && i + 16 <= slen && d + 16 <= dlen) {
      v128.store(out, v128.load(src));
    } else if (n > 16 && n <= 1024) {
      let k = 0;
      for (; k + 16 <= n; k += 16) v128.store(out + <usize>k, v128.load(src + <usize>k));
      if (k < n) v128.store(out + <usize>(n - 16), v128.load(src + <usize>(n - 16)));
    } else {
      memory.copy(out, src, <usize>n);
    }
    d += n;
    i = nEnd;
  }
  return d;
}

@inline function hasZeroByte(x: u64): bool {
  return ((x - 0x0101010101010101) & ~x & 0x8080808080808080) != 0;
}

/** Scalar twin of {@link xbzrle_encode}: u64 word compares, then bytes. */
export function xbzrle_encode_scalar(old: usize, cur: usize, slen: i32, dst: usize, dlen: i32): i32 {
  let d = 0;
  let i = 0;
  while (i < slen) {
    if (d + 2 > dlen) return XBZRLE_OVERFLOW;
    const zStart = i;
    while (i + 8 <= slen && load<u64>(old + <usize>i) == load<u64>(cur + <usize>i)) i += 8;
    while (i < slen && load<u8>(old + <usize>i) == load<u8>(cur + <usize>i)) i++;
    if (zStart == 0 && i == slen) return 0;
    if (i == slen) return d;
    d += putUleb(dst + <usize>d, i - zStart);
    if (d + 2 > dlen) return XBZRLE_OVERFLOW;
    const nStart = i;
    while (i + 8 <= slen && !hasZeroByte(load<u64>(old + <usize>i) ^ load<u64>(cur + <usize>i))) i += 8;
    while (i < slen && load<u8>(old + <usize>i) != load<u8>(cur + <usize>i)) i++;
    const n = i - nStart;
    d += putUleb(dst + <usize>d, n);
    if (d + n > dlen) return XBZRLE_OVERFLOW;
    for (let k = 0; k < n; k++) store<u8>(dst + <usize>(d + k), load<u8>(cur + <usize>(nStart + k)));
    d += n;
  }
  return d;
}

/**
 * Applies the encoding of `slen` bytes at `src` onto the `dlen`-byte page `dst` (QEMU's
 * xbzrle_decode_buffer). Returns the decoded extent, or a negative ERR_* code; it never
 * writes outside [dst, dst + dlen) (the page may be partly updated on error, as QEMU's).
 */
export function xbzrle_decode(src: usize, slen: i32, dst: usize, dlen: i32): i32 {
  let i = 0;
  let d = 0;
  while (i < slen) {
    if (slen - i < 2) return (load<u8>(src + <usize>i) & 0x80) != 0 ? ERR_TRUNCATED_ULEB128 : ERR_TRUNCATED;
    const zAt = i;
    let count = <i32>load<u8>(src + <usize>i);
    if (count < 0x80) {
      i += 1;
    } else {
      const hi = <i32>load<u8>(src + <usize>i, 1);
      if (hi >= 0x80) return ERR_ULEB128_TOO_LONG;
      count = (count & 0x7f) | (hi << 7);
      i += 2;
    }
    if (zAt != 0 && count == 0) return ERR_ZERO_ZRUN;
    d += count;
    if (d > dlen) return ERR_PAST_PAGE;
    if (slen - i < 2) return slen - i == 1 && (load<u8>(src + <usize>i) & 0x80) != 0 ? ERR_TRUNCATED_ULEB128 : ERR_TRUNCATED;
    count = <i32>load<u8>(src + <usize>i);
    if (count < 0x80) {
      i += 1;
    } else {
      const hi = <i32>load<u8>(src + <usize>i, 1);
      if (hi >= 0x80) return ERR_ULEB128_TOO_LONG;
      count = (count & 0x7f) | (hi << 7);
      i += 2;
    }
    if (count == 0) return ERR_ZERO_NZRUN;
    if (d + count > dlen) return ERR_PAST_PAGE;
    if (i + count > slen) return ERR_PAST_INPUT;
    copyExact(dst + <usize>d, src + <usize>i, count);
    d += count;
    i += count;
  }
  return d;
}

/** Copies exactly n >= 1 bytes, with overlapping wide moves instead of a byte loop. */
@inline function copyExact(out: usize, src: usize, n: i32): void {
  if (n >= 16) {
    if (n > 256) {
      memory.copy(out, src, <usize>n);
      return;
    }
    let k = 0;
    for (; k + 16 <= n; k += 16) v128.store(out + <usize>k, v128.load(src + <usize>k));
    if (k < n) v128.store(out + <usize>(n - 16), v128.load(src + <usize>(n - 16)));
  } else if (n >= 8) {
    const a = load<u64>(src);
    const b = load<u64>(src + <usize>(n - 8));
    store<u64>(out, a);
    store<u64>(out + <usize>(n - 8), b);
  } else if (n >= 4) {
    const a = load<u32>(src);
    const b = load<u32>(src + <usize>(n - 4));
    store<u32>(out, a);
    store<u32>(out + <usize>(n - 4), b);
  } else {
    store<u8>(out, load<u8>(src));
    if (n > 1) store<u8>(out, load<u8>(src, 1), 1);
    if (n > 2) store<u8>(out, load<u8>(src, 2), 2);
  }
}

/** Scalar twin of {@link xbzrle_decode}: the same checks, byte-by-byte copies. */
export function xbzrle_decode_scalar(src: usize, slen: i32, dst: usize, dlen: i32): i32 {
  let i = 0;
  let d = 0;
  let zrun = true;
  while (i < slen) {
    if (slen - i < 2) return (load<u8>(src + <usize>i) & 0x80) != 0 ? ERR_TRUNCATED_ULEB128 : ERR_TRUNCATED;
    const at = i;
    const b0 = <i32>load<u8>(src + <usize>i);
    i++;
    let count = b0 & 0x7f;
    if (b0 >= 0x80) {
      const b1 = <i32>load<u8>(src + <usize>i);
      i++;
      if (b1 >= 0x80) return ERR_ULEB128_TOO_LONG;
      count |= b1 << 7;
    }
    if (zrun) {
      if (at != 0 && count == 0) return ERR_ZERO_ZRUN;
      d += count;
      if (d > dlen) return ERR_PAST_PAGE;
    } else {
      if (count == 0) return ERR_ZERO_NZRUN;
      if (d + count > dlen) return ERR_PAST_PAGE;
      if (i + count > slen) return ERR_PAST_INPUT;
      for (let k = 0; k < count; k++) store<u8>(dst + <usize>(d + k), load<u8>(src + <usize>(i + k)));
      d += count;
      i += count;
    }
    zrun = !zrun;
  }
  return zrun ? d : ERR_TRUNCATED;
}
