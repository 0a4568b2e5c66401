/**
 * MIPS of the CPU bench guest (guests/bench) while a live migration sends its RAM, beside its
 * MIPS just before, from the same run, with the vCPU on the main thread and in a worker thread
 * (@ferryvm/devices' vcpuThread). Issue 6's goal: the worker mode keeps >= 80 %.
 *
 * The source runs in this process (its retired-instruction count is read directly) and is
 * driven as vm-cli drives it: `machine.run()` until stopped, the precopy loop beside it on the
 * event loop. Two destinations: a `vm-cli run -incoming` process over loopback TCP (on a
 * 2-core machine it takes a core the source's threads would have), and `exec:cat > /dev/null`
 * (next to no CPU: what the source keeps when the destination is another host). 448 MiB of the 512 MiB RAM hold non-zero pages the guest never
 * touches, so the precopy's first pass copies real pages for a measurable while
 * (max-bandwidth 10 GB/s: the main thread works flat out).
 *
 * @ferryvm/migration is loaded from its build output by path (as the migration group runs the
 * CLI's), so this app takes no dependency on it.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";
import { patchElfU64 } from "@ferryvm/cpu-wasm";
import { createMachine, type Machine } from "@ferryvm/devices";
import { freePort } from "./free-port.ts";
import type { BenchContext, BenchResult } from "./harness.ts";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "../../..");
const CLI = join(repo, "packages/cli/bin/vm-cli.js");
const MIGRATION = join(repo, "packages/migration/dist/mod.js");
const MIGRATION_NODE = join(repo, "packages/migration/dist/node.js");
const BENCH_ELF = join(repo, "guests/bench/bench.elf");
const RAM = 512 * 2 ** 20;
const FILLED_FROM = 64 * 2 ** 20;

/** The parts of @ferryvm/migration used here. */
interface MigrationModule {
  MigrationState: new (vm: BenchVm) => {
    setParameters(p: Record<string, number>): void;
    migrate(connect: () => Promise<unknown>): Promise<string>;
    query(): { "total-time"?: number; downtime?: number; ram?: { transferred: number; normal: number } };
    readonly errorDesc?: string | undefined;
  };
}
interface MigrationNodeModule {
  connectOutgoing(uri: string): Promise<unknown>;
}

/** A MigratableVm over a Machine run as vm-cli's controller runs it (run() until stop()). */
class BenchVm {
  readonly machine: Machine;
  runState = "running";
  stoppedAt: { ms: number; instructions: number } | undefined;
  #loop: Promise<unknown> | undefined;

  constructor(machine: Machine) {
    this.machine = machine;
  }

  get memory(): Machine["guestMemory"] {
    return this.machine.guestMemory;
  }

  get machineName(): string {
    return this.machine.config.machineType.name;
  }

  registerDevices(registry: Parameters<Machine["registerVmstate"]>[0]): void {
    this.machine.registerVmstate(registry);
  }

  async stop(state: string): Promise<void> {
    this.stoppedAt ??= { ms: performance.now(), instructions: this.machine.instructions };
    this.machine.stop();
    await this.#loop;
    this.#loop = undefined;
    this.runState = state;
  }

  async resume(): Promise<void> {
    this.runState = "running";
    this.#loop ??= this.machine.run();
  }

  setRunState(state: string): void {
    this.runState = state;
  }

  setThrottle(percent: number): void {
    this.machine.setThrottle(percent);
  }
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Figures {
  idleMips: number;
  precopyMips: number;
  precopyMs: number;
}

type Destination = "vm-cli over tcp" | "exec:cat > /dev/null";

async function measure(mode: "main" | "worker", dest: Destination, mig: MigrationModule, node: MigrationNodeModule): Promise<Figures> {
  const elf = patchElfU64(new Uint8Array(readFileSync(BENCH_ELF)), "bench_iterations", 100_000_000n);
  const machine = await createMachine({ ramSize: RAM, bios: "none", kernel: elf, vcpuThread: mode });
  // Through GuestMemory.write, which marks the pages dirty (the RAM save skips pages never written).
  const chunk = new Uint32Array(2 ** 18);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) | 1;
  const bytes = new Uint8Array(chunk.buffer);
  for (let at = FILLED_FROM; at < RAM; at += bytes.length) {
    chunk[0] = at;
    machine.guestMemory.write(0x8000_0000 + at, bytes);
  }
  const port = await freePort();
  const dst = dest === "exec:cat > /dev/null" ? undefined : spawn(process.execPath, [CLI, "run", "-M", "virt", "-m", "512M", "-bios", "none", "-kernel", BENCH_ELF,
    "-nographic", "-serial", "null", "-incoming", `tcp:127.0.0.1:${port}`], { stdio: "ignore" });
  const vm = new BenchVm(machine);
  try {
    await vm.resume();
    await sleep(300); // start-up (page tables) done, the interpreter warm
    const i0 = machine.instructions;
    const t0 = performance.now();
    await sleep(1000);
    const idleMips = (machine.instructions - i0) / (performance.now() - t0) / 1e3;
    const ms = new mig.MigrationState(vm);
    ms.setParameters({ "max-bandwidth": 10_000_000_000 });
    const m0 = machine.instructions;
    const s0 = performance.now();
    let status = "";
    for (let attempt = 0; attempt < 50; attempt++) {
      status = await ms.migrate(() => node.connectOutgoing(dst === undefined ? "exec:cat > /dev/null" : `tcp:127.0.0.1:${port}`));
      if (status === "completed") break;
      await sleep(100); // the destination was not listening yet
    }
    if (status !== "completed" || vm.stoppedAt === undefined) throw new Error(`migration ended ${status}: ${ms.errorDesc}`);
    if (process.env["PRECOPY_DEBUG"]) console.error(JSON.stringify(ms.query()));
    const precopyMs = vm.stoppedAt.ms - s0;
    return { idleMips, precopyMips: (vm.stoppedAt.instructions - m0) / precopyMs / 1e3, precopyMs };
  } finally {
    await vm.stop("postmigrate");
    await machine.dispose();
    dst?.kill("SIGKILL");
  }
}

/** The figures, or none (with a log line) when the CLI or migration builds are missing. */
export async function precopyMips(ctx: BenchContext): Promise<BenchResult[]> {
  if (!existsSync(CLI) || !existsSync(MIGRATION) || !existsSync(MIGRATION_NODE)) {
    ctx.log("migration: precopy MIPS skipped (build the workspace first)");
    return [];
  }
  const mig = (await import(pathToFileURL(MIGRATION).href)) as MigrationModule;
  const node = (await import(pathToFileURL(MIGRATION_NODE).href)) as MigrationNodeModule;
  const results: BenchResult[] = [];
  for (const dest of ["exec:cat > /dev/null", "vm-cli over tcp"] as const) {
    for (const mode of ["main", "worker"] as const) {
      ctx.log(`migration: bench guest MIPS idle and during precopy to ${dest}, vCPU on the ${mode} thread`);
      const f = await measure(mode, dest, mig, node);
      const share = (100 * f.precopyMips) / f.idleMips;
      ctx.log(`migration: ${mode}: ${f.idleMips.toFixed(1)} MIPS idle, ${f.precopyMips.toFixed(1)} during ${f.precopyMs.toFixed(0)} ms of precopy (${share.toFixed(0)} %)`);
      results.push(
        { name: `bench guest during precopy to ${dest}, vCPU on the ${mode} thread`, unit: "MIPS", value: f.precopyMips, baselines: { idle: f.idleMips } },
        { name: `bench guest during precopy to ${dest}, vCPU on the ${mode} thread: share of idle`, unit: "%", value: share, baselines: {} },
      );
    }
  }
  return results;
}
