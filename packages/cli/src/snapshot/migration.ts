/**
 * {@link MigrationManager}: the VM's migration commands. `migrate` is @ferryvm/migration's
 * precopy (MigrationState) over every transport: the guest runs while RAM is sent, stops for
 * the switch-over, and ends `postmigrate`; a failure or a cancel leaves it running as before.
 * exec: and file: channels are this package's (snapshot/channel.ts: QEMU's texts, the
 * command in its own process group, its exit status checked). An incoming migration
 * (`-incoming URI`, `migrate-incoming` after `-incoming defer`) loads in `inmigrate` and then
 * runs if the stream's globalstate says "running" and autostart holds, else takes the
 * stream's state (process_incoming_migration_bh); a failed load ends the process (QEMU's
 * "load of migration failed", exit 1).
 *
 * Events: MIGRATION {status} for every status change when the `events` capability is set,
 * and an incoming migration's first `setup` always (qemu_start_incoming_migration);
 * MIGRATION_PASS per dirty-bitmap sync of an outgoing one.
 *
 * @module
 */

import type { Machine } from "@ferryvm/devices";
import {
  MigrationError,
  MigrationIncoming,
  MigrationState,
  QmpError as MigrationQmpError,
  type MigrateSetParameters,
  MIGRATION_STATUSES,
  migrationIsRunning,
  type MigrationCapabilityStatus,
  type MigrationStatus as PackageMigrationStatus,
} from "@ferryvm/migration";
import { connectOutgoing, listenIncoming, type IncomingListener } from "@ferryvm/migration/node";
import type { RunState, VmController } from "../controller.ts";
import { resolveNamedFd, type MonitorFds } from "../qmp/fds.ts";
import type { JsonValue } from "../qmp/json.ts";
import { ChannelError, openIncoming, openOutgoing, parseMigrationUri, type MigrationUri, type OutgoingChannel } from "./channel.ts";
import { ControllerVm } from "./migratable-vm.ts";
import { loadMachine } from "./vm-state.ts";

/**
 * URIs whose incoming side is a live destination (@ferryvm/migration's MigrationIncoming);
 * exec: and file: load through snapshot/channel.ts. Outgoing, every URI is precopy.
 */
export function isLiveUri(uri: string): boolean {
  return /^(tcp|unix|fd):/.test(uri);
}

/** `fd:NAME` → `fd:N`, taking NAME's descriptor from the monitor; QEMU's error when there is none. */
function takeNamedFd(uri: string, fds: MonitorFds | undefined): string {
  try {
    return resolveNamedFd(uri, fds);
  } catch (e) {
    throw new MigrationCommandError((e as Error).message);
  }
}

/** Runs `f`, turning the migration package's QMP errors into ours. */
function liveCall<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof MigrationQmpError) throw new MigrationCommandError(e.message);
    throw e;
  }
}

/** The incoming side's VM: after the load, "running" only if autostart still holds (cont/stop in inmigrate). */
class IncomingControllerVm extends ControllerVm {
  readonly #controller: VmController;
  constructor(controller: VmController, machine: Machine) {
    super(controller, machine);
    this.#controller = controller;
  }
  override resume(): Promise<void> {
    if (!this.#controller.autostart) {
      this.#controller.setRunState("paused");
      return Promise.resolve();
    }
    return super.resume();
  }
}

/** QEMU 7.2's MigrationStatus names, in its enum's order (@ferryvm/migration's). */
export const MIGRATION_STATUS_NAMES = MIGRATION_STATUSES;
export type MigrationStatus = PackageMigrationStatus;

/** QEMU 7.2's MigrationCapability list (query-migrate-capabilities order). */
export const MIGRATION_CAPABILITY_NAMES = [
  "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events", "postcopy-ram", "x-colo",
  "release-ram", "block", "return-path", "pause-before-switchover", "multifd", "dirty-bitmaps",
  "postcopy-blocktime", "late-block-activate", "x-ignore-shared", "validate-uuid", "background-snapshot",
  "zero-copy-send", "postcopy-preempt",
] as const;
export type MigrationCapability = (typeof MIGRATION_CAPABILITY_NAMES)[number];

/** A refused migration command (QMP GenericError, HMP "Error: ..."). */
export class MigrationCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationCommandError";
  }
}

/** The error message of a failed save or load: a channel's own text (QEMU's) when it caused it. */
function describe(e: unknown): string {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 8; c = c.cause, depth++) {
    if (c instanceof ChannelError) return c.message;
  }
  if (e instanceof MigrationError || e instanceof Error) return e.message;
  return String(e);
}

export interface MigrationManagerOptions {
  /** Told when an incoming migration failed, just before the run ends. */
  onIncomingError?: (message: string) => void;
}

export class MigrationManager {
  readonly #controller: VmController;
  readonly #machine: Machine;
  readonly #options: MigrationManagerOptions;
  readonly #caps = new Set<MigrationCapability>();
  // incoming (MigrationIncomingState)
  #incomingStatus: MigrationStatus = "none";
  #incomingStarted = false;
  // outgoing: precopy over every transport (MigrationState)
  readonly #live: MigrationState;
  #started = false;
  /** The last migrate named no protocol we know: QEMU fails it without an error-desc. */
  #badProtocol = false;
  #liveIncoming: MigrationIncoming | undefined;
  #listener: IncomingListener | undefined;

  constructor(controller: VmController, machine: Machine, options: MigrationManagerOptions = {}) {
    this.#controller = controller;
    this.#machine = machine;
    this.#options = options;
    this.#live = new MigrationState(new ControllerVm(controller, machine), { onEvent: (e) => controller.emit(e) });
  }

  /**
   * Compiles the live migration's switch-over path ahead of time (MigrationState.prepare):
   * `rounds` rounds, one every `everyMs` after `delayMs`, on timers that never keep the
   * process alive. Returns a function that cancels what is left.
   */
  warmUp(rounds = 32, delayMs = 500, everyMs = 20): () => void {
    let left = rounds;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const step = (): void => {
      timer = undefined;
      try {
        this.#live.prepare();
      } catch {
        return; // a device that cannot save now reports it at a real migration
      }
      if (--left > 0) schedule(everyMs);
    };
    const schedule = (ms: number): void => {
      timer = setTimeout(step, ms);
      timer.unref?.();
    };
    schedule(delayMs);
    return () => {
      if (timer !== undefined) clearTimeout(timer);
      left = 0;
    };
  }

  /** The outgoing status. */
  get status(): MigrationStatus {
    return this.#live.status;
  }

  /** The incoming status. */
  get incomingStatus(): MigrationStatus {
    return this.#liveIncoming?.status ?? this.#incomingStatus;
  }

  /** Resolves when the outgoing migration started last has ended (completed or failed). */
  get done(): Promise<void> {
    return this.#started ? this.#live.done.then(() => {}) : Promise.resolve();
  }

  /** The error of the last failed outgoing migration. */
  get error(): string | undefined {
    return this.#badProtocol ? undefined : this.#live.errorDesc;
  }

  /** migrate-set-parameters (the live path's; max-bandwidth, downtime-limit, ...). */
  setParameters(update: MigrateSetParameters): void {
    liveCall(() => this.#live.setParameters(update));
  }

  /** query-migrate-parameters. */
  parameters(): JsonValue {
    return this.#live.queryParameters() as unknown as JsonValue;
  }

  /** Ends what an incoming migration holds (a listening socket, a command) when the run ends. */
  close(): void {
    this.#listener?.close();
    this.#liveIncoming?.abort();
  }

  capability(name: MigrationCapability): boolean {
    return this.#caps.has(name);
  }

  /**
   * migrate-set-capabilities (refused while a migration runs, as QEMU). The live path checks
   * and keeps them (xbzrle, auto-converge, ...); the non-live save uses only `events`.
   */
  setCapabilities(caps: readonly { capability: MigrationCapability; state: boolean }[]): void {
    if (migrationIsRunning(this.status)) throw new MigrationCommandError("There's a migration process in progress");
    liveCall(() => this.#live.setCapabilities(caps as readonly MigrationCapabilityStatus[]));
    liveCall(() => this.#liveIncoming?.setCapabilities(caps as readonly MigrationCapabilityStatus[]));
    for (const c of caps) {
      if (c.state) this.#caps.add(c.capability);
      else this.#caps.delete(c.capability);
    }
  }

  /** query-migrate-capabilities. */
  capabilities(): { capability: MigrationCapability; state: boolean }[] {
    const live = new Map(this.#live.queryCapabilities().map((c) => [c.capability as string, c.state]));
    return MIGRATION_CAPABILITY_NAMES.map((capability) => ({ capability, state: live.get(capability) ?? this.#caps.has(capability) }));
  }

  #setIncomingStatus(status: MigrationStatus, always = false): void {
    this.#incomingStatus = status;
    if (always || this.#caps.has("events")) this.#controller.emit({ event: "MIGRATION", data: { status } });
  }

  /**
   * QMP `migrate`: checks and opens the channel now (errors are thrown with QEMU's texts);
   * the save itself runs next in the machine loop (see {@link done}).
   */
  async migrate(uriText: string, fds?: MonitorFds): Promise<void> {
    const state = this.#controller.state;
    if (migrationIsRunning(this.status)) throw new MigrationCommandError("There's a migration process in progress");
    if (state === "inmigrate") throw new MigrationCommandError("Guest is waiting for an incoming migration");
    if (state === "postmigrate") throw new MigrationCommandError("Can't migrate the vm that was paused due to previous migration");
    // fd:NAME takes the descriptor a client passed with getfd (it is the migration's now).
    uriText = takeNamedFd(uriText, fds);
    this.#started = true;
    this.#badProtocol = false;
    if (isLiveUri(uriText)) {
      liveCall(() => void this.#live.migrate(() => connectOutgoing(uriText)));
      return;
    }
    // exec: and file: (ours, as later QEMU's): the channel opens here, so that a file that
    // cannot be opened or an unknown protocol fails the command itself (and query-migrate
    // says failed, as QEMU's migrate_fd_error).
    let channel: OutgoingChannel;
    try {
      const target = parseMigrationUri(uriText);
      if (target === undefined) {
        this.#badProtocol = true;
        throw new MigrationCommandError("Parameter 'uri' expects a valid migration protocol");
      }
      channel = await openOutgoing(target);
    } catch (e) {
      const failure = e instanceof MigrationCommandError ? e : new MigrationCommandError(describe(e));
      liveCall(() => void this.#live.migrate(() => Promise.reject(failure)));
      throw failure;
    }
    liveCall(() =>
      void this.#live.migrate(async () => ({
        sink: channel.sink,
        close: async () => {
          await channel.sink.close?.();
        },
        abort: () => channel.abort(),
      })),
    );
  }

  /**
   * migrate-continue: a migration paused in `state` (pre-switchover, with the
   * pause-before-switchover capability) goes on to the switch-over.
   */
  continue(state: MigrationStatus): void {
    liveCall(() => this.#live.continue(state));
  }

  /** migrate_cancel: a running save stops and the VM goes on as before (status cancelling, cancelled). */
  cancel(): void {
    this.#live.cancel();
  }

  /** The live incoming side (tcp:, unix:, fd:): listen now, load when the source connects. */
  async #incomingLive(uri: string): Promise<void> {
    let listener: IncomingListener;
    try {
      listener = await listenIncoming(uri);
    } catch (e) {
      throw new MigrationCommandError(describe(e));
    }
    this.#listener = listener;
    this.#incomingStarted = true;
    const c = this.#controller;
    const incoming = new MigrationIncoming(new IncomingControllerVm(c, this.#machine), { onEvent: (e) => c.emit(e) });
    liveCall(() => incoming.setCapabilities(this.capabilities() as readonly MigrationCapabilityStatus[]));
    this.#liveIncoming = incoming;
    void incoming.incoming(() => listener.accept()).then((status) => {
      listener.close();
      if (status === "completed") return;
      const message = incoming.errorDesc ?? `incoming migration ${status}`;
      this.#options.onIncomingError?.(message);
      void c.exclusive(async () => c.fail(message));
    });
  }

  /** query-migrate, with QEMU 7.2's members and key order. */
  queryMigrate(): JsonValue {
    if (this.#live.status !== "none") {
      const info = this.#live.query() as unknown as { [key: string]: JsonValue };
      if (this.#badProtocol) delete info["error-desc"];
      return info;
    }
    if (this.#liveIncoming !== undefined) return this.#liveIncoming.query() as unknown as JsonValue;
    return this.#incomingStatus === "none" ? {} : { status: this.#incomingStatus };
  }

  /**
   * `-incoming URI` (at start, `fromCommandLine`) or QMP `migrate-incoming`: opens the
   * channel, then loads from the machine loop. A failure to open is thrown (QMP error, or the
   * caller's exit); a failed load ends the run.
   */
  async incoming(uriText: string, fromCommandLine = false, fds?: MonitorFds): Promise<void> {
    if (!fromCommandLine) {
      if (this.#incomingStarted) throw new MigrationCommandError("The incoming migration has already been started");
      if (this.#controller.state !== "inmigrate") throw new MigrationCommandError("'-incoming' was not specified on the command line");
      // A monitor's fd:NAME; on the command line there is no monitor and fd: takes a number.
      uriText = takeNamedFd(uriText, fds);
    }
    if (isLiveUri(uriText)) {
      await this.#incomingLive(uriText);
      return;
    }
    this.#setIncomingStatus("setup", true);
    const uri: MigrationUri | undefined = parseMigrationUri(uriText);
    if (uri === undefined) throw new MigrationCommandError(`unknown migration protocol: ${uriText}`);
    const channel = await openIncoming(uri).catch((e: unknown) => {
      throw new MigrationCommandError(describe(e));
    });
    this.#incomingStarted = true;
    let aborted = false;
    void this.#controller.exclusive(async () => {
      const c = this.#controller;
      this.#setIncomingStatus("active");
      let globalState;
      try {
        ({ globalState } = await loadMachine(this.#machine, channel.source));
      } catch (e) {
        if (aborted) {
          // quit or a signal while waiting for the stream: the run ends for that reason
          channel.close();
          this.#setIncomingStatus("failed");
          return;
        }
        let message = describe(e);
        const why = await channel.diagnose();
        if (why !== "") message += ` (${why})`;
        channel.close();
        this.#setIncomingStatus("failed");
        this.#options.onIncomingError?.(message);
        c.fail(message);
        return;
      }
      channel.close();
      // process_incoming_migration_bh
      if (!globalState.received || globalState.state === "running") {
        if (c.autostart) c.vmStart();
        else c.setRunState("paused");
      } else {
        c.setRunState(globalState.state as RunState);
      }
      this.#setIncomingStatus("completed");
    }, {
      abort: () => {
        aborted = true;
        channel.close();
      },
    });
  }
}
