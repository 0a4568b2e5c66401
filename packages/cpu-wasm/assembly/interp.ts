// The interpreter loop: fetch (cached code page), decode with one dense switch on the major
// opcode and funct3 (compressed instructions get their own 24 keys and run directly), execute.
// Fast paths inline, slow paths (TLB misses, MMIO, traps, CSRs, atomics) out of line.
import {
  H_PC, H_PRIV, H_MINSTRET, H_MCYCLE, H_WFI, H_FLUSH_REQUEST, H_STOP_REQUEST,
  H_LAST_RETIRED, H_TLB_LOAD, H_TLB_STORE, H_RUN_REST, H_RUN_COUNTED, H_RUN_KEY, H_RUN_INSN, H_RUN_PRE_PC, EXIT_BUDGET, EXIT_WFI, EXIT_STOP,
  H_ISA_OFF, ISA_OFF_M, ISA_OFF_C, ISA_OFF_ZIFENCEI,
} from "./hart-layout";
import {
  hartBase, setCurHart, clearEvents, clearExit, eventPending, trapPending, trapCause,
  trapTval, exitReason, flushStoreTlb,
} from "./state";
import { loadSlow, storeSlow, fetchSlow, fetchPage, fetchDelta, dataPriv } from "./mmu";
import { takeTrap, pendingInterrupt, takeInterrupt, wfiWakes } from "./trap";
import { execAmo, execSystem, newPc, X_NEXT, X_ILLEGAL, X_JUMP } from "./system";

/**
 * The cached code page when there is none: no fetch can succeed there (non-canonical for Sv39
 * and Sv48, above 56-bit physical addresses), and its delta maps it onto the zeroed guard page
 * at linear address 0, so a fetch "hit" yields 0, an illegal encoding, whose handler then
 * re-fetches through the slow path and raises the real fault.
 */
const NO_PAGE: u64 = 0x7fff_ffff_ffff_f000;
const NO_PAGE_DELTA: u64 = 0 - NO_PAGE;
/** Switch key of an illegal encoding. */
const BAD: u32 = 0xffff;
/** Instructions between safe points (flush requests, interrupts). */
const CHUNK: i32 = 4096;
/** Inner-loop exits that are not instructions: the chunk is done, the fetch missed. */
const K_DONE: u32 = 0x10000;
const K_FETCH: u32 = 0x10001;

/**
 * Hart 0's block at the standard layout (packages/memory), which every hart block is at or
 * above: the loop's copy for hart 0 gets it as a constant (see run), and hart-block accesses
 * address `h - HART0_BASE` with HART0_BASE in the instruction's immediate offset, so that copy
 * computes no base at all.
 */
const HART0_BASE: usize = 0x0010_0000;

// Register file access by byte offset (register number << 3).
@inline function xo(h: usize, off: u32): u64 {
  return load<u64>(<usize>off + (h - HART0_BASE), HART0_BASE);
}
@inline function setXo(h: usize, off: u32, v: u64): void {
  if (off != 0) store<u64>(<usize>off + (h - HART0_BASE), v, HART0_BASE);
}
/** setXo for a register known not to be x0. */
@inline function setXr(h: usize, off: u32, v: u64): void {
  store<u64>(<usize>off + (h - HART0_BASE), v, HART0_BASE);
}
// 32-bit formats: rs1, rs2, rd offsets.
@inline function rs1o(insn: u32): u32 {
  return (insn >> 12) & 0xf8;
}
@inline function rs2o(insn: u32): u32 {
  return (insn >> 17) & 0xf8;
}
@inline function rdo(insn: u32): u32 {
  return (insn >> 4) & 0xf8;
}
// Compressed formats: full rd/rs1 (bits 11:7), full rs2 (6:2), rd'/rs2' (4:2), rs1' (9:7).
@inline function crdo(c: u32): u32 {
  return (c >> 4) & 0xf8;
}
@inline function crs2o(c: u32): u32 {
  return (c << 1) & 0xf8;
}
@inline function crdpo(c: u32): u32 {
  return 64 + ((c << 1) & 0x38);
}
@inline function crs1po(c: u32): u32 {
  return 64 + ((c >> 4) & 0x38);
}

@inline function immI(insn: u32): u64 {
  return <u64>(<i64>((<i32>insn) >> 20));
}
@inline function immS(insn: u32): u64 {
  return <u64>(<i64>((((<i32>insn) >> 20) & ~31) | <i32>((insn >> 7) & 31)));
}
@inline function immB(insn: u32): u64 {
  return <u64>(<i64>(((<i32>(insn & 0x8000_0000)) >> 19) | <i32>(((insn & 0x80) << 4) |
    ((insn >> 20) & 0x7e0) | ((insn >> 7) & 0x1e))));
}
@inline function immJ(insn: u32): u64 {
  return <u64>(<i64>(((<i32>(insn & 0x8000_0000)) >> 11) | <i32>((insn & 0xff000) |
    ((insn >> 9) & 0x800) | ((insn >> 20) & 0x7fe))));
}
@inline function immU(insn: u32): u64 {
  return <u64>(<i64>(<i32>(insn & 0xffff_f000)));
}
@inline function sext(v: u32, bits: u32): u64 {
  return <u64>(<i64>((<i32>(v << (32 - bits))) >> (32 - bits)));
}
/** CI-format 6-bit signed immediate (bit 12, bits 6:2). */
@inline function cimm6(c: u32): u64 {
  return sext(((c >> 7) & 0x20) | ((c >> 2) & 0x1f), 6);
}
@inline function cshamt(c: u32): u64 {
  return <u64>(((c >> 7) & 0x20) | ((c >> 2) & 0x1f));
}
/** c.lw/c.sw offset. */
@inline function cwimm(c: u32): u64 {
  return <u64>((((c >> 10) & 7) << 3) | (((c >> 6) & 1) << 2) | (((c >> 5) & 1) << 6));
}
/** c.ld/c.sd offset. */
@inline function cdimm(c: u32): u64 {
  return <u64>((((c >> 10) & 7) << 3) | (((c >> 5) & 3) << 6));
}
@inline function cjimm(c: u32): u64 {
  return sext((((c >> 12) & 1) << 11) | (((c >> 11) & 1) << 4) | (((c >> 9) & 3) << 8) |
    (((c >> 8) & 1) << 10) | (((c >> 7) & 1) << 6) | (((c >> 6) & 1) << 7) |
    (((c >> 3) & 7) << 1) | (((c >> 2) & 1) << 5), 12);
}
@inline function cbimm(c: u32): u64 {
  return sext((((c >> 12) & 1) << 8) | (((c >> 10) & 3) << 3) | (((c >> 5) & 3) << 6) |
    (((c >> 3) & 3) << 1) | (((c >> 2) & 1) << 5), 9);
}
@inline function sext32(v: u64): u64 {
  return <u64>(<i64>(<i32>v));
}

/**
 * Load through the load TLB into register offset `rd`; true when the fast path hit. The tag
 * compare uses the page of the access's last byte, so an access crossing into the next page
 * misses (that page's tag lives in another entry). Misses, page crossings, MMIO and faults leave
 * the inner loop for execSlow.
 */
@inline function ldr<T>(h: usize, va: u64, dpriv: u32, rd: u32): bool {
  const e = (<usize>((<u32>va >> 8) & 0x3ff0)) + (h - HART0_BASE);
  if (load<u64>(e, HART0_BASE + H_TLB_LOAD) == (((va + (sizeof<T>() - 1)) & ~<u64>0xfff) | dpriv)) {
    setXo(h, rd, <u64>load<T>(<usize>va + <usize>load<u32>(e, HART0_BASE + H_TLB_LOAD + 8)));
    return true;
  }
  return false;
}

function loadSlowTo(h: usize, va: u64, size: u32, signed: bool, dpriv: u32, rd: u32): void {
  let v = loadSlow(h, va, size, dpriv);
  if (trapPending) return;
  if (signed && size != 8) {
    const sh = <u64>(64 - (size << 3));
    v = <u64>((<i64>(v << sh)) >> <i64>sh);
  }
  setXo(h, rd, v);
}

/**
 * Store through the store TLB (filled only for pages already dirty in every client bitmap);
 * true when the fast path hit, as ldr.
 */
@inline function str<T>(h: usize, va: u64, v: u64, dpriv: u32): bool {
  const e = (<usize>((<u32>va >> 8) & 0x3ff0)) + (h - HART0_BASE);
  if (load<u64>(e, HART0_BASE + H_TLB_STORE) == (((va + (sizeof<T>() - 1)) & ~<u64>0xfff) | dpriv)) {
    store<T>(<usize>va + <usize>load<u32>(e, HART0_BASE + H_TLB_STORE + 8), <T>v);
    return true;
  }
  return false;
}

function mulhu(a: u64, b: u64): u64 {
  const al = a & 0xffff_ffff, ah = a >> 32, bl = b & 0xffff_ffff, bh = b >> 32;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >> 32) + (lh & 0xffff_ffff) + (hl & 0xffff_ffff);
  return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
}
function mulh(a: u64, b: u64): u64 {
  let r = mulhu(a, b);
  if (<i64>a < 0) r -= b;
  if (<i64>b < 0) r -= a;
  return r;
}
function mulhsu(a: u64, b: u64): u64 {
  let r = mulhu(a, b);
  if (<i64>a < 0) r -= b;
  return r;
}
function div64(a: u64, b: u64): u64 {
  if (b == 0) return 0xffff_ffff_ffff_ffff;
  if (a == 0x8000_0000_0000_0000 && b == 0xffff_ffff_ffff_ffff) return a;
  return <u64>(<i64>a / <i64>b);
}
function rem64(a: u64, b: u64): u64 {
  if (b == 0) return a;
  if (a == 0x8000_0000_0000_0000 && b == 0xffff_ffff_ffff_ffff) return 0;
  return <u64>(<i64>a % <i64>b);
}
function divw(a: u64, b: u64): u64 {
  const x = <i32>a, y = <i32>b;
  if (y == 0) return 0xffff_ffff_ffff_ffff;
  if (x == i32.MIN_VALUE && y == -1) return sext32(<u64>x);
  return <u64>(<i64>(x / y));
}
function remw(a: u64, b: u64): u64 {
  const x = <i32>a, y = <i32>b;
  if (y == 0) return <u64>(<i64>x);
  if (x == i32.MIN_VALUE && y == -1) return 0;
  return <u64>(<i64>(x % y));
}
function divuw(a: u64, b: u64): u64 {
  const x = <u32>a, y = <u32>b;
  if (y == 0) return 0xffff_ffff_ffff_ffff;
  return sext32(<u64>(x / y));
}
function remuw(a: u64, b: u64): u64 {
  const x = <u32>a, y = <u32>b;
  if (y == 0) return sext32(<u64>x);
  return sext32(<u64>(x % y));
}

/** R-type OP (0x33) with funct7 != 0 (M extension, sub, sra); false for reserved encodings. */
let opResult: u64 = 0;
function execOp(f3: u32, f7: u32, a: u64, b: u64): bool {
  if (f7 == 1) {
    switch (f3) {
      case 0: opResult = a * b; return true;
      case 1: opResult = mulh(a, b); return true;
      case 2: opResult = mulhsu(a, b); return true;
      case 3: opResult = mulhu(a, b); return true;
      case 4: opResult = div64(a, b); return true;
      case 5: opResult = b == 0 ? 0xffff_ffff_ffff_ffff : a / b; return true;
      case 6: opResult = rem64(a, b); return true;
      default: opResult = b == 0 ? a : a % b; return true;
    }
  }
  if (f7 == 0x20) {
    if (f3 == 0) { opResult = a - b; return true; }
    if (f3 == 5) { opResult = <u64>(<i64>a >> <i64>(b & 63)); return true; }
  }
  return false;
}

/** R-type OP-32 (0x3b) with funct7 != 0; false for reserved encodings. */
function execOp32(f3: u32, f7: u32, a: u64, b: u64): bool {
  if (f7 == 0x20) {
    if (f3 == 0) { opResult = sext32(a - b); return true; }
    if (f3 == 5) { opResult = sext32(<u64>(<i32>a >> (<u32>b & 31))); return true; }
    return false;
  }
  if (f7 == 1) {
    switch (f3) {
      case 0: opResult = sext32(a * b); return true;
      case 4: opResult = divw(a, b); return true;
      case 5: opResult = divuw(a, b); return true;
      case 6: opResult = remw(a, b); return true;
      case 7: opResult = remuw(a, b); return true;
      default: return false;
    }
  }
  return false;
}

export function run(hartIndex: u32, budget: u32): u32 {
  setCurHart(hartIndex);
  const h = hartBase(hartIndex);
  if (load<u32>(h + H_ISA_OFF) & ISA_OFF_C) return runWithoutC(h, budget);
  if (h == HART0_BASE) return runOn(HART0_BASE, budget, true);
  return runOn(h, budget, true);
}

/**
 * The loop of a hart without C, in a function of its own: a third copy inside run() made the
 * bench guest 3.5% slower (V8 compiles the bigger function worse); binaryen does not inline
 * functions with loops.
 */
function runWithoutC(h: usize, budget: u32): u32 {
  return runOn(h, budget, false);
}

/**
 * The loop for the hart at `h`, inlined three times: with C and a constant base, with C (both
 * in run), and without C (runWithoutC; `rvc` false: 16-bit encodings are illegal and a jump or
 * taken branch to an address with bit 1 set leaves the loop for execSlow, which raises
 * instruction-address-misaligned). `rvc` is a constant at each call, so the copies with C pay
 * nothing for the checks.
 */
@inline function runOn(h: usize, budget: u32, rvc: bool): u32 {
  clearEvents();
  clearExit();
  if (load<u32>(h + H_WFI)) {
    if (!wfiWakes(h)) {
      store<u64>(h + H_LAST_RETIRED, 0);
      return EXIT_WFI;
    }
    store<u32>(h + H_WFI, 0);
  }
  let pc = load<u64>(h + H_PC);
  let left: i32 = <i32>min<u32>(budget, 0x7fff_ffff);
  const start = left;
  let reason: u32 = EXIT_BUDGET;
  let priv: u32 = 0, dpriv: u32 = 0;
  while (true) {
    // Safe point.
    if (atomic.load<u32>(h + H_FLUSH_REQUEST)) {
      atomic.store<u32>(h + H_FLUSH_REQUEST, 0);
      flushStoreTlb(h);
    }
    if (exitReason >= 0) {
      reason = <u32>exitReason;
      break;
    }
    if (atomic.load<u32>(h + H_STOP_REQUEST)) {
      reason = EXIT_STOP;
      break;
    }
    const irq = pendingInterrupt(h);
    if (irq >= 0) pc = takeInterrupt(h, pc, irq);
    if (left <= 0) break;
    priv = load<u32>(h + H_PRIV);
    dpriv = dataPriv(h, priv);
    // Three loops: the outer one is the safe point; the inner one runs the fast paths and
    // makes no calls, so V8 keeps its few loop-carried values (pc, n, the fetch page) in
    // registers (a wasm call clobbers all of them); anything else leaves the inner loop with
    // its key and runs out of line in execSlow, then the middle loop re-enters.
    let fpage = NO_PAGE, fdelta = NO_PAGE_DELTA;
    // An instruction fetched by the slow path that the cached page cannot serve (it crosses
    // into the next page, or the page could not be cached): used once, by the next fetch.
    store<u64>(h + H_RUN_PRE_PC, NO_PAGE);
    store<i32>(h + H_RUN_REST, 0);
    store<i32>(h + H_RUN_COUNTED, 0);
    clearEvents();
    const chunk = min<i32>(left, CHUNK);
    let n = chunk;
    while (true) {
      while (true) {
        if (n <= 0) {
          store<u32>(h + H_RUN_KEY, K_DONE);
          break;
        }
        n--;
        let insn: u32 = 0;
        // One compare: pc is in the cached page, below offset 0xffe (a 32-bit instruction there
        // would cross into the next page).
        if (pc - fpage < 0xffe) {
          insn = load<u32>(<usize>(pc + fdelta));
        } else if (pc == load<u64>(h + H_RUN_PRE_PC)) {
          insn = load<u32>(h + H_RUN_INSN);
          store<u64>(h + H_RUN_PRE_PC, NO_PAGE);
        } else {
          n++;
          store<u32>(h + H_RUN_KEY, K_FETCH);
          break;
        }
        // One key for every instruction: 32-bit = major opcode bits 6:2 and funct3 (0..255);
        // compressed = 0x100 | quadrant << 4 | funct3 << 1 | bit 12 (0x100..0x12f).
        let key: u32;
        if ((insn & 3) == 3) {
          key = ((insn & 0x7c) << 1) | ((insn >> 12) & 7);
        } else {
          insn &= 0xffff;
          key = rvc ? 0x100 | ((insn & 3) << 4) | (insn >> 12) : BAD;
        }
        switch (key) {
          /* load */
          case 0x00: if (ldr<i8>(h, xo(h, rs1o(insn)) + immI(insn), dpriv, rdo(insn))) { pc += 4; continue; } break;
          case 0x01: if (ldr<i16>(h, xo(h, rs1o(insn)) + immI(insn), dpriv, rdo(insn))) { pc += 4; continue; } break;
          case 0x02: if (ldr<i32>(h, xo(h, rs1o(insn)) + immI(insn), dpriv, rdo(insn))) { pc += 4; continue; } break;
          case 0x03: if (ldr<u64>(h, xo(h, rs1o(insn)) + immI(insn), dpriv, rdo(insn))) { pc += 4; continue; } break;
          case 0x04: if (ldr<u8>(h, xo(h, rs1o(insn)) + immI(insn), dpriv, rdo(insn))) { pc += 4; continue; } break;
          case 0x05: if (ldr<u16>(h, xo(h, rs1o(insn)) + immI(insn), dpriv, rdo(insn))) { pc += 4; continue; } break;
          case 0x06: if (ldr<u32>(h, xo(h, rs1o(insn)) + immI(insn), dpriv, rdo(insn))) { pc += 4; continue; } break;
          /* store */
          case 0x40: if (str<u8>(h, xo(h, rs1o(insn)) + immS(insn), xo(h, rs2o(insn)), dpriv)) { pc += 4; continue; } break;
          case 0x41: if (str<u16>(h, xo(h, rs1o(insn)) + immS(insn), xo(h, rs2o(insn)), dpriv)) { pc += 4; continue; } break;
          case 0x42: if (str<u32>(h, xo(h, rs1o(insn)) + immS(insn), xo(h, rs2o(insn)), dpriv)) { pc += 4; continue; } break;
          case 0x43: if (str<u64>(h, xo(h, rs1o(insn)) + immS(insn), xo(h, rs2o(insn)), dpriv)) { pc += 4; continue; } break;
          /* fence, fence.i: memory is coherent and code is read from it directly */
          case 0x18:
            pc += 4;
            continue;
          case 0x19:
            if (load<u32>(h + H_ISA_OFF) & ISA_OFF_ZIFENCEI) { key = BAD; break; }
            pc += 4;
            continue;
          /* op-imm */
          case 0x20: setXo(h, rdo(insn), xo(h, rs1o(insn)) + immI(insn)); pc += 4; continue;
          case 0x21: /* slli */
            if (insn >> 26) { key = BAD; break; }
            setXo(h, rdo(insn), xo(h, rs1o(insn)) << ((insn >> 20) & 63));
            pc += 4;
            continue;
          case 0x22: setXo(h, rdo(insn), <i64>xo(h, rs1o(insn)) < <i64>immI(insn) ? 1 : 0); pc += 4; continue;
          case 0x23: setXo(h, rdo(insn), xo(h, rs1o(insn)) < immI(insn) ? 1 : 0); pc += 4; continue;
          case 0x24: setXo(h, rdo(insn), xo(h, rs1o(insn)) ^ immI(insn)); pc += 4; continue;
          case 0x25: { /* srli, srai */
            const f6 = insn >> 26;
            const sh = <u64>((insn >> 20) & 63);
            if (f6 == 0) setXo(h, rdo(insn), xo(h, rs1o(insn)) >> sh);
            else if (f6 == 0x10) setXo(h, rdo(insn), <u64>(<i64>xo(h, rs1o(insn)) >> <i64>sh));
            else { key = BAD; break; }
            pc += 4;
            continue;
          }
          case 0x26: setXo(h, rdo(insn), xo(h, rs1o(insn)) | immI(insn)); pc += 4; continue;
          case 0x27: setXo(h, rdo(insn), xo(h, rs1o(insn)) & immI(insn)); pc += 4; continue;
          /* auipc */
          case 0x28: case 0x29: case 0x2a: case 0x2b: case 0x2c: case 0x2d: case 0x2e: case 0x2f:
            setXo(h, rdo(insn), pc + immU(insn));
            pc += 4;
            continue;
          /* op-imm-32 */
          case 0x30: setXo(h, rdo(insn), sext32(xo(h, rs1o(insn)) + immI(insn))); pc += 4; continue;
          case 0x31: /* slliw */
            if (insn >> 25) { key = BAD; break; }
            setXo(h, rdo(insn), sext32(xo(h, rs1o(insn)) << ((insn >> 20) & 31)));
            pc += 4;
            continue;
          case 0x35: { /* srliw, sraiw */
            const f7 = insn >> 25;
            const sh = (insn >> 20) & 31;
            if (f7 == 0) setXo(h, rdo(insn), sext32(<u64>(<u32>xo(h, rs1o(insn)) >> sh)));
            else if (f7 == 0x20) setXo(h, rdo(insn), sext32(<u64>(<i32>xo(h, rs1o(insn)) >> sh)));
            else { key = BAD; break; }
            pc += 4;
            continue;
          }
          /* amo: out of line */
          case 0x5a:
          case 0x5b:
            break;
          /* op: funct7 = 0, sub and mul inline, the rest of the M extension out of line */
          case 0x60: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), a + b);
            else if ((insn >> 25) == 0x20) setXo(h, rdo(insn), a - b);
            else if ((insn >> 25) == 1 && !(load<u32>(h + H_ISA_OFF) & ISA_OFF_M)) setXo(h, rdo(insn), a * b);
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          case 0x61: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), a << (b & 63));
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          case 0x62: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), <i64>a < <i64>b ? 1 : 0);
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          case 0x63: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), a < b ? 1 : 0);
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          case 0x64: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), a ^ b);
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          case 0x65: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), a >> (b & 63));
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          case 0x66: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), a | b);
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          case 0x67: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), a & b);
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          /* lui */
          case 0x68: case 0x69: case 0x6a: case 0x6b: case 0x6c: case 0x6d: case 0x6e: case 0x6f:
            setXo(h, rdo(insn), immU(insn));
            pc += 4;
            continue;
          /* op-32 */
          case 0x70: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), sext32(a + b));
            else if ((insn >> 25) == 0x20) setXo(h, rdo(insn), sext32(a - b));
            else if ((insn >> 25) == 1 && !(load<u32>(h + H_ISA_OFF) & ISA_OFF_M)) setXo(h, rdo(insn), sext32(a * b));
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          case 0x71: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), sext32(a << (b & 31)));
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          case 0x75: {
            const a = xo(h, rs1o(insn)), b = xo(h, rs2o(insn));
            if ((insn >> 25) == 0) setXo(h, rdo(insn), sext32(<u64>(<u32>a >> (<u32>b & 31))));
            else break; /* M extension, reserved: out of line */
            pc += 4;
            continue;
          }
          case 0x74: case 0x76: case 0x77: {
            break; /* divw, divuw, remw, remuw: out of line */
          }
          /* branch */
          // Without C a taken branch to an address with bit 1 set is out of line (execSlow).
          case 0xc0: if (!rvc && (immB(insn) & 2) && xo(h, rs1o(insn)) == xo(h, rs2o(insn))) break; pc += xo(h, rs1o(insn)) == xo(h, rs2o(insn)) ? immB(insn) : 4; continue;
          case 0xc1: if (!rvc && (immB(insn) & 2) && xo(h, rs1o(insn)) != xo(h, rs2o(insn))) break; pc += xo(h, rs1o(insn)) != xo(h, rs2o(insn)) ? immB(insn) : 4; continue;
          case 0xc4: if (!rvc && (immB(insn) & 2) && <i64>xo(h, rs1o(insn)) < <i64>xo(h, rs2o(insn))) break; pc += <i64>xo(h, rs1o(insn)) < <i64>xo(h, rs2o(insn)) ? immB(insn) : 4; continue;
          case 0xc5: if (!rvc && (immB(insn) & 2) && <i64>xo(h, rs1o(insn)) >= <i64>xo(h, rs2o(insn))) break; pc += <i64>xo(h, rs1o(insn)) >= <i64>xo(h, rs2o(insn)) ? immB(insn) : 4; continue;
          case 0xc6: if (!rvc && (immB(insn) & 2) && xo(h, rs1o(insn)) < xo(h, rs2o(insn))) break; pc += xo(h, rs1o(insn)) < xo(h, rs2o(insn)) ? immB(insn) : 4; continue;
          case 0xc7: if (!rvc && (immB(insn) & 2) && xo(h, rs1o(insn)) >= xo(h, rs2o(insn))) break; pc += xo(h, rs1o(insn)) >= xo(h, rs2o(insn)) ? immB(insn) : 4; continue;
          /* jalr */
          case 0xc8: {
            const t = (xo(h, rs1o(insn)) + immI(insn)) & ~<u64>1;
            if (!rvc && (t & 2)) break;
            setXo(h, rdo(insn), pc + 4);
            pc = t;
            continue;
          }
          /* jal */
          case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
            if (!rvc && (immJ(insn) & 2)) break;
            setXo(h, rdo(insn), pc + 4);
            pc += immJ(insn);
            continue;
          /* system: out of line */
          case 0xe0: case 0xe1: case 0xe2: case 0xe3: case 0xe4: case 0xe5: case 0xe6: case 0xe7:
            break;

          /* c.addi4spn */
          case 0x100: case 0x101: {
            const imm = (((insn >> 6) & 1) << 2) | (((insn >> 5) & 1) << 3) | (((insn >> 11) & 3) << 4) | (((insn >> 7) & 0xf) << 6);
            if (imm == 0) { key = BAD; break; }
            setXr(h, crdpo(insn), xo(h, 16) + <u64>imm);
            pc += 2;
            continue;
          }
          case 0x104: case 0x105: if (ldr<i32>(h, xo(h, crs1po(insn)) + cwimm(insn), dpriv, crdpo(insn))) { pc += 2; continue; } break; /* c.lw */
          case 0x106: case 0x107: if (ldr<u64>(h, xo(h, crs1po(insn)) + cdimm(insn), dpriv, crdpo(insn))) { pc += 2; continue; } break; /* c.ld */
          case 0x10c: case 0x10d: if (str<u32>(h, xo(h, crs1po(insn)) + cwimm(insn), xo(h, crdpo(insn)), dpriv)) { pc += 2; continue; } break; /* c.sw */
          case 0x10e: case 0x10f: if (str<u64>(h, xo(h, crs1po(insn)) + cdimm(insn), xo(h, crdpo(insn)), dpriv)) { pc += 2; continue; } break; /* c.sd */
          case 0x110: case 0x111: setXo(h, crdo(insn), xo(h, crdo(insn)) + cimm6(insn)); pc += 2; continue; /* c.addi */
          case 0x112: case 0x113: /* c.addiw */
            if (crdo(insn) == 0) { key = BAD; break; }
            setXr(h, crdo(insn), sext32(xo(h, crdo(insn)) + cimm6(insn)));
            pc += 2;
            continue;
          case 0x114: case 0x115: setXo(h, crdo(insn), cimm6(insn)); pc += 2; continue; /* c.li */
          case 0x116: case 0x117: {
            const rd = crdo(insn);
            if (rd == 16) { /* c.addi16sp */
              const imm = sext((((insn >> 12) & 1) << 9) | (((insn >> 6) & 1) << 4) | (((insn >> 5) & 1) << 6) |
                (((insn >> 3) & 3) << 7) | (((insn >> 2) & 1) << 5), 10);
              if (imm == 0) { key = BAD; break; }
              setXr(h, 16, xo(h, 16) + imm);
            } else { /* c.lui */
              const imm = cimm6(insn);
              if (imm == 0) { key = BAD; break; }
              setXo(h, rd, imm << 12);
            }
            pc += 2;
            continue;
          }
          case 0x118: case 0x119: { /* c.srli, c.srai, c.andi, c.sub, c.xor, c.or, c.and, c.subw, c.addw */
            const rd = crs1po(insn);
            const a = xo(h, rd);
            let v: u64;
            switch ((insn >> 10) & 3) {
              case 0: v = a >> cshamt(insn); break;
              case 1: v = <u64>(<i64>a >> <i64>cshamt(insn)); break;
              case 2: v = a & cimm6(insn); break;
              default: {
                const b = xo(h, crdpo(insn));
                switch (((insn >> 10) & 4) | ((insn >> 5) & 3)) {
                  case 0: v = a - b; break;
                  case 1: v = a ^ b; break;
                  case 2: v = a | b; break;
                  case 3: v = a & b; break;
                  case 4: v = sext32(a - b); break;
                  case 5: v = sext32(a + b); break;
                  default: v = 0; key = BAD;
                }
              }
            }
            if (key == BAD) break;
            setXr(h, rd, v);
            pc += 2;
            continue;
          }
          case 0x11a: case 0x11b: pc += cjimm(insn); continue; /* c.j */
          case 0x11c: case 0x11d: pc += xo(h, crs1po(insn)) == 0 ? cbimm(insn) : 2; continue; /* c.beqz */
          case 0x11e: case 0x11f: pc += xo(h, crs1po(insn)) != 0 ? cbimm(insn) : 2; continue; /* c.bnez */
          case 0x120: case 0x121: setXo(h, crdo(insn), xo(h, crdo(insn)) << cshamt(insn)); pc += 2; continue; /* c.slli */
          case 0x124: case 0x125: { /* c.lwsp */
            if (crdo(insn) == 0) { key = BAD; break; }
            const off = (((insn >> 12) & 1) << 5) | (((insn >> 4) & 7) << 2) | (((insn >> 2) & 3) << 6);
            if (ldr<i32>(h, xo(h, 16) + <u64>off, dpriv, crdo(insn))) { pc += 2; continue; }
            break;
          }
          case 0x126: case 0x127: { /* c.ldsp */
            if (crdo(insn) == 0) { key = BAD; break; }
            const off = (((insn >> 12) & 1) << 5) | (((insn >> 5) & 3) << 3) | (((insn >> 2) & 7) << 6);
            if (ldr<u64>(h, xo(h, 16) + <u64>off, dpriv, crdo(insn))) { pc += 2; continue; }
            break;
          }
          case 0x128: { /* c.jr, c.mv */
            const rd = crdo(insn), rs2 = crs2o(insn);
            if (rs2 == 0) {
              if (rd == 0) { key = BAD; break; }
              pc = xo(h, rd) & ~<u64>1;
              continue;
            }
            setXo(h, rd, xo(h, rs2));
            pc += 2;
            continue;
          }
          case 0x129: { /* c.ebreak, c.jalr, c.add */
            const rd = crdo(insn), rs2 = crs2o(insn);
            if (rs2 == 0) {
              if (rd == 0) break; /* c.ebreak: out of line */
              const t = xo(h, rd) & ~<u64>1; /* c.jalr */
              setXr(h, 8, pc + 2);
              pc = t;
              continue;
            }
            setXo(h, rd, xo(h, rd) + xo(h, rs2));
            pc += 2;
            continue;
          }
          case 0x12c: case 0x12d: /* c.swsp */
            if (str<u32>(h, xo(h, 16) + <u64>((((insn >> 9) & 0xf) << 2) | (((insn >> 7) & 3) << 6)), xo(h, crs2o(insn)), dpriv)) { pc += 2; continue; }
            break;
          case 0x12e: case 0x12f: /* c.sdsp */
            if (str<u64>(h, xo(h, 16) + <u64>((((insn >> 10) & 7) << 3) | (((insn >> 7) & 7) << 6)), xo(h, crs2o(insn)), dpriv)) { pc += 2; continue; }
            break;
          default:
            key = BAD;
        }
        // Slow paths, SYSTEM, atomics and illegal encodings break out of the switch to here.
        store<u32>(h + H_RUN_KEY, key);
        store<u32>(h + H_RUN_INSN, insn);
        break;
      }
      const key = load<u32>(h + H_RUN_KEY);
      if (key == K_DONE) break;
      if (key == K_FETCH) {
        const insn = fetchSlow(h, pc, priv);
        if (trapPending) {
          n--;
          pc = takeTrap(h, pc, trapCause, trapTval);
          store<i32>(h + H_RUN_REST, n);
          n = 0;
          continue;
        }
        fpage = fetchPage;
        fdelta = fetchDelta;
        store<u64>(h + H_RUN_PRE_PC, pc);
        store<u32>(h + H_RUN_INSN, insn);
        continue;
      }
      pc = execSlow(h, pc, load<u32>(h + H_RUN_INSN), key, priv, dpriv, chunk - n, fpage == NO_PAGE);
      if (slowStop) {
        store<i32>(h + H_RUN_REST, n);
        n = 0;
      }
    }
    const ran = chunk - load<i32>(h + H_RUN_REST);
    left -= ran;
    const done = <u64>(ran - load<i32>(h + H_RUN_COUNTED));
    store<u64>(h + H_MINSTRET, load<u64>(h + H_MINSTRET) + done);
    store<u64>(h + H_MCYCLE, load<u64>(h + H_MCYCLE) + done);
  }
  store<u64>(h + H_LAST_RETIRED, <u64>(start - left));
  store<u64>(h + H_PC, pc);
  if (reason == EXIT_STOP) atomic.store<u32>(h + H_STOP_REQUEST, 0);
  return reason;
}

/** Set by execSlow: the chunk must end (trap, event, state change). */
let slowStop: bool = false;

/**
 * The out-of-line half of an instruction the inner loop could not finish: a load or store
 * that missed the TLB fast path, SYSTEM, an atomic, c.ebreak, or an illegal encoding (`key`
 * BAD). `ran` is the number of instructions of the chunk so far, this one included; `noPage`
 * is true when the loop had no cached code page. Returns the next pc.
 */
function execSlow(h: usize, pc: u64, insn: u32, key: u32, priv: u32, dpriv: u32, ran: i32, noPage: bool): u64 {
  slowStop = false;
  let va: u64 = 0, len: u64 = 4;
  let size: u32 = 0, rd: u32 = 0, signed = false, isStore = false;
  let v: u64 = 0;
  switch (key) {
    case 0x00: case 0x01: case 0x02: case 0x03: case 0x04: case 0x05: case 0x06:
      va = xo(h, rs1o(insn)) + immI(insn);
      size = 1 << (key & 3);
      signed = key < 4;
      rd = rdo(insn);
      break;
    case 0x40: case 0x41: case 0x42: case 0x43:
      va = xo(h, rs1o(insn)) + immS(insn);
      size = 1 << (key & 3);
      v = xo(h, rs2o(insn));
      isStore = true;
      break;
    case 0x104: case 0x105: /* c.lw */
      va = xo(h, crs1po(insn)) + cwimm(insn);
      size = 4;
      signed = true;
      rd = crdpo(insn);
      len = 2;
      break;
    case 0x106: case 0x107: /* c.ld */
      va = xo(h, crs1po(insn)) + cdimm(insn);
      size = 8;
      rd = crdpo(insn);
      len = 2;
      break;
    case 0x10c: case 0x10d: /* c.sw */
      va = xo(h, crs1po(insn)) + cwimm(insn);
      size = 4;
      v = xo(h, crdpo(insn));
      isStore = true;
      len = 2;
      break;
    case 0x10e: case 0x10f: /* c.sd */
      va = xo(h, crs1po(insn)) + cdimm(insn);
      size = 8;
      v = xo(h, crdpo(insn));
      isStore = true;
      len = 2;
      break;
    case 0x124: case 0x125: /* c.lwsp */
      va = xo(h, 16) + <u64>((((insn >> 12) & 1) << 5) | (((insn >> 4) & 7) << 2) | (((insn >> 2) & 3) << 6));
      size = 4;
      signed = true;
      rd = crdo(insn);
      len = 2;
      break;
    case 0x126: case 0x127: /* c.ldsp */
      va = xo(h, 16) + <u64>((((insn >> 12) & 1) << 5) | (((insn >> 5) & 3) << 3) | (((insn >> 2) & 7) << 6));
      size = 8;
      rd = crdo(insn);
      len = 2;
      break;
    case 0x12c: case 0x12d: /* c.swsp */
      va = xo(h, 16) + <u64>((((insn >> 9) & 0xf) << 2) | (((insn >> 7) & 3) << 6));
      size = 4;
      v = xo(h, crs2o(insn));
      isStore = true;
      len = 2;
      break;
    case 0x12e: case 0x12f: /* c.sdsp */
      va = xo(h, 16) + <u64>((((insn >> 10) & 7) << 3) | (((insn >> 7) & 7) << 6));
      size = 8;
      v = xo(h, crs2o(insn));
      isStore = true;
      len = 2;
      break;
    case 0x5a: case 0x5b: { /* amo */
      const r = execAmo(h, insn, pc, dpriv);
      if (r != X_ILLEGAL) {
        if (r != X_NEXT) slowStop = true;
        return r == X_JUMP ? newPc : pc + 4;
      }
      return illegal(h, pc, insn, priv, noPage);
    }
    case 0xe0: case 0xe1: case 0xe2: case 0xe3: case 0xe4: case 0xe5: case 0xe6: case 0xe7: {
      const done = <u64>(ran - load<i32>(h + H_RUN_COUNTED));
      store<u64>(h + H_MINSTRET, load<u64>(h + H_MINSTRET) + done);
      store<u64>(h + H_MCYCLE, load<u64>(h + H_MCYCLE) + done);
      store<i32>(h + H_RUN_COUNTED, ran);
      const r = execSystem(h, insn, pc, priv);
      if (r != X_ILLEGAL) {
        if (r != X_NEXT) slowStop = true;
        return r == X_JUMP ? newPc : pc + 4;
      }
      return illegal(h, pc, insn, priv, noPage);
    }
    case 0x60: case 0x61: case 0x62: case 0x63: case 0x64: case 0x65: case 0x66: case 0x67:
      if ((insn >> 25) == 1 && (load<u32>(h + H_ISA_OFF) & ISA_OFF_M)) return illegal(h, pc, insn, priv, noPage);
      if (!execOp(key & 7, insn >> 25, xo(h, rs1o(insn)), xo(h, rs2o(insn)))) return illegal(h, pc, insn, priv, noPage);
      setXo(h, rdo(insn), opResult);
      return pc + 4;
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
      if ((insn >> 25) == 1 && (load<u32>(h + H_ISA_OFF) & ISA_OFF_M)) return illegal(h, pc, insn, priv, noPage);
      if (!execOp32(key & 7, insn >> 25, xo(h, rs1o(insn)), xo(h, rs2o(insn)))) return illegal(h, pc, insn, priv, noPage);
      setXo(h, rdo(insn), opResult);
      return pc + 4;
    case 0x129: /* c.ebreak */
      slowStop = true;
      return takeTrap(h, pc, 3, 0);
    // c=off: the loop sends only a jump or taken branch to a target with bit 1 set here.
    // rd is not written (QEMU 7.2 raises before it).
    case 0xc0: case 0xc1: case 0xc4: case 0xc5: case 0xc6: case 0xc7: /* branch */
      slowStop = true;
      return takeTrap(h, pc, 0, pc + immB(insn));
    case 0xc8: /* jalr */
      slowStop = true;
      return takeTrap(h, pc, 0, (xo(h, rs1o(insn)) + immI(insn)) & ~<u64>1);
    case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf: /* jal */
      slowStop = true;
      return takeTrap(h, pc, 0, pc + immJ(insn));
    default:
      return illegal(h, pc, insn, priv, noPage);
  }
  if (isStore) storeSlow(h, va, size, v, dpriv);
  else loadSlowTo(h, va, size, signed, dpriv, rd);
  if (eventPending) {
    slowStop = true;
    if (trapPending) return takeTrap(h, pc, trapCause, trapTval);
  }
  return pc + len;
}

/** Raises the illegal-instruction exception for `insn` (or the fetch fault it hides). */
function illegal(h: usize, pc: u64, insn: u32, priv: u32, noPage: bool): u64 {
  slowStop = true;
  if (noPage && pc - NO_PAGE < 0xffe) {
    // Read from the guard page: fetch for real, which raises the fault.
    insn = fetchSlow(h, pc, priv);
    if (trapPending) return takeTrap(h, pc, trapCause, trapTval);
  }
  return takeTrap(h, pc, 2, <u64>insn);
}
