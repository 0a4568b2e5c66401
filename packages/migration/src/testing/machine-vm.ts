/**
 * `MigratableVm` over `@ferryvm/devices`' in-thread `Machine`, for tests (the CLI session
 * wires its own). The vCPU runs in slices of `run({ timeoutMs })` on this thread; the
 * migration loop runs between them (both yield to the event loop every few ms). Auto-converge
 * throttling sleeps `pct / (100 - pct)` × the 10 ms slice after each slice, as QEMU's
 * cpu_throttle_thread.
 *
 * @module
 */

import type { Machine } from "@ferryvm/devices";
import type { RunState } from "../constants.ts";
import type { SaveVmRegistry } from "../handlers.ts";
import type { MigratableVm } from "../migration-state.ts";

/** QEMU's CPU_THROTTLE_TIMESLICE_NS, in ms. */
const TIMESLICE_MS = 10;

export class InThreadMachineVm implements MigratableVm {
  /** Run loops alive in this process (tests check that none is left behind). */
  static running = 0;
  readonly machine: Machine;
  readonly machineName = "virt";
  readonly uuid: Uint8Array | undefined;
  #runState: RunState = "prelaunch";
  #loop: Promise<void> | undefined;
  #stopRequested = false;
  #inRun = false;
  #throttle = 0;
  #owed = 0;
  /** Every throttle value the migration set, in order. */
  readonly throttleLog: number[] = [];
  /** How the guest run ended, if it did (exit, reset). */
  ended: string | undefined;

  /** Wall-clock length of one vCPU turn between event-loop yields, ms. */
  readonly sliceMs: number;

  constructor(machine: Machine, options: { uuid?: Uint8Array; sliceMs?: number } = {}) {
    this.machine = machine;
    this.uuid = options.uuid;
    this.sliceMs = options.sliceMs ?? 3;
  }

  get memory(): Machine["guestMemory"] {
    return this.machine.guestMemory;
  }

  get runState(): RunState {
    return this.#runState;
  }

  registerDevices(registry: SaveVmRegistry): void {
    this.machine.registerVmstate(registry);
  }

  setRunState(state: RunState): void {
    this.#runState = state;
  }

  setThrottle(percent: number): void {
    this.#throttle = percent;
    this.throttleLog.push(percent);
  }

  get throttle(): number {
    return this.#throttle;
  }

  async stop(state: RunState): Promise<void> {
    if (this.#loop !== undefined) {
      this.#stopRequested = true;
      if (this.#inRun) this.machine.stop();
      await this.#loop;
      this.#loop = undefined;
    }
    this.#runState = state;
  }

  async resume(): Promise<void> {
    this.#runState = "running";
    if (this.#loop !== undefined) return;
    this.#stopRequested = false;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    InThreadMachineVm.running++;
    try {
      await this.#loopBody();
    } finally {
      InThreadMachineVm.running--;
    }
  }

  async #loopBody(): Promise<void> {
    while (!this.#stopRequested) {
      this.#inRun = true;
      let r;
      try {
        r = await this.machine.run({ timeoutMs: this.sliceMs });
      } finally {
        this.#inRun = false;
      }
      if (r.kind === "stopped") break;
      if (r.kind !== "timeout") {
        this.ended = r.kind === "exit" ? `exit ${r.code}` : r.kind;
        this.#runState = "shutdown";
        break;
      }
      // QEMU's cpu_throttle_thread: sleep pct / (100 - pct) of each slice
      const pct = this.#throttle;
      this.#owed += (this.sliceMs * pct) / (100 - pct);
      if (this.#owed >= TIMESLICE_MS && !this.#stopRequested) {
        const ms = this.#owed;
        this.#owed = 0;
        await new Promise((res) => setTimeout(res, ms));
      } else {
        await new Promise((res) => setImmediate(res)); // the event loop (sockets, the migration) gets a turn
      }
    }
  }
}
