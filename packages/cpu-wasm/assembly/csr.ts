// Control and status registers (Zicsr, Zicntr, privileged spec 1.12 as QEMU 7.2 implements it).
import {
  H_MSTATUS, H_MISA, H_MEDELEG, H_MIDELEG, H_MIE, H_MIP, H_MTVEC, H_MSCRATCH, H_MEPC,
  H_MCAUSE, H_MTVAL, H_MCOUNTEREN, H_STVEC, H_SSCRATCH, H_SEPC, H_SCAUSE, H_STVAL,
  H_SCOUNTEREN, H_SATP, H_MENVCFG, H_SENVCFG, H_MCYCLE, H_MINSTRET, H_MHARTID, H_PMPCFG0,
  H_PMPCFG2, H_PMPADDR, H_MIP_EXTERNAL, H_MTIMECMP, H_STIMECMP, H_STIMER_ARMED, H_MCOUNTINHIBIT, H_MHPMCOUNTER,
  H_MHPMEVENT, HPM_COUNTERS, H_ISA_OFF, ISA_OFF_M, ISA_OFF_A, ISA_OFF_C, ISA_OFF_S, ISA_OFF_U,
  ISA_OFF_SSTC, ISA_OFF_MMU, ISA_OFF_PMP, PRV_M, PRV_S, PRV_U,
} from "./hart-layout";
import { MA_MTIME } from "./machine-area";
import * as C from "./csr-numbers";
import { machineArea, flushAllTlbs } from "./state";
import { pmpCfg, PMP_L } from "./pmp";

/** Set by csrRead/csrWrite when the access is an illegal instruction. */
export let csrIllegal: bool = false;

export const MISA_RV64IMACSU: u64 = (<u64>2 << 62) | (1 << 0) | (1 << 2) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20);

/** misa of a hart running without the ISA_OFF_* extensions in `off` (I always; MXL = 64). */
export function misaFor(off: u32): u64 {
  let m = MISA_RV64IMACSU;
  if (off & ISA_OFF_M) m &= ~(<u64>1 << 12);
  if (off & ISA_OFF_A) m &= ~(<u64>1 << 0);
  if (off & ISA_OFF_C) m &= ~(<u64>1 << 2);
  if (off & ISA_OFF_S) m &= ~(<u64>1 << 18);
  if (off & ISA_OFF_U) m &= ~(<u64>1 << 20);
  return m;
}

@inline function isaOff(hart: usize, bit: u32): bool {
  return (load<u32>(hart + H_ISA_OFF) & bit) != 0;
}

/** UXL = SXL = 2 (64-bit), read-only. */
export const MSTATUS_XL: u64 = (<u64>2 << 32) | (<u64>2 << 34);

// QEMU 7.2 keeps mstatus.VS writable without the V extension (and SD follows it).
const MSTATUS_VS: u64 = 0x600;
const MSTATUS_SD: u64 = <u64>1 << 63;
const MSTATUS_WRITABLE: u64 = C.MSTATUS_SIE | C.MSTATUS_MIE | C.MSTATUS_SPIE | C.MSTATUS_MPIE |
  C.MSTATUS_SPP | C.MSTATUS_MPP | C.MSTATUS_MPRV | C.MSTATUS_SUM | C.MSTATUS_MXR |
  C.MSTATUS_TVM | C.MSTATUS_TW | C.MSTATUS_TSR | MSTATUS_VS;
const SSTATUS_MASK: u64 = C.MSTATUS_SIE | C.MSTATUS_SPIE | C.MSTATUS_SPP | C.MSTATUS_SUM |
  C.MSTATUS_MXR | MSTATUS_VS | (<u64>3 << 32) | MSTATUS_SD;
/** marchid and mimpid of QEMU 7.2.22, the reference: (major << 16) | (minor << 8) | micro. */
export const QEMU_MARCHID: u64 = 0x70216;
const MSTATUS_UXL: u64 = <u64>3 << 32;
const MSTATUS_GVA_MPV: u64 = <u64>3 << 38;
const S_INTS: u64 = (1 << C.IRQ_S_SOFT) | (1 << C.IRQ_S_TIMER) | (1 << C.IRQ_S_EXT);
const M_INTS: u64 = (1 << C.IRQ_M_SOFT) | (1 << C.IRQ_M_TIMER) | (1 << C.IRQ_M_EXT);
// QEMU 7.2 lets the VS interrupt bits (2, 6, 10) and LCOFI (13) be written, delegated and
// enabled even without the H and Sscofpmf extensions; nothing ever takes them.
const VS_INTS: u64 = 0x444;
const LCOFI: u64 = 0x2000;
const SGEI: u64 = 0x1000;
const DELEGABLE_INTS: u64 = S_INTS | VS_INTS | LCOFI;
const MIP_WRITABLE: u64 = DELEGABLE_INTS;
const MIE_WRITABLE: u64 = M_INTS | S_INTS | VS_INTS | SGEI | LCOFI;
/** Exceptions QEMU 7.2 lets medeleg delegate (no hypervisor). */
const DELEGABLE_EXCPS: u64 = 0xf0_bfff;
const ENVCFG_MASK: u64 = 0xf1;
/** menvcfg.STCE (Sstc): stimecmp drives STIP. */
const MENVCFG_STCE: u64 = <u64>1 << 63;
/** menvcfg.PBMTE: writable on QEMU 7.2 (Svpbmt page attributes are accepted in PTEs when set). */
const MENVCFG_PBMTE: u64 = <u64>1 << 62;
const MIP_STIP: u64 = 1 << C.IRQ_S_TIMER;

/** mip as software sees it: stored bits, device lines, MTIP from the CLINT comparator. */
export function effectiveMip(hart: usize): u64 {
  let mip = load<u64>(hart + H_MIP) | <u64>load<u32>(hart + H_MIP_EXTERNAL);
  const now = load<u64>(machineArea + MA_MTIME);
  if (now >= load<u64>(hart + H_MTIMECMP)) mip |= 1 << C.IRQ_M_TIMER;
  if (load<u32>(hart + H_STIMER_ARMED) && now >= load<u64>(hart + H_STIMECMP)) {
    // The armed supervisor timer fires: STIP latches in mip, as QEMU's stimer callback does.
    store<u32>(hart + H_STIMER_ARMED, 0);
    store<u64>(hart + H_MIP, load<u64>(hart + H_MIP) | MIP_STIP);
    mip |= MIP_STIP;
  }
  return mip;
}

function counterEnabled(hart: usize, csr: u32, priv: u32): bool {
  const bit: u64 = <u64>1 << (csr & 31);
  if (priv == PRV_M) return true;
  if (!(load<u64>(hart + H_MCOUNTEREN) & bit)) return false;
  if (priv == PRV_U && !(load<u64>(hart + H_SCOUNTEREN) & bit)) return false;
  return true;
}

/**
 * Reads CSR `csr` as privilege `priv` would; sets csrIllegal (and returns 0) when the CSR does
 * not exist or is not accessible.
 */
export function csrRead(hart: usize, csr: u32, priv: u32): u64 {
  csrIllegal = false;
  if (((csr >> 8) & 3) > priv) {
    csrIllegal = true;
    return 0;
  }
  switch (csr) {
    case C.CSR_CYCLE:
    case C.CSR_INSTRET:
      if (!counterEnabled(hart, csr, priv)) break;
      return load<u64>(hart + (csr == C.CSR_CYCLE ? H_MCYCLE : H_MINSTRET));
    case C.CSR_TIME:
      if (!counterEnabled(hart, csr, priv)) break;
      return load<u64>(machineArea + MA_MTIME);
    case C.CSR_SSTATUS: return load<u64>(hart + H_MSTATUS) & SSTATUS_MASK;
    case C.CSR_SIE: return load<u64>(hart + H_MIE) & load<u64>(hart + H_MIDELEG) & S_INTS;
    case C.CSR_STVEC: return load<u64>(hart + H_STVEC);
    case C.CSR_SCOUNTEREN: return load<u64>(hart + H_SCOUNTEREN);
    case C.CSR_SENVCFG: return load<u64>(hart + H_SENVCFG);
    case C.CSR_SSCRATCH: return load<u64>(hart + H_SSCRATCH);
    case C.CSR_SEPC: return load<u64>(hart + H_SEPC);
    case C.CSR_SCAUSE: return load<u64>(hart + H_SCAUSE);
    case C.CSR_STVAL: return load<u64>(hart + H_STVAL);
    case C.CSR_SIP: return effectiveMip(hart) & load<u64>(hart + H_MIDELEG) & (S_INTS | LCOFI);
    case C.CSR_SATP:
      // mmu=off: satp reads 0, even with TVM set (QEMU 7.2's read_satp).
      if (isaOff(hart, ISA_OFF_MMU)) return 0;
      if (priv == PRV_S && (load<u64>(hart + H_MSTATUS) & C.MSTATUS_TVM)) break;
      return load<u64>(hart + H_SATP);
    case C.CSR_STIMECMP:
      if (isaOff(hart, ISA_OFF_SSTC)) break;
      // Sstc: below M it needs mcounteren.TM and menvcfg.STCE (QEMU 7.2's predicate).
      if (priv != PRV_M && (!(load<u64>(hart + H_MCOUNTEREN) & 2) || !(load<u64>(hart + H_MENVCFG) & MENVCFG_STCE))) break;
      return load<u64>(hart + H_STIMECMP);
    case C.CSR_MVENDORID:
    case C.CSR_MCONFIGPTR:
      return 0;
    case C.CSR_MARCHID:
    case C.CSR_MIMPID:
      return QEMU_MARCHID;
    case C.CSR_MHARTID: return load<u64>(hart + H_MHARTID);
    case C.CSR_MSTATUS: return load<u64>(hart + H_MSTATUS);
    case C.CSR_MISA: return load<u64>(hart + H_MISA);
    case C.CSR_MEDELEG: return load<u64>(hart + H_MEDELEG);
    case C.CSR_MIDELEG: return load<u64>(hart + H_MIDELEG);
    case C.CSR_MIE: return load<u64>(hart + H_MIE);
    case C.CSR_MTVEC: return load<u64>(hart + H_MTVEC);
    case C.CSR_MCOUNTEREN: return load<u64>(hart + H_MCOUNTEREN);
    case C.CSR_MENVCFG: return load<u64>(hart + H_MENVCFG);
    case C.CSR_MCOUNTINHIBIT: return load<u64>(hart + H_MCOUNTINHIBIT);
    case C.CSR_MSCRATCH: return load<u64>(hart + H_MSCRATCH);
    case C.CSR_MEPC: return load<u64>(hart + H_MEPC);
    case C.CSR_MCAUSE: return load<u64>(hart + H_MCAUSE);
    case C.CSR_MTVAL: return load<u64>(hart + H_MTVAL);
    case C.CSR_MIP: return effectiveMip(hart);
    case C.CSR_PMPCFG0:
      if (isaOff(hart, ISA_OFF_PMP)) break;
      return load<u64>(hart + H_PMPCFG0);
    case C.CSR_PMPCFG2:
      if (isaOff(hart, ISA_OFF_PMP)) break;
      return load<u64>(hart + H_PMPCFG2);
    case C.CSR_MCYCLE: return load<u64>(hart + H_MCYCLE);
    case C.CSR_MINSTRET: return load<u64>(hart + H_MINSTRET);
    default:
      if (<i32>csr >= C.CSR_PMPADDR0 && <i32>csr <= C.CSR_PMPADDR15) {
        if (isaOff(hart, ISA_OFF_PMP)) break;
        return load<u64>(hart + H_PMPADDR + (<usize>(<i32>csr - C.CSR_PMPADDR0) << 3));
      }
      if (<i32>csr >= C.CSR_HPMCOUNTER3 && <i32>csr < C.CSR_HPMCOUNTER3 + HPM_COUNTERS) {
        if (!counterEnabled(hart, csr, priv)) break;
        return load<u64>(hart + H_MHPMCOUNTER + (<usize>(<i32>csr - C.CSR_HPMCOUNTER3) << 3));
      }
      if (<i32>csr >= C.CSR_MHPMCOUNTER3 && <i32>csr < C.CSR_MHPMCOUNTER3 + HPM_COUNTERS) {
        return load<u64>(hart + H_MHPMCOUNTER + (<usize>(<i32>csr - C.CSR_MHPMCOUNTER3) << 3));
      }
      if (<i32>csr >= C.CSR_MHPMEVENT3 && <i32>csr <= C.CSR_MHPMEVENT31) {
        return load<u64>(hart + H_MHPMEVENT + (<usize>(<i32>csr - C.CSR_MHPMEVENT3) << 3));
      }
  }
  csrIllegal = true;
  return 0;
}

/** What a CSR write must make the interpreter do next. */
export const CSR_WRITE_PLAIN: u32 = 0;
/** Translation, privilege view or interrupt state changed: leave the fast loop. */
export const CSR_WRITE_RESYNC: u32 = 1;

/**
 * Writes CSR `csr` (already checked readable by csrRead for `priv`); sets csrIllegal for
 * read-only CSRs. Returns CSR_WRITE_RESYNC when the interpreter must re-derive its caches.
 */
export function csrWrite(hart: usize, csr: u32, v: u64, priv: u32): u32 {
  csrIllegal = false;
  if ((csr >> 10) == 3) {
    csrIllegal = true;
    return CSR_WRITE_PLAIN;
  }
  switch (csr) {
    case C.CSR_SSTATUS: {
      const mask = SSTATUS_MASK & ~MSTATUS_SD;
      return writeMstatus(hart, (load<u64>(hart + H_MSTATUS) & ~mask) | (v & mask));
    }
    case C.CSR_SIE: {
      const mask = load<u64>(hart + H_MIDELEG) & S_INTS;
      store<u64>(hart + H_MIE, (load<u64>(hart + H_MIE) & ~mask) | (v & mask));
      return CSR_WRITE_RESYNC;
    }
    case C.CSR_STVEC: if ((v & 3) < 2) store<u64>(hart + H_STVEC, v); return CSR_WRITE_PLAIN;
    case C.CSR_SCOUNTEREN: store<u64>(hart + H_SCOUNTEREN, v); return CSR_WRITE_PLAIN;
    case C.CSR_SENVCFG: store<u64>(hart + H_SENVCFG, v & ENVCFG_MASK); return CSR_WRITE_PLAIN;
    case C.CSR_SSCRATCH: store<u64>(hart + H_SSCRATCH, v); return CSR_WRITE_PLAIN;
    case C.CSR_SEPC: store<u64>(hart + H_SEPC, v); return CSR_WRITE_PLAIN;
    case C.CSR_STIMECMP: {
      store<u64>(hart + H_STIMECMP, v);
      // As QEMU 7.2's riscv_timer_write_timecmp: a time already passed sets STIP, a later one
      // clears it and arms the timer.
      const mip = load<u64>(hart + H_MIP) & ~MIP_STIP;
      const due = load<u64>(machineArea + MA_MTIME) >= v;
      store<u64>(hart + H_MIP, due ? mip | MIP_STIP : mip);
      store<u32>(hart + H_STIMER_ARMED, due ? 0 : 1);
      return CSR_WRITE_RESYNC;
    }
    case C.CSR_SCAUSE: store<u64>(hart + H_SCAUSE, v); return CSR_WRITE_PLAIN;
    case C.CSR_STVAL: store<u64>(hart + H_STVAL, v); return CSR_WRITE_PLAIN;
    case C.CSR_SIP: {
      const mask = load<u64>(hart + H_MIDELEG) & ((1 << C.IRQ_S_SOFT) | LCOFI);
      store<u64>(hart + H_MIP, (load<u64>(hart + H_MIP) & ~mask) | (v & mask));
      return CSR_WRITE_RESYNC;
    }
    case C.CSR_SATP: {
      if (isaOff(hart, ISA_OFF_MMU)) return CSR_WRITE_PLAIN; // QEMU 7.2: ignored, stays Bare
      const mode = v >> 60;
      if (mode == 0 || mode == 8 || mode == 9 || mode == 10) {
        store<u64>(hart + H_SATP, v);
        flushAllTlbs(hart);
      }
      return CSR_WRITE_RESYNC;
    }
    case C.CSR_MSTATUS:
      return writeMstatus(hart, v);
    case C.CSR_MISA: return CSR_WRITE_PLAIN;
    case C.CSR_MEDELEG: store<u64>(hart + H_MEDELEG, v & DELEGABLE_EXCPS); return CSR_WRITE_PLAIN;
    case C.CSR_MIDELEG: store<u64>(hart + H_MIDELEG, v & DELEGABLE_INTS); return CSR_WRITE_RESYNC;
    case C.CSR_MIE: store<u64>(hart + H_MIE, v & MIE_WRITABLE); return CSR_WRITE_RESYNC;
    case C.CSR_MTVEC: if ((v & 3) < 2) store<u64>(hart + H_MTVEC, v); return CSR_WRITE_PLAIN;
    case C.CSR_MCOUNTEREN: store<u64>(hart + H_MCOUNTEREN, v); return CSR_WRITE_PLAIN;
    case C.CSR_MENVCFG: store<u64>(hart + H_MENVCFG, v & (ENVCFG_MASK | MENVCFG_PBMTE | MENVCFG_STCE)); return CSR_WRITE_RESYNC;
    case C.CSR_MCOUNTINHIBIT: store<u64>(hart + H_MCOUNTINHIBIT, v); return CSR_WRITE_PLAIN;
    case C.CSR_MSCRATCH: store<u64>(hart + H_MSCRATCH, v); return CSR_WRITE_PLAIN;
    case C.CSR_MEPC: store<u64>(hart + H_MEPC, v); return CSR_WRITE_PLAIN;
    case C.CSR_MCAUSE: store<u64>(hart + H_MCAUSE, v); return CSR_WRITE_PLAIN;
    case C.CSR_MTVAL: store<u64>(hart + H_MTVAL, v); return CSR_WRITE_PLAIN;
    case C.CSR_MIP: {
      // With Sstc enabled STIP follows stimecmp and is not writable (sstc=off: menvcfg.STCE
      // stays writable but does nothing, as on QEMU 7.2).
      const stce = (load<u64>(hart + H_MENVCFG) & MENVCFG_STCE) != 0 && !isaOff(hart, ISA_OFF_SSTC);
      const mask = stce ? MIP_WRITABLE & ~MIP_STIP : MIP_WRITABLE;
      store<u64>(hart + H_MIP, (load<u64>(hart + H_MIP) & ~mask) | (v & mask));
      return CSR_WRITE_RESYNC;
    }
    case C.CSR_PMPCFG0:
    case C.CSR_PMPCFG2: {
      const base: u32 = csr == C.CSR_PMPCFG0 ? 0 : 8;
      const p = hart + (csr == C.CSR_PMPCFG0 ? H_PMPCFG0 : H_PMPCFG2);
      for (let i: u32 = 0; i < 8; i++) {
        if (!(pmpCfg(hart, base + i) & PMP_L)) store<u8>(p + i, <u8>(v >> (<u64>i << 3)));
      }
      flushAllTlbs(hart);
      return CSR_WRITE_RESYNC;
    }
    case C.CSR_MCYCLE: store<u64>(hart + H_MCYCLE, v); return CSR_WRITE_PLAIN;
    case C.CSR_MINSTRET: store<u64>(hart + H_MINSTRET, v); return CSR_WRITE_PLAIN;
    default:
      if (<i32>csr >= C.CSR_PMPADDR0 && <i32>csr <= C.CSR_PMPADDR15) {
        const i = <u32>(<i32>csr - C.CSR_PMPADDR0);
        if (pmpCfg(hart, i) & PMP_L) return CSR_WRITE_PLAIN;
        // A locked TOR entry above also locks this address.
        if (i < 15 && (pmpCfg(hart, i + 1) & (PMP_L | 0x18)) == (PMP_L | 0x08)) return CSR_WRITE_PLAIN;
        store<u64>(hart + H_PMPADDR + (<usize>i << 3), v); // QEMU 7.2 keeps all 64 bits
        flushAllTlbs(hart);
        return CSR_WRITE_RESYNC;
      }
      // Programmable counters hold what was written: they count no events.
      if (<i32>csr >= C.CSR_MHPMCOUNTER3 && <i32>csr < C.CSR_MHPMCOUNTER3 + HPM_COUNTERS) {
        store<u64>(hart + H_MHPMCOUNTER + (<usize>(<i32>csr - C.CSR_MHPMCOUNTER3) << 3), v);
      } else if (<i32>csr >= C.CSR_MHPMEVENT3 && <i32>csr <= C.CSR_MHPMEVENT31) {
        store<u64>(hart + H_MHPMEVENT + (<usize>(<i32>csr - C.CSR_MHPMEVENT3) << 3), v);
      }
      return CSR_WRITE_PLAIN;
  }
}

function writeMstatus(hart: usize, v: u64): u32 {
  const old = load<u64>(hart + H_MSTATUS);
  // As QEMU 7.2: GVA and MPV are writable, and so is UXL when the value written is nonzero.
  let mask = MSTATUS_WRITABLE | MSTATUS_GVA_MPV;
  if (v & MSTATUS_UXL) mask |= MSTATUS_UXL;
  let nv = (old & ~mask) | (v & mask);
  // MPP = 2 (reserved) is stored as written, as QEMU 7.2 does; mret treats it as U.
  nv &= ~MSTATUS_SD;
  if ((nv & MSTATUS_VS) == MSTATUS_VS) nv |= MSTATUS_SD;
  store<u64>(hart + H_MSTATUS, nv);
  if ((old ^ nv) & (C.MSTATUS_SUM | C.MSTATUS_MXR)) flushAllTlbs(hart);
  return CSR_WRITE_RESYNC;
}

