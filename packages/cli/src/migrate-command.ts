/**
 * `vm-cli migrate`: drives the migration of a running VM through its QMP socket, as a client
 * (QEMU's `migrate` + `query-migrate` polling), with a live progress line and a summary.
 *
 * ```sh
 * vm-cli migrate --qmp unix:/tmp/a.sock tcp:127.0.0.1:4444 [--json] [--max-bandwidth 1G]
 * ```
 *
 * {@link QmpClient} and {@link runMigration} are used by the demo (demo.ts) too.
 *
 * @module
 */

import { sendWithFds } from "./qmp/scm-rights.ts";
import net from "node:net";
import { subcommandArgs, UsageError } from "./args.ts";

/** A JSON value as QMP sends it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A QMP command that answered with `{"error": ...}`. */
export class QmpCommandError extends Error {
  readonly command: string;
  readonly errorClass: string;
  readonly desc: string;
  constructor(command: string, errorClass: string, desc: string) {
    super(`${command}: ${desc}`);
    this.name = "QmpCommandError";
    this.command = command;
    this.errorClass = errorClass;
    this.desc = desc;
  }
}

/** Where a QMP server listens: `unix:PATH`, `tcp:HOST:PORT` (or a bare path). */
export type QmpAddress = { path: string } | { host: string; port: number };

export function parseQmpAddress(text: string): QmpAddress {
  const spec = text.split(",")[0]!;
  if (spec.startsWith("unix:")) {
    const path = spec.slice(5);
    if (path === "") throw new UsageError(`--qmp ${text}: empty socket path`);
    return { path };
  }
  if (spec.startsWith("tcp:")) {
    const rest = spec.slice(4);
    const colon = rest.lastIndexOf(":");
    const port = Number(rest.slice(colon + 1));
    if (colon < 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new UsageError(`--qmp ${text}: expected tcp:HOST:PORT`);
    }
    return { host: rest.slice(0, colon) || "127.0.0.1", port };
  }
  if (spec.includes("/")) return { path: spec };
  throw new UsageError(`--qmp ${text}: expected unix:PATH or tcp:HOST:PORT`);
}

function formatQmpAddress(a: QmpAddress): string {
  return "path" in a ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`;
}

/**
 * A QMP client: greeting, `qmp_capabilities`, then commands answered in order; events go to
 * {@link onEvent}. Values are parsed from the byte stream whatever their line breaks (so
 * `-qmp-pretty` servers work too).
 */
export class QmpClient {
  readonly #socket: net.Socket;
  readonly #pending: { command: string; resolve: (v: Json) => void; reject: (e: Error) => void }[] = [];
  #buffer = "";
  #closed: Error | undefined;
  #greeting: ((v: JsonObject) => void) | undefined;
  onEvent: ((event: string, data: Json | undefined) => void) | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.#onData(chunk));
    const end = (e?: Error): void => {
      if (this.#closed !== undefined) return;
      this.#closed = e ?? new Error("the QMP connection was closed (the VM has exited)");
      for (const p of this.#pending.splice(0)) p.reject(this.#closed);
    };
    socket.on("error", end);
    socket.on("close", () => end());
  }

  /** Connects and negotiates capabilities; errors name the address. */
  static async connect(address: QmpAddress, timeoutMs = 5000): Promise<QmpClient> {
    const where = formatQmpAddress(address);
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = "path" in address ? net.connect(address.path) : net.connect(address.port, address.host);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`cannot connect to QMP at ${where}: timed out`));
      }, timeoutMs);
      s.once("connect", () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once("error", (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why = e.code === "ENOENT" ? "no such socket (is the VM running with -qmp?)"
          : e.code === "ECONNREFUSED" ? "connection refused (is the VM running?)" : e.message;
        reject(new Error(`cannot connect to QMP at ${where}: ${why}`));
      });
    });
    const client = new QmpClient(socket);
    const greeting = await new Promise<JsonObject>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no QMP greeting from ${where}`)), timeoutMs);
      client.#greeting = (v) => {
        clearTimeout(timer);
        resolve(v);
      };
      socket.once("close", () => {
        clearTimeout(timer);
        reject(new Error(`QMP at ${where} closed the connection before its greeting`));
      });
    });
    if (!("QMP" in greeting)) {
      client.close();
      throw new Error(`${where} is not a QMP server`);
    }
    await client.execute("qmp_capabilities");
    return client;
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    for (;;) {
      const end = jsonEnd(this.#buffer);
      if (end < 0) break;
      const text = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end);
      if (text.trim() === "") continue;
      let msg: JsonObject;
      try {
        msg = JSON.parse(text) as JsonObject;
      } catch {
        continue;
      }
      this.#dispatch(msg);
    }
  }

  #dispatch(msg: JsonObject): void {
    if (this.#greeting !== undefined && "QMP" in msg) {
      const g = this.#greeting;
      this.#greeting = undefined;
      g(msg);
      return;
    }
    if (typeof msg["event"] === "string") {
      this.onEvent?.(msg["event"], msg["data"]);
      return;
    }
    const p = this.#pending.shift();
    if (p === undefined) return;
    if ("error" in msg) {
      const err = msg["error"] as JsonObject;
      p.reject(new QmpCommandError(p.command, String(err["class"]), String(err["desc"])));
    } else {
      p.resolve(msg["return"] ?? null);
    }
  }

  execute(command: string, args?: JsonObject): Promise<Json> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return new Promise<Json>((resolve, reject) => {
      this.#pending.push({ command, resolve, reject });
      this.#socket.write(JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args }) + "\n");
    });
  }

  /**
   * Sends a command with descriptors attached (SCM_RIGHTS, so a unix socket only), as a client
   * passes one before `getfd`: `executeWithFds("getfd", { fdname: "mig" }, [fd])`. Our
   * descriptors stay open; the VM gets its own.
   */
  async executeWithFds(command: string, args: JsonObject | undefined, fds: readonly number[]): Promise<Json> {
    if (this.#closed !== undefined) throw this.#closed;
    // sendmsg goes around the socket's queue: let what is queued go first.
    if (this.#socket.writableLength > 0) await new Promise((r) => this.#socket.once("drain", r));
    const text = JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args }) + "\n";
    return new Promise<Json>((resolve, reject) => {
      const entry = { command, resolve, reject };
      this.#pending.push(entry);
      sendWithFds(this.#socket, text, fds).catch((e: unknown) => {
        const at = this.#pending.indexOf(entry);
        if (at >= 0) this.#pending.splice(at, 1);
        reject(e instanceof Error ? e : new Error(String(e)));
      });
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** The end offset of the first complete JSON object in `s` (after leading space), or -1. */
function jsonEnd(s: string): number {
  let depth = 0;
  let inString = false;
  let started = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") {
      depth++;
      started = true;
    } else if (c === "}" || c === "]") {
      depth--;
      if (started && depth === 0) return i + 1;
    }
  }
  return -1;
}

/** Options of `vm-cli migrate` that become capabilities and parameters. */
export interface MigrateOptions {
  maxBandwidth?: number;
  downtimeLimit?: number;
  xbzrle?: boolean;
  autoConverge?: boolean;
  cacheSize?: number;
  /** query-migrate polling interval (default 250 ms). */
  pollMs?: number;
}

/** The figures of one finished migration. */
export interface MigrationSummary {
  status: string;
  /** Total time, ms (QEMU's total-time). */
  totalTime: number;
  /** Downtime, ms. */
  downtime: number;
  setupTime: number;
  transferred: number;
  /** Mean throughput over the total time, Mbit/s. */
  mbps: number;
  normalPages: number;
  zeroPages: number;
  passes: number;
  errorDesc?: string;
}

function num(o: Json | undefined, key: string): number {
  if (o === null || typeof o !== "object" || Array.isArray(o)) return 0;
  const v = o[key];
  return typeof v === "number" ? v : 0;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

/** One progress line from a query-migrate answer. */
export function formatProgress(info: JsonObject): string {
  const ram = info["ram"];
  const parts = [`migrate: ${String(info["status"] ?? "none")}`];
  if (ram !== undefined) {
    parts.push(
      `transferred ${formatBytes(num(ram, "transferred"))}`,
      `remaining ${formatBytes(num(ram, "remaining"))}`,
      `${num(ram, "mbps").toFixed(1)} mbps`,
      `dirty ${num(ram, "dirty-pages-rate")} pages/s`,
      `pass ${num(ram, "dirty-sync-count")}`,
    );
  }
  if (typeof info["expected-downtime"] === "number") parts.push(`expected downtime ${info["expected-downtime"]} ms`);
  return parts.join("  ");
}

export function summarize(info: JsonObject): MigrationSummary {
  const ram = info["ram"];
  const totalTime = num(info, "total-time");
  const transferred = num(ram, "transferred");
  const s: MigrationSummary = {
    status: String(info["status"] ?? "none"),
    totalTime,
    downtime: num(info, "downtime"),
    setupTime: num(info, "setup-time"),
    transferred,
    mbps: totalTime > 0 ? Math.round((transferred * 8) / (totalTime * 1000) * 10) / 10 : 0,
    normalPages: num(ram, "normal"),
    zeroPages: num(ram, "duplicate"),
    passes: num(ram, "dirty-sync-count"),
  };
  if (typeof info["error-desc"] === "string") s.errorDesc = info["error-desc"];
  return s;
}

export function formatSummary(s: MigrationSummary): string {
  if (s.status !== "completed") {
    return `migrate: ${s.status}${s.errorDesc === undefined ? "" : `: ${s.errorDesc}`}`;
  }
  return `migrate: completed in ${s.totalTime} ms (setup ${s.setupTime} ms), downtime ${s.downtime} ms, ` +
    `transferred ${formatBytes(s.transferred)} at ${s.mbps} mbps, pages: ${s.normalPages} normal, ${s.zeroPages} zero, ` +
    `${s.passes} pass${s.passes === 1 ? "" : "es"}`;
}

const MIGRATION_ACTIVE = new Set(["setup", "active", "cancelling", "device", "pre-switchover", "wait-unplug", "postcopy-active"]);

export interface RunMigrationHooks {
  /** Each query-migrate answer while the migration runs. */
  onProgress?: (info: JsonObject) => void;
  /** Resolves to request migrate_cancel (Ctrl-C). */
  cancel?: Promise<void>;
}

/**
 * Migrates the VM behind `client` to `uri`: checks its state, sets capabilities and
 * parameters, issues `migrate`, polls `query-migrate` until it ends. Returns the final
 * query-migrate answer; throws (with a clear message) what refused it.
 */
export async function runMigration(client: QmpClient, uri: string, options: MigrateOptions = {}, hooks: RunMigrationHooks = {}): Promise<JsonObject> {
  const status = (await client.execute("query-status")) as JsonObject;
  const state = String(status["status"]);
  if (state === "inmigrate") throw new Error("the VM is waiting for an incoming migration (-incoming): nothing to migrate yet");
  if (state === "postmigrate") throw new Error("the VM has already been migrated away (state postmigrate)");
  if (state === "shutdown" || state === "internal-error") throw new Error(`the VM is not running (state ${state})`);
  const previous = (await client.execute("query-migrate")) as JsonObject;
  if (MIGRATION_ACTIVE.has(String(previous["status"]))) throw new Error(`a migration is already in progress (status ${String(previous["status"])})`);

  const caps: JsonObject[] = [];
  if (options.xbzrle) caps.push({ capability: "xbzrle", state: true });
  if (options.autoConverge) caps.push({ capability: "auto-converge", state: true });
  if (caps.length > 0) await client.execute("migrate-set-capabilities", { capabilities: caps });
  const params: JsonObject = {};
  if (options.maxBandwidth !== undefined) params["max-bandwidth"] = options.maxBandwidth;
  if (options.downtimeLimit !== undefined) params["downtime-limit"] = options.downtimeLimit;
  if (options.cacheSize !== undefined) params["xbzrle-cache-size"] = options.cacheSize;
  if (Object.keys(params).length > 0) await client.execute("migrate-set-parameters", params);

  await client.execute("migrate", { uri });
  let cancelSent = false;
  let cancelRequested = false;
  void hooks.cancel?.then(() => {
    cancelRequested = true;
  });
  const poll = options.pollMs ?? 250;
  for (;;) {
    const info = (await client.execute("query-migrate")) as JsonObject;
    const s = String(info["status"] ?? "none");
    if (!MIGRATION_ACTIVE.has(s)) return info;
    hooks.onProgress?.(info);
    if (cancelRequested && !cancelSent) {
      cancelSent = true;
      await client.execute("migrate_cancel");
      continue;
    }
    await new Promise((r) => setTimeout(r, poll));
  }
}

export const MIGRATE_USAGE = `usage: vm-cli migrate --qmp unix:PATH|tcp:HOST:PORT URI [options]

Migrates a running VM (started with -qmp) to URI: tcp:HOST:PORT, unix:PATH, exec:CMD, fd:NAME, file:PATH.

  --json                 print only the final query-migrate answer plus a summary, as JSON, on stdout
  --max-bandwidth BYTES  bytes per second (suffixes K, M, G)
  --downtime-limit MS    the largest acceptable downtime
  --xbzrle               turn on the xbzrle capability
  --cache-size BYTES     xbzrle-cache-size
  --auto-converge        turn on the auto-converge capability

Exit status: 0 completed, 1 failed (with QEMU's error), 130 cancelled by Ctrl-C.
`;

export interface MigrateArgs {
  qmp: QmpAddress;
  uri: string;
  json: boolean;
  options: MigrateOptions;
}

function parseSize(flag: string, v: string | undefined): number {
  const m = v === undefined ? null : /^(\d+(?:\.\d+)?)([kKmMgGtT]?)[bB]?$/.exec(v);
  if (m === null) throw new UsageError(`${flag}: expected a size in bytes, got '${v ?? ""}'`);
  const mult = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return Math.round(Number(m[1]) * mult);
}

/** Parses `vm-cli migrate`'s arguments; undefined = --help. */
export function parseMigrateArgs(argv: readonly string[]): MigrateArgs | undefined {
  let qmp: QmpAddress | undefined;
  let uri: string | undefined;
  let json = false;
  const options: MigrateOptions = {};
  for (const { name: a, value: next } of subcommandArgs(argv, (a) => `migrate: ${a} needs a value`)) {
    switch (a) {
      case "-h": case "--help": case "-help": return undefined;
      case "--qmp": case "-qmp": qmp = parseQmpAddress(next()); break;
      case "--json": json = true; break;
      case "--xbzrle": options.xbzrle = true; break;
      case "--auto-converge": options.autoConverge = true; break;
      case "--max-bandwidth": options.maxBandwidth = parseSize(a, next()); break;
      case "--cache-size": options.cacheSize = parseSize(a, next()); break;
      case "--downtime-limit": {
        const v = next();
        const n = Number(v);
        if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new UsageError(`--downtime-limit: expected milliseconds, got '${v}'`);
        options.downtimeLimit = n;
        break;
      }
      default:
        if (a.startsWith("-")) throw new UsageError(`migrate: unknown option ${a}`);
        if (uri !== undefined) throw new UsageError(`migrate: one URI only (got '${uri}' and '${a}')`);
        uri = a;
    }
  }
  if (qmp === undefined) throw new UsageError("migrate: --qmp unix:PATH|tcp:HOST:PORT is required (the VM's -qmp socket)");
  if (uri === undefined) throw new UsageError("migrate: the destination URI is missing (e.g. tcp:127.0.0.1:4444)");
  if (!/^(tcp:.+:\d+|unix:.+|exec:.+|fd:.+|file:.+|rdma:.+)$/.test(uri)) {
    throw new UsageError(`migrate: '${uri}' is not a migration URI (tcp:HOST:PORT, unix:PATH, exec:CMD, fd:NAME, file:PATH)`);
  }
  return { qmp, uri, json, options };
}

export interface MigrateIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Progress line rewritten with \r (a terminal) or appended lines. */
  isTTY: boolean;
  /** Handle SIGINT (migrate_cancel, exit 130). */
  handleSignals?: boolean;
}

export function processMigrateIo(): MigrateIo {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    isTTY: process.stderr.isTTY === true,
    handleSignals: true,
  };
}

/** `vm-cli migrate ARGS`: the exit status. */
export async function migrateCommand(argv: readonly string[], io: MigrateIo = processMigrateIo()): Promise<number> {
  const args = parseMigrateArgs(argv);
  if (args === undefined) {
    io.stdout(MIGRATE_USAGE);
    return 0;
  }
  let client: QmpClient;
  try {
    client = await QmpClient.connect(args.qmp);
  } catch (e) {
    io.stderr(`vm-cli: migrate: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  let interrupted = false;
  let onSigint: (() => void) | undefined;
  const cancel = new Promise<void>((resolve) => {
    onSigint = () => {
      if (!interrupted) io.stderr(`${io.isTTY ? "\n" : ""}vm-cli: migrate: interrupted, cancelling the migration\n`);
      interrupted = true;
      resolve();
    };
  });
  if (io.handleSignals) process.on("SIGINT", onSigint!);
  let lastLength = 0;
  const progress = (info: JsonObject): void => {
    if (args.json) return;
    const line = formatProgress(info);
    if (io.isTTY) {
      io.stderr(`\r${line.padEnd(lastLength)}`);
      lastLength = line.length;
    } else {
      io.stderr(`${line}\n`);
    }
  };
  try {
    const info = await runMigration(client, args.uri, args.options, { onProgress: progress, cancel });
    if (io.isTTY && lastLength > 0) io.stderr("\n");
    const summary = summarize(info);
    if (args.json) io.stdout(JSON.stringify({ ...info, summary }) + "\n");
    else io.stderr(formatSummary(summary) + "\n");
    if (summary.status === "completed") return 0;
    if (summary.status === "cancelled" && interrupted) return 130;
    return 1;
  } catch (e) {
    if (io.isTTY && lastLength > 0) io.stderr("\n");
    const message = e instanceof QmpCommandError && e.command === "migrate" ? e.desc : e instanceof Error ? e.message : String(e);
    io.stderr(`vm-cli: migrate: ${message}\n`);
    return 1;
  } finally {
    if (io.handleSignals) process.off("SIGINT", onSigint!);
    client.close();
  }
}
