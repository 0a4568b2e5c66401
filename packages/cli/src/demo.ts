/**
 * `vm-cli demo` (`pnpm start`): boots the bundled guest in one `vm-cli run` process and
 * live-migrates it to a second process and back, showing the guest's console continue across
 * the moves ("[A] tick 3", "[B] tick 4", ...) and each hop's figures.
 *
 * Every child runs with a QMP unix socket in a temporary directory and its vCPU in a worker
 * thread (`-accel tcg,thread=multi`); the destination waits with `-incoming tcp:127.0.0.1:PORT`. Children are always ended (quit, then SIGKILL) and the
 * directory removed, whatever happens.
 *
 * @module
 */

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "./args.ts";
import { formatBytes, formatProgress, QmpClient, runMigration, summarize, type JsonObject, type MigrationSummary } from "./migrate-command.ts";

export const DEMO_USAGE = `usage: vm-cli demo [--hops N] [--hop-seconds S] [--keep-going] [--guest PATH] [-m SIZE]

Boots the bundled guest and live-migrates it between local vm-cli processes (A -> B -> A' ...),
the guest's console shown continuing across the moves, and each hop's figures printed.

  --hops N          migrations to do (default 2: there and back)
  --hop-seconds S   guest run time before each hop and after the last (default 3)
  --keep-going      migrate back and forth until Ctrl-C
  --guest PATH      the guest ELF (default packages/cli/demo-guest/demo.elf: a tick per guest
                    second with its uptime, 8 MiB of RAM rewritten and checked all along)
  -m SIZE           guest RAM (default 128M)
`;

export interface DemoArgs {
  hops: number;
  hopSeconds: number;
  keepGoing: boolean;
  guest: string;
  ram: string;
}

const DEMO_GUEST = fileURLToPath(new URL("../demo-guest/demo.elf", import.meta.url));
const HELLO_GUEST = fileURLToPath(new URL("../../../guests/hello/hello.elf", import.meta.url));
/** demo-guest/demo.elf (ticks with its uptime, 8 MiB of RAM kept busy and checked), else the hello guest. */
export const DEFAULT_GUEST = existsSync(DEMO_GUEST) ? DEMO_GUEST : HELLO_GUEST;
const VM_CLI = fileURLToPath(new URL("../bin/vm-cli.js", import.meta.url));

export function parseDemoArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): DemoArgs | undefined {
  const envSeconds = env["FERRYVM_DEMO_HOP_SECONDS"];
  const args: DemoArgs = {
    hops: 2,
    hopSeconds: envSeconds === undefined ? 3 : Number(envSeconds),
    keepGoing: false,
    guest: DEFAULT_GUEST,
    ram: "128M",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`demo: ${a} needs a value`);
      return v;
    };
    switch (a) {
      case "-h": case "--help": case "-help": return undefined;
      case "--keep-going": args.keepGoing = true; break;
      case "--hops": args.hops = Number(next()); break;
      case "--hop-seconds": args.hopSeconds = Number(next()); break;
      case "--guest": args.guest = next(); break;
      case "-m": case "--m": args.ram = next(); break;
      default: throw new UsageError(`demo: unknown option ${a} (try vm-cli demo --help)`);
    }
  }
  if (!Number.isInteger(args.hops) || args.hops < 1) throw new UsageError("demo: --hops expects a whole number >= 1");
  if (!Number.isFinite(args.hopSeconds) || args.hopSeconds < 0) throw new UsageError("demo: --hop-seconds expects seconds >= 0");
  if (!existsSync(args.guest)) throw new UsageError(`demo: guest '${args.guest}' not found (build it: make -C guests/hello)`);
  return args;
}

export interface DemoIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Handle SIGINT/SIGTERM: end the children, exit 130/143. */
  handleSignals?: boolean;
}

/** The figures of one hop. */
export interface HopResult {
  from: string;
  to: string;
  summary: MigrationSummary;
  /** Last tick line number seen from the source, first from the destination (undefined: none). */
  lastTick: number | undefined;
  nextTick: number | undefined;
}

/** A `vm-cli run` child: console lines prefixed with its name, its QMP client. */
class Vm {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly qmpPath: string;
  #stderr = "";
  #partial = "";
  #quitting = false;
  #firstTick: ((n: number) => void) | undefined;
  lastTick: number | undefined;
  firstTick: number | undefined;
  client: QmpClient | undefined;

  constructor(name: string, dir: string, args: DemoArgs, incoming: string | undefined, out: (line: string) => void) {
    this.name = name;
    this.qmpPath = join(dir, `${name.replaceAll("'", "p")}.qmp`);
    // The vCPU in a worker thread: the guest keeps its speed while the migration sends its RAM.
    const argv = [VM_CLI, "run", "-M", "virt", "-m", args.ram, "-bios", "none", "-kernel", args.guest, "-nographic",
      "-accel", "tcg,thread=multi", "-qmp", `unix:${this.qmpPath},server=on,wait=off`];
    if (incoming !== undefined) argv.push("-incoming", incoming);
    this.child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => {
      const lines = (this.#partial + chunk).split("\n");
      this.#partial = lines.pop()!;
      for (const l of lines) {
        const line = l.replace(/\r$/, "");
        const m = /^tick (\d+)\b/.exec(line);
        if (m !== null) {
          const n = Number(m[1]);
          if (this.firstTick === undefined) {
            this.firstTick = n;
            this.#firstTick?.(n);
          }
          this.lastTick = n;
        }
        out(`[${name}] ${line}\n`);
      }
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (chunk: string) => {
      this.#stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      // "close": after its stdout has been read to the end (no console line still in the pipe).
      this.child.once("close", (code, signal) => resolve({ code, signal }));
    });
  }

  get stderr(): string {
    return this.#stderr.trim();
  }

  get quitting(): boolean {
    return this.#quitting;
  }

  /** Connects to its QMP socket (it appears once the process has started). */
  async connect(timeoutMs = 10_000): Promise<QmpClient> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`${this.name} exited before its QMP socket was up${this.#why()}`);
      if (existsSync(this.qmpPath)) {
        try {
          this.client = await QmpClient.connect({ path: this.qmpPath }, 2000);
          return this.client;
        } catch (e) {
          if (Date.now() > until) throw e;
        }
      }
      if (Date.now() > until) throw new Error(`${this.name}: no QMP socket after ${timeoutMs / 1000} s${this.#why()}`);
      await sleep(50);
    }
  }

  #why(): string {
    return this.stderr === "" ? "" : `: ${this.stderr}`;
  }

  /** Resolves with the first tick number the guest prints here. */
  nextTick(): Promise<number> {
    if (this.firstTick !== undefined) return Promise.resolve(this.firstTick);
    return new Promise((resolve) => {
      this.#firstTick = resolve;
    });
  }

  /** Rejects when the process ends without being asked to. */
  async watch(): Promise<never> {
    const { code, signal } = await this.exited;
    if (this.#quitting) return new Promise<never>(() => {});
    throw new Error(`${this.name} exited unexpectedly (${signal ?? `status ${code}`})${this.#why()}`);
  }

  /** QMP quit, then SIGKILL if it lingers. */
  async quit(): Promise<void> {
    this.#quitting = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      await this.exited;
      return;
    }
    try {
      await Promise.race([this.client?.execute("quit").catch(() => {}), sleep(1000)]);
    } catch {
      // the process may already be gone
    }
    const gone = await Promise.race([this.exited.then(() => true), sleep(2000).then(() => false)]);
    if (!gone) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
    this.client?.close();
  }

  kill(): void {
    this.#quitting = true;
    this.client?.close();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function hopName(i: number): string {
  return (i % 2 === 0 ? "A" : "B") + "'".repeat(Math.floor(i / 2));
}

export function formatHop(n: number, hop: HopResult): string {
  const s = hop.summary;
  const cont = hop.lastTick !== undefined && hop.nextTick !== undefined
    ? `; the guest printed tick ${hop.lastTick} on ${hop.from} and tick ${hop.nextTick} on ${hop.to}`
    : "";
  return `== hop ${n} ${hop.from} -> ${hop.to}: total ${s.totalTime} ms, downtime ${s.downtime} ms, ` +
    `${s.mbps} mbps, transferred ${formatBytes(s.transferred)}, pages ${s.normalPages} normal + ${s.zeroPages} zero, ` +
    `${s.passes} pass${s.passes === 1 ? "" : "es"}${cont}\n`;
}

/** `vm-cli demo ARGS`: the exit status. */
export async function demoCommand(argv: readonly string[], io: DemoIo): Promise<number> {
  const args = parseDemoArgs(argv);
  if (args === undefined) {
    io.stdout(DEMO_USAGE);
    return 0;
  }
  const result = await runDemo(args, io);
  return result.status;
}

/** Runs the demo; resolves with the exit status and the hops done. */
export async function runDemo(args: DemoArgs, io: DemoIo): Promise<{ status: number; hops: HopResult[] }> {
  const dir = mkdtempSync(join(tmpdir(), "ferryvm-demo-"));
  const vms: Vm[] = [];
  const hops: HopResult[] = [];
  let stop: ((sig: NodeJS.Signals) => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    stop = (sig) => reject(Object.assign(new Error(`interrupted (${sig})`), { signal: sig }));
  });
  stopped.catch(() => {});
  const onSignal = (sig: NodeJS.Signals): void => stop!(sig);
  const killAll = (): void => {
    for (const vm of vms) vm.kill();
  };
  if (io.handleSignals) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  process.on("exit", killAll);
  const out = (line: string): void => io.stdout(line);
  const start = (name: string, incoming?: string): Vm => {
    const vm = new Vm(name, dir, args, incoming, out);
    vms.push(vm);
    return vm;
  };
  /** `p`, or the first unexpected child exit or signal. */
  const guard = <T>(p: Promise<T>, ...watched: Vm[]): Promise<T> => Promise.race([p, stopped, ...watched.map((v) => v.watch())]);
  const t0 = Date.now();
  try {
    io.stdout(`FerryVM live-migration demo: guest ${args.guest}, ${args.ram} RAM; ` +
      `${args.keepGoing ? "migrating back and forth until Ctrl-C" : `${args.hops} hop${args.hops === 1 ? "" : "s"}`}, ` +
      `${args.hopSeconds} s between hops\n`);
    let src = start("A");
    await guard(src.connect(), src);
    io.stdout(`-- A: started (pid ${src.child.pid}), QMP ${src.qmpPath}\n`);
    await guard(sleep(args.hopSeconds * 1000), src);
    for (let i = 1; args.keepGoing || i <= args.hops; i++) {
      const port = await freePort();
      const uri = `tcp:127.0.0.1:${port}`;
      const dst = start(hopName(i), uri);
      await guard(dst.connect(), src, dst);
      io.stdout(`-- ${dst.name}: started (pid ${dst.child.pid}), waiting with -incoming ${uri}\n`);
      io.stdout(`-- migrating ${src.name} -> ${dst.name} (live)\n`);
      const info = await guard(migrateWithRetry(src, uri, (p) => io.stdout(`   ${formatProgress(p)}\n`)), src, dst);
      const summary = summarize(info);
      if (summary.status !== "completed") {
        throw new Error(`migration ${src.name} -> ${dst.name} ${summary.status}${summary.errorDesc === undefined ? "" : `: ${summary.errorDesc}`}`);
      }
      await src.quit();
      const lastTick = src.lastTick;
      io.stdout(`-- ${src.name}: migrated away (postmigrate), quit\n`);
      // The guest's next tick, from the destination (bounded: the hello guest ticks each second).
      const nextTick = await guard(Promise.race([dst.nextTick(), sleep(5000).then(() => undefined)]), dst);
      const hop: HopResult = { from: src.name, to: dst.name, summary, lastTick, nextTick };
      hops.push(hop);
      io.stdout(formatHop(i, hop));
      src = dst;
      await guard(sleep(args.hopSeconds * 1000), src);
    }
    await src.quit();
    io.stdout(`-- done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${hops.length} live migration${hops.length === 1 ? "" : "s"}\n`);
    return { status: 0, hops };
  } catch (e) {
    const sig = (e as { signal?: NodeJS.Signals }).signal;
    io.stderr(`vm-cli: demo: ${e instanceof Error ? e.message : String(e)}\n`);
    return { status: sig === "SIGINT" ? 130 : sig === "SIGTERM" ? 143 : 1, hops };
  } finally {
    if (io.handleSignals) {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    await Promise.all(vms.map((vm) => vm.quit().catch(() => vm.kill())));
    process.off("exit", killAll);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The destination's listener may lag its QMP socket a little: retry a refused connection. */
async function migrateWithRetry(src: Vm, uri: string, onProgress: (info: JsonObject) => void): Promise<JsonObject> {
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await runMigration(src.client!, uri, { pollMs: 100 }, { onProgress });
      if (attempt < 20 && info["status"] === "failed" && /refused|ENOENT|no such file/i.test(String(info["error-desc"] ?? ""))) {
        await sleep(100);
        continue;
      }
      return info;
    } catch (e) {
      if (attempt < 20 && e instanceof Error && /refused|ENOENT/i.test(e.message)) {
        await sleep(100);
        continue;
      }
      throw e;
    }
  }
}
