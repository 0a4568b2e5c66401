// xxHash64 (XXH64, seed 0 by default) over guest RAM in place, and a SIMD twin whose four
// lanes live in two i64x2 vectors. Both give the reference XXH64 value.

const P1: u64 = 0x9E3779B185EBCA87;
const P2: u64 = 0xC2B2AE3D27D4EB4F;
const P3: u64 = 0x165667B19E3779F9;
const P4: u64 = 0x85EBCA77C2B2AE63;
const P5: u64 = 0x27D4EB2F165667C5;

@inline function round(acc: u64, input: u64): u64 {
  return rotl<u64>(acc + input * P2, 31) * P1;
}

@inline function mergeRound(acc: u64, val: u64): u64 {
  return (acc ^ round(0, val)) * P1 + P4;
}

function finish(h: u64, p: usize, end: usize): u64 {
  while (p + 8 <= end) {
    h = rotl<u64>(h ^ round(0, load<u64>(p)), 27) * P1 + P4;
    p += 8;
  }
  if (p + 4 <= end) {
    h = rotl<u64>(h ^ (<u64>load<u32>(p) * P1), 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h = rotl<u64>(h ^ (<u64>load<u8>(p) * P5), 11) * P1;
    p++;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

function merge(v1: u64, v2: u64, v3: u64, v4: u64): u64 {
  let h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
  h = mergeRound(h, v1);
  h = mergeRound(h, v2);
  h = mergeRound(h, v3);
  return mergeRound(h, v4);
}

/** XXH64 of `len` bytes at `ptr` (scalar). */
export function xxh64_scalar(ptr: usize, len: usize, seed: u64): u64 {
  const end = ptr + len;
  let p = ptr;
  let h: u64;
  if (len >= 32) {
    let v1 = seed + P1 + P2;
    let v2 = seed + P2;
    let v3 = seed;
    let v4 = seed - P1;
    const limit = end - 32;
    while (p + 64 <= end) {
      v1 = round(v1, load<u64>(p));
      v2 = round(v2, load<u64>(p, 8));
      v3 = round(v3, load<u64>(p, 16));
      v4 = round(v4, load<u64>(p, 24));
      v1 = round(v1, load<u64>(p, 32));
      v2 = round(v2, load<u64>(p, 40));
      v3 = round(v3, load<u64>(p, 48));
      v4 = round(v4, load<u64>(p, 56));
      p += 64;
    }
    while (p <= limit) {
      v1 = round(v1, load<u64>(p));
      v2 = round(v2, load<u64>(p, 8));
      v3 = round(v3, load<u64>(p, 16));
      v4 = round(v4, load<u64>(p, 24));
      p += 32;
    }
    h = merge(v1, v2, v3, v4);
  } else {
    h = seed + P5;
  }
  return finish(h + <u64>len, p, end);
}

@inline function roundX2(acc: v128, input: v128, p1: v128, p2: v128): v128 {
  const a = i64x2.add(acc, i64x2.mul(input, p2));
  return i64x2.mul(v128.or(i64x2.shl(a, 31), i64x2.shr_u(a, 33)), p1);
}

/** XXH64 of `len` bytes at `ptr`: the 32-byte stripes in two i64x2 accumulators. */
export function xxh64(ptr: usize, len: usize, seed: u64): u64 {
  const end = ptr + len;
  let p = ptr;
  let h: u64;
  if (len >= 32) {
    const p1 = i64x2.splat(P1);
    const p2 = i64x2.splat(P2);
    let a = i64x2.replace_lane(i64x2.splat(seed + P1 + P2), 1, seed + P2);
    let b = i64x2.replace_lane(i64x2.splat(seed), 1, seed - P1);
    const limit = end - 32;
    do {
      a = roundX2(a, v128.load(p), p1, p2);
      b = roundX2(b, v128.load(p, 16), p1, p2);
      p += 32;
    } while (p <= limit);
    h = merge(i64x2.extract_lane(a, 0), i64x2.extract_lane(a, 1), i64x2.extract_lane(b, 0), i64x2.extract_lane(b, 1));
  } else {
    h = seed + P5;
  }
  return finish(h + <u64>len, p, end);
}

@inline function lanesDone(v1: u64, v2: u64, v3: u64, v4: u64, len: u64): u64 {
  let h = merge(v1, v2, v3, v4) + len;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

/**
 * XXH64 (seed 0) of each of `pages` pages of `pageSize` bytes (a multiple of 32) from `ptr`,
 * stored as u64 at `out`: the page hash for end-to-end RAM checks. Four pages are hashed side
 * by side, 16 independent multiply chains and four memory streams, which keeps the loads in
 * flight (WebAssembly has no prefetch) so the hash runs at memory speed.
 */
export function xxh64_pages(ptr: usize, pages: u32, pageSize: u32, out: usize): void {
  const ps = <usize>pageSize;
  let pg: u32 = 0;
  for (; pg + 4 <= pages; pg += 4) {
    const base = ptr + <usize>pg * ps;
    let a1 = P1 + P2, a2 = P2, a3: u64 = 0, a4: u64 = 0 - P1;
    let b1 = P1 + P2, b2 = P2, b3: u64 = 0, b4: u64 = 0 - P1;
    let c1 = P1 + P2, c2 = P2, c3: u64 = 0, c4: u64 = 0 - P1;
    let d1 = P1 + P2, d2 = P2, d3: u64 = 0, d4: u64 = 0 - P1;
    for (let o: usize = 0; o < ps; o += 32) {
      const a = base + o;
      const b = a + ps;
      const c = b + ps;
      const d = c + ps;
      a1 = round(a1, load<u64>(a));
      b1 = round(b1, load<u64>(b));
      c1 = round(c1, load<u64>(c));
      d1 = round(d1, load<u64>(d));
      a2 = round(a2, load<u64>(a, 8));
      b2 = round(b2, load<u64>(b, 8));
      c2 = round(c2, load<u64>(c, 8));
      d2 = round(d2, load<u64>(d, 8));
      a3 = round(a3, load<u64>(a, 16));
      b3 = round(b3, load<u64>(b, 16));
      c3 = round(c3, load<u64>(c, 16));
      d3 = round(d3, load<u64>(d, 16));
      a4 = round(a4, load<u64>(a, 24));
      b4 = round(b4, load<u64>(b, 24));
      c4 = round(c4, load<u64>(c, 24));
      d4 = round(d4, load<u64>(d, 24));
    }
    const q = out + (<usize>pg << 3);
    store<u64>(q, lanesDone(a1, a2, a3, a4, ps));
    store<u64>(q, lanesDone(b1, b2, b3, b4, ps), 8);
    store<u64>(q, lanesDone(c1, c2, c3, c4, ps), 16);
    store<u64>(q, lanesDone(d1, d2, d3, d4, ps), 24);
  }
  for (; pg < pages; pg++) store<u64>(out + (<usize>pg << 3), xxh64_scalar(ptr + <usize>pg * ps, ps, 0));
}

/** Twin of {@link xxh64_pages}: one page at a time. */
export function xxh64_pages_scalar(ptr: usize, pages: u32, pageSize: u32, out: usize): void {
  for (let pg: u32 = 0; pg < pages; pg++) {
    store<u64>(out + (<usize>pg << 3), xxh64_scalar(ptr + <usize>pg * <usize>pageSize, pageSize, 0));
  }
}
