// Dirty bitmaps: u64 words, bit i of word w = page 64·w + i (little-endian, as QEMU's).
// Scans have a SIMD version and a scalar twin; sync and test-and-clear are atomic because the
// CPU's store slow path sets bits from another thread (atomic.or).

/** First set bit at or after `start` in a bitmap of `nbits` bits, or `nbits` (QEMU's find_next_bit). */
export function find_next_bit(bitmap: usize, nbits: u32, start: u32): u32 {
  if (start >= nbits) return nbits;
  const words = (nbits + 63) >> 6;
  let w = start >> 6;
  let word = load<u64>(bitmap + (<usize>w << 3)) & (~(<u64>0) << (start & 63));
  if (word != 0) return min(nbits, (w << 6) + <u32>ctz(word));
  w++;
  while (w + 8 <= words) {
    const p = bitmap + (<usize>w << 3);
    const v = v128.or(v128.or(v128.load(p), v128.load(p, 16)), v128.or(v128.load(p, 32), v128.load(p, 48)));
    if (v128.any_true(v)) break;
    w += 8;
  }
  while (w < words) {
    word = load<u64>(bitmap + (<usize>w << 3));
    if (word != 0) return min(nbits, (w << 6) + <u32>ctz(word));
    w++;
  }
  return nbits;
}

/** Scalar twin of {@link find_next_bit}. */
export function find_next_bit_scalar(bitmap: usize, nbits: u32, start: u32): u32 {
  if (start >= nbits) return nbits;
  const words = (nbits + 63) >> 6;
  let w = start >> 6;
  let word = load<u64>(bitmap + (<usize>w << 3)) & (~(<u64>0) << (start & 63));
  for (;;) {
    if (word != 0) return min(nbits, (w << 6) + <u32>ctz(word));
    if (++w >= words) return nbits;
    word = load<u64>(bitmap + (<usize>w << 3));
  }
  return nbits;
}

/** Writes the set bits of `word` (bit 0 = index `base`) below `nbits` to `out` from slot `n`, up to `max`; returns the new count. */
@inline function emitBits(word: u64, base: u32, nbits: u32, out: usize, n: u32, max: u32): u32 {
  while (word != 0 && n < max) {
    const b = base + <u32>ctz(word);
    if (b >= nbits) break;
    store<u32>(out + (<usize>n << 2), b);
    n++;
    word &= word - 1;
  }
  return n;
}

/**
 * Writes the index of every set bit in [start, nbits) to the u32 array at `out`, at most
 * `max` of them, in ascending order; returns how many were written. Continue from the last
 * index + 1 when the result equals `max`. Goes through the bitmap in 64-byte blocks: one
 * v128 test per block, then only the non-zero words of a block (found with i64x2.eq and a
 * bitmask), so the branches follow set bits rather than words.
 */
export function collect_bits(bitmap: usize, nbits: u32, start: u32, out: usize, max: u32): u32 {
  if (start >= nbits || max == 0) return 0;
  const words = (nbits + 63) >> 6;
  let w = start >> 6;
  let n = emitBits(load<u64>(bitmap + (<usize>w << 3)) & (~(<u64>0) << (start & 63)), w << 6, nbits, out, 0, max);
  w++;
  while ((w & 7) != 0 && w < words) {
    n = emitBits(load<u64>(bitmap + (<usize>w << 3)), w << 6, nbits, out, n, max);
    w++;
  }
  if (n >= max) return n;
  const zero = i64x2.splat(0);
  while (w + 8 <= words) {
    const p = bitmap + (<usize>w << 3);
    const a = v128.load(p);
    const b = v128.load(p, 16);
    const c = v128.load(p, 32);
    const d = v128.load(p, 48);
    if (v128.any_true(v128.or(v128.or(a, b), v128.or(c, d)))) {
      let nz = ~(i64x2.bitmask(i64x2.eq(a, zero)) | (i64x2.bitmask(i64x2.eq(b, zero)) << 2) |
        (i64x2.bitmask(i64x2.eq(c, zero)) << 4) | (i64x2.bitmask(i64x2.eq(d, zero)) << 6)) & 0xff;
      while (nz != 0) {
        const k = <u32>ctz(nz);
        n = emitBits(load<u64>(p + (<usize>k << 3)), (w + k) << 6, nbits, out, n, max);
        if (n >= max) return n;
        nz &= nz - 1;
      }
    }
    w += 8;
  }
  while (w < words) {
    n = emitBits(load<u64>(bitmap + (<usize>w << 3)), w << 6, nbits, out, n, max);
    w++;
  }
  return n;
}

/** Scalar twin of {@link collect_bits}: word by word, no SIMD skip of empty words. */
export function collect_bits_scalar(bitmap: usize, nbits: u32, start: u32, out: usize, max: u32): u32 {
  let n: u32 = 0;
  if (start >= nbits || max == 0) return 0;
  const words = (nbits + 63) >> 6;
  let w = start >> 6;
  let word = load<u64>(bitmap + (<usize>w << 3)) & (~(<u64>0) << (start & 63));
  for (;;) {
    while (word != 0) {
      const b = (w << 6) + <u32>ctz(word);
      if (b >= nbits) return n;
      store<u32>(out + (<usize>n << 2), b);
      if (++n >= max) return n;
      word &= word - 1;
    }
    if (++w >= words) return n;
    word = load<u64>(bitmap + (<usize>w << 3));
  }
  return n;
}

/** Set bits in the first `nbits` bits. */
export function count_bits(bitmap: usize, nbits: u32): u32 {
  const full = nbits >> 6;
  let acc = i32x4.splat(0);
  let w: u32 = 0;
  for (; w + 2 <= full; w += 2) {
    const bytes = i8x16.popcnt(v128.load(bitmap + (<usize>w << 3)));
    acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(bytes)));
  }
  let n = <u32>(i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3));
  for (; w < full; w++) n += <u32>popcnt(load<u64>(bitmap + (<usize>w << 3)));
  if ((nbits & 63) != 0) {
    n += <u32>popcnt(load<u64>(bitmap + (<usize>full << 3)) & (((<u64>1) << (nbits & 63)) - 1));
  }
  return n;
}

/** Scalar twin of {@link count_bits}. */
export function count_bits_scalar(bitmap: usize, nbits: u32): u32 {
  const full = nbits >> 6;
  let n: u32 = 0;
  for (let w: u32 = 0; w < full; w++) n += <u32>popcnt(load<u64>(bitmap + (<usize>w << 3)));
  if ((nbits & 63) != 0) {
    n += <u32>popcnt(load<u64>(bitmap + (<usize>full << 3)) & (((<u64>1) << (nbits & 63)) - 1));
  }
  return n;
}

/**
 * Sync: moves every bit of the live bitmap (set by the CPU and device writes) into the
 * client's synced bitmap, clearing the live words with an atomic exchange so a bit set
 * concurrently is either moved now or stays for the next sync. Returns how many bits were
 * newly set in `synced` (QEMU's num_dirty_pages_period).
 */
export function sync_bitmap(live: usize, synced: usize, words: u32): u32 {
  let fresh: u32 = 0;
  for (let w: u32 = 0; w < words; w++) {
    const p = live + (<usize>w << 3);
    if (atomic.load<u64>(p) == 0) continue;
    const bits = atomic.xchg<u64>(p, 0);
    const q = synced + (<usize>w << 3);
    const old = load<u64>(q);
    fresh += <u32>popcnt(bits & ~old);
    store<u64>(q, old | bits);
  }
  return fresh;
}

/** Clears bit `bit`; returns whether it was set (atomic, as QEMU's test_and_clear_bit). */
export function test_and_clear_bit(bitmap: usize, bit: u32): bool {
  const mask = (<u64>1) << (bit & 63);
  return (atomic.and<u64>(bitmap + ((<usize>bit >> 6) << 3), ~mask) & mask) != 0;
}

/** Sets bits [start, start + count) with atomic ORs; returns how many were clear before. */
export function set_bit_range(bitmap: usize, start: u32, count: u32): u32 {
  let fresh: u32 = 0;
  let bit = start;
  const end = start + count;
  while (bit < end) {
    const w = bit >> 6;
    const lo = bit & 63;
    const hi = min<u32>(64, end - (w << 6));
    const mask = (hi == 64 ? ~(<u64>0) : ((<u64>1) << hi) - 1) & (~(<u64>0) << lo);
    const old = atomic.or<u64>(bitmap + (<usize>w << 3), mask);
    fresh += <u32>popcnt(mask & ~old);
    bit = (w + 1) << 6;
  }
  return fresh;
}
