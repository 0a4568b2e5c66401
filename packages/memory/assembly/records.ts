// The RAM section's zero-page records, read in bulk on the incoming side.
import { buffer_is_zero } from "./zero";

/**
 * Applies a run of QEMU RAM zero-page records (be64 page offset | ZERO|CONTINUE, fill byte 0)
 * at `src` (`len` bytes) to the block at `host` (`pages` pages): a page that was written
 * (its bit set in `touched`, or any page when `touched` is 0) and is not zero is cleared; a never-written page is zero already and is left alone (QEMU's
 * ram_handle_compressed). Stops before anything else — another kind or flag, a non-zero fill
 * byte, an offset outside the block, a record cut by the end — and returns the bytes it
 * consumed; the caller reads the rest with every check.
 */
export function load_zero_records(src: usize, len: u32, host: usize, pages: u32, touched: usize, flags: u32): u32 {
  let i: u32 = 0;
  while (len - i >= 9) {
    const p = src + <usize>i;
    if (load<u32>(p) != 0) break;
    const lo = bswap<u32>(load<u32>(p + 4));
    if ((lo & 0xfff) != flags || load<u8>(p + 8) != 0) break;
    const page = lo >> 12;
    if (page >= pages) break;
    const w = touched + (<usize>(page >> 5) << 2);
    const bit = <u32>1 << (page & 31);
    if (touched == 0 || (atomic.load<u32>(w) & bit) != 0) {
      const at = host + (<usize>page << 12);
      if (!buffer_is_zero(at, 4096)) memory.fill(at, 0, 4096); // still marked written

    }
    i += 9;
  }
  return i;
}

/**
 * The RAM section's records for `n` listed pages of one block (u32 page indices at `list`, each
 * set in `bitmap`; bit `page - first` of `zeros` says the page is zero): clears each page's bit
 * and writes, at `out`, a zero-page record (be64 offset | `zeroFlags`, fill byte 0) or a page
 * record (be64 offset | `pageFlags`, the 4096 bytes, copied with memory.copy). Stores the
 * number of page records at `normals`; returns the bytes written.
 */
export function page_run_records(
  bitmap: usize, list: usize, n: u32, zeros: usize, first: u32, host: usize,
  zeroFlags: u32, pageFlags: u32, out: usize, normals: usize,
): u32 {
  let o = out;
  let normal: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const page = load<u32>(list + (<usize>i << 2));
    const wp = bitmap + (<usize>(page >> 5) << 2);
    store<u32>(wp, load<u32>(wp) & ~(<u32>1 << (page & 31)));
    const rel = page - first;
    const zero = (load<u32>(zeros + (<usize>(rel >> 5) << 2)) >> (rel & 31)) & 1;
    store<u32>(o, 0);
    if (zero != 0) {
      store<u32>(o + 4, bswap<u32>((page << 12) | zeroFlags));
      store<u8>(o + 8, 0);
      o += 9;
    } else {
      store<u32>(o + 4, bswap<u32>((page << 12) | pageFlags));
      memory.copy(o + 8, host + (<usize>page << 12), 4096);
      o += 4104;
      normal++;
    }
  }
  store<u32>(normals, normal);
  return <u32>(o - out);
}
