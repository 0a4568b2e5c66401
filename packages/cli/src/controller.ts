/**
 * {@link VmController}: QEMU's run states (softmmu/runstate.c) over a {@link Machine} that only
 * knows run()/stop()/reset(). One loop owns the machine: it runs it while the state is
 * `running`, and applies requests (stop, cont, system_reset, quit...) between runs, so
 * `machine.reset()` never races a run. Events (STOP, RESUME, RESET, SHUTDOWN, POWERDOWN) go to
 * listeners as QEMU emits them, data shaped as QEMU 7.2's QAPI events.
 *
 * @module
 */

import type { RunResult } from "@ferryvm/devices";
import type { JsonValue } from "./qmp/json.ts";

/** QEMU 7.2's RunState (qapi/run-state.json); we enter the ones marked in the README. */
export type RunState =
  | "debug" | "inmigrate" | "internal-error" | "io-error" | "paused" | "postmigrate" | "prelaunch"
  | "finish-migrate" | "restore-vm" | "running" | "save-vm" | "shutdown" | "suspended" | "watchdog"
  | "guest-panicked" | "colo";

/** QEMU 7.2's ShutdownCause, as carried by SHUTDOWN and RESET events. */
export type ShutdownCause =
  | "host-error" | "host-qmp-quit" | "host-qmp-system-reset" | "host-signal" | "host-ui"
  | "guest-shutdown" | "guest-reset" | "guest-panic";

/** An event as QMP sends it, without the timestamp. */
export interface VmEvent {
  event: "STOP" | "RESUME" | "RESET" | "SHUTDOWN" | "POWERDOWN" | "MIGRATION" | "MIGRATION_PASS";
  data?: { [key: string]: JsonValue };
}

/** What the controller needs of a machine (a `Machine` from @ferryvm/devices). */
export interface ControlledMachine {
  run(): Promise<RunResult>;
  stop(): void;
  reset(): void;
  /** Pauses the vCPUs inside the run (which goes on, paused); a run started while paused waits. */
  pause(): Promise<void>;
  resume(): void;
  readonly paused: boolean;
}

export interface VmControllerOptions {
  /** `-S`: start in `prelaunch` until cont. */
  startPaused?: boolean;
  /** `-no-reboot`: a reset request becomes a shutdown. */
  noReboot?: boolean;
  /** `-no-shutdown`: a guest poweroff pauses in `shutdown` instead of ending the run. */
  noShutdown?: boolean;
  /** Stay in `internal-error` when the machine throws (true when a monitor can inspect it). */
  keepOnError?: boolean;
  /** Told about a machine error kept in `internal-error`. */
  onError?: (e: unknown) => void;
  /** `-incoming`: start in `inmigrate` until an incoming migration has loaded. */
  incoming?: boolean;
  /**
   * Keep the process alive while the VM does not run (paused, prelaunch, inmigrate,
   * shutdown with -no-shutdown), as QEMU waits for cont, quit or a signal: nothing else may
   * hold Node's event loop (no monitor, stdin at its end). vm-cli sets it; an embedder's
   * process may end around a paused VM.
   */
  holdWhilePaused?: boolean;
}

/** How the run ended. */
export type VmOutcome =
  | { kind: "exit"; code: number }
  | { kind: "quit"; cause: ShutdownCause; code: number }
  | { kind: "timeout" }
  | { kind: "signal"; signal: NodeJS.Signals }
  /** A task ended the run (a failed incoming migration): the message, exit status 1. */
  | { kind: "error"; message: string };

/** A command refused in this state (QMP GenericError, HMP "Error: ..."). */
export class ControllerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ControllerError";
  }
}

type RequestKind =
  | { kind: "stop" }
  | { kind: "cont" }
  | { kind: "reset"; cause: ShutdownCause }
  | { kind: "powerdown" }
  | { kind: "quit"; cause: ShutdownCause }
  | { kind: "timeout" }
  | { kind: "signal"; signal: NodeJS.Signals }
  | { kind: "task"; run: () => Promise<void>; abort?: () => void }
  | { kind: "vmstop"; state: RunState }
  | { kind: "vmstart" };

interface Request {
  what: RequestKind;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const GUEST_CAUSES: readonly ShutdownCause[] = ["guest-shutdown", "guest-reset", "guest-panic"];

export class VmController {
  #machine: ControlledMachine;
  #options: VmControllerOptions;
  #state: RunState;
  #requests: Request[] = [];
  #wake: (() => void) | undefined;
  #inRun = false;
  #outcome: VmOutcome | undefined;
  #listeners = new Set<(e: VmEvent) => void>();
  /** The guest's exit code when a poweroff was held by -no-shutdown. */
  #guestCode = 0;
  #started = false;
  /** The running task's abort hook (see {@link exclusive}). */
  #taskAbort: (() => void) | undefined;
  /** QEMU's `autostart`: whether an incoming migration ends running (no -S; cont/stop in inmigrate). */
  #autostart: boolean;

  constructor(machine: ControlledMachine, options: VmControllerOptions = {}) {
    this.#machine = machine;
    this.#options = options;
    this.#autostart = !options.startPaused;
    this.#state = options.incoming ? "inmigrate" : options.startPaused ? "prelaunch" : "running";
  }

  /** QEMU's autostart (see {@link VmControllerOptions.incoming}). */
  get autostart(): boolean {
    return this.#autostart;
  }

  get state(): RunState {
    return this.#state;
  }

  /** QMP's `running`: true only in the `running` state. */
  get running(): boolean {
    return this.#state === "running";
  }

  /** The run has ended (quit, guest exit, signal...): commands are no-ops. */
  get finished(): boolean {
    return this.#outcome !== undefined;
  }

  /** Subscribes to events; returns the unsubscribe function. */
  onEvent(listener: (e: VmEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Runs the machine until the run ends; call once. */
  async start(): Promise<VmOutcome> {
    if (this.#started) throw new Error("VmController.start() called twice");
    this.#started = true;
    return await this.#loop();
  }

  /** QMP `stop`: running → paused (STOP); other states unchanged, as QEMU. */
  stop(): Promise<void> {
    return this.#post({ kind: "stop" });
  }

  /** QMP `cont`: → running (RESUME); refused in `shutdown` and `internal-error`. */
  cont(): Promise<void> {
    return this.#post({ kind: "cont" });
  }

  /** QMP `system_reset` (RESET; with -no-reboot a SHUTDOWN instead). */
  systemReset(cause: ShutdownCause = "host-qmp-system-reset"): Promise<void> {
    return this.#post({ kind: "reset", cause });
  }

  /** QMP `system_powerdown`: POWERDOWN; `virt` in QEMU 7.2 has no power button to press. */
  powerdown(): Promise<void> {
    return this.#post({ kind: "powerdown" });
  }

  /** QMP `quit` (SHUTDOWN host-qmp-quit), or another host cause; ends the run. */
  quit(cause: ShutdownCause = "host-qmp-quit"): Promise<void> {
    return this.#post({ kind: "quit", cause });
  }

  /** A host signal: SHUTDOWN host-signal, the run ends with the signal. */
  signal(signal: NodeJS.Signals): Promise<void> {
    return this.#post({ kind: "signal", signal });
  }

  /** Our --timeout: the run ends with `timeout`. */
  timeout(): Promise<void> {
    return this.#post({ kind: "timeout" });
  }

  /**
   * Runs `task` in the machine loop while the machine is not running (between two runs):
   * the machine's state can be read and written safely. Other requests wait for it. The
   * task changes run states with {@link stopForMigration}, {@link vmStart},
   * {@link setRunState} and ends the run with {@link fail}. `abort` is called if a quit,
   * signal or timeout arrives while the task runs: it should make the task end soon.
   */
  exclusive(task: () => Promise<void>, options: { abort?: () => void } = {}): Promise<void> {
    return this.#post({ kind: "task", run: task, abort: options.abort });
  }

  /**
   * QEMU's vm_stop_force_state from outside the loop (a live migration's switch-over):
   * resolves once the machine has left its run and the state is `state` (STOP if it ran).
   */
  requestStop(state: RunState): Promise<void> {
    return this.#post({ kind: "vmstop", state });
  }

  /** QEMU's vm_start from outside the loop (a failed or cancelled live migration, an incoming one). */
  requestStart(): Promise<void> {
    return this.#post({ kind: "vmstart" });
  }

  /**
   * QEMU's vm_stop_force_state from the migration thread at the switch-over: the vCPUs pause
   * where they are (Machine.pause: the run goes on, paused) and the state becomes `state`
   * with STOP — no round trip through this loop, whose run would otherwise end and restart
   * (a millisecond of the downtime). Not running: as {@link requestStop}.
   */
  async pauseForMigration(state: RunState): Promise<void> {
    if (!this.#inRun || this.#state !== "running") return this.requestStop(state);
    await this.#machine.pause();
    // A request that came meanwhile may have ended the run (then the machine stays paused
    // until this loop runs it again) or changed the state: vm_stop of a stopped VM sets it.
    this.#vmStop(state);
  }

  /**
   * QEMU's vm_start after a failed or cancelled migration: the vCPUs that
   * {@link pauseForMigration} paused go on in the same run (RESUME).
   */
  async resumeAfterMigration(): Promise<void> {
    if (!this.#inRun || !this.#machine.paused) return this.requestStart();
    this.vmStart();
    this.#machine.resume();
  }

  /** Sends an event to the listeners (MIGRATION events of the migration code). */
  emit(event: VmEvent): void {
    this.#emit(event);
  }

  /** Inside a task: QEMU's vm_stop_force_state(FINISH_MIGRATE) (STOP if running). */
  stopForMigration(): void {
    this.#vmStop("finish-migrate");
  }

  /** Inside a task: QEMU's vm_start (RESUME unless already running). */
  vmStart(): void {
    if (this.#state === "running") return;
    this.#setState("running");
    this.#emit({ event: "RESUME" });
  }

  /** Inside a task: QEMU's runstate_set, no event. */
  setRunState(state: RunState): void {
    this.#setState(state);
    // from outside the loop: a state that runs must wake it
    this.#wake?.();
  }

  /** Inside a task: ends the run with an error (QEMU's exit(EXIT_FAILURE) after a failed incoming load). */
  fail(message: string): void {
    this.#outcome ??= { kind: "error", message };
  }

  #post(what: RequestKind): Promise<void> {
    if (this.#outcome !== undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#requests.push({ what, resolve, reject });
      if (this.#inRun) this.#machine.stop();
      // A request that ends the run cuts a running task short (a stuck incoming stream).
      if (what.kind === "quit" || what.kind === "signal" || what.kind === "timeout") this.#taskAbort?.();
      this.#wake?.();
    });
  }

  #emit(event: VmEvent): void {
    for (const l of [...this.#listeners]) l(event);
  }

  #setState(state: RunState): void {
    this.#state = state;
  }

  /** QEMU's vm_stop: only a running machine stops, with a STOP event. */
  #vmStop(state: RunState): void {
    if (this.#state !== "running") {
      if (state !== "paused") this.#setState(state);
      return;
    }
    this.#setState(state);
    this.#emit({ event: "STOP" });
  }

  /** QEMU's qemu_system_shutdown + main_loop_should_exit: SHUTDOWN, then exit or pause. */
  #shutdown(cause: ShutdownCause, code: number, poweroff: boolean): void {
    this.#emit({ event: "SHUTDOWN", data: { guest: GUEST_CAUSES.includes(cause), reason: cause } });
    if (this.#options.noShutdown && !poweroff) {
      this.#guestCode = code;
      this.#vmStop("shutdown");
      return;
    }
    this.#outcome = { kind: "quit", cause, code };
  }

  /** QEMU's qemu_system_reset_request + the main loop's reset. */
  #reset(cause: ShutdownCause): void {
    if (this.#options.noReboot) {
      this.#shutdown(cause, 0, false);
      return;
    }
    this.#machine.reset();
    this.#emit({ event: "RESET", data: { guest: GUEST_CAUSES.includes(cause), reason: cause } });
    if (this.#state !== "running" && this.#state !== "inmigrate") this.#setState("prelaunch");
  }

  #apply(what: RequestKind): void {
    switch (what.kind) {
      case "stop":
        // qmp_stop while waiting for an incoming migration: stay paused after it.
        if (this.#state === "inmigrate") this.#autostart = false;
        else this.#vmStop("paused");
        return;
      case "cont":
        if (this.#state === "shutdown" || this.#state === "internal-error") {
          throw new ControllerError("Resetting the Virtual Machine is required");
        }
        if (this.#state === "inmigrate") {
          this.#autostart = true;
          return;
        }
        if (this.#state === "running") return;
        this.#setState("running");
        this.#emit({ event: "RESUME" });
        return;
      case "reset":
        this.#reset(what.cause);
        return;
      case "powerdown":
        this.#emit({ event: "POWERDOWN" });
        return;
      case "quit":
        this.#shutdown(what.cause, this.#guestCode, true);
        return;
      case "signal":
        this.#emit({ event: "SHUTDOWN", data: { guest: false, reason: "host-signal" } });
        this.#outcome = { kind: "signal", signal: what.signal };
        return;
      case "timeout":
        this.#outcome = { kind: "timeout" };
        return;
      case "task":
        return;
      case "vmstop":
        this.#vmStop(what.state);
        return;
      case "vmstart":
        this.vmStart();
        return;
    }
  }

  #onRunResult(result: RunResult): void {
    switch (result.kind) {
      case "stopped":
      case "timeout":
        return;
      case "reset":
        this.#reset("guest-reset");
        return;
      case "exit":
        // QEMU 7.2's sifive_test calls exit() without an event; we say SHUTDOWN first so
        // QMP clients learn why the connection closes (and -no-shutdown can hold the VM).
        this.#shutdown("guest-shutdown", result.code, false);
        if (this.#outcome?.kind === "quit") this.#outcome = { kind: "exit", code: result.code };
        return;
    }
  }

  async #loop(): Promise<VmOutcome> {
    for (;;) {
      while (this.#requests.length > 0 && this.#outcome === undefined) {
        const r = this.#requests.shift()!;
        try {
          if (r.what.kind === "task") {
            this.#taskAbort = r.what.abort;
            try {
              await r.what.run();
            } finally {
              this.#taskAbort = undefined;
            }
          } else {
            this.#apply(r.what);
          }
          r.resolve();
        } catch (e) {
          r.reject(e);
        }
      }
      if (this.#outcome !== undefined) {
        for (const r of this.#requests.splice(0)) r.resolve();
        return this.#outcome;
      }
      if (this.#state === "running") {
        let result: RunResult;
        // paused by pauseForMigration and since restarted by a request (cont, vm_start)
        if (this.#machine.paused) this.#machine.resume();
        this.#inRun = true;
        try {
          result = await this.#machine.run();
        } catch (e) {
          if (!this.#options.keepOnError) throw e;
          this.#options.onError?.(e);
          this.#vmStop("internal-error");
          continue;
        } finally {
          this.#inRun = false;
        }
        this.#onRunResult(result);
      } else {
        const hold = this.#options.holdWhilePaused === true ? setInterval(() => {}, 2 ** 30) : undefined;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          if (this.#requests.length > 0) resolve();
        });
        if (hold !== undefined) clearInterval(hold);
        this.#wake = undefined;
      }
    }
  }
}
