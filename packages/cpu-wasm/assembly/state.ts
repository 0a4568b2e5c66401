// Module-wide configuration and the transient status of the instruction being executed.
// Nothing architectural lives here: the hart state is in linear memory (hart-layout.ts).
import { H_TLB_FETCH, TLB_ENTRIES, TLB_ENTRY_SIZE, H_TLB_STORE } from "./hart-layout";

export let machineArea: usize = 0;
export let hartArea: usize = 0;
export let hartBlockSize: usize = 0;
export let hartCount: u32 = 0;

/** Index of the hart being run (passed to the MMIO imports). */
export let curHart: u32 = 0;

/** Set by a slow path: the loop must look at trapPending / exitReason / interrupts. */
export let eventPending: bool = false;
export let trapPending: bool = false;
export let trapCause: u64 = 0;
export let trapTval: u64 = 0;
/** Exit requested after the current instruction (-1 = none). */
export let exitReason: i32 = -1;

export function setConfig(ma: usize, ha: usize, size: usize, n: u32): void {
  machineArea = ma;
  hartArea = ha;
  hartBlockSize = size;
  hartCount = n;
}

export function setCurHart(i: u32): void {
  curHart = i;
}

@inline export function hartBase(i: u32): usize {
  return hartArea + <usize>i * hartBlockSize;
}

export function raise(cause: u64, tval: u64): void {
  trapPending = true;
  trapCause = cause;
  trapTval = tval;
  eventPending = true;
}

export function requestExit(reason: i32): void {
  exitReason = reason;
  eventPending = true;
}

export function requestCheck(): void {
  eventPending = true;
}

export function clearEvents(): void {
  eventPending = false;
  trapPending = false;
}

export function clearExit(): void {
  exitReason = -1;
}

const INVALID_TAG: u64 = 0xffff_ffff_ffff_ffff;

export function tlbFlushRange(hart: usize, from: usize, to: usize): void {
  for (let p = hart + from; p < hart + to; p += TLB_ENTRY_SIZE) {
    store<u64>(p, INVALID_TAG);
  }
}

export function flushAllTlbs(hart: usize): void {
  tlbFlushRange(hart, H_TLB_FETCH, H_TLB_FETCH + 3 * TLB_ENTRIES * TLB_ENTRY_SIZE);
}

export function flushStoreTlb(hart: usize): void {
  tlbFlushRange(hart, H_TLB_STORE, H_TLB_STORE + TLB_ENTRIES * TLB_ENTRY_SIZE);
}
