// Entry of the cpu-wasm module: raw exports, no bindings, no allocation.
import {
  H_PC, H_PRIV, H_MISA, H_MSTATUS, H_MHARTID, H_ISA_OFF, HART_STATE_SIZE, PRV_M,
} from "./hart-layout";
import { setConfig, hartBase, flushAllTlbs, flushStoreTlb } from "./state";
import { csrRead, csrWrite, csrIllegal, misaFor, MSTATUS_XL } from "./csr";

export { run } from "./interp";

/** Tells the module where the machine area and the hart blocks are. */
export function configure(machineArea: usize, hartArea: usize, hartBlockSize: u32, harts: u32): void {
  setConfig(machineArea, hartArea, <usize>hartBlockSize, harts);
}

/**
 * Power-on reset of one hart (QEMU's riscv_cpu_reset): M-mode, registers zero, pc given. The
 * ISA configuration (H_ISA_OFF) survives; misa follows it.
 */
export function resetHart(hart: u32, pc: u64): void {
  const h = hartBase(hart);
  const off = load<u32>(h + H_ISA_OFF);
  memory.fill(h, 0, HART_STATE_SIZE);
  store<u32>(h + H_ISA_OFF, off);
  store<u64>(h + H_PC, pc);
  store<u32>(h + H_PRIV, PRV_M);
  store<u64>(h + H_MISA, misaFor(off));
  store<u64>(h + H_MSTATUS, MSTATUS_XL);
  store<u64>(h + H_MHARTID, <u64>hart);
  // mtimecmp resets to 0, so MTIP is pending from the start, as on QEMU 7.2.
  flushAllTlbs(h);
}

/**
 * Sets the extensions hart `hart` runs without (ISA_OFF_* bits, already validated by the
 * caller) and its misa; drops its TLBs. Call before the hart runs (QEMU: CPU properties are
 * fixed at realize).
 */
export function setIsaOff(hart: u32, off: u32): void {
  const h = hartBase(hart);
  store<u32>(h + H_ISA_OFF, off);
  store<u64>(h + H_MISA, misaFor(off));
  flushAllTlbs(h);
}

export function tlbFlush(hart: u32): void {
  flushAllTlbs(hartBase(hart));
}

export function tlbFlushStores(hart: u32): void {
  flushStoreTlb(hartBase(hart));
}

/** Reads a CSR with M-mode rights (for debuggers and tests); see debugCsrIllegal. */
export function debugCsrRead(hart: u32, csr: u32): u64 {
  return csrRead(hartBase(hart), csr & 0xfff, PRV_M);
}

/** Writes a CSR with M-mode rights; flushes the hart's TLBs. */
export function debugCsrWrite(hart: u32, csr: u32, value: u64): void {
  const h = hartBase(hart);
  csrRead(h, csr & 0xfff, PRV_M);
  if (!csrIllegal) csrWrite(h, csr & 0xfff, value, PRV_M);
  flushAllTlbs(h);
}

/** 1 when the last debugCsrRead/debugCsrWrite named a CSR that does not exist or is read-only. */
export function debugCsrIllegal(): u32 {
  return csrIllegal ? 1 : 0;
}
