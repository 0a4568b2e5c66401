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
