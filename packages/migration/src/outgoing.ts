/**
 * The source side of a live precopy migration (QEMU 7.2's MigrationState and
 * migration_thread): setup, iterate under `max-bandwidth` with QEMU's rate limiter (bytes per
 * 100 ms window), pending estimate then exact, switch-over when the pending bytes fit
 * bandwidth × downtime-limit, stop, complete, device state, EOF/vmdesc, SHUT on the return
 * path, completed; the source then is `postmigrate`. Cancel and failure in every state leave
 * the source running, unchanged.
 *
 * Threading: the loop runs on the caller's thread and never holds it longer than
 * `CHUNK_MS`: each round of RAM pages is cut by a time budget, then the loop yields to the
 * event loop (setImmediate), so an in-thread machine whose run loop yields every few ms
 * keeps running, and a worker-run vCPU is not touched at all until the stop.
 *
 * @module
 */

import { MigrationError } from "@ferryvm/vmstate";
import { readReturnPath, type OutgoingChannel, type ReturnPathResult } from "./channel.ts";
import { MigCmd, QEMU_VM_COMMAND, type RunState } from "./constants.ts";
import { GlobalState, registerGlobalState } from "./global-state.ts";
import { SaveVmRegistry } from "./handlers.ts";
import {
  applyMigrationCapabilities,
  applyMigrationParameters,
  defaultMigrationCapabilities,
  defaultMigrationParameters,
  MIGRATION_ACTIVE_MESSAGE,
  QmpError,
  queryMigrateCapabilities,
  type MigrateSetParameters,
  type MigrationCapabilities,
  type MigrationCapabilityStatus,
  type MigrationParameters,
} from "./migration-params.ts";
import {
  migrationIsRunning,
  type MigratableVm,
  type MigrationEvent,
  type MigrationInfo,
  type MigrationStatus,
} from "./migration-state.ts";
import { QemuFileWriter } from "./qemu-file.ts";
import { RamMigration } from "./ram.ts";
import {
  qemuSavevmStateCleanup,
  qemuSavevmStateCompletePrecopy,
  qemuSavevmStateHeader,
  qemuSavevmStateIterate,
  qemuSavevmStatePending,
  qemuSavevmStateSetup,
  savevmStateCompletePrecopyNonIterable,
} from "./savevm.ts";

/** QEMU's BUFFER_DELAY: the rate-limit and bandwidth window, ms. */
export const BUFFER_DELAY = 100;
/** QEMU's XFER_LIMIT_RATIO: windows per second. */
const XFER_LIMIT_RATIO = 1000 / BUFFER_DELAY;
/** Bytes per write to the channel: page records are gathered into buffers this large. */
const WRITE_CHUNK = 1 << 20;
/** The longest the migration holds the thread between yields, ms. */
export const CHUNK_MS = 4;
/** How long a failed write waits for the destination's SHUT, ms. */
const RP_GRACE_MS = 500;

function yieldNow(): Promise<void> {
  if (typeof setImmediate === "function") return new Promise((r) => setImmediate(r));
  return new Promise((r) => setTimeout(r, 0));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

class Cancelled extends Error {}

/** The figures behind a switch-over decision (MigrationState.switchover). */
export interface SwitchoverEstimate {
  /** The pending wire bytes (state_pending_exact) when the source stopped. */
  pendingBytes: number;
  /** The last window's bandwidth, bytes per ms. */
  bandwidth: number;
  /** pendingBytes / bandwidth, ms. */
  expectedDowntime: number;
  /** Stream position at the stop. */
  stoppedAt: number;
  /** Bytes written from the stop to the end (RAM, device state, EOF, vmdesc); 0 until completed. */
  downtimeBytes: number;
}

/** Options of a MigrationState. */
export interface MigrationStateOptions {
  /** QMP events (MIGRATION, MIGRATION_PASS); sent only when the `events` capability is on. */
  onEvent?: (event: MigrationEvent) => void;
}

/**
 * Adds a window's [amount, ms] to the last three kept in `windows` and returns the lower of
 * its rate and theirs together (a window that filled the socket buffers reads fast).
 */
function windowRate(windows: [number, number][], amount: number, ms: number): number {
  windows.push([amount, ms]);
  if (windows.length > 3) windows.shift();
  const mean = windows.reduce((n, w) => n + w[0], 0) / windows.reduce((n, w) => n + w[1], 0);
  return Math.min(amount / ms, mean);
}

/** Where the warm-up saves go. */
const NULL_SINK = { write: (): void => {} };

/**
 * One VM's outgoing migration state (QEMU's MigrationState: `migrate_get_current()`).
 * Holds capabilities and parameters across migrations.
 */
export class MigrationState {
  readonly vm: MigratableVm;
  readonly #onEvent: ((event: MigrationEvent) => void) | undefined;
  #status: MigrationStatus = "none";
  #caps: MigrationCapabilities = defaultMigrationCapabilities();
  #params: MigrationParameters = defaultMigrationParameters();
  #error: string | undefined;
  #channel: OutgoingChannel | undefined;
  #cancelRequested = false;
  #continue: (() => void) | undefined;
  #done: Promise<MigrationStatus> = Promise.resolve("none");
  // figures
  #ram: RamMigration | undefined;
  #startTime = 0;
  #setupTime = 0;
  #totalTime = 0;
  #downtime = 0;
  #expectedDowntime = 0;
  #mbps = 0;
  #pagesPerSecond = 0;
  #dirtyPagesRate = 0;
  #throttle = 0;
  #thresholdSize = 0;
  #bandwidth = 0;
  /** [bytes, ms] of the last windows. */
  #windows: [number, number][] = [];
  /** Pages sent and ms of the last windows, and the page rate (pages/ms) taken from them as #bandwidth is. */
  #pageWindows: [number, number][] = [];
  #pageRate = 0;
  #switchover: SwitchoverEstimate | undefined;
  // rate limiter window (migration_update_counters)
  #iterationStart = 0;
  #iterationInitialBytes = 0;
  #iterationInitialCost = 0;
  #iterationInitialPages = 0;

  constructor(vm: MigratableVm, options: MigrationStateOptions = {}) {
    this.vm = vm;
    this.#onEvent = options.onEvent;
  }

  get status(): MigrationStatus {
    return this.#status;
  }

  /** The error of the last failed migration (query-migrate's error-desc). */
  get errorDesc(): string | undefined {
    return this.#error;
  }

  /** Resolves with the final status of the current (or last) migration. */
  get done(): Promise<MigrationStatus> {
    return this.#done;
  }

  /** The auto-converge throttle in percent (0 = not throttling). */
  get throttlePercentage(): number {
    return this.#throttle;
  }

  /** The bandwidth-derived switch-over threshold in bytes (threshold_size). */
  get thresholdSize(): number {
    return this.#thresholdSize;
  }

  /**
   * What the switch-over was decided on, and (once completed) what the stop-and-copy really
   * sent: compare `pendingBytes` with `downtimeBytes` and `expectedDowntime` with query's
   * `downtime`. Undefined before the switch-over.
   */
  get switchover(): Readonly<SwitchoverEstimate> | undefined {
    return this.#switchover;
  }

  get capabilities(): Readonly<MigrationCapabilities> {
    return this.#caps;
  }

  get parameters(): Readonly<MigrationParameters> {
    return this.#params;
  }

  /** migrate-set-capabilities: refused while a migration runs. */
  setCapabilities(list: readonly MigrationCapabilityStatus[]): void {
    if (migrationIsRunning(this.#status)) throw new QmpError(MIGRATION_ACTIVE_MESSAGE);
    this.#caps = applyMigrationCapabilities(this.#caps, list);
  }

  /** migrate-set-parameters: allowed at any time; max-bandwidth and downtime-limit apply at once. */
  setParameters(update: MigrateSetParameters): void {
    this.#params = applyMigrationParameters(this.#params, update);
  }

  queryCapabilities(): MigrationCapabilityStatus[] {
    return queryMigrateCapabilities(this.#caps);
  }

  queryParameters(): MigrationParameters {
    return { ...this.#params, "block-bitmap-mapping": [...this.#params["block-bitmap-mapping"]] };
  }

  #setState(from: MigrationStatus | undefined, to: MigrationStatus): boolean {
    if (from !== undefined && this.#status !== from) return false;
    if (this.#status === to) return true;
    this.#status = to;
    if (this.#caps.events) this.#onEvent?.({ event: "MIGRATION", data: { status: to } });
    return true;
  }

  /** query-migrate (fill_source_migration_info). */
  query(): MigrationInfo {
    const s = this.#status;
    switch (s) {
      case "none":
        return {};
      case "setup":
        return { status: s };
      case "failed":
        return this.#error === undefined ? { status: s } : { status: s, "error-desc": this.#error };
      case "cancelled":
      case "colo":
      case "wait-unplug":
        return { status: s };
      default:
        break;
    }
    const info: MigrationInfo = { status: s, "setup-time": this.#setupTime };
    if (s === "completed") {
      info["total-time"] = this.#totalTime;
      info.downtime = this.#downtime;
    } else {
      info["total-time"] = Math.round(Date.now() - this.#startTime);
      info["expected-downtime"] = this.#expectedDowntime;
    }
    const ram = this.#ram;
    if (ram !== undefined) {
      const c = ram.counters();
      const { remaining, ...rest } = c;
      info.ram = { ...rest, skipped: 0, "normal-bytes": c.normal * c["page-size"], mbps: this.#mbps, "pages-per-second": this.#pagesPerSecond };
      if (s !== "completed") {
        info.ram.remaining = remaining;
        info.ram["dirty-pages-rate"] = this.#dirtyPagesRate;
      }
      if (this.#caps.xbzrle) info["xbzrle-cache"] = ram.xbzrleCounters();
    }
    if (this.#throttle > 0) info["cpu-throttle-percentage"] = this.#throttle;
    return info;
  }

  /**
   * `migrate`: starts a migration over the channel `connect` opens (`uri` names it in
   * errors). Returns at once (status "setup"); `done` resolves with the final status.
   */
  migrate(connect: () => Promise<OutgoingChannel>): Promise<MigrationStatus> {
    if (migrationIsRunning(this.#status)) throw new QmpError(MIGRATION_ACTIVE_MESSAGE);
    if (this.vm.runState === "inmigrate") throw new QmpError("Guest is waiting for an incoming migration");
    this.#cancelRequested = false;
    this.#error = undefined;
    this.#ram = undefined;
    this.#throttle = 0;
    this.#mbps = 0;
    this.#pagesPerSecond = 0;
    this.#dirtyPagesRate = 0;
    this.#thresholdSize = 0;
    this.#bandwidth = 0;
    this.#windows = [];
    this.#pageWindows = [];
    this.#pageRate = 0;
    this.#switchover = undefined;
    this.#startTime = Date.now();
    this.#expectedDowntime = this.#params["downtime-limit"];
    this.#setState(undefined, "setup");
    this.#done = this.#run(connect);
    return this.#done;
  }

  /** migrate_cancel: a no-op unless a migration runs; the source keeps running, unchanged. */
  cancel(): void {
    if (!migrationIsRunning(this.#status) || this.#status === "cancelling") return;
    this.#cancelRequested = true;
    this.#setState(undefined, "cancelling");
    this.#channel?.abort();
    this.#continue?.();
  }

  /** migrate-continue: leaves `state` (pre-switchover) for the switch-over. */
  continue(state: MigrationStatus): void {
    if (this.#status !== state || this.#continue === undefined) {
      throw new QmpError(`Migration not in expected state: ${this.#status}`);
    }
    this.#continue();
  }

  #checkCancel(): void {
    if (this.#cancelRequested) throw new Cancelled();
  }

  #emitPass(pass: number): void {
    if (this.#caps.events) this.#onEvent?.({ event: "MIGRATION_PASS", data: { pass } });
  }

  async #run(connect: () => Promise<OutgoingChannel>): Promise<MigrationStatus> {
    const vm = this.vm;
    let stoppedState: RunState | undefined;
    let registry: SaveVmRegistry | undefined;
    let rp: Promise<ReturnPathResult> | undefined;
    let rpEarly: ReturnPathResult | undefined;
    let opening: Promise<OutgoingChannel> | undefined;
    try {
      // The connection opens (a TCP handshake, a child process) while this thread builds the
      // handlers and warms their save: neither needs the channel.
      try {
        opening = connect();
      } catch (e) {
        opening = Promise.reject(e);
      }
      opening.catch(() => {}); // awaited below; not "unhandled" meanwhile
      // Node starts a TCP connect to an address on the next tick: let it go out first.
      await yieldNow();
      const caps = this.#caps;
      // migrate_fd_connect + migration_thread
      registry = new SaveVmRegistry();
      const ram = new RamMigration(vm.memory, {
        xbzrle: caps.xbzrle,
        xbzrleCacheSize: this.#params["xbzrle-cache-size"],
        ignoreShared: caps["x-ignore-shared"],
        vmRunning: () => vm.runState === "running",
      });
      ram.register(registry);
      const globalState = new GlobalState();
      registerGlobalState(registry, globalState);
      vm.registerDevices(registry);
      this.#ram = ram;
      this.#warmDeviceSave(registry);
      let channel: OutgoingChannel;
      try {
        channel = await opening;
      } catch (e) {
        if (this.#cancelRequested) throw new Cancelled();
        throw new MigrationError(describe(e), { cause: e });
      }
      this.#channel = channel;
      if (this.#cancelRequested) {
        channel.abort();
        throw new Cancelled();
      }
      if (caps["return-path"] && channel.returnPath === undefined) {
        throw new MigrationError("Unable to open return-path for postcopy");
      }
      const f = new QemuFileWriter(channel.sink, { bufferSize: WRITE_CHUNK });
      const config = {
        machineName: vm.machineName,
        capabilities: (Object.keys(caps) as (keyof MigrationCapabilities)[]).filter((c) => caps[c]),
        ...(caps["validate-uuid"] ? { uuid: vm.uuid ?? new Uint8Array(16) } : {}),
      };
      if (caps["return-path"]) {
        rp = readReturnPath(channel.returnPath!);
        void rp.then((r) => {
          rpEarly = r;
        });
      }
      qemuSavevmStateHeader(f, config);
      if (caps["return-path"]) {
        f.putU8(QEMU_VM_COMMAND);
        f.putBe16(MigCmd.OPEN_RETURN_PATH);
        f.putBe16(0);
        f.putU8(QEMU_VM_COMMAND);
        f.putBe16(MigCmd.PING);
        f.putBe16(4);
        f.putBe32(1);
      }
      let syncs = 0;
      let timeLastSync = performance.now();
      let xferPrev = 0;
      let dirtyPeriod = 0;
      let highCount = 0;
      const observeSync = (): void => {
        // migration_bitmap_sync's period bookkeeping, seen from here
        const c = ram.counters();
        const count = c["dirty-sync-count"];
        if (count === syncs) return;
        syncs = count;
        this.#emitPass(count);
        if (count === 1) return; // the setup sync: every page is dirty
        dirtyPeriod += ram.dirtyPages;
        const now = performance.now();
        if (now - timeLastSync < 1000) return;
        this.#dirtyPagesRate = Math.round((dirtyPeriod * 1000) / (now - timeLastSync));
        if (caps["auto-converge"]) {
          const xfer = c.transferred - xferPrev;
          const bytesDirty = dirtyPeriod * c["page-size"];
          const threshold = (xfer * this.#params["throttle-trigger-threshold"]) / 100;
          if (bytesDirty > threshold && ++highCount >= 2) {
            highCount = 0;
            this.#throttleDown(bytesDirty, threshold);
          }
        }
        xferPrev = c.transferred;
        dirtyPeriod = 0;
        timeLastSync = now;
      };
      await qemuSavevmStateSetup(f, registry);
      observeSync();
      await f.flush();
      this.#checkCancel();
      this.#setupTime = Math.round(Date.now() - this.#startTime);
      this.#setState("setup", "active");
      this.#iterationStart = performance.now();
      this.#iterationInitialBytes = f.position;
      this.#iterationInitialCost = f.position + ram.zeroPageExtraCost;
      this.#iterationInitialPages = 0;
      let chunkDeadline = 0;
      let bandwidthLimited = false;
      const ctx = {
        rateLimited: (): boolean => {
          const limit = this.#params["max-bandwidth"] / XFER_LIMIT_RATIO;
          if (limit > 0 && f.position - this.#iterationInitialBytes >= limit) {
            bandwidthLimited = true;
            return true;
          }
          return performance.now() >= chunkDeadline;
        },
      };
      // migration_iteration_run until the switch-over
      let lastPending = 0;
      for (;;) {
        this.#checkCancel();
        if (rpEarly !== undefined) {
          const m = rpEarly.error?.message ?? `RP: Sibling indicated error ${rpEarly.shut}`;
          throw new MigrationError(m.startsWith("RP: ") ? m : `RP: ${m}`);
        }
        chunkDeadline = performance.now() + CHUNK_MS;
        let pending = qemuSavevmStatePending(registry, false).must_precopy;
        if (this.#fits(pending, true)) {
          pending = qemuSavevmStatePending(registry, true).must_precopy;
          observeSync();
        }
        lastPending = pending;
        // ours: not before the first pass is done (the bulk of RAM goes while the guest runs;
        // a zero-heavy rest would otherwise fit the limit and stretch the downtime)
        if (pending === 0 || (this.#fits(pending, false) && ram.bulkStageDone)) break;
        bandwidthLimited = false;
        await qemuSavevmStateIterate(f, registry, ctx);
        observeSync();
        await f.flush();
        this.#updateCounters(f.position, pending);
        this.#checkCancel();
        if (bandwidthLimited) {
          const wait = this.#iterationStart + BUFFER_DELAY - performance.now();
          if (wait > 0) await sleep(wait);
          this.#updateCounters(f.position, pending);
        } else {
          await yieldNow();
        }
      }
      // One more warm round while the guest still runs: after the precopy passes, the device
      // save's code and data are out of the CPU caches (0.35 ms in the downtime, 0.2 after).
      this.#warmDeviceSave(registry);
      // migration_completion
      this.#switchover = {
        pendingBytes: lastPending,
        bandwidth: this.#bandwidth,
        expectedDowntime: this.#expectedFor(lastPending),
        stoppedAt: f.position,
        downtimeBytes: 0,
      };
      const downtimeStart = performance.now();
      const before = vm.runState;
      globalState.store(before);
      await vm.stop("finish-migrate");
      stoppedState = before;
      this.#checkCancel();
      if (caps["pause-before-switchover"]) {
        this.#setState("active", "pre-switchover");
        await new Promise<void>((resolve) => {
          this.#continue = resolve;
        });
        this.#continue = undefined;
        this.#checkCancel();
        this.#setState("pre-switchover", "device");
      }
      // Without the pause, QEMU 7.2 stays `active` through the device state (migration_maybe_pause).
      await qemuSavevmStateCompletePrecopy(f, registry, {});
      observeSync();
      await f.flush();
      this.#checkCancel();
      if (rp !== undefined) {
        const r = await rp;
        this.#checkCancel();
        if (r.shut === undefined) {
          const m = r.error?.message ?? "the return path broke before SHUT";
          throw new MigrationError(m.startsWith("RP: ") ? m : `RP: ${m}`);
        }
        if (r.shut !== 0) throw new MigrationError(`RP: Sibling indicated error ${r.shut}`);
      }
      // QEMU's downtime ends with migration_completion (after the return path's SHUT, when it
      // is on), before the channel is shut down (migrate_fd_cleanup).
      const end = performance.now();
      await channel.close();
      this.#downtime = Math.round(end - downtimeStart);
      this.#switchover.downtimeBytes = f.position - this.#switchover.stoppedAt;
      this.#totalTime = Math.round(Date.now() - this.#startTime);
      // migration_calculate_complete: the whole stream over the time after setup
      const transferTime = this.#totalTime - this.#setupTime;
      if (transferTime > 0) this.#mbps = (f.position * 8) / transferTime / 1000;
      this.#setThrottle(0);
      vm.setRunState("postmigrate");
      this.#setState(undefined, "completed");
      return "completed";
    } catch (e) {
      const cancelled = e instanceof Cancelled || this.#cancelRequested;
      let reason = describe(e);
      if (!cancelled && rp !== undefined) {
        // a write failed: the destination may have said why on the return path
        const r = rpEarly ?? (await Promise.race([rp, sleep(RP_GRACE_MS).then(() => undefined)]));
        if (r?.shut !== undefined && r.shut !== 0) reason = `RP: Sibling indicated error ${r.shut}`;
      }
      this.#channel?.abort();
      // failed before the channel was taken: close it whenever it opens
      if (this.#channel === undefined) void opening?.then((c) => c.abort(), () => {});
      this.#continue = undefined;
      this.#setThrottle(0);
      if (stoppedState !== undefined) {
        if (stoppedState === "running") await vm.resume();
        else vm.setRunState(stoppedState);
      }
      if (cancelled) {
        this.#setState(undefined, "cancelled");
        return "cancelled";
      }
      this.#error = reason;
      this.#setState(undefined, "failed");
      return "failed";
    } finally {
      if (registry !== undefined) qemuSavevmStateCleanup(registry);
      this.#channel = undefined;
    }
  }

  /**
   * Runs the switch-over's device-state save into nowhere `rounds` times, so that a later
   * migration's downtime is not spent in the JIT's lower tiers (cold 2-4 ms, 0.5 ms after one
   * round, 0.15 ms after ~30). Harmless while the guest runs: every pre_save only copies
   * device state into its section object, rewritten at the real save. A host that may
   * migrate calls it when idle (vm-cli does, spread over its first second with a monitor);
   * a no-op while a migration runs.
   */
  prepare(rounds = 1): void {
    if (migrationIsRunning(this.#status)) return;
    if (this.#prepared === undefined) {
      this.#prepared = new SaveVmRegistry();
      registerGlobalState(this.#prepared, new GlobalState());
      this.vm.registerDevices(this.#prepared);
    }
    for (let i = 0; i < rounds; i++) this.#warmDeviceSave(this.#prepared);
  }

  /** The device sections {@link prepare} saves, built at its first call. */
  #prepared: SaveVmRegistry | undefined;

  /**
   * The last warm-up's writer. Kept because V8 drops optimized code at a full GC once no
   * live object has a hidden class it embeds: without a QemuFileWriter alive between
   * migrations, the put* methods the switch-over runs went back to the interpreter.
   */
  #warmWriter: QemuFileWriter | undefined;

  /** One round of {@link prepare} on `registry`. */
  #warmDeviceSave(registry: SaveVmRegistry): void {
    try {
      this.#warmWriter = new QemuFileWriter(NULL_SINK);
      savevmStateCompletePrecopyNonIterable(this.#warmWriter, registry);
    } catch {
      // the real save reports whatever this hit
    }
  }

  #setThrottle(pct: number): void {
    if (pct === this.#throttle) return;
    this.#throttle = pct;
    this.vm.setThrottle(pct);
  }

  /** mig_throttle_guest_down. */
  #throttleDown(bytesDirtyPeriod: number, bytesDirtyThreshold: number): void {
    const p = this.#params;
    const now = this.#throttle;
    if (now === 0) {
      this.#setThrottle(p["cpu-throttle-initial"]);
      return;
    }
    let inc: number;
    if (!p["cpu-throttle-tailslow"]) {
      inc = p["cpu-throttle-increment"];
    } else {
      const cpuNow = 100 - now;
      const cpuIdeal = Math.floor(cpuNow * (bytesDirtyThreshold / bytesDirtyPeriod));
      inc = Math.min(cpuNow - cpuIdeal, p["cpu-throttle-increment"]);
    }
    this.#setThrottle(Math.min(now + inc, p["max-cpu-throttle"]));
  }

  /**
   * Whether `pending` (RAM's wire-byte estimate) fits downtime-limit at the measured rate
   * (`orEqual`: also when it just equals it, the test before the exact figure).
   * Ours, with XBZRLE on: counted in pages at the measured page rate. Every page then costs
   * memory time (its cached copy read, its slot written; ~1.6 µs here) that its ~14 wire
   * bytes do not show, and one window of zero pages (each weighing its scan) read 13x the
   * steady byte rate: 256 k pages (a 400 ms stop) went through a 300 ms limit.
   */
  #fits(pending: number, orEqual: boolean): boolean {
    const ram = this.#ram!;
    const [left, limit] = ram.xbzrleActive
      ? [ram.dirtyPages, this.#pageRate * this.#params["downtime-limit"]]
      : [pending, this.#thresholdSize];
    return orEqual ? left <= limit : left < limit;
  }

  /** The stop-and-copy's expected ms for `pending` bytes (pages, with XBZRLE on: see #fits). */
  #expectedFor(pending: number): number {
    const ram = this.#ram!;
    if (ram.xbzrleActive) return this.#pageRate > 0 ? Math.round(ram.dirtyPages / this.#pageRate) : 0;
    return this.#bandwidth > 0 ? Math.round(pending / this.#bandwidth) : 0;
  }

  /** migration_update_counters: bandwidth, threshold, mbps, pages/s, expected downtime per ≥ 100 ms window. */
  #updateCounters(position: number, pending: number): void {
    const now = performance.now();
    if (now < this.#iterationStart + BUFFER_DELAY) return;
    const transferred = position - this.#iterationInitialBytes;
    const spent = now - this.#iterationStart;
    // the window's cost in wire-byte equivalents: a zero page weighs its scan, not its 9 bytes
    const cost = position + this.#ram!.zeroPageExtraCost;
    const moved = cost - this.#iterationInitialCost;
    // QEMU's: bytes of the window over its wall-clock time. Tried: counting only the time the
    // migration held the thread (not what it yielded to an in-thread vCPU) ran 2x optimistic
    // — the destination, fed by the socket buffers while the vCPU runs, is what bounds the
    // stop-and-copy rate, and it does not speed up when the source gets the whole thread.
    // Ours: the lower of this window's figure and the mean of the last three windows — a
    // window that filled the socket buffers reads up to ~15 % fast, and one such window
    // deciding the switch-over made the downtime pass the limit.
    const bandwidth = windowRate(this.#windows, moved, spent); // byte equivalents per ms
    this.#bandwidth = bandwidth;
    this.#thresholdSize = bandwidth * this.#params["downtime-limit"];
    this.#mbps = (transferred * 8) / (spent / 1000) / 1e6;
    const c = this.#ram!.counters();
    const pages = c.normal + c.duplicate + this.#ram!.xbzrleCounters().pages;
    const pagesSent = pages - this.#iterationInitialPages;
    this.#pagesPerSecond = Math.round(pagesSent / (spent / 1000));
    this.#pageRate = windowRate(this.#pageWindows, pagesSent, spent);
    // ours: what is left on the wire (zero pages and XBZRLE counted), not dirty × 4096
    if (transferred > 10000 && bandwidth > 0) this.#expectedDowntime = this.#expectedFor(pending);
    this.#iterationStart = now;
    this.#iterationInitialBytes = position;
    this.#iterationInitialCost = cost;
    this.#iterationInitialPages = pages;
  }
}
