// Zero-page detection (QEMU's buffer_is_zero): SIMD and its scalar twin.

/** True when `len` bytes at `ptr` are all zero. */
export function buffer_is_zero(ptr: usize, len: usize): bool {
  const end = ptr + len;
  let p = ptr;
  while (p + 64 <= end) {
    const a = v128.or(v128.load(p), v128.load(p, 16));
    const b = v128.or(v128.load(p, 32), v128.load(p, 48));
    if (v128.any_true(v128.or(a, b))) return false;
    p += 64;
  }
  while (p + 16 <= end) {
    if (v128.any_true(v128.load(p))) return false;
    p += 16;
  }
  while (p < end) {
    if (load<u8>(p) != 0) return false;
    p++;
  }
  return true;
}

/** Scalar twin of {@link buffer_is_zero}: u64 words, then bytes. */
export function buffer_is_zero_scalar(ptr: usize, len: usize): bool {
  const end = ptr + len;
  let p = ptr;
  while (p + 32 <= end) {
    if ((load<u64>(p) | load<u64>(p, 8) | load<u64>(p, 16) | load<u64>(p, 24)) != 0) return false;
    p += 32;
  }
  while (p + 8 <= end) {
    if (load<u64>(p) != 0) return false;
    p += 8;
  }
  while (p < end) {
    if (load<u8>(p) != 0) return false;
    p++;
  }
  return true;
}

/**
 * Scans `pages` pages of `pageSize` bytes from `ptr` and sets bit i of the u64 bitmap at
 * `out` for each zero page i (clearing the others); returns the number of zero pages.
 */
export function zero_page_scan(ptr: usize, pages: u32, pageSize: u32, out: usize): u32 {
  let zeros: u32 = 0;
  let word: u64 = 0;
  for (let i: u32 = 0; i < pages; i++) {
    if (buffer_is_zero(ptr + <usize>i * pageSize, pageSize)) {
      word |= (<u64>1) << (i & 63);
      zeros++;
    }
    if ((i & 63) == 63 || i + 1 == pages) {
      store<u64>(out + ((<usize>i >> 6) << 3), word);
      word = 0;
    }
  }
  return zeros;
}
