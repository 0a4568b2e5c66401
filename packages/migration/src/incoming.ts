/**
 * The destination side (QEMU's MigrationIncomingState, process_incoming_migration_co):
 * waits for a connection, loads the stream into the VM, answers PING with PONG and ends with
 * SHUT on the return path (0 = everything loaded), then hands the run state over: "running"
 * only if the source was running (globalstate) and autostart is on.
 *
 * @module
 */

import { encodeRpMessage, MigRpMsg, type IncomingChannel } from "./channel.ts";
import { GlobalState, incomingRunState, registerGlobalState } from "./global-state.ts";
import { SaveVmRegistry } from "./handlers.ts";
import { qemuLoadvmState } from "./loadvm.ts";
import {
  applyMigrationCapabilities,
  defaultMigrationCapabilities,
  MIGRATION_ACTIVE_MESSAGE,
  QmpError,
  queryMigrateCapabilities,
  type MigrationCapabilities,
  type MigrationCapabilityStatus,
} from "./migration-params.ts";
import type { MigratableVm, MigrationEvent, MigrationInfo, MigrationStatus } from "./migration-state.ts";
import { QemuFileReader, type ByteSink } from "./qemu-file.ts";
import { RamMigration } from "./ram.ts";

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const DRAIN_MS = 2000;

async function drainFor(it: AsyncIterator<Uint8Array>, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  try {
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([it.next(), new Promise<"timeout">((res) => (timer = setTimeout(() => res("timeout"), left)))]);
      clearTimeout(timer);
      if (r === "timeout" || r.done) return;
    }
  } catch {
    // the connection went away
  }
}

/** Options of the incoming side. */
export interface MigrationIncomingOptions {
  /** MIGRATION events (with the `events` capability). */
  onEvent?: (event: MigrationEvent) => void;
  /** QEMU's autostart (`-S` turns it off): resume the guest after a load of a running VM. Default true. */
  autostart?: boolean;
}

/** One VM's incoming migration (`-incoming URI`, `migrate-incoming`). */
export class MigrationIncoming {
  readonly vm: MigratableVm;
  readonly #onEvent: ((event: MigrationEvent) => void) | undefined;
  readonly #autostart: boolean;
  #status: MigrationStatus = "none";
  #caps: MigrationCapabilities = defaultMigrationCapabilities();
  #error: string | undefined;
  #channel: IncomingChannel | undefined;
  #started = false;
  #done: Promise<MigrationStatus> = Promise.resolve("none");

  constructor(vm: MigratableVm, options: MigrationIncomingOptions = {}) {
    this.vm = vm;
    this.#onEvent = options.onEvent;
    this.#autostart = options.autostart ?? true;
  }

  get status(): MigrationStatus {
    return this.#status;
  }

  get errorDesc(): string | undefined {
    return this.#error;
  }

  /** Resolves with the final status. */
  get done(): Promise<MigrationStatus> {
    return this.#done;
  }

  /** Capabilities checked against the stream (x-ignore-shared, validate-uuid) and `events`. */
  setCapabilities(list: readonly MigrationCapabilityStatus[]): void {
    if (this.#status === "setup" || this.#status === "active") throw new QmpError(MIGRATION_ACTIVE_MESSAGE);
    this.#caps = applyMigrationCapabilities(this.#caps, list);
  }

  queryCapabilities(): MigrationCapabilityStatus[] {
    return queryMigrateCapabilities(this.#caps);
  }

  /** query-migrate on the destination (fill_destination_migration_info). */
  query(): MigrationInfo {
    if (this.#status === "none") return {};
    if (this.#status === "failed" && this.#error !== undefined) return { status: "failed", "error-desc": this.#error };
    return { status: this.#status };
  }

  #setState(to: MigrationStatus): void {
    if (this.#status === to) return;
    this.#status = to;
    if (this.#caps.events) this.#onEvent?.({ event: "MIGRATION", data: { status: to } });
  }

  /**
   * Waits for the connection `accept` gives, then loads. The VM is "inmigrate" meanwhile and
   * must not run. Resolves with "completed" or "failed"; `done` too.
   */
  incoming(accept: () => Promise<IncomingChannel>): Promise<MigrationStatus> {
    if (this.#started) throw new QmpError("The incoming migration has already been started");
    this.#started = true;
    this.vm.setRunState("inmigrate");
    this.#setState("setup");
    this.#done = this.#run(accept);
    return this.#done;
  }

  /** Drops the connection (the load then fails). */
  abort(): void {
    this.#channel?.close();
  }

  async #run(accept: () => Promise<IncomingChannel>): Promise<MigrationStatus> {
    const vm = this.vm;
    let rpSink: ByteSink | undefined;
    let rpWrites: Promise<void> = Promise.resolve();
    let drain: AsyncIterator<Uint8Array> | undefined;
    const sendRp = (type: number, value: number): void => {
      const sink = rpSink;
      if (sink === undefined) return;
      rpWrites = rpWrites.then(() => sink.write(encodeRpMessage(type, value))).catch(() => undefined);
    };
    try {
      const channel = await accept();
      this.#channel = channel;
      this.#setState("active");
      const registry = new SaveVmRegistry();
      new RamMigration(vm.memory).register(registry);
      const globalState = new GlobalState();
      registerGlobalState(registry, globalState);
      vm.registerDevices(registry);
      const caps = this.#caps;
      const src = channel.source;
      let reader: QemuFileReader;
      if (typeof src === "object" && src !== null && Symbol.asyncIterator in src) {
        const it = (src as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
        drain = it;
        reader = new QemuFileReader({ [Symbol.asyncIterator]: () => it });
      } else {
        reader = new QemuFileReader(src);
      }
      await qemuLoadvmState(reader, registry, {
        machineName: vm.machineName,
        capabilities: (Object.keys(caps) as (keyof MigrationCapabilities)[]).filter((c) => caps[c]),
        uuid: vm.uuid ?? new Uint8Array(16),
        onOpenReturnPath: () => {
          if (channel.returnSink === undefined) throw new Error("the transport has no return path");
          rpSink = channel.returnSink;
        },
        onPing: (value) => sendRp(MigRpMsg.PONG, value),
      });
      sendRp(MigRpMsg.SHUT, 0);
      await rpWrites;
      channel.close();
      this.#setState("completed");
      const next = incomingRunState(globalState, this.#autostart);
      if (next === "running") await vm.resume();
      else vm.setRunState(next);
      return "completed";
    } catch (e) {
      this.#error = describe(e);
      sendRp(MigRpMsg.SHUT, 1);
      await rpWrites;
      // read on (for a while) so the source sees SHUT before a reset drops it
      if (drain !== undefined && rpSink !== undefined) await drainFor(drain, DRAIN_MS);
      this.#channel?.close();
      this.#setState("failed");
      return "failed";
    } finally {
      this.#channel = undefined;
    }
  }
}
