/**
 * The golden streams (packages/cli/compat/golden/<machine type>/): one stream per machine type,
 * saved by the release that introduced the type, with the migration workload guest running.
 * Every later release must load each of them and run the guest on, and must write, for that
 * machine type, a stream the saving release could load — checked here through the vmdescs
 * (QEMU's vmstate-static-checker idea, {@link checkVmdescCompat}).
 *
 * {@link checkGoldens} is `pnpm check:compat` (`vm-cli compat-check --goldens`): for each golden
 * it loads the stream into a machine of that type built by the current code, runs the guest,
 * saves it again and compares the two vmdescs both ways — golden → current (an older release
 * migrating to this one) and current → golden (this release migrating back to the older one),
 * with `sameState` since both describe the same guest.
 *
 * @module
 */

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import type { Machine } from "@ferryvm/devices";
import { checkVmdescCompat, findVmdesc, parseVmdescJson, type CompatIssue, type Vmdesc } from "@ferryvm/migration";
import { machineShape, parseRunArgs } from "../args.ts";
import { createVirtMachine, splitVirtOptions } from "../virt-options.ts";
import { loadMachine, saveMachine } from "../snapshot/vm-state.ts";

/** Where the committed goldens live (from src/ and dist/ alike). */
export const GOLDEN_DIR: string = fileURLToPath(new URL("../../compat/golden/", import.meta.url));

/** A golden's meta.json. */
export interface GoldenMeta {
  machineType: string;
  recordedWith: { commit: string; date: string; machineOption: string; note?: string };
  /** The command line it was recorded with; `${KERNEL}` and `${DISK}` are filled in. */
  args: string[];
  pages: number;
  diskBytes: number;
  streamBytes: number;
}

export interface Golden {
  readonly meta: GoldenMeta;
  readonly dir: string;
  /** The saved stream (decompressed). */
  stream(): Uint8Array;
  /** The guest ELF it was recorded with (the same bytes are in the stream's RAM). */
  readonly kernelPath: string;
}

/** Every committed golden, oldest machine type first. */
export function listGoldens(dir: string = GOLDEN_DIR): Golden[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => existsSync(join(dir, name, "meta.json")))
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))
    .map((name) => {
      const d = join(dir, name);
      const meta = JSON.parse(readFileSync(join(d, "meta.json"), "utf8")) as GoldenMeta;
      return {
        meta,
        dir: d,
        kernelPath: join(d, "a-b.elf"),
        stream: () => new Uint8Array(gunzipSync(readFileSync(join(d, "stream.bin.gz")))),
      };
    });
}

/**
 * The golden's command line with its kernel and a fresh zeroed disk filled in, for machine
 * type `machineType` (default: the golden's own). `cleanup` removes the disk.
 */
export function goldenArgs(golden: Golden, machineType: string = golden.meta.machineType): { args: string[]; cleanup: () => void } {
  const tmp = mkdtempSync(join(tmpdir(), "golden-"));
  const disk = join(tmp, "disk.raw");
  writeFileSync(disk, new Uint8Array(golden.meta.diskBytes));
  const args = golden.meta.args.map((a) => a.replace("${KERNEL}", golden.kernelPath).replace("${DISK}", disk));
  const m = args.indexOf("-M");
  if (m >= 0) args[m + 1] = machineType;
  return { args, cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}

/** Builds the machine a `vm-cli run` with these arguments would (no monitors, no console). */
export async function machineFromArgs(args: readonly string[], onConsoleOutput?: (b: Uint8Array) => void): Promise<Machine> {
  const virt = splitVirtOptions(args);
  const cfg = parseRunArgs(virt.argv);
  const kernel = cfg.kernel === undefined ? undefined : new Uint8Array(readFileSync(cfg.kernel));
  return createVirtMachine(
    {
      ...machineShape(cfg),
      bios: "none",
      kernel,
      ...(onConsoleOutput === undefined ? {} : { onConsoleOutput }),
    },
    virt,
    (p) => new Uint8Array(readFileSync(p)),
  );
}

/** Saves a (stopped) machine into memory and returns the stream. */
export async function saveToBytes(machine: Machine): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  await saveMachine(machine, { write: (c) => void chunks.push(c.slice()) }, "running");
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The vmdesc at a stream's end. */
export function streamVmdesc(stream: Uint8Array): Vmdesc {
  return parseVmdescJson(findVmdesc(stream));
}

/** What loading a golden into the current code and saving it again showed. */
export interface GoldenCheck {
  machineType: string;
  /** Console output of the guest after the load ("B" per pass). */
  console: string;
  /** golden → current: can this release load what the old one sent? */
  forward: { errors: CompatIssue[]; warnings: CompatIssue[] };
  /** current → golden: can the old release load what this one sends for that type? */
  backward: { errors: CompatIssue[]; warnings: CompatIssue[] };
  /** The re-saved stream. */
  resaved: Uint8Array;
}

/** Loads a golden into a machine of its type, runs the guest `runMs`, saves again, compares. */
export async function checkGolden(golden: Golden, runMs = 300): Promise<GoldenCheck> {
  const { args, cleanup } = goldenArgs(golden);
  let console = "";
  try {
    const machine = await machineFromArgs(args, (b) => (console += new TextDecoder().decode(b)));
    await loadMachine(machine, golden.stream());
    const r = await machine.run({ timeoutMs: runMs });
    if (r.kind !== "timeout") throw new Error(`${golden.meta.machineType}: the guest stopped after the load (${JSON.stringify(r)}): ${console}`);
    const resaved = await saveToBytes(machine);
    const old = streamVmdesc(golden.stream());
    const now = streamVmdesc(resaved);
    return {
      machineType: golden.meta.machineType,
      console,
      forward: checkVmdescCompat(old, now, { sameState: true }),
      backward: checkVmdescCompat(now, old, { sameState: true }),
      resaved,
    };
  } finally {
    cleanup();
  }
}

/** `vm-cli compat-check --goldens [DIR]`: checks every golden; 0 when all are compatible. */
export async function checkGoldens(dir: string = GOLDEN_DIR, out: (line: string) => void = (l) => process.stdout.write(l + "\n")): Promise<number> {
  const goldens = listGoldens(dir);
  if (goldens.length === 0) {
    out(`compat-check: no golden streams in ${dir}`);
    return 1;
  }
  let failed = 0;
  for (const g of goldens) {
    let c: GoldenCheck;
    try {
      c = await checkGolden(g);
    } catch (e) {
      out(`${g.meta.machineType}: FAILED to load and run: ${e instanceof Error ? e.message : String(e)}`);
      failed++;
      continue;
    }
    const bad = c.console.includes("E") || !c.console.includes("B");
    const issues = [...c.forward.errors.map((i) => ["golden->current", i] as const), ...c.backward.errors.map((i) => ["current->golden", i] as const)];
    const warnings = c.forward.warnings.length + c.backward.warnings.length;
    if (bad || issues.length > 0) failed++;
    out(
      `${g.meta.machineType}: ${bad ? "guest FAILED after the load" : "loads, guest runs on"}; ` +
        `${issues.length === 0 ? "vmdesc compatible both ways" : `${issues.length} incompatibilities`}` +
        `${warnings > 0 ? ` (${warnings} warnings)` : ""} [recorded by ${g.meta.recordedWith.commit.slice(0, 12)}]`,
    );
    for (const [dir_, i] of issues) out(`  ${dir_}: ${i.message} [${i.code} ${i.path}]`);
  }
  out(failed === 0 ? `compat-check: ${goldens.length} machine types compatible` : `compat-check: ${failed} of ${goldens.length} machine types broken`);
  return failed === 0 ? 0 : 1;
}
