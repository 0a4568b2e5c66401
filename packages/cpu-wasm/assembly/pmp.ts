// Physical memory protection (privileged spec 1.12 §3.7): 16 entries, granularity 4 bytes.
import { H_PMPCFG0, H_PMPADDR, H_ISA_OFF, ISA_OFF_PMP, PRV_M } from "./hart-layout";

export const PMP_R: u32 = 1;
export const PMP_W: u32 = 2;
export const PMP_X: u32 = 4;
const PMP_A_SHIFT: u32 = 3;
const PMP_A_OFF: u32 = 0;
const PMP_A_TOR: u32 = 1;
const PMP_A_NA4: u32 = 2;
export const PMP_L: u32 = 0x80;

/** cfg byte of entry i (pmpcfg0 holds 0..7, pmpcfg2 8..15). */
@inline export function pmpCfg(hart: usize, i: u32): u32 {
  return <u32>load<u8>(hart + H_PMPCFG0 + <usize>((i >> 3) << 3) + <usize>(i & 7));
}

// Range of entry i as [lo, hi) in bytes; hi == lo means it matches nothing.
let rangeLo: u64 = 0;
let rangeHi: u64 = 0;

function entryRange(hart: usize, i: u32, cfg: u32): bool {
  const a = (cfg >> PMP_A_SHIFT) & 3;
  if (a == PMP_A_OFF) return false;
  const addr = load<u64>(hart + H_PMPADDR + (<usize>i << 3));
  if (a == PMP_A_TOR) {
    rangeLo = i == 0 ? 0 : load<u64>(hart + H_PMPADDR + (<usize>(i - 1) << 3)) << 2;
    rangeHi = addr << 2;
    return rangeLo < rangeHi;
  }
  if (a == PMP_A_NA4) {
    rangeLo = addr << 2;
    rangeHi = rangeLo + 4;
    return true;
  }
  // NAPOT: trailing ones of pmpaddr give the size.
  const t = ctz<u64>(~addr);
  if (t >= 54) {
    rangeLo = 0;
    rangeHi = 0xffff_ffff_ffff_ffff;
    return true;
  }
  const size: u64 = <u64>1 << (t + 3);
  rangeLo = (addr << 2) & ~(size - 1);
  rangeHi = rangeLo + size;
  return true;
}

export function pmpAnyActive(hart: usize): bool {
  return (load<u64>(hart + H_PMPCFG0) | load<u64>(hart + H_PMPCFG0 + 8)) & 0x1818_1818_1818_1818 ? true : false;
}

/** Whether the hart has PMP (pmp=off: no CSRs, every access allowed, as QEMU 7.2). */
@inline export function pmpPresent(hart: usize): bool {
  return (load<u32>(hart + H_ISA_OFF) & ISA_OFF_PMP) == 0;
}

/** Whether an access of `size` bytes at `pa` with permission `perm` is allowed to `priv`. */
export function pmpCheck(hart: usize, pa: u64, size: u32, perm: u32, priv: u32): bool {
  if (!pmpPresent(hart)) return true;
  const end = pa + size;
  for (let i: u32 = 0; i < 16; i++) {
    const cfg = pmpCfg(hart, i);
    if (!entryRange(hart, i, cfg)) continue;
    const lo = rangeLo, hi = rangeHi;
    if (end <= lo || pa >= hi) continue;
    if (pa < lo || end > hi) return false; // partial match fails
    if (priv == PRV_M && !(cfg & PMP_L)) return true;
    return (cfg & perm) == perm;
  }
  return priv == PRV_M;
}

/** Whether every byte of the 4 KiB page at `page` gets the same answer as its first byte. */
export function pmpPageUniform(hart: usize, page: u64): bool {
  const end = page + 4096;
  for (let i: u32 = 0; i < 16; i++) {
    const cfg = pmpCfg(hart, i);
    if (!entryRange(hart, i, cfg)) continue;
    const lo = rangeLo, hi = rangeHi;
    if (end <= lo || page >= hi) continue;
    return lo <= page && end <= hi;
  }
  return true;
}
