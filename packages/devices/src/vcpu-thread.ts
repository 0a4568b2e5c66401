/**
 * The vCPU worker thread's entry (started by vcpu-worker.ts from dist/vcpu-thread.js): a
 * cpu-wasm instance on the VM's shared memory runs the harts' round-robin slices while the
 * control block says run. mtime comes from the clock the main thread publishes; MMIO and HTIF
 * exits go through the mailbox (the main thread serves them, this thread waits); WFI sleeps
 * with Atomics.wait until the next timer deadline or a wake; throttle sleeps as QEMU's
 * cpu_throttle_thread.
 *
 * @module
 */

import { parentPort, workerData } from "node:worker_threads";
import { Cpu, ExitReason, H_STIMECMP, type CpuIsa } from "@ferryvm/cpu-wasm";
import * as C from "./vcpu-control.ts";

const data = workerData as C.VcpuThreadData;
const { memory, harts, slice } = data;
const i32 = new Int32Array(memory.buffer, data.control, C.WORDS);
const dv = new DataView(memory.buffer, data.control, C.BLOCK_BYTES);
const state = new DataView(memory.buffer);

function call(kind: number, hart: number, addr: number, size: number, value: bigint): number {
  i32[C.W_KIND] = kind;
  i32[C.W_HART] = hart;
  i32[C.W_SIZE] = size;
  i32[C.W_ADDR_LO] = addr >>> 0;
  i32[C.W_ADDR_HI] = Math.floor(addr / 0x1_0000_0000) >>> 0;
  dv.setBigUint64(C.B_VALUE, value, true);
  const seq = (Atomics.load(i32, C.W_REQ) + 1) | 0;
  Atomics.store(i32, C.W_REQ, seq);
  Atomics.notify(i32, C.W_REQ);
  for (;;) {
    const r = Atomics.load(i32, C.W_REP);
    if (r === seq) break;
    Atomics.wait(i32, C.W_REP, r);
  }
  return Atomics.load(i32, C.W_RESULT);
}

const cpu = Cpu.createSync({
  memory,
  harts,
  debug: data.debug,
  isa: data.isa as Partial<CpuIsa>,
  mmio: {
    read(addr, size, hart) {
      if (call(C.CALL_READ, hart, addr, size, 0n) !== 0) return undefined;
      return dv.getBigUint64(C.B_VALUE, true);
    },
    write(addr, size, value, hart) {
      return call(C.CALL_WRITE, hart, addr, size, BigInt.asUintN(64, BigInt(value))) === 0;
    },
  },
});

// The clock the main thread published (a seqlock), and the last mtime the harts saw.
let clockSeq = -1;
let clockHost = 0;
let clockNs = 0;
let clockDelta = 0n;
let lastMtime = 0n;

function mtime(): bigint {
  let s = Atomics.load(i32, C.W_CLOCK_SEQ);
  if (s !== clockSeq) {
    for (;;) {
      if ((s & 1) === 0) {
        clockHost = dv.getFloat64(C.B_HOST_MS, true);
        clockNs = dv.getFloat64(C.B_NS, true);
        clockDelta = dv.getBigInt64(C.B_DELTA, true);
        if (Atomics.load(i32, C.W_CLOCK_SEQ) === s) break;
      }
      s = Atomics.load(i32, C.W_CLOCK_SEQ);
    }
    clockSeq = s;
    lastMtime = 0n;
  }
  const ns = clockNs + Math.floor((C.hostMs() - clockHost) * 1e6);
  let m = BigInt(Math.floor(ns / C.NS_PER_TICK)) + clockDelta;
  // Each thread's time origin is its own: never let the harts see time go back.
  if (m < lastMtime) m = lastMtime;
  lastMtime = m;
  return m;
}

let retired = 0;
/** Host ms the harts ran since the last throttle sleep (negative: oversleep owed). */
let ranMs = 0;

/** Runs rounds while the generation `g` (odd) stands. */
function runGeneration(g: number): void {
  while (Atomics.load(i32, C.W_CTL) === g) {
    const wake0 = Atomics.load(i32, C.W_WAKE);
    const roundStart = performance.now();
    let idle = true;
    let roundMtime = 0n;
    for (let h = 0; h < harts; h++) {
      const t = mtime();
      if (h === 0) roundMtime = t;
      cpu.mtime = t;
      Atomics.store(i32, C.W_RUN_HART, h);
      Atomics.add(i32, C.W_RUN_SEQ, 1);
      const reason = cpu.run(h, slice);
      Atomics.add(i32, C.W_RUN_SEQ, 1);
      const n = Number(cpu.hart(h).lastRetired);
      retired += n;
      dv.setFloat64(C.B_RETIRED, retired, true);
      if (n !== 0 || reason !== ExitReason.Wfi) idle = false;
      if (reason === ExitReason.Htif) call(C.CALL_HTIF, h, 0, 0, 0n);
      if (Atomics.load(i32, C.W_CTL) !== g) return;
    }
    const pct = Atomics.load(i32, C.W_THROTTLE);
    if (pct > 0 && !idle) {
      ranMs += performance.now() - roundStart;
      if (ranMs >= C.THROTTLE_SLICE_MS) throttleSleep(g, pct);
      continue;
    }
    if (idle) idleSleep(wake0, roundMtime);
  }
}

/** QEMU's cpu_throttle_thread: sleep pct / (100 - pct) × the time the harts just ran. */
function throttleSleep(g: number, pct: number): void {
  const ms = (ranMs * pct) / (100 - pct);
  ranMs = 0;
  const end = performance.now() + ms;
  for (;;) {
    const left = end - performance.now();
    if (left <= 0 || Atomics.load(i32, C.W_CTL) !== g) break;
    Atomics.wait(i32, C.W_CTL, g, left);
  }
  const over = performance.now() - end;
  if (over > 0) ranMs = -(over * (100 - pct)) / pct;
}

/** Every hart waits in WFI: sleep until the next timer deadline or a wake (device interrupt, park). */
function idleSleep(wake0: number, roundMtime: bigint): void {
  const now = mtime();
  let ms = 1000;
  for (let h = 0; h < harts; h++) {
    const hart = cpu.hart(h);
    // Sstc's stimecmp counts too (a spurious wake-up when STCE is off costs one round).
    for (const cmp of [hart.mtimecmp, state.getBigUint64(hart.base + H_STIMECMP, true)]) {
      if (cmp > now) ms = Math.min(ms, Number(cmp - now) / 1e4);
      // Due since the harts last looked at the time: run again now.
      else if (cmp > roundMtime) ms = 0;
    }
  }
  if (ms <= 0) return;
  Atomics.store(i32, C.W_IDLE, C.IDLE_ASLEEP);
  Atomics.wait(i32, C.W_WAKE, wake0, ms);
  // IDLE_CLAIMED: the main thread parked the harts while they slept and went on without an
  // ack; the generation check that follows (runGeneration's loop) sees the park.
  Atomics.store(i32, C.W_IDLE, 0);
}

parentPort!.postMessage({ ready: true });
for (;;) {
  const g = Atomics.load(i32, C.W_CTL);
  if ((g & 1) === 0) {
    Atomics.store(i32, C.W_ACK, g);
    Atomics.notify(i32, C.W_ACK);
    Atomics.wait(i32, C.W_CTL, g);
    continue;
  }
  runGeneration(g);
}
