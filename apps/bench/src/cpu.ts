/**
 * CPU benchmarks: MIPS of the interpreter on the integer workload guest (guests/bench: ALU,
 * branches, loads/stores, calls; S-mode with Sv39 paging), beside QEMU 7.2 TCG running the same
 * binary in the same run when `qemu-system-riscv64` is installed, and the CPU's own tight paged
 * loop (cpu-wasm's benchLoop) as the interpreter's upper line.
 *
 * QEMU's figure is FerryVM's retired-instruction count divided by QEMU's wall time for the same
 * binary less its start-up time (measured with the guest's iteration count set to 0), since
 * QEMU does not count instructions without icount.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchLoop, patchElfU64 } from "@ferryvm/cpu-wasm";
import { createMachine } from "@ferryvm/devices";
import { median, type BenchContext, type BenchGroup, type BenchResult } from "./harness.ts";

const here = dirname(fileURLToPath(import.meta.url));
const BENCH_ELF = join(here, "../../../guests/bench/bench.elf");
const QEMU = "qemu-system-riscv64";

async function runFerry(elf: Uint8Array): Promise<{ seconds: number; instructions: number; output: string }> {
  let output = "";
  const m = await createMachine({
    ramSize: 128 * 2 ** 20,
    bios: "none",
    kernel: elf,
    onConsoleOutput: (b) => (output += Buffer.from(b).toString("latin1")),
  });
  const start = process.hrtime.bigint();
  const result = await m.run({ timeoutMs: 120_000 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.kind !== "exit" || result.code !== 0) throw new Error(`bench guest ended with ${JSON.stringify(result)}: ${output}`);
  return { seconds, instructions: m.instructions, output };
}

function runQemu(path: string): Promise<{ seconds: number; output: string } | undefined> {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const args = ["-M", "virt", "-m", "128M", "-bios", "none", "-display", "none", "-monitor", "none", "-serial", "stdio", "-kernel", path];
    const child = execFile(QEMU, args, { timeout: 120_000, encoding: "latin1" }, (error, stdout) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const missing = (error as NodeJS.ErrnoException | null)?.code === "ENOENT";
      resolve(missing || error ? undefined : { seconds, output: stdout });
    });
    child.stdin?.end();
  });
}

async function qemuMips(elf: Uint8Array, instructions: number, expected: string, ctx: BenchContext): Promise<number | undefined> {
  const dir = mkdtempSync(join(tmpdir(), "ferryvm-bench-"));
  try {
    const full = join(dir, "bench.elf");
    const empty = join(dir, "bench0.elf");
    writeFileSync(full, elf);
    writeFileSync(empty, patchElfU64(elf, "bench_iterations", 0n));
    const startup: number[] = [];
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const e = await runQemu(empty);
      if (!e) {
        ctx.log("cpu: qemu-system-riscv64 not available; QEMU baseline skipped");
        return undefined;
      }
      startup.push(e.seconds);
      const r = await runQemu(full);
      if (!r || r.output !== expected) {
        ctx.log(`cpu: QEMU printed ${JSON.stringify(r?.output)}, FerryVM ${JSON.stringify(expected)}; QEMU baseline skipped`);
        return undefined;
      }
      runs.push(r.seconds);
    }
    return instructions / Math.max(median(runs) - median(startup), 1e-3) / 1e6;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const cpu: BenchGroup = {
  name: "cpu",
  async run(ctx): Promise<BenchResult[]> {
    const elf = new Uint8Array(readFileSync(BENCH_ELF));
    ctx.log("cpu: tight Sv39 loop (cpu-wasm benchLoop)");
    const loop = benchLoop({ instructions: 300_000_000 });
    ctx.log("cpu: bench guest on FerryVM");
    const runs: { seconds: number; instructions: number; output: string }[] = [];
    for (let i = 0; i < 3; i++) runs.push(await runFerry(elf));
    const best = runs.reduce((a, b) => (a.seconds <= b.seconds ? a : b));
    const mips = median(runs.map((r) => r.instructions / r.seconds / 1e6));
    ctx.log("cpu: the same guest on QEMU 7.2 TCG");
    const qemu = await qemuMips(elf, best.instructions, best.output, ctx);
    const baselines: Record<string, number> = { "tight-loop": loop.ips / 1e6 };
    if (qemu !== undefined) baselines["qemu-7.2-tcg"] = qemu;
    return [
      { name: `cpu bench guest (Sv39, ${(best.instructions / 1e9).toFixed(2)}e9 instructions)`, unit: "MIPS", value: mips, baselines },
    ];
  },
};
