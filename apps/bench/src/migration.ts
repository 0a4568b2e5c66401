/**
 * Migration benchmarks: a guest moved between two local processes over loopback TCP with
 * `vm-cli migrate`, beside QEMU 7.2 moving the same guest (driven by the same QMP client) when
 * `qemu-system-riscv64` is installed. Figures: total time, downtime, throughput, pages per
 * second, for an idle guest (guests/hello, mostly zero pages) of 256 MiB and 1 GiB and for a
 * dirtying one (guests/migration/a-b.elf rewriting 99 MiB) of 256 MiB, and a dirtying 1 GiB guest
 * (1000 MiB rewritten) with xbzrle and auto-converge, which QEMU does not converge on (given up
 * after 90 s). max-bandwidth is 10 GB/s, as the QEMU figures in the issue were taken.
 *
 * The 1 GiB guest takes auto-converge because no estimate that counts what the stop costs lets
 * it switch over within 300 ms on xbzrle alone: it re-dirties all 256 k pages each pass, and an
 * XBZRLE page costs ~1.6 µs of memory traffic here (its cached copy read, its slot written)
 * however few bytes it puts on the wire — a 400 ms stop. QEMU 7.2 with the same options still
 * counts every dirty page as 4 KiB on the wire.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { patchElfU64 } from "@ferryvm/cpu-wasm";
import { freePort } from "./free-port.ts";
import type { BenchContext, BenchGroup, BenchResult } from "./harness.ts";
import { precopyMips } from "./precopy-mips.ts";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "../../..");
const CLI = join(repo, "packages/cli/bin/vm-cli.js");
const QEMU = "qemu-system-riscv64";
/** How long both VMs run before a migration (see migrateOnce). */
const SETTLE_MS = 12_000;

interface Scenario {
  name: string;
  ram: string;
  guest: string;
  /** a-b.elf's range in MiB (mig_end patched), when not the default 99 MiB. */
  dirtyMiB?: number;
  /** Extra `vm-cli migrate` options. */
  migrate?: string[];
  /** Give up (migrate_cancel) after this long: the guest does not converge. */
  timeoutMs?: number;
}

const SCENARIOS: readonly Scenario[] = [
  { name: "idle 256 MiB", ram: "256M", guest: join(repo, "guests/hello/hello.elf") },
  { name: "idle 1 GiB", ram: "1G", guest: join(repo, "guests/hello/hello.elf") },
  { name: "dirtying 256 MiB", ram: "256M", guest: join(repo, "guests/migration/a-b.elf") },
  // The issue's hard case: QEMU never converges (its estimate ignores what XBZRLE saves).
  {
    name: "dirtying 1 GiB, xbzrle + auto-converge",
    ram: "1G",
    guest: join(repo, "guests/migration/a-b.elf"),
    dirtyMiB: 1000,
    migrate: ["--xbzrle", "--cache-size", "1G", "--auto-converge"],
    timeoutMs: 90_000,
  },
];

interface Summary {
  status: string;
  totalTime: number;
  downtime: number;
  transferred: number;
  mbps: number;
  normalPages: number;
  zeroPages: number;
}

type Engine = "ferryvm" | "qemu";

function vmCommand(engine: Engine, s: Scenario, extra: string[], guest = s.guest): [string, string[]] {
  const common = ["-M", "virt", "-m", s.ram, "-bios", "none", "-kernel", guest];
  return engine === "ferryvm"
    ? [process.execPath, [CLI, "run", ...common, "-nographic", "-serial", "null", ...extra]]
    : [QEMU, [...common, "-display", "none", "-monitor", "none", "-serial", "null", "-nic", "none", ...extra]];
}


async function waitFor(test: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Runs `vm-cli migrate` and sends it SIGINT after `timeoutMs`, reading its output to the end
 * (spawnSync's timeout stops reading the pipes: the cancelled migration's report then failed
 * with EPIPE and the run read as "exited 1").
 */
function runMigrate(args: string[], timeoutMs: number): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGINT"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** One migration; undefined when the engine is not installed. */
async function migrateOnce(engine: Engine, s: Scenario): Promise<Summary | undefined> {
  if (engine === "qemu" && spawnSync(QEMU, ["-version"]).error !== undefined) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "ferryvm-mig-bench-"));
  const children: ChildProcess[] = [];
  try {
    const sock = join(dir, "src.qmp");
    const port = await freePort();
    let guest = s.guest;
    if (s.dirtyMiB !== undefined) {
      guest = join(dir, "a-b.elf");
      const elf = new Uint8Array(readFileSync(s.guest));
      writeFileSync(guest, patchElfU64(elf, "mig_end", 0x8010_0000n + BigInt(s.dirtyMiB) * 0x10_0000n));
    }
    const [dcmd, dargs] = vmCommand(engine, s, ["-incoming", `tcp:127.0.0.1:${port}`], guest);
    children.push(spawn(dcmd, dargs, { stdio: ["ignore", "ignore", "ignore"] }));
    const [scmd, sargs] = vmCommand(engine, s, ["-qmp", `unix:${sock},server=on,wait=off`], guest);
    children.push(spawn(scmd, sargs, { stdio: ["ignore", "ignore", "ignore"] }));
    await waitFor(() => existsSync(sock), 20_000, `${engine}'s QMP socket`);
    // Let the guest run (and, for a-b, dirty its pages) before the migration starts, long
    // enough to be a VM that has run a while: idle, V8's memory reducer has collected (it
    // drops optimized code whose objects died) and the caches have gone cold. A migration one
    // second after start hid costs that every later one paid.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const r = await runMigrate([CLI, "migrate", "--qmp", `unix:${sock}`, "--json",
      "--max-bandwidth", "10000000000", ...(s.migrate ?? []), `tcp:127.0.0.1:${port}`], s.timeoutMs ?? 120_000);
    // SIGINT: vm-cli migrate cancels the migration and exits 130.
    if (r.status === 130 || r.signal !== null) throw new NotConverged(`${engine} ${s.name}: did not converge within ${(s.timeoutMs ?? 120_000) / 1000} s (cancelled)`);
    if (r.status !== 0) {
      // --json puts the final query-migrate (status, error-desc) on stdout
      let why = r.stderr.trim().split("\n").pop() ?? "";
      try {
        const info = JSON.parse(r.stdout) as { status?: string; "error-desc"?: string };
        why = `migration ${info.status}${info["error-desc"] ? `: ${info["error-desc"]}` : ""}`;
      } catch {
        // not JSON: stderr says why
      }
      throw new Error(`${engine} ${s.name}: vm-cli migrate exited ${r.status}: ${why}`);
    }
    const out = JSON.parse(r.stdout) as { summary: Summary };
    return out.summary;
  } finally {
    for (const c of children) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A migration that was still running at the scenario's time limit. */
class NotConverged extends Error {}

function figures(s: Scenario, ours: Summary, qemu: Summary | undefined): BenchResult[] {
  const pages = (m: Summary): number => (m.normalPages + m.zeroPages) / Math.max(m.totalTime / 1000, 1e-3);
  const base = (f: (m: Summary) => number): Record<string, number> => (qemu ? { "qemu-7.2": f(qemu) } : {});
  return [
    { name: `migrate ${s.name}: total time`, unit: "ms", value: ours.totalTime, baselines: base((m) => m.totalTime) },
    { name: `migrate ${s.name}: downtime`, unit: "ms", value: ours.downtime, baselines: base((m) => m.downtime) },
    { name: `migrate ${s.name}: throughput`, unit: "Mbit/s", value: ours.mbps, baselines: base((m) => m.mbps) },
    { name: `migrate ${s.name}: pages per second`, unit: "pages/s", value: pages(ours), baselines: base(pages) },
  ];
}

export const migration: BenchGroup = {
  name: "migration",
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build the workspace first`);
    const results: BenchResult[] = await precopyMips(ctx);
    for (const s of SCENARIOS) {
      ctx.log(`migration: ${s.name} on FerryVM`);
      const ours = await migrateOnce("ferryvm", s).catch((e: unknown) => {
        if (!(e instanceof NotConverged)) throw e;
        ctx.log(`migration: ${e.message}`);
        return undefined;
      });
      ctx.log(`migration: ${s.name} on QEMU 7.2`);
      const qemu = await migrateOnce("qemu", s).catch((e: unknown) => {
        ctx.log(`migration: QEMU baseline skipped: ${e instanceof Error ? e.message : String(e)}`);
        return undefined;
      });
      if (ours === undefined) continue;
      results.push(...figures(s, ours, qemu));
    }
    return results;
  },
};
