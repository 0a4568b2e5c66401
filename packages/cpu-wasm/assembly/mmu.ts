// Address translation (Sv39/Sv48 with hardware A/D updates), physical accesses (RAM regions,
// MMIO, HTIF tohost), dirty tracking and the soft TLB slow paths.
import {
  H_SATP, H_MSTATUS, H_MMIO_DATA, H_DIRTY_PAGES, H_STOP_REQUEST, H_TLB_FETCH,
  TLB_ENTRIES, TLB_ENTRY_SIZE, EXIT_HTIF, EXIT_STOP, PRV_M, PRV_S, PRV_U,
} from "./hart-layout";
import {
  MA_REGION_COUNT, MA_REGIONS, MA_REGION_SIZE, MA_TOHOST, RG_BASE, RG_SIZE,
  RG_HOST_OFFSET, RG_FLAGS, RG_DIRTY_CLIENTS, RG_BITMAPS, RG_FLAG_READONLY,
} from "./machine-area";
import { MSTATUS_MPRV, MSTATUS_MXR, MSTATUS_SUM } from "./csr-numbers";
import { machineArea, curHart, raise, requestExit, requestCheck, trapPending } from "./state";
import { pmpCheck, pmpPageUniform, PMP_R, PMP_W, PMP_X } from "./pmp";

@external("env", "mmio_read")
declare function mmio_read(hart: u32, addrLo: u32, addrHi: u32, size: u32): u32;
@external("env", "mmio_write")
declare function mmio_write(hart: u32, addrLo: u32, addrHi: u32, size: u32): u32;

export const ACC_FETCH: u32 = 0;
export const ACC_LOAD: u32 = 1;
export const ACC_STORE: u32 = 2;

const PTE_V: u64 = 1;
const PTE_R: u64 = 2;
const PTE_W: u64 = 4;
const PTE_X: u64 = 8;
const PTE_U: u64 = 16;
const PTE_A: u64 = 64;
const PTE_D: u64 = 128;

@inline function pageFault(acc: u32): u64 {
  return acc == ACC_FETCH ? 12 : acc == ACC_LOAD ? 13 : 15;
}

@inline function accessFault(acc: u32): u64 {
  return acc == ACC_FETCH ? 1 : acc == ACC_LOAD ? 5 : 7;
}

@inline function pmpPerm(acc: u32): u32 {
  return acc == ACC_FETCH ? PMP_X : acc == ACC_LOAD ? PMP_R : PMP_W;
}

/** TLB of an access type: fetch, load and store tables follow each other. */
@inline export function tlbBase(hart: usize, acc: u32): usize {
  return hart + H_TLB_FETCH + <usize>acc * (TLB_ENTRIES * TLB_ENTRY_SIZE);
}

@inline export function tlbEntry(hart: usize, acc: u32, va: u64): usize {
  return tlbBase(hart, acc) + ((<usize>(va >> 12) & (TLB_ENTRIES - 1)) << 4);
}

/** The RAM region holding [pa, pa + size), or 0. */
export function findRegion(pa: u64, size: u32): usize {
  const n = load<u32>(machineArea + MA_REGION_COUNT);
  for (let i: u32 = 0; i < n; i++) {
    const r = machineArea + MA_REGIONS + <usize>i * MA_REGION_SIZE;
    const base = load<u64>(r + RG_BASE);
    const off = pa - base;
    if (pa >= base && off < load<u64>(r + RG_SIZE) && off + size <= load<u64>(r + RG_SIZE)) return r;
  }
  return 0;
}

@inline function regionHost(r: usize, pa: u64): usize {
  return <usize>load<u32>(r + RG_HOST_OFFSET) + <usize>(pa - load<u64>(r + RG_BASE));
}

/**
 * Marks the page of `pa` dirty in every client bitmap of region `r`; counts a page that was
 * clean in any of them for the hart.
 */
export function markDirty(hart: usize, r: usize, pa: u64): void {
  const clients = load<u32>(r + RG_DIRTY_CLIENTS);
  if (clients == 0) return;
  const page = (pa - load<u64>(r + RG_BASE)) >> 12;
  const bit: u64 = <u64>1 << (page & 63);
  let fresh = false;
  for (let c: u32 = 0; c < clients; c++) {
    const word = <usize>load<u32>(r + RG_BITMAPS + (<usize>c << 2)) + <usize>((page >> 6) << 3);
    if (!(load<u64>(word) & bit)) {
      atomic.or<u64>(word, bit);
      fresh = true;
    }
  }
  if (fresh) store<u64>(hart + H_DIRTY_PAGES, load<u64>(hart + H_DIRTY_PAGES) + 1);
}

/** Whether the tohost word overlaps [pa, pa + size). */
@inline function hitsTohost(pa: u64, size: u32): bool {
  const t = load<u64>(machineArea + MA_TOHOST);
  return t != 0 && pa < t + 8 && t < pa + size;
}

@inline function isTohostPage(pa: u64): bool {
  const t = load<u64>(machineArea + MA_TOHOST);
  return t != 0 && ((t ^ pa) >> 12) == 0;
}

// ---- translation ----

/** Effective privilege for data accesses (MPRV). */
export function dataPriv(hart: usize, priv: u32): u32 {
  const ms = load<u64>(hart + H_MSTATUS);
  if (priv == PRV_M && (ms & MSTATUS_MPRV)) return <u32>((ms >> 11) & 3);
  return priv;
}

/**
 * Virtual to physical for one access; on a fault raises the exception and returns 0.
 * `priv` is the effective privilege (after MPRV for data).
 */
export function translate(hart: usize, va: u64, acc: u32, priv: u32): u64 {
  const satp = load<u64>(hart + H_SATP);
  const mode = <u32>(satp >> 60);
  if (priv == PRV_M || mode == 0) return va;
  // Sv39 (8), Sv48 (9), Sv57 (10; QEMU 7.2 accepts it too): 3, 4 or 5 levels.
  const levels: i32 = <i32>mode - 5;
  const vabits: u64 = 12 + 9 * <u64>levels;
  if (<u64>((<i64>(va << (64 - vabits))) >> (64 - vabits)) != va) {
    raise(pageFault(acc), va);
    return 0;
  }
  const mstatus = load<u64>(hart + H_MSTATUS);
  let a: u64 = (satp & 0xfff_ffff_ffff) << 12;
  for (let i = levels - 1; i >= 0; i--) {
    const pteAddr = a + (((va >> (12 + 9 * <u64>i)) & 511) << 3);
    if (!pmpCheck(hart, pteAddr, 8, PMP_R, PRV_S)) {
      raise(accessFault(acc), va);
      return 0;
    }
    const r = findRegion(pteAddr, 8);
    if (r == 0) {
      raise(accessFault(acc), va);
      return 0;
    }
    const host = regionHost(r, pteAddr);
    let pte = atomic.load<u64>(host);
    if (!(pte & PTE_V) || ((pte & (PTE_R | PTE_W)) == PTE_W) || (pte >> 54) != 0) {
      raise(pageFault(acc), va);
      return 0;
    }
    const ppn = (pte >> 10) & 0xfff_ffff_ffff;
    if (!(pte & (PTE_R | PTE_X))) {
      // Pointer: QEMU 7.2 faults on A, D or U set in a non-leaf PTE (reserved there).
      if (i == 0 || (pte & (PTE_A | PTE_D | PTE_U))) break;
      a = ppn << 12;
      continue;
    }
    // Leaf: superpage alignment, then permissions.
    if (i > 0 && (ppn & ((<u64>1 << (9 * <u64>i)) - 1)) != 0) break;
    if (priv == PRV_U) {
      if (!(pte & PTE_U)) break;
    } else if (pte & PTE_U) {
      if (acc == ACC_FETCH || !(mstatus & MSTATUS_SUM)) break;
    }
    if (acc == ACC_FETCH) {
      if (!(pte & PTE_X)) break;
    } else if (acc == ACC_LOAD) {
      if (!(pte & PTE_R) && !((mstatus & MSTATUS_MXR) && (pte & PTE_X))) break;
    } else if (!(pte & PTE_W)) {
      break;
    }
    const want = pte | PTE_A | (acc == ACC_STORE ? PTE_D : 0);
    if (want != pte) {
      if (!pmpCheck(hart, pteAddr, 8, PMP_W, PRV_S)) {
        raise(accessFault(acc), va);
        return 0;
      }
      if (atomic.cmpxchg<u64>(host, pte, want) != pte) {
        // Changed under us: walk again from the root.
        return translate(hart, va, acc, priv);
      }
      markDirty(hart, r, pteAddr);
    }
    const mask: u64 = (<u64>1 << (12 + 9 * <u64>i)) - 1;
    return ((ppn << 12) & ~mask) | (va & mask);
  }
  raise(pageFault(acc), va);
  return 0;
}

// ---- physical accesses ----

/** Reads `size` bytes at guest-physical `pa`; fills the TLB entry of `va` when `fill`. */
function physLoad(hart: usize, pa: u64, size: u32, acc: u32, priv: u32, va: u64, fill: bool): u64 {
  if (!pmpCheck(hart, pa, size, pmpPerm(acc), priv)) {
    raise(accessFault(acc), va);
    return 0;
  }
  const r = findRegion(pa, size);
  if (r != 0) {
    const host = regionHost(r, pa);
    if (fill && pmpPageUniform(hart, pa & ~0xfff) && findRegion(pa & ~0xfff, 4096) == r) {
      const e = tlbEntry(hart, acc, va);
      store<u64>(e, (va & ~0xfff) | priv);
      store<u64>(e + 8, <u64>(host & ~0xfff) - (va & ~0xfff));
    }
    switch (size) {
      case 1: return <u64>load<u8>(host);
      case 2: return <u64>load<u16>(host);
      case 4: return <u64>load<u32>(host);
      default: return load<u64>(host);
    }
  }
  if (acc == ACC_FETCH) {
    raise(accessFault(acc), va);
    return 0;
  }
  const mask: u64 = size == 8 ? 0xffff_ffff_ffff_ffff : (<u64>1 << (<u64>size << 3)) - 1;
  const mis = pa & <u64>(size - 1);
  if (mis == 0) return mmioLoad(hart, pa, size, va) & mask;
  // Misaligned MMIO: two aligned reads, as QEMU 7.2's load_helper_unaligned does (a fault
  // reports the aligned address of the part that failed).
  const a1 = pa - mis;
  const r1 = mmioLoad(hart, a1, size, va - mis);
  if (trapPending) return 0;
  const r2 = mmioLoad(hart, a1 + size, size, va - mis + size);
  if (trapPending) return 0;
  const shift = mis << 3;
  return ((r1 >> shift) | (r2 << ((<u64>size << 3) - shift))) & mask;
}

function mmioLoad(hart: usize, pa: u64, size: u32, va: u64): u64 {
  if (mmio_read(curHart, <u32>pa, <u32>(pa >> 32), size) != 0) {
    raise(5, va);
    return 0;
  }
  afterMmio(hart);
  const v = load<u64>(hart + H_MMIO_DATA);
  return size == 8 ? v : v & ((<u64>1 << (<u64>size << 3)) - 1);
}

function afterMmio(hart: usize): void {
  if (atomic.load<u32>(hart + H_STOP_REQUEST)) requestExit(EXIT_STOP);
  // A device may have raised an interrupt line.
  requestCheck();
}

/**
 * Stores `size` bytes at guest-physical `pa` (RAM: marks the page dirty, may fill the store TLB
 * entry of `va`; MMIO: calls the bus); raises access faults.
 */
function physStore(hart: usize, pa: u64, size: u32, value: u64, priv: u32, va: u64, fill: bool): void {
  if (!pmpCheck(hart, pa, size, PMP_W, priv)) {
    raise(7, va);
    return;
  }
  const r = findRegion(pa, size);
  if (r != 0) {
    if (load<u32>(r + RG_FLAGS) & RG_FLAG_READONLY) {
      raise(7, va);
      return;
    }
    const host = regionHost(r, pa);
    markDirty(hart, r, pa);
    switch (size) {
      case 1: store<u8>(host, <u8>value); break;
      case 2: store<u16>(host, <u16>value); break;
      case 4: store<u32>(host, <u32>value); break;
      default: store<u64>(host, value);
    }
    if (hitsTohost(pa, size)) {
      requestExit(EXIT_HTIF);
    } else if (fill && !isTohostPage(pa) && pmpPageUniform(hart, pa & ~0xfff) && findRegion(pa & ~0xfff, 4096) == r) {
      const e = tlbEntry(hart, ACC_STORE, va);
      store<u64>(e, (va & ~0xfff) | priv);
      store<u64>(e + 8, <u64>(host & ~0xfff) - (va & ~0xfff));
    }
    return;
  }
  if ((pa & <u64>(size - 1)) == 0) {
    mmioStore(hart, pa, size, value, va);
    return;
  }
  // Misaligned MMIO: byte by byte in address order, as QEMU 7.2's store_helper_unaligned.
  for (let i: u32 = 0; i < size; i++) {
    mmioStore(hart, pa + i, 1, (value >> (<u64>i << 3)) & 0xff, va + i);
    if (trapPending) return;
  }
}

function mmioStore(hart: usize, pa: u64, size: u32, value: u64, va: u64): void {
  store<u64>(hart + H_MMIO_DATA, value);
  if (mmio_write(curHart, <u32>pa, <u32>(pa >> 32), size) != 0) {
    raise(7, va);
    return;
  }
  afterMmio(hart);
}

// ---- slow paths called from the interpreter loop ----

/** Load of `size` bytes at virtual `va` (zero-extended); raises on faults. */
export function loadSlow(hart: usize, va: u64, size: u32, priv: u32): u64 {
  const off = <u32>va & 0xfff;
  if (off + size > 4096) {
    // Crosses a page: translate both pages first, then read byte by byte.
    const va2 = (va + size) & ~<u64>0xfff;
    const pa1 = translate(hart, va, ACC_LOAD, priv);
    if (trapPendingNow()) return 0;
    const pa2 = translate(hart, va2, ACC_LOAD, priv);
    if (trapPendingNow()) return 0;
    const n1: u32 = 4096 - off;
    let v: u64 = 0;
    for (let i: u32 = 0; i < size; i++) {
      const b = i < n1
        ? physLoad(hart, pa1 + i, 1, ACC_LOAD, priv, va + i, false)
        : physLoad(hart, pa2 + (i - n1), 1, ACC_LOAD, priv, va2 + (i - n1), false);
      if (trapPendingNow()) return 0;
      v |= b << (<u64>i << 3);
    }
    return v;
  }
  const e = tlbEntry(hart, ACC_LOAD, va);
  if (load<u64>(e) == ((va & ~0xfff) | priv)) {
    const host = <usize>(va + load<u64>(e + 8));
    switch (size) {
      case 1: return <u64>load<u8>(host);
      case 2: return <u64>load<u16>(host);
      case 4: return <u64>load<u32>(host);
      default: return load<u64>(host);
    }
  }
  const pa = translate(hart, va, ACC_LOAD, priv);
  if (trapPendingNow()) return 0;
  return physLoad(hart, pa, size, ACC_LOAD, priv, va, true);
}

/** Store of `size` bytes at virtual `va`; raises on faults. */
export function storeSlow(hart: usize, va: u64, size: u32, value: u64, priv: u32): void {
  const off = <u32>va & 0xfff;
  if (off + size > 4096) {
    const va2 = (va + size) & ~<u64>0xfff;
    const pa1 = translate(hart, va, ACC_STORE, priv);
    if (trapPendingNow()) return;
    const pa2 = translate(hart, va2, ACC_STORE, priv);
    if (trapPendingNow()) return;
    const n1: u32 = 4096 - off;
    // Check both pages before any byte is written.
    if (!pmpCheck(hart, pa1, n1, PMP_W, priv)) { raise(7, va); return; }
    if (!pmpCheck(hart, pa2, size - n1, PMP_W, priv)) { raise(7, va2); return; }
    for (let i: u32 = 0; i < size; i++) {
      const b = (value >> (<u64>i << 3)) & 0xff;
      if (i < n1) physStore(hart, pa1 + i, 1, b, priv, va + i, false);
      else physStore(hart, pa2 + (i - n1), 1, b, priv, va2 + (i - n1), false);
      if (trapPendingNow()) return;
    }
    return;
  }
  const pa = translate(hart, va, ACC_STORE, priv);
  if (trapPendingNow()) return;
  physStore(hart, pa, size, value, priv, va, true);
}

/** Fetch slow path result: the page that may be cached by the loop (-1 = none) and its delta. */
export let fetchPage: u64 = 0x7fff_ffff_ffff_f000;
export let fetchDelta: u64 = 0;

function fetch16(hart: usize, va: u64, priv: u32): u32 {
  const e = tlbEntry(hart, ACC_FETCH, va);
  if (load<u64>(e) == ((va & ~0xfff) | priv)) {
    return <u32>load<u16>(<usize>(va + load<u64>(e + 8)));
  }
  const pa = translate(hart, va, ACC_FETCH, priv);
  if (trapPendingNow()) return 0;
  return <u32>physLoad(hart, pa, 2, ACC_FETCH, priv, va, true);
}

/** Fetches the instruction at `pc` (16 or 32 bits); raises on faults. */
export function fetchSlow(hart: usize, pc: u64, priv: u32): u32 {
  fetchPage = 0x7fff_ffff_ffff_f000;
  fetchDelta = 0 - fetchPage;
  const lo = fetch16(hart, pc, priv);
  if (trapPendingNow()) return 0;
  const e = tlbEntry(hart, ACC_FETCH, pc);
  if (load<u64>(e) == ((pc & ~0xfff) | priv)) {
    fetchPage = pc & ~0xfff;
    fetchDelta = load<u64>(e + 8);
  }
  if ((lo & 3) != 3) return lo;
  const hi = fetch16(hart, pc + 2, priv);
  if (trapPendingNow()) return 0;
  return lo | (hi << 16);
}

/**
 * Host address for an atomic access of `size` bytes at `va` (needs write permission, marks
 * the page dirty); raises and returns 0 on faults and for MMIO (access fault).
 */
export function amoHost(hart: usize, va: u64, size: u32, priv: u32): usize {
  const e = tlbEntry(hart, ACC_STORE, va);
  if (load<u64>(e) == ((va & ~0xfff) | priv)) return <usize>(va + load<u64>(e + 8));
  const pa = translate(hart, va, ACC_STORE, priv);
  if (trapPendingNow()) return 0;
  if (!pmpCheck(hart, pa, size, PMP_W | PMP_R, priv)) {
    raise(7, va);
    return 0;
  }
  const r = findRegion(pa, size);
  if (r == 0 || (load<u32>(r + RG_FLAGS) & RG_FLAG_READONLY)) {
    raise(7, va);
    return 0;
  }
  markDirty(hart, r, pa);
  if (hitsTohost(pa, size)) requestExit(EXIT_HTIF);
  return regionHost(r, pa);
}

@inline function trapPendingNow(): bool {
  return trapPending;
}

