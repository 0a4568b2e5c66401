/**
 * The QMP server (QEMU's monitor/qmp.c over a listening chardev): greeting, capabilities
 * negotiation, commands run one at a time per connection in the order received, events to
 * every connection past negotiation. A client that disconnects mid-command only loses its
 * answer; errors in a command become GenericError and never reach the machine loop.
 *
 * @module
 */

import net from "node:net";
import { StringDecoder } from "node:string_decoder";
import { listenOn, removeSocketFile, type SocketAddress, type SocketChardev } from "../chardev.ts";
import type { VmEvent } from "../controller.ts";
import type { MonitorContext } from "../hmp.ts";
import { QMP_COMMANDS, QmpError, checkArgs, versionInfo } from "./commands.ts";
import { closeFd, MonitorFds, ReceivedFds, type MonitorFdContext } from "./fds.ts";
import { formatJson, JsonStreamer, type JsonItem, type JsonValue } from "./json.ts";
import { fdPassingFor, readConnection } from "./scm-rights.ts";

/** QEMU's event timestamp: wall-clock seconds and microseconds. */
export function timestamp(): { seconds: number; microseconds: number } {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
}

/** A session's descriptor passing: its monitor's named descriptors, and why none can arrive. */
export interface QmpSessionFds {
  named: MonitorFds;
  unavailable?: string;
}

/** Handles one QMP connection's input; `write` sends one JSON value. */
export class QmpSession {
  #ctx: MonitorContext;
  #write: (v: JsonValue) => void;
  #streamer = new JsonStreamer();
  #negotiated = false;
  #oob = false;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  #received = new ReceivedFds();

  constructor(ctx: MonitorContext, write: (v: JsonValue) => void, fds?: QmpSessionFds) {
    const fdContext: MonitorFdContext = {
      named: fds?.named ?? new MonitorFds(),
      takeReceived: () => this.#received.take(),
      ...(fds?.unavailable === undefined ? {} : { unavailable: fds.unavailable }),
    };
    this.#ctx = { ...ctx, fds: fdContext };
    this.#write = write;
  }

  /** The greeting QEMU sends first. */
  greeting(): JsonValue {
    return { QMP: { version: versionInfo(this.#ctx), capabilities: ["oob"] } };
  }

  /** Past qmp_capabilities: events are sent. */
  get negotiated(): boolean {
    return this.#negotiated;
  }

  event(e: VmEvent): void {
    if (!this.#negotiated || this.#closed) return;
    const msg: Record<string, JsonValue> = { timestamp: timestamp(), event: e.event };
    if (e.data !== undefined) msg["data"] = e.data;
    this.#write(msg);
  }

  /**
   * Feeds received text and the descriptors that came with it; commands are queued and run in
   * order. The descriptors wait for the commands that came with them or later (getfd takes
   * them), in place of any earlier ones not taken. Resolves when the commands are done.
   */
  feed(text: string, fds: readonly number[] = []): Promise<void> {
    if (fds.length > 0) {
      const received = [...fds];
      this.#chain = this.#chain.then(() => {
        if (this.#closed) received.forEach(closeFd);
        else this.#received.receive(received);
      });
    }
    for (const item of this.#streamer.push(text)) {
      this.#chain = this.#chain.then(() => this.#handle(item));
    }
    return this.#chain;
  }

  /** The connection is gone: descriptors it sent and nobody named are closed. */
  close(): void {
    this.#closed = true;
    void this.#chain.then(() => this.#received.closeAll());
  }

  #respond(v: JsonValue): void {
    if (!this.#closed) this.#write(v);
  }

  async #handle(item: JsonItem): Promise<void> {
    if (this.#closed) return;
    if ("error" in item) {
      this.#respond({ error: { class: "GenericError", desc: item.error } });
      return;
    }
    const req = item.value;
    let id: JsonValue | undefined;
    try {
      if (req === null || typeof req !== "object" || Array.isArray(req)) {
        throw new QmpError("GenericError", "QMP input must be a JSON object");
      }
      id = Object.hasOwn(req, "id") ? req["id"] : undefined;
      const { command, args } = this.#checkObj(req);
      const ret = await this.#dispatch(command, args);
      const rsp: Record<string, JsonValue> = { return: ret };
      if (id !== undefined) rsp["id"] = id;
      this.#respond(rsp);
    } catch (e) {
      const err = e instanceof QmpError ? e : new QmpError("GenericError", e instanceof Error ? e.message : String(e));
      // QEMU's QDict puts "id" before "error".
      const rsp: Record<string, JsonValue> = {};
      if (id !== undefined) rsp["id"] = id;
      rsp["error"] = { class: err.errorClass, desc: err.message };
      this.#respond(rsp);
    }
  }

  /** qmp_dispatch_check_obj. */
  #checkObj(req: { [key: string]: JsonValue }): { command: string; args: Record<string, JsonValue> } {
    let execKey: string | undefined;
    for (const [key, v] of Object.entries(req)) {
      if (key === "execute" || (key === "exec-oob" && this.#oob)) {
        if (typeof v !== "string") throw new QmpError("GenericError", `QMP input member '${key}' must be a string`);
        if (execKey !== undefined) throw new QmpError("GenericError", `QMP input member '${key}' clashes with '${execKey}'`);
        execKey = key;
      } else if (key === "arguments") {
        if (v === null || typeof v !== "object" || Array.isArray(v)) {
          throw new QmpError("GenericError", "QMP input member 'arguments' must be an object");
        }
      } else if (key !== "id") {
        throw new QmpError("GenericError", `QMP input member '${key}' is unexpected`);
      }
    }
    if (execKey === undefined) throw new QmpError("GenericError", "QMP input lacks member 'execute'");
    const command = req[execKey] as string;
    if (execKey === "exec-oob" && QMP_COMMANDS[command] !== undefined) {
      throw new QmpError("GenericError", `The command ${command} does not support OOB`);
    }
    const args = (req["arguments"] ?? {}) as Record<string, JsonValue>;
    return { command, args };
  }

  async #dispatch(command: string, args: Record<string, JsonValue>): Promise<JsonValue> {
    const cmd = Object.hasOwn(QMP_COMMANDS, command) ? QMP_COMMANDS[command] : undefined;
    if (!this.#negotiated) {
      if (command !== "qmp_capabilities") {
        throw new QmpError("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
      }
    } else if (command === "qmp_capabilities") {
      throw new QmpError("CommandNotFound", "Capabilities negotiation is already complete, command ignored");
    }
    if (cmd === undefined) throw new QmpError("CommandNotFound", `The command ${command} has not been found`);
    if (!cmd.anyArgs) checkArgs(cmd.args, args);
    const ret = await cmd.run(this.#ctx, args);
    if (command === "qmp_capabilities") {
      this.#negotiated = true;
      this.#oob = Array.isArray(args["enable"]) && args["enable"].includes("oob");
    }
    return ret;
  }
}

export interface QmpServerOptions {
  /** `-qmp-pretty` / `pretty=on`. */
  pretty?: boolean;
}

/** A listening QMP socket: any number of clients, each its own session. */
export class QmpServer {
  #ctx: MonitorContext;
  #pretty: boolean;
  #server: net.Server | undefined;
  /** Each connection, with the flush of its queued output (see #accept). */
  #sockets = new Map<net.Socket, () => void>();
  #sessions = new Set<QmpSession>();
  #address: SocketAddress | undefined;
  #firstClient: Promise<void>;
  #gotClient!: () => void;
  #unsubscribe: () => void;
  /** Descriptors passed with getfd, by name (QEMU keeps them per monitor, across connections). */
  #fds = new MonitorFds();
  /** true when connections are read with their descriptors, else why not. */
  #fdPassing: true | string = "not listening";

  constructor(ctx: MonitorContext, options: QmpServerOptions = {}) {
    this.#ctx = ctx;
    this.#pretty = options.pretty ?? false;
    this.#firstClient = new Promise((r) => (this.#gotClient = r));
    this.#unsubscribe = ctx.controller.onEvent((e) => {
      for (const s of this.#sessions) s.event(e);
    });
  }

  /** Starts listening; resolves with the address (a tcp port 0 resolved to the real port). */
  async listen(chardev: SocketChardev): Promise<string> {
    // On a unix socket clients may pass descriptors (getfd): the helper reads those
    // connections, so Node must not start reading them itself.
    this.#fdPassing = fdPassingFor(chardev.address);
    const server = net.createServer({ pauseOnConnect: this.#fdPassing === true }, (socket) => this.#accept(socket));
    this.#server = server;
    this.#address = chardev.address;
    return listenOn(server, chardev.address);
  }

  /** Resolves when the first client connects (`wait=on`). */
  waitForClient(): Promise<void> {
    return this.#firstClient;
  }

  #accept(socket: net.Socket): void {
    this.#gotClient();
    // Output goes out from the event loop, in order (QEMU's monitor buffers it and its loop
    // flushes it): an event that a live migration's switch-over emits (STOP) is queued, not
    // formatted, inside the downtime.
    let queued: JsonValue[] = [];
    const flush = (): void => {
      const values = queued;
      queued = [];
      if (values.length === 0 || socket.destroyed || !socket.writable) return;
      let text = "";
      for (const v of values) text += formatJson(v, this.#pretty).replace(/\n/g, "\r\n") + "\r\n";
      socket.write(text);
    };
    const write = (v: JsonValue): void => {
      if (queued.push(v) === 1) setImmediate(flush);
    };
    this.#sockets.set(socket, flush);
    const fdPassing = this.#fdPassing;
    const session = new QmpSession(this.#ctx, write, { named: this.#fds, ...(fdPassing === true ? {} : { unavailable: fdPassing }) });
    this.#sessions.add(session);
    write(session.greeting());
    const decoder = new StringDecoder("utf8");
    const stopReading = readConnection(socket, fdPassing === true, (bytes, fds) => void session.feed(decoder.write(bytes), fds).catch(() => {}));
    socket.on("error", () => {});
    socket.on("close", () => {
      stopReading();
      session.close();
      this.#sessions.delete(session);
      this.#sockets.delete(socket);
    });
  }

  /** Stops listening and ends every connection after what was written to it. */
  async close(): Promise<void> {
    this.#unsubscribe();
    for (const flush of this.#sockets.values()) flush();
    const closing = [...this.#sockets.keys()].map(
      (s) =>
        new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            s.destroy();
            resolve();
          }, 500);
          s.once("close", () => {
            clearTimeout(t);
            resolve();
          });
          s.end();
        }),
    );
    if (this.#server !== undefined) await new Promise<void>((r) => this.#server!.close(() => r()));
    await Promise.all(closing);
    this.#fds.closeAll();
    if (this.#address !== undefined) removeSocketFile(this.#address);
  }
}
