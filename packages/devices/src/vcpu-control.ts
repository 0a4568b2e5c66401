/**
 * The control block shared by the main thread and a vCPU worker thread (vcpu-worker.ts and
 * vcpu-thread.ts), at `@ferryvm/memory`'s VCPU_CONTROL_BASE in the VM's shared linear memory.
 *
 * ```
 * i32 words                                 8-byte slots (byte offsets)
 *  0 CTL     generation: odd run, even park   64 VALUE     MMIO data (u64)
 *  1 ACK     the even generation parked at    72 HOST_MS   clock: host ms (timeOrigin + now)
 *  2 WAKE    bumped to end a WFI sleep        80 NS        clock: virtual ns at HOST_MS
 *  3 REQ     mailbox request sequence         88 DELTA     clock: mtime delta (i64)
 *  4 REP     mailbox reply sequence           96 RETIRED   instructions retired (f64)
 *  5 KIND    1 read, 2 write, 3 HTIF
 *  6 HART  7 SIZE  8 ADDR_LO  9 ADDR_HI  10 RESULT (0 ok, 1 access fault)
 * 11 RUN_SEQ odd while a hart is inside Cpu.run   12 RUN_HART  the hart inside it
 * 13 THROTTLE percent   14 IDLE 1 while the worker sleeps in WFI   15 CLOCK_SEQ seqlock (odd: writing)
 * ```
 *
 * This file has no imports: the worker loads it from dist/ as plain JavaScript.
 *
 * @module
 */

export const W_CTL = 0;
export const W_ACK = 1;
export const W_WAKE = 2;
export const W_REQ = 3;
export const W_REP = 4;
export const W_KIND = 5;
export const W_HART = 6;
export const W_SIZE = 7;
export const W_ADDR_LO = 8;
export const W_ADDR_HI = 9;
export const W_RESULT = 10;
export const W_RUN_SEQ = 11;
export const W_RUN_HART = 12;
export const W_THROTTLE = 13;
export const W_IDLE = 14;
/** W_IDLE: every hart sleeps in WFI (the worker waits on W_WAKE). */
export const IDLE_ASLEEP = 1;
/** W_IDLE: the main thread parked the harts during that sleep (without waiting for an ack). */
export const IDLE_CLAIMED = 2;
export const W_CLOCK_SEQ = 15;
export const WORDS = 16;

export const B_VALUE = 64;
export const B_HOST_MS = 72;
export const B_NS = 80;
export const B_DELTA = 88;
export const B_RETIRED = 96;
export const BLOCK_BYTES = 128;

export const CALL_READ = 1;
export const CALL_WRITE = 2;
export const CALL_HTIF = 3;

/** Host time comparable between threads (each thread's performance.now has its own origin). */
export function hostMs(): number {
  return performance.timeOrigin + performance.now();
}

/** ns of virtual time per mtime tick (the CLINT's 10 MHz timebase). */
export const NS_PER_TICK = 100;

/** QEMU's CPU_THROTTLE_TIMESLICE_NS, in ms. */
export const THROTTLE_SLICE_MS = 10;

/** What the worker thread is started with (its `workerData`). */
export interface VcpuThreadData {
  memory: WebAssembly.Memory;
  harts: number;
  /** CpuIsa fields (plain booleans). */
  isa: Record<string, boolean>;
  slice: number;
  debug: boolean;
  /** Byte offset of the control block. */
  control: number;
}
