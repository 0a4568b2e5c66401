/**
 * The vCPU in a worker thread (`createMachine({ vcpuThread: "worker" })`, vm-cli's
 * `-accel tcg,thread=multi`).
 *
 * Only the CPU interpreter moves: a `worker_threads` Worker runs a cpu-wasm instance on the
 * VM's one shared `WebAssembly.Memory` (vcpu-thread.ts); the device models, the vmstate
 * sections, QMP and migration stay on the main thread. Hart state already lives in the shared
 * memory, so device state, save/load and every vmstate description are unchanged, and the
 * migration's RAM work on the main thread no longer takes the vCPU's time — QEMU's picture:
 * vCPU threads, device emulation under the big lock, a migration thread.
 *
 * - Run/park: the control block's generation word (odd run, even park); the worker acks a park
 *   once no hart is inside Cpu.run, so the main thread may then read and write hart state.
 * - MMIO and HTIF exits: the worker's Cpu calls are synchronous, so they go through a mailbox
 *   in the control block; the worker waits (Atomics.wait), the main thread serves it from
 *   Atomics.waitAsync — and from inside the dirty-bitmap sync barrier, which waits for the
 *   running hart's store-TLB flush (a main thread waiting for the ack while the worker waits for
 *   an MMIO reply would otherwise deadlock).
 * - Time: the main thread's VirtualClock publishes (host ms, virtual ns, mtime delta) on every
 *   start and on a guest write to mtime; the worker derives mtime from host time as the clock
 *   does. icount is refused in worker mode (it would need the virtual time in the worker).
 * - Interrupts: devices raise mipExternal (atomic) and the main loop bumps the wake word when
 *   an interrupt line changed, ending the worker's WFI sleep.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { H_FLUSH_REQUEST, type Cpu, type CpuIsa, type MmioBus } from "@ferryvm/cpu-wasm";
import { VCPU_CONTROL_BASE } from "@ferryvm/memory";
import type { VirtualClock } from "./clock.ts";
import type { Machine, RunResult } from "./machine.ts";
import * as C from "./vcpu-control.ts";

/** Atomics.waitAsync (Node 20; ES2024's lib, which this project's tsconfig does not load). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number, timeout?: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

/** Where the worker entry is: next to this module in dist/, or the package's dist/ from src/. */
export const VCPU_THREAD_URL: URL = ((): URL => {
  const here = new URL("./vcpu-thread.js", import.meta.url);
  return existsSync(here) ? here : new URL("../dist/vcpu-thread.js", import.meta.url);
})();

/** Whether the worker entry is built (tests of the worker mode skip without it). */
export function vcpuWorkerAvailable(): boolean {
  return existsSync(VCPU_THREAD_URL);
}

/**
 * This process's Node flags less export conditions: the worker runs built JavaScript, so
 * workspace packages must resolve to their dist/ (a test runner's `ferryvm-source` condition
 * would point them at TypeScript sources).
 */
function plainExecArgv(): string[] {
  const out: string[] = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--conditions" || a === "-C") i++;
    else if (!a.startsWith("--conditions=") && !a.startsWith("-C=")) out.push(a);
  }
  return out;
}

/** The main thread's side of a vCPU worker thread. */
export class VcpuWorker {
  readonly harts: number;
  readonly #worker: Worker;
  readonly #i32: Int32Array;
  readonly #all: Int32Array;
  readonly #dv: DataView;
  readonly #flush: number[];
  readonly #cpu: Cpu;
  #bus: MmioBus;
  #onHtif: (hart: number) => void = () => {};
  #afterCall: () => void = () => {};
  #served = 0;
  #error: unknown;
  #exited = false;
  #publishedDelta: bigint | undefined;
  /** Resolves the main loop's sleep (a served call that needs it). */
  onKick: (() => void) | undefined;

  private constructor(worker: Worker, cpu: Cpu, bus: MmioBus) {
    this.#worker = worker;
    this.#cpu = cpu;
    this.#bus = bus;
    this.harts = cpu.harts;
    this.#i32 = new Int32Array(cpu.memory.buffer, VCPU_CONTROL_BASE, C.WORDS);
    this.#all = new Int32Array(cpu.memory.buffer);
    this.#dv = new DataView(cpu.memory.buffer, VCPU_CONTROL_BASE, C.BLOCK_BYTES);
    this.#flush = Array.from({ length: cpu.harts }, (_, h) => (cpu.hart(h).base + H_FLUSH_REQUEST) >> 2);
    worker.on("error", (e) => {
      this.#error ??= e;
      this.#exited = true;
      this.onKick?.();
    });
    worker.on("exit", () => {
      this.#exited = true;
      this.onKick?.();
    });
    this.#listen();
  }

  /**
   * Starts the worker on `cpu`'s memory, parked. Call before the harts are reset for the first
   * time: the worker's Cpu instance resets every hart as it starts.
   */
  static async start(cpu: Cpu, options: { bus: MmioBus; isa: Partial<CpuIsa>; slice: number; debug: boolean }): Promise<VcpuWorker> {
    if (!vcpuWorkerAvailable()) {
      throw new Error(`the vCPU worker thread needs the built ${VCPU_THREAD_URL.pathname} (run the devices package's build)`);
    }
    new Int32Array(cpu.memory.buffer, VCPU_CONTROL_BASE, C.WORDS).fill(0);
    const data: C.VcpuThreadData = {
      memory: cpu.memory,
      harts: cpu.harts,
      isa: options.isa as Record<string, boolean>,
      slice: options.slice,
      debug: options.debug,
      control: VCPU_CONTROL_BASE,
    };
    const worker = new Worker(VCPU_THREAD_URL, { workerData: data, name: "ferryvm-vcpu", execArgv: plainExecArgv() });
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`the vCPU worker exited (${code}) while starting`)));
    });
    worker.removeAllListeners();
    // The process may end while the worker sits parked.
    worker.unref();
    return new VcpuWorker(worker, cpu, options.bus);
  }

  /** The device side: MMIO bus, HTIF exits, what to do after each served call. */
  attach(handlers: { bus?: MmioBus; onHtif: (hart: number) => void; afterCall: () => void }): void {
    if (handlers.bus !== undefined) this.#bus = handlers.bus;
    this.#onHtif = handlers.onHtif;
    this.#afterCall = handlers.afterCall;
  }

  /** Instructions the worker's harts retired. */
  get instructions(): number {
    return this.#dv.getFloat64(C.B_RETIRED, true);
  }

  /** True while the worker sleeps in WFI (every hart idle). */
  get idle(): boolean {
    return Atomics.load(this.#i32, C.W_IDLE) !== 0;
  }

  /** True between {@link resume} and the next park request. */
  get running(): boolean {
    return (Atomics.load(this.#i32, C.W_CTL) & 1) === 1;
  }

  /** The first error of the worker or of a device serving it (the run ends with it). */
  get error(): unknown {
    return this.#error ?? (this.#exited ? new Error("the vCPU worker thread exited") : undefined);
  }

  setThrottle(percent: number): void {
    Atomics.store(this.#i32, C.W_THROTTLE, percent);
  }

  /** Publishes the clock (call while it runs: on start and after a guest write to mtime). */
  publishClock(clock: VirtualClock): void {
    const seq = Atomics.add(this.#i32, C.W_CLOCK_SEQ, 1) + 1; // odd: writing
    this.#dv.setFloat64(C.B_HOST_MS, C.hostMs(), true);
    this.#dv.setFloat64(C.B_NS, clock.ns(), true);
    this.#dv.setBigInt64(C.B_DELTA, clock.mtimeDelta, true);
    Atomics.store(this.#i32, C.W_CLOCK_SEQ, seq + 1);
    this.#publishedDelta = clock.mtimeDelta;
  }

  /** Republishes when a guest write moved mtime. */
  clockMoved(clock: VirtualClock): void {
    if (clock.mtimeDelta !== this.#publishedDelta) this.publishClock(clock);
  }

  /** Lets the harts run. */
  resume(): void {
    const g = Atomics.load(this.#i32, C.W_CTL);
    if ((g & 1) === 0) {
      // A running machine keeps the process alive (its harts may be all the work there is).
      this.#worker.ref();
      Atomics.store(this.#i32, C.W_CTL, g + 1);
      Atomics.notify(this.#i32, C.W_CTL);
      // a worker still asleep from a claimed park: what it slept for may have changed
      this.wake();
    }
  }

  /** Ends a WFI sleep (an interrupt line changed). */
  wake(): void {
    Atomics.add(this.#i32, C.W_WAKE, 1);
    Atomics.notify(this.#i32, C.W_WAKE);
  }

  /** Asks the worker to park (harts stop at their next safe point); returns the park generation. */
  requestPark(): number {
    const g = this.#setPark();
    this.wake();
    return g;
  }

  /** The park request without the wake: the generation (even) the worker is to ack. */
  #setPark(): number {
    let g = Atomics.load(this.#i32, C.W_CTL);
    if ((g & 1) === 1) {
      g++;
      Atomics.store(this.#i32, C.W_CTL, g);
      Atomics.notify(this.#i32, C.W_CTL);
      for (let h = 0; h < this.harts; h++) this.#cpu.hart(h).stopRequest = true;
    }
    return g;
  }

  /** The park generation whose sleep {@link parkIfAsleep} claimed. */
  #claimed = -1;

  /**
   * Requests a park and, when every hart sleeps in WFI, completes it at once: the sleep is
   * claimed instead of the thread woken (once awake — at its timer, or at resume's wake — it
   * sees the park before it runs anything), so a switch-over neither waits for the OS to
   * schedule that thread nor competes with it. False: the park is requested; {@link park}
   * waits for it.
   */
  parkIfAsleep(): boolean {
    const g = this.#setPark();
    if (this.#claimed === g) return true;
    if (Atomics.compareExchange(this.#i32, C.W_IDLE, C.IDLE_ASLEEP, C.IDLE_CLAIMED) !== C.IDLE_ASLEEP) return false;
    this.#claimed = g;
    for (let h = 0; h < this.harts; h++) this.#cpu.hart(h).stopRequest = false;
    this.#worker.unref();
    return true;
  }

  /** Parks the worker: resolves once no hart runs (calls are served meanwhile). */
  async park(): Promise<void> {
    if (this.parkIfAsleep()) return;
    const g = Atomics.load(this.#i32, C.W_CTL);
    this.wake();
    for (;;) {
      const ack = Atomics.load(this.#i32, C.W_ACK);
      if (ack === g || this.#exited) break;
      const w = waitAsync(this.#i32, C.W_ACK, ack, 100);
      if (w.async) await w.value;
    }
    for (let h = 0; h < this.harts; h++) this.#cpu.hart(h).stopRequest = false;
    this.#worker.unref();
  }

  /**
   * The sync barrier of GuestMemory in worker mode: every hart drops its store-TLB entries
   * before it stores again. A hart outside Cpu.run does so on entry (its flush request is
   * checked at the first safe point); the one inside it is waited for — serving its MMIO
   * calls meanwhile.
   */
  barrier(): void {
    for (const w of this.#flush) Atomics.store(this.#all, w, 1);
    const seq = Atomics.load(this.#i32, C.W_RUN_SEQ);
    if ((seq & 1) === 0) return;
    const w = this.#flush[Atomics.load(this.#i32, C.W_RUN_HART)]!;
    while (Atomics.load(this.#all, w) !== 0 && Atomics.load(this.#i32, C.W_RUN_SEQ) === seq && !this.#exited) {
      if (!this.serveCalls()) Atomics.wait(this.#i32, C.W_REQ, this.#served, 0.05);
    }
  }

  /** Serves a pending mailbox call; returns whether there was one. */
  serveCalls(): boolean {
    const req = Atomics.load(this.#i32, C.W_REQ);
    if (req === this.#served) return false;
    const i32 = this.#i32;
    const kind = i32[C.W_KIND]!;
    const hart = i32[C.W_HART]!;
    const size = i32[C.W_SIZE]! as 1 | 2 | 4 | 8;
    const addr = (i32[C.W_ADDR_HI]! >>> 0) * 0x1_0000_0000 + (i32[C.W_ADDR_LO]! >>> 0);
    let result = 1;
    try {
      if (kind === C.CALL_READ) {
        const v = this.#bus.read(addr, size, hart);
        if (v !== undefined) {
          this.#dv.setBigUint64(C.B_VALUE, BigInt.asUintN(64, typeof v === "bigint" ? v : BigInt(v)), true);
          result = 0;
        }
      } else if (kind === C.CALL_WRITE) {
        const raw = this.#dv.getBigUint64(C.B_VALUE, true);
        const value = size === 8 ? raw : Number(raw & ((1n << BigInt(size * 8)) - 1n));
        result = this.#bus.write(addr, size, value, hart) ? 0 : 1;
      } else if (kind === C.CALL_HTIF) {
        this.#onHtif(hart);
        result = 0;
      }
    } catch (e) {
      // As in main mode the run ends with the device's error.
      this.#error ??= e;
      this.requestPark();
    }
    Atomics.store(i32, C.W_RESULT, result);
    this.#served = req;
    Atomics.store(i32, C.W_REP, req);
    Atomics.notify(i32, C.W_REP);
    this.#afterCall();
    if (this.#error !== undefined) this.onKick?.();
    return true;
  }

  /** Serves calls as they come, from the event loop. */
  #listen(): void {
    for (;;) {
      if (this.#exited) return;
      this.serveCalls();
      const cur = Atomics.load(this.#i32, C.W_REQ);
      if (cur !== this.#served) continue;
      const w = waitAsync(this.#i32, C.W_REQ, cur);
      if (!w.async) continue;
      void w.value.then(() => this.#listen());
      return;
    }
  }

  /** Ends the worker thread (the machine cannot run afterwards). */
  async terminate(): Promise<void> {
    this.#exited = true;
    // Ends the pending waitAsync of the call server.
    Atomics.add(this.#i32, C.W_REQ, 0);
    Atomics.notify(this.#i32, C.W_REQ);
    await this.#worker.terminate();
  }
}

/** What the worker-mode run loop needs of its Machine (closures over its private state). */
export interface VcpuHost {
  readonly machine: Machine;
  hasPending(): boolean;
  takePending(): RunResult;
  pauseWanted(): boolean;
  pausePoint(deadline: number): Promise<void>;
  pumpInput(): void;
  setWake(fn: (() => void) | undefined): void;
}

/** How often the main loop polls the devices while the harts run (ms). */
const POLL_MS = 4;

function yieldToEventLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/**
 * Machine.run()'s loop in worker mode: the harts run in the worker; this loop serves the
 * devices (console input, UART/RTC/virtio polls, output), parks the worker for pause, stop,
 * the end of the run, and sleeps until the next device deadline in between.
 */
export async function runVcpuWorker(vcpu: VcpuWorker, host: VcpuHost, deadline: number): Promise<RunResult> {
  const m = host.machine;
  const mip = new Array<number>(m.harts).fill(0);
  const readMip = (): boolean => {
    let changed = false;
    for (let h = 0; h < m.harts; h++) {
      const v = m.hart(h).mipExternal;
      if (v !== mip[h]) changed = true;
      mip[h] = v;
    }
    return changed;
  };
  const end = async (r: RunResult): Promise<RunResult> => {
    await vcpu.park();
    const e = vcpu.error;
    if (e !== undefined) throw e;
    return host.hasPending() ? host.takePending() : r;
  };
  // A wake (input, stop, pause, a served call that needs this loop) is remembered until the
  // loop looks again, so one that comes before the loop sleeps is not lost.
  let kicked = false;
  let endSleep: (() => void) | undefined;
  const kick = (): void => {
    kicked = true;
    endSleep?.();
  };
  host.setWake(kick);
  vcpu.onKick = kick;
  readMip();
  vcpu.publishClock(m.clock);
  vcpu.resume();
  try {
    for (;;) {
      kicked = false;
      if (vcpu.error !== undefined) return await end({ kind: "stopped" });
      if (host.pauseWanted()) {
        await vcpu.park();
        await host.pausePoint(deadline);
        if (host.hasPending()) return host.takePending();
        if (performance.now() >= deadline) return { kind: "timeout" };
        vcpu.publishClock(m.clock);
        vcpu.resume();
      }
      host.pumpInput();
      m.uart.poll();
      m.rtc.poll();
      for (const v of m.virtio) v.poll();
      if (readMip()) vcpu.wake();
      m.flushOutput();
      if (host.hasPending()) return await end({ kind: "stopped" });
      const now = performance.now();
      if (now >= deadline) return await end({ kind: "timeout" });
      let ms = Math.min(deviceDeadlineMs(m), deadline - now);
      if (!vcpu.idle) ms = Math.min(ms, POLL_MS);
      if (ms <= 0 || kicked) {
        await yieldToEventLoop();
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = ms === Infinity ? undefined : setTimeout(done, Math.min(Math.ceil(ms), 0x7fff_ffff));
        function done(): void {
          if (timer !== undefined) clearTimeout(timer);
          endSleep = undefined;
          resolve();
        }
        endSleep = done;
      });
    }
  } finally {
    if (vcpu.running) await vcpu.park();
    host.setWake(undefined);
    vcpu.onKick = undefined;
  }
}

/** ms until the next device deadline (UART timeout, RTC alarm, rate-limited rng, console input). */
function deviceDeadlineMs(m: Machine): number {
  const nowNs = m.clock.ns();
  let next = Infinity;
  const uartAt = m.uart.nextDeadlineNs();
  if (uartAt >= 0) next = Math.min(next, uartAt);
  for (const v of m.virtio) {
    const at = v.nextDeadlineNs();
    if (at >= 0) next = Math.min(next, at);
  }
  const rtcIn = m.rtc.nsUntilAlarm();
  if (rtcIn >= 0) next = Math.min(next, nowNs + rtcIn);
  if (m.virtioConsole !== undefined && m.virtioConsole.pendingInput > 0 && m.virtio.some((v) => v.driverOk)) {
    next = Math.min(next, nowNs + 10e6);
  }
  return next === Infinity ? Infinity : (next - nowNs) / 1e6;
}
