// The physical limits the page kernels are measured against: a read-only pass and a copy.

/** Reads `len` bytes (a multiple of 64) at `ptr` once; returns a fold so the reads stay. */
export function read_pass(ptr: usize, len: usize): u64 {
  let a = i64x2.splat(0);
  let b = i64x2.splat(0);
  const end = ptr + len;
  for (let p = ptr; p < end; p += 64) {
    a = v128.xor(a, v128.xor(v128.load(p), v128.load(p, 16)));
    b = v128.xor(b, v128.xor(v128.load(p, 32), v128.load(p, 48)));
  }
  const x = v128.xor(a, b);
  return i64x2.extract_lane(x, 0) ^ i64x2.extract_lane(x, 1);
}

/** Copies `len` bytes from `src` to `dst` (memory.copy). */
export function copy_pass(dst: usize, src: usize, len: usize): void {
  memory.copy(dst, src, len);
}
