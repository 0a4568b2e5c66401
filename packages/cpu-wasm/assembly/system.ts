// Out-of-line instruction handlers: atomics (A) and SYSTEM (ecall, ebreak, xRET, WFI,
// sfence.vma, Zicsr). Kept out of the interpreter loop so the hot cases stay small.
import {
  H_MSTATUS, H_LR_ADDR, H_LR_VALUE, H_LR_VALID, H_MIP, H_WFI, H_MEPC, H_SEPC, H_ISA_OFF, EXIT_WFI,
  ISA_OFF_A, ISA_OFF_C, ISA_OFF_ZICSR, PRV_M, PRV_S, PRV_U,
} from "./hart-layout";
import { MSTATUS_TVM, MSTATUS_TW, MSTATUS_TSR, CSR_MIP } from "./csr-numbers";
import { eventPending, trapPending, trapCause, trapTval, requestExit, flushAllTlbs } from "./state";
import { loadSlow, amoHost } from "./mmu";
import { csrRead, csrWrite, csrIllegal, CSR_WRITE_RESYNC } from "./csr";
import { takeTrap, wfiWakes, doMret, doSret } from "./trap";
import { pmpAnyActive, pmpPresent } from "./pmp";

/** Done: the loop advances pc. */
export const X_NEXT = 0;
/** Illegal instruction. */
export const X_ILLEGAL = 1;
/** pc = newPc (trap taken or xRET); the loop re-derives its caches. */
export const X_JUMP = 2;
/** Done: the loop advances pc and re-derives its caches (CSR side effects, MMIO, WFI). */
export const X_NEXT_RESYNC = 3;

export let newPc: u64 = 0;

@inline function setRd(h: usize, insn: u32, v: u64): void {
  const o = (insn >> 4) & 0xf8;
  if (o != 0) store<u64>(h + o, v);
}

@inline function sext32(v: u64): u64 {
  return <u64>(<i64>(<i32>v));
}

function trap(h: usize, pc: u64, cause: u64, tval: u64): i32 {
  newPc = takeTrap(h, pc, cause, tval);
  return X_JUMP;
}

function amoOp(f5: u32, old: u64, src: u64, word: bool): u64 {
  switch (f5) {
    case 0x01: return src;
    case 0x00: return old + src;
    case 0x04: return old ^ src;
    case 0x0c: return old & src;
    case 0x08: return old | src;
    case 0x10: return <i64>old < <i64>src ? old : src;
    case 0x14: return <i64>old > <i64>src ? old : src;
    case 0x18:
      if (word) return <u32>old < <u32>src ? old : src;
      return old < src ? old : src;
    default:
      if (word) return <u32>old > <u32>src ? old : src;
      return old > src ? old : src;
  }
}

@inline function isAmoFunct(f5: u32): bool {
  return f5 == 0 || f5 == 1 || f5 == 4 || f5 == 8 || f5 == 0xc || f5 == 0x10 || f5 == 0x14 || f5 == 0x18 || f5 == 0x1c;
}

/** lr, sc and the AMOs (major opcode 0x2f). */
export function execAmo(h: usize, insn: u32, pc: u64, dpriv: u32): i32 {
  if (load<u32>(h + H_ISA_OFF) & ISA_OFF_A) return X_ILLEGAL;
  const f3 = (insn >> 12) & 7;
  if (f3 != 2 && f3 != 3) return X_ILLEGAL;
  const word = f3 == 2;
  const size: u32 = word ? 4 : 8;
  const f5 = insn >> 27;
  const va = load<u64>(h + ((insn >> 12) & 0xf8));
  if (f5 == 0x02) { /* lr */
    if ((insn >> 20) & 31) return X_ILLEGAL;
    if (va & (size - 1)) return trap(h, pc, 4, va);
    let v = loadSlow(h, va, size, dpriv);
    if (trapPending) return trap(h, pc, trapCause, trapTval);
    if (word) v = sext32(v);
    store<u64>(h + H_LR_ADDR, va);
    store<u64>(h + H_LR_VALUE, v);
    store<u32>(h + H_LR_VALID, 1);
    setRd(h, insn, v);
    return eventPending ? X_NEXT_RESYNC : X_NEXT;
  }
  if (f5 != 0x03 && !isAmoFunct(f5)) return X_ILLEGAL;
  if (va & (size - 1)) return trap(h, pc, 6, va);
  const src = load<u64>(h + ((insn >> 17) & 0xf8));
  if (f5 == 0x03) { /* sc */
    let fail: u64 = 1;
    if (load<u32>(h + H_LR_VALID) && load<u64>(h + H_LR_ADDR) == va) {
      const host = amoHost(h, va, size, dpriv);
      if (trapPending) return trap(h, pc, trapCause, trapTval);
      const expect = load<u64>(h + H_LR_VALUE);
      if (word) {
        if (<u32>expect == load<u32>(host)) {
          store<u32>(host, <u32>src);
          fail = 0;
        }
      } else if (expect == load<u64>(host)) {
        store<u64>(host, src);
        fail = 0;
      }
    }
    store<u32>(h + H_LR_VALID, 0);
    setRd(h, insn, fail);
    return eventPending ? X_NEXT_RESYNC : X_NEXT;
  }
  const host = amoHost(h, va, size, dpriv);
  if (trapPending) return trap(h, pc, trapCause, trapTval);
  if (word) {
    const old = sext32(<u64>load<u32>(host));
    store<u32>(host, <u32>amoOp(f5, old, sext32(src), true));
    setRd(h, insn, old);
  } else {
    const old = load<u64>(host);
    store<u64>(host, amoOp(f5, old, src, false));
    setRd(h, insn, old);
  }
  return eventPending ? X_NEXT_RESYNC : X_NEXT;
}

/**
 * c=off (IALIGN = 32): mret/sret to an xepc with bit 1 set raise instruction-address-misaligned
 * at the xRET, as QEMU 7.2's helpers do (it keeps bit 1 of mepc/sepc readable and writable; its
 * tval there is a stale env->badaddr, ours is the target).
 */
function misalignedReturn(h: usize, epc: usize): bool {
  return (load<u32>(h + H_ISA_OFF) & ISA_OFF_C) != 0 && (load<u64>(h + epc) & 2) != 0;
}

/** The SYSTEM major opcode (0x73). Counters must be synced by the caller. */
export function execSystem(h: usize, insn: u32, pc: u64, priv: u32): i32 {
  const f3 = (insn >> 12) & 7;
  const ms = load<u64>(h + H_MSTATUS);
  if (f3 == 0) {
    if (insn == 0x0000_0073) return trap(h, pc, 8 + <u64>priv, 0); /* ecall */
    if (insn == 0x0010_0073) return trap(h, pc, 3, 0); /* ebreak */
    if (insn == 0x3020_0073) { /* mret */
      if (priv != PRV_M) return X_ILLEGAL;
      if (misalignedReturn(h, H_MEPC)) return trap(h, pc, 0, load<u64>(h + H_MEPC));
      // QEMU 7.2 refuses to return below M while no PMP entry is active (with PMP present).
      if (((ms >> 11) & 3) != PRV_M && pmpPresent(h) && !pmpAnyActive(h)) return X_ILLEGAL;
      newPc = doMret(h);
      return X_JUMP;
    }
    if (insn == 0x1020_0073) { /* sret */
      if (priv == PRV_U) return X_ILLEGAL;
      if (misalignedReturn(h, H_SEPC)) return trap(h, pc, 0, load<u64>(h + H_SEPC));
      if (priv == PRV_S && (ms & MSTATUS_TSR)) return X_ILLEGAL;
      newPc = doSret(h);
      return X_JUMP;
    }
    if (insn == 0x1050_0073) { /* wfi */
      if (priv == PRV_U || (priv == PRV_S && (ms & MSTATUS_TW))) return X_ILLEGAL;
      if (!wfiWakes(h)) {
        store<u32>(h + H_WFI, 1);
        requestExit(EXIT_WFI);
      }
      return X_NEXT_RESYNC;
    }
    if ((insn >> 25) == 0x09 && ((insn >> 7) & 31) == 0) { /* sfence.vma */
      if (priv == PRV_U || (priv == PRV_S && (ms & MSTATUS_TVM))) return X_ILLEGAL;
      flushAllTlbs(h);
      return X_NEXT_RESYNC;
    }
    return X_ILLEGAL;
  }
  if (f3 == 4 || (load<u32>(h + H_ISA_OFF) & ISA_OFF_ZICSR)) return X_ILLEGAL;
  /* csrrw, csrrs, csrrc, csrrwi, csrrsi, csrrci */
  const csr = insn >> 20;
  const rs1 = (insn >> 15) & 31;
  const src: u64 = f3 >= 5 ? <u64>rs1 : load<u64>(h + ((insn >> 12) & 0xf8));
  const writes = (f3 & 3) == 1 || rs1 != 0;
  const old = csrRead(h, csr, priv);
  if (csrIllegal) return X_ILLEGAL;
  let r = X_NEXT;
  if (writes) {
    // mip's read-modify-write uses the software-writable bits, not the device lines.
    const base = csr == CSR_MIP ? load<u64>(h + H_MIP) : old;
    const nv = (f3 & 3) == 1 ? src : (f3 & 3) == 2 ? base | src : base & ~src;
    const w = csrWrite(h, csr, nv, priv);
    if (csrIllegal) return X_ILLEGAL;
    if (w == CSR_WRITE_RESYNC) r = X_NEXT_RESYNC;
  }
  setRd(h, insn, old);
  return r;
}

