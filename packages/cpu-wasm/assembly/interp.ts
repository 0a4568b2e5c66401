// The interpreter loop: fetch (cached code page), decode (switch on the major opcode),
// execute. Fast paths inline, slow paths (TLB misses, MMIO, traps, CSRs) out of line.
import {
  H_PC, H_PRIV, H_MINSTRET, H_MCYCLE, H_WFI, H_FLUSH_REQUEST, H_STOP_REQUEST,
  H_LAST_RETIRED, H_TLB_LOAD, H_TLB_STORE, EXIT_BUDGET, EXIT_WFI, EXIT_STOP,
} from "./hart-layout";
import {
  hartBase, setCurHart, clearEvents, clearExit, eventPending, trapPending, trapCause,
  trapTval, exitReason, flushStoreTlb,
} from "./state";
import { loadSlow, storeSlow, fetchSlow, fetchPage, fetchDelta, dataPriv } from "./mmu";
import { takeTrap, pendingInterrupt, takeInterrupt, wfiWakes } from "./trap";
import { expandC } from "./rvc";
import { execAmo, execSystem, newPc, X_NEXT, X_ILLEGAL, X_JUMP } from "./system";

const NO_PAGE: u64 = 0xffff_ffff_ffff_ffff;
/** Instructions between safe points (flush requests, interrupts). */
const CHUNK: i32 = 4096;

@inline function rs1v(h: usize, insn: u32): u64 {
  return load<u64>(h + ((insn >> 12) & 0xf8));
}
@inline function rs2v(h: usize, insn: u32): u64 {
  return load<u64>(h + ((insn >> 17) & 0xf8));
}
@inline function setRd(h: usize, insn: u32, v: u64): void {
  const o = (insn >> 4) & 0xf8;
  if (o != 0) store<u64>(h + o, v);
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
@inline function sext32(v: u64): u64 {
  return <u64>(<i64>(<i32>v));
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

/** Sign- or zero-extends a raw loaded value per the load's funct3. */
@inline function extendLoad(f3: u32, v: u64): u64 {
  switch (f3) {
    case 0: return <u64>(<i64>(<i8>v));
    case 1: return <u64>(<i64>(<i16>v));
    case 2: return <u64>(<i64>(<i32>v));
    default: return v;
  }
}

export function run(hartIndex: u32, budget: u32): u32 {
  const h = hartBase(hartIndex);
  setCurHart(hartIndex);
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
  let counted = left;
  let reason: u32 = EXIT_BUDGET;
  let priv: u32 = 0, dpriv: u32 = 0;
  let fpage: u64 = NO_PAGE, fdelta: u64 = 0;
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
    fpage = NO_PAGE;
    clearEvents();
    let stopAt = left > CHUNK ? left - CHUNK : 0;
    while (left > stopAt) {
      left--;
      let insn: u32;
      if ((pc & ~<u64>0xfff) == fpage && (<u32>pc & 0xfff) <= 0xffc) {
        insn = load<u32>(<usize>(pc + fdelta));
      } else {
        insn = fetchSlow(h, pc, priv);
        if (trapPending) {
          pc = takeTrap(h, pc, trapCause, trapTval);
          stopAt = left;
          continue;
        }
        fpage = fetchPage;
        fdelta = fetchDelta;
      }
      let raw = insn;
      let ilen: u64 = 4;
      if ((insn & 3) != 3) {
        raw = insn & 0xffff;
        insn = expandC(raw);
        ilen = 2;
      }
      // Major opcode bits 6:2 (bits 1:0 are 11 for every 32-bit instruction).
      switch ((insn >> 2) & 31) {
        case 0x0d: /* lui */
          setRd(h, insn, <u64>(<i64>(<i32>(insn & 0xffff_f000))));
          pc += ilen;
          continue;
        case 0x05: /* auipc */
          setRd(h, insn, pc + <u64>(<i64>(<i32>(insn & 0xffff_f000))));
          pc += ilen;
          continue;
        case 0x1b: /* jal */
          setRd(h, insn, pc + ilen);
          pc += immJ(insn);
          continue;
        case 0x19: { /* jalr */
          if ((insn >> 12) & 7) break;
          const t = (rs1v(h, insn) + immI(insn)) & ~<u64>1;
          setRd(h, insn, pc + ilen);
          pc = t;
          continue;
        }
        case 0x18: { /* branch */
          const a = rs1v(h, insn), b = rs2v(h, insn);
          let taken: bool;
          switch ((insn >> 12) & 7) {
            case 0: taken = a == b; break;
            case 1: taken = a != b; break;
            case 4: taken = <i64>a < <i64>b; break;
            case 5: taken = <i64>a >= <i64>b; break;
            case 6: taken = a < b; break;
            case 7: taken = a >= b; break;
            default: taken = false; insn = 0;
          }
          if (insn == 0) break;
          pc += taken ? immB(insn) : ilen;
          continue;
        }
        case 0x00: { /* load */
          const f3 = (insn >> 12) & 7;
          if (f3 == 7) break;
          const va = rs1v(h, insn) + immI(insn);
          const size: u32 = 1 << (f3 & 3);
          const e = h + H_TLB_LOAD + ((<usize>(va >> 12) & 1023) << 4);
          let v: u64;
          if (load<u64>(e) == ((va & ~<u64>0xfff) | dpriv) && (<u32>va & 0xfff) <= 4096 - size) {
            const host = <usize>(va + load<u64>(e, 8));
            switch (f3) {
              case 0: v = <u64>load<i8>(host); break;
              case 1: v = <u64>load<i16>(host); break;
              case 2: v = <u64>load<i32>(host); break;
              case 3: v = load<u64>(host); break;
              case 4: v = <u64>load<u8>(host); break;
              case 5: v = <u64>load<u16>(host); break;
              default: v = <u64>load<u32>(host);
            }
          } else {
            v = extendLoad(f3, loadSlow(h, va, size, dpriv));
            if (eventPending) {
              if (trapPending) {
                pc = takeTrap(h, pc, trapCause, trapTval);
                stopAt = left;
                continue;
              }
              stopAt = left;
            }
          }
          setRd(h, insn, v);
          pc += ilen;
          continue;
        }
        case 0x08: { /* store */
          const f3 = (insn >> 12) & 7;
          if (f3 > 3) break;
          const va = rs1v(h, insn) + immS(insn);
          const v = rs2v(h, insn);
          const size: u32 = 1 << f3;
          const e = h + H_TLB_STORE + ((<usize>(va >> 12) & 1023) << 4);
          if (load<u64>(e) == ((va & ~<u64>0xfff) | dpriv) && (<u32>va & 0xfff) <= 4096 - size) {
            const host = <usize>(va + load<u64>(e, 8));
            switch (f3) {
              case 0: store<u8>(host, <u8>v); break;
              case 1: store<u16>(host, <u16>v); break;
              case 2: store<u32>(host, <u32>v); break;
              default: store<u64>(host, v);
            }
          } else {
            storeSlow(h, va, size, v, dpriv);
            if (eventPending) {
              if (trapPending) {
                pc = takeTrap(h, pc, trapCause, trapTval);
                stopAt = left;
                continue;
              }
              stopAt = left;
            }
          }
          pc += ilen;
          continue;
        }
        case 0x04: { /* op-imm */
          const a = rs1v(h, insn);
          const imm = immI(insn);
          let v: u64;
          switch ((insn >> 12) & 7) {
            case 0: v = a + imm; break;
            case 1:
              if (insn >> 26) { insn = 0; v = 0; break; }
              v = a << (imm & 63);
              break;
            case 2: v = <i64>a < <i64>imm ? 1 : 0; break;
            case 3: v = a < imm ? 1 : 0; break;
            case 4: v = a ^ imm; break;
            case 5: {
              const f6 = insn >> 26;
              if (f6 == 0) v = a >> (imm & 63);
              else if (f6 == 0x10) v = <u64>(<i64>a >> <i64>(imm & 63));
              else { insn = 0; v = 0; }
              break;
            }
            case 6: v = a | imm; break;
            default: v = a & imm;
          }
          if (insn == 0) break;
          setRd(h, insn, v);
          pc += ilen;
          continue;
        }
        case 0x0c: { /* op */
          if (insn & 0xbc00_0000) break;
          const a = rs1v(h, insn), b = rs2v(h, insn);
          let v: u64;
          // funct3 | funct7 bit 0 -> 8 | funct7 bit 5 -> 16
          switch (((insn >> 12) & 7) | ((insn >> 22) & 8) | ((insn >> 26) & 16)) {
            case 0x000: v = a + b; break;
            case 0x001: v = a << (b & 63); break;
            case 0x002: v = <i64>a < <i64>b ? 1 : 0; break;
            case 0x003: v = a < b ? 1 : 0; break;
            case 0x004: v = a ^ b; break;
            case 0x005: v = a >> (b & 63); break;
            case 0x006: v = a | b; break;
            case 0x007: v = a & b; break;
            case 0x010: v = a - b; break;
            case 0x015: v = <u64>(<i64>a >> <i64>(b & 63)); break;
            case 0x008: v = a * b; break; /* mul */
            case 0x009: v = mulh(a, b); break;
            case 0x00a: v = mulhsu(a, b); break;
            case 0x00b: v = mulhu(a, b); break;
            case 0x00c: v = div64(a, b); break;
            case 0x00d: v = b == 0 ? 0xffff_ffff_ffff_ffff : a / b; break;
            case 0x00e: v = rem64(a, b); break;
            case 0x00f: v = b == 0 ? a : a % b; break;
            default: insn = 0; v = 0;
          }
          if (insn == 0) break;
          setRd(h, insn, v);
          pc += ilen;
          continue;
        }
        case 0x06: { /* op-imm-32 */
          const a = rs1v(h, insn);
          let v: u64 = 0;
          const f3 = (insn >> 12) & 7;
          const f7 = insn >> 25;
          const sh = (insn >> 20) & 31;
          if (f3 == 0) v = sext32(a + immI(insn));
          else if (f3 == 1 && f7 == 0) v = sext32(a << sh);
          else if (f3 == 5 && f7 == 0) v = sext32(<u64>(<u32>a >> sh));
          else if (f3 == 5 && f7 == 0x20) v = sext32(<u64>(<i32>a >> sh));
          else break;
          setRd(h, insn, v);
          pc += ilen;
          continue;
        }
        case 0x0e: { /* op-32 */
          if (insn & 0xbc00_0000) break;
          const a = rs1v(h, insn), b = rs2v(h, insn);
          let v: u64;
          const sh = <u32>b & 31;
          switch (((insn >> 12) & 7) | ((insn >> 22) & 8) | ((insn >> 26) & 16)) {
            case 0x000: v = sext32(a + b); break;
            case 0x001: v = sext32(a << sh); break;
            case 0x005: v = sext32(<u64>(<u32>a >> sh)); break;
            case 0x010: v = sext32(a - b); break;
            case 0x015: v = sext32(<u64>(<i32>a >> sh)); break;
            case 0x008: v = sext32(a * b); break; /* mulw */
            case 0x00c: v = divw(a, b); break;
            case 0x00d: v = divuw(a, b); break;
            case 0x00e: v = remw(a, b); break;
            case 0x00f: v = remuw(a, b); break;
            default: insn = 0; v = 0;
          }
          if (insn == 0) break;
          setRd(h, insn, v);
          pc += ilen;
          continue;
        }
        case 0x0b: /* amo */
        case 0x1c: { /* system */
          if ((insn & 0x7f) == 0x73) {
            const done = <u64>(counted - left);
            store<u64>(h + H_MINSTRET, load<u64>(h + H_MINSTRET) + done);
            store<u64>(h + H_MCYCLE, load<u64>(h + H_MCYCLE) + done);
            counted = left;
          }
          const r = (insn & 0x7f) == 0x73 ? execSystem(h, insn, pc, priv) : execAmo(h, insn, pc, dpriv);
          if (r == X_ILLEGAL) break;
          if (r == X_NEXT) {
            pc += ilen;
            continue;
          }
          pc = r == X_JUMP ? newPc : pc + ilen;
          stopAt = left;
          continue;
        }
        case 0x03: { /* fence, fence.i */
          const f3 = (insn >> 12) & 7;
          if (f3 > 1) break;
          pc += ilen;
          continue;
        }
        default:
          break;
      }
      /* illegal instruction */
      pc = takeTrap(h, pc, 2, <u64>raw);
      stopAt = left;
    }
  }
  const done = <u64>(counted - left);
  store<u64>(h + H_MINSTRET, load<u64>(h + H_MINSTRET) + done);
  store<u64>(h + H_MCYCLE, load<u64>(h + H_MCYCLE) + done);
  store<u64>(h + H_LAST_RETIRED, <u64>(start - left));
  store<u64>(h + H_PC, pc);
  if (reason == EXIT_STOP) atomic.store<u32>(h + H_STOP_REQUEST, 0);
  return reason;
}

