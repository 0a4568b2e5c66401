// Trap entry, interrupt selection, mret/sret (privileged spec 1.12 §3.1.6-3.3, QEMU 7.2 priorities).
import {
  H_PRIV, H_MSTATUS, H_MEDELEG, H_MIDELEG, H_MIE, H_MTVEC, H_MEPC, H_MCAUSE, H_MTVAL,
  H_STVEC, H_SEPC, H_SCAUSE, H_STVAL, PRV_M, PRV_S, PRV_U,
} from "./hart-layout";
import * as C from "./csr-numbers";
import { effectiveMip } from "./csr";
import { MA_TRACE_FLAGS, MA_TRACE_TRAP } from "./machine-area";
import { machineArea, curHart } from "./state";

/** Trace hook (QEMU's riscv_cpu_do_interrupt log line): called only when MA_TRACE_TRAP is set. */
@external("env", "trace_trap")
declare function trace_trap(hart: u32, isAsync: u32, causeLo: u32, causeHi: u32, epcLo: u32, epcHi: u32, tvalLo: u32, tvalHi: u32): void;

/** Out of line so takeTrap only pays a load and a branch when tracing is off. */
@inline(never) function traceTrap(pc: u64, cause: u64, tval: u64): void {
  const code = cause & ~INTERRUPT_BIT;
  trace_trap(curHart, <u32>(cause >> 63), <u32>code, <u32>(code >> 32), <u32>pc, <u32>(pc >> 32), <u32>tval, <u32>(tval >> 32));
}

const INTERRUPT_BIT: u64 = <u64>1 << 63;

/** Enters the trap handler for `cause` (with INTERRUPT_BIT for interrupts); returns the new pc. */
export function takeTrap(hart: usize, pc: u64, cause: u64, tval: u64): u64 {
  if (load<u32>(machineArea + MA_TRACE_FLAGS) & MA_TRACE_TRAP) traceTrap(pc, cause, tval);
  const priv = load<u32>(hart + H_PRIV);
  const isIrq = (cause & INTERRUPT_BIT) != 0;
  const code = cause & 63;
  const deleg = load<u64>(hart + (isIrq ? H_MIDELEG : H_MEDELEG));
  const ms = load<u64>(hart + H_MSTATUS);
  let tvec: u64;
  if (priv <= <u32>PRV_S && ((deleg >> code) & 1)) {
    store<u64>(hart + H_SCAUSE, cause);
    store<u64>(hart + H_SEPC, pc);
    store<u64>(hart + H_STVAL, tval);
    let n = ms & ~(C.MSTATUS_SPP | C.MSTATUS_SPIE | C.MSTATUS_SIE);
    if (ms & C.MSTATUS_SIE) n |= C.MSTATUS_SPIE;
    if (priv == PRV_S) n |= C.MSTATUS_SPP;
    store<u64>(hart + H_MSTATUS, n);
    store<u32>(hart + H_PRIV, PRV_S);
    tvec = load<u64>(hart + H_STVEC);
  } else {
    store<u64>(hart + H_MCAUSE, cause);
    store<u64>(hart + H_MEPC, pc);
    store<u64>(hart + H_MTVAL, tval);
    let n = ms & ~(C.MSTATUS_MPP | C.MSTATUS_MPIE | C.MSTATUS_MIE);
    if (ms & C.MSTATUS_MIE) n |= C.MSTATUS_MPIE;
    n |= <u64>priv << 11;
    store<u64>(hart + H_MSTATUS, n);
    store<u32>(hart + H_PRIV, PRV_M);
    tvec = load<u64>(hart + H_MTVEC);
  }
  const base = tvec & ~<u64>3;
  return isIrq && (tvec & 1) ? base + (code << 2) : base;
}

/**
 * QEMU 7.2 without AIA (the virt default) takes the lowest-numbered pending interrupt of the
 * chosen level (riscv_cpu_pending_to_irq returns ctz(pending)), not the privileged spec's
 * MEI > MSI > MTI > SEI > SSI > STI; lockstep runs against QEMU confirm it.
 */
function pickIrq(bits: u64): i32 {
  return bits ? <i32>ctz(bits) : -1;
}

/** The interrupt to take now, or -1. */
export function pendingInterrupt(hart: usize): i32 {
  const pending = effectiveMip(hart) & load<u64>(hart + H_MIE);
  if (pending == 0) return -1;
  const priv = load<u32>(hart + H_PRIV);
  const ms = load<u64>(hart + H_MSTATUS);
  const mideleg = load<u64>(hart + H_MIDELEG);
  const m = pending & ~mideleg;
  if (m != 0 && (priv < <u32>PRV_M || (ms & C.MSTATUS_MIE))) return pickIrq(m);
  const s = pending & mideleg;
  if (s != 0 && (priv < <u32>PRV_S || (priv == PRV_S && (ms & C.MSTATUS_SIE)))) return pickIrq(s);
  return -1;
}

/** Whether WFI may stop waiting: any interrupt pending and enabled in mie, even if globally off. */
export function wfiWakes(hart: usize): bool {
  return (effectiveMip(hart) & load<u64>(hart + H_MIE)) != 0;
}

export function takeInterrupt(hart: usize, pc: u64, irq: i32): u64 {
  return takeTrap(hart, pc, INTERRUPT_BIT | <u64>irq, 0);
}

/** mret: returns the new pc. */
export function doMret(hart: usize): u64 {
  const ms = load<u64>(hart + H_MSTATUS);
  let mpp = <u32>((ms >> 11) & 3);
  if (mpp == 2) mpp = PRV_U;
  let n = ms & ~(C.MSTATUS_MPP | C.MSTATUS_MIE);
  if (ms & C.MSTATUS_MPIE) n |= C.MSTATUS_MIE;
  n |= C.MSTATUS_MPIE;
  if (mpp != PRV_M) n &= ~C.MSTATUS_MPRV;
  store<u64>(hart + H_MSTATUS, n);
  store<u32>(hart + H_PRIV, mpp);
  return load<u64>(hart + H_MEPC);
}

/** sret: returns the new pc. */
export function doSret(hart: usize): u64 {
  const ms = load<u64>(hart + H_MSTATUS);
  const spp: u32 = ms & C.MSTATUS_SPP ? PRV_S : PRV_U;
  let n = ms & ~(C.MSTATUS_SPP | C.MSTATUS_SIE | C.MSTATUS_MPRV);
  if (ms & C.MSTATUS_SPIE) n |= C.MSTATUS_SIE;
  n |= C.MSTATUS_SPIE;
  store<u64>(hart + H_MSTATUS, n);
  store<u32>(hart + H_PRIV, spp);
  return load<u64>(hart + H_SEPC);
}

