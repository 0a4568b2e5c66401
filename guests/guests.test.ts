/**
 * Runs the committed guests on FerryVM (through `createMachine`) and, when
 * `qemu-system-riscv64` is installed, on QEMU too, comparing console output byte for byte.
 */
import { describe, expect, it } from "vitest";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createMachine, type RunResult } from "@ferryvm/devices";
import { patchElfU64 } from "@ferryvm/cpu-wasm";

const root = fileURLToPath(new URL(".", import.meta.url));
const QEMU = "qemu-system-riscv64";
const qemuInstalled = spawnSync(QEMU, ["--version"]).status === 0;
const noQemu = "qemu-system-riscv64 is not installed: differential checks skipped";
const RAM = 128 * 1024 * 1024;

function elves(dir: string): string[] {
  return readdirSync(join(root, dir)).filter((f) => f.endsWith(".elf")).sort();
}

interface Outcome {
  result: RunResult;
  output: string;
}

/** Guests named smp* need two harts. */
function hartsFor(name: string): number {
  return name.startsWith("smp") ? 2 : 1;
}

interface FerryExtras {
  /** Dirty-memory client names (the machine's default is two: migration and snapshot). */
  dirtyClients?: readonly string[];
  /** Deterministic time. */
  icount?: boolean;
}

async function runFerry(
  elf: Uint8Array,
  timeoutMs: number,
  harts = 1,
  bios: "none" | Uint8Array = "none",
  extras: FerryExtras = {},
): Promise<Outcome> {
  const chunks: Uint8Array[] = [];
  const m = await createMachine({
    ...extras,
    ramSize: RAM,
    harts,
    bios,
    kernel: elf,
    onConsoleOutput: (b) => chunks.push(b.slice()),
  });
  const result = await m.run({ timeoutMs });
  return { result, output: Buffer.concat(chunks).toString("latin1") };
}

interface QemuOutcome {
  code: number | null;
  output: string;
}

let qemuRuns = 0;
const qemuDir = mkdtempSync(join(tmpdir(), "ferryvm-qemu-"));

/** Runs QEMU with the console in a file (a pipe drops bytes when the event loop is busy). */
function runQemu(
  machine: "virt" | "spike",
  elfPath: string,
  harts = 1,
  timeoutMs = 20_000,
  bios = "none",
): Promise<QemuOutcome> {
  const out = join(qemuDir, `console-${qemuRuns++}.txt`);
  const args = ["-M", machine, "-smp", String(harts), "-m", "128M", "-bios", bios, "-display", "none", "-monitor", "none",
    "-serial", `file:${out}`, "-kernel", elfPath];
  return new Promise((resolve) => {
    const child = execFile(QEMU, args, { timeout: timeoutMs }, (error) => {
      const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
      resolve({ code, output: readFileSync(out, "latin1") });
    });
    child.stdin?.end();
  });
}

function read(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(join(root, rel)));
}

const isa = elves("isa");
const htif = elves("htif");
/** QEMU 7.2's HTIF has no riscv-tests syscall proxy. */
const qemuHtifUnsupported = new Set(["syscall.elf"]);
/** What the HTIF guests print (and exit with) on a correct machine. */
const htifExpected: Record<string, { code: number; output: string }> = {
  "pass.elf": { code: 0, output: "" },
  "fail.elf": { code: 21, output: "" },
  "console.elf": { code: 0, output: "Hello from the HTIF console!\n" },
  "syscall.elf": { code: 0, output: "Hello through the syscall proxy\n" },
  "rvtest.elf": { code: 0, output: "" },
  "paddr.elf": { code: 0, output: "" },
};

describe("ISA guests on FerryVM", () => {
  it("has guests to run", () => {
    expect(isa.length).toBeGreaterThanOrEqual(10);
  });
  for (const name of isa) {
    it(`${name} passes`, async () => {
      const { result, output } = await runFerry(read(`isa/${name}`), 10_000, hartsFor(name));
      const test = name.replace(/\.elf$/, "");
      expect(output).toContain(`${test}: PASS\n`);
      expect(output).not.toContain("FAIL");
      expect(result).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    });
  }
});

describe("ISA guests on FerryVM without dirty tracking and with icount", () => {
  for (const name of ["rv64i.elf", "rv64a.elf", "rv64c.elf", "vm-sv39.elf", "fuzz.elf", "irq-storm.elf"]) {
    it(`${name} passes with no dirty-memory client (store TLB filled at once)`, async () => {
      const { result, output } = await runFerry(read(`isa/${name}`), 10_000, 1, "none", { dirtyClients: [] });
      expect(output).toContain(`${name.replace(/\.elf$/, "")}: PASS\n`);
      expect(result).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    });
  }
  for (const name of ["interrupts.elf", "irq-storm.elf", "smp.elf"]) {
    it(`${name} passes with icount time`, async () => {
      const { result, output } = await runFerry(read(`isa/${name}`), 10_000, hartsFor(name), "none", {
        icount: true,
      });
      expect(output).toContain(`${name.replace(/\.elf$/, "")}: PASS\n`);
      expect(result).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    });
  }
  it("the migration workload's passes with one dirty-memory client", async () => {
    const elf = patchElfU64(read("migration/a-b.elf"), "mig_passes", 2n);
    const { result, output } = await runFerry(elf, 20_000, 1, "none", { dirtyClients: ["migration"] });
    expect(output).toBe("ABB\n");
    expect(result).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
  });
});

describe("HTIF guests on FerryVM", () => {
  for (const name of htif) {
    it(`${name} ends with its HTIF status and output`, async () => {
      const expected = htifExpected[name];
      expect(expected, `expectation for ${name}`).toBeDefined();
      const { result, output } = await runFerry(read(`htif/${name}`), 10_000);
      expect(output).toBe(expected!.output);
      expect(result).toEqual({ kind: "exit", code: expected!.code, cause: "guest-shutdown" });
    });
  }
});

describe("hello, migration and bench guests on FerryVM", () => {
  it("hello greets and ticks until its patched tick count", async () => {
    let elf = patchElfU64(read("hello/hello.elf"), "hello_ticks", 3n);
    elf = patchElfU64(elf, "hello_interval", 10_000n); // 1 ms of guest time
    const { result, output } = await runFerry(elf, 10_000);
    expect(output).toBe(
      "Hello from FerryVM! This is a bare-metal RISC-V guest on hart 0.\ntick 1\ntick 2\ntick 3\nbye\n",
    );
    expect(result).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
  });

  it("the migration workload makes its passes over 99 MiB and marks each one", async () => {
    const elf = patchElfU64(read("migration/a-b.elf"), "mig_passes", 3n);
    const { result, output } = await runFerry(elf, 20_000);
    expect(output).toBe("ABBB\n");
    expect(result).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
  });

  it("the migration workload prints E and fails when a page does not hold the pass number", async () => {
    const elf = patchElfU64(read("migration/a-b.elf"), "mig_passes", 3n);
    const chunks: Uint8Array[] = [];
    const m = await createMachine({ ramSize: RAM, bios: "none", kernel: elf, onConsoleOutput: (b) => chunks.push(b.slice()) });
    // a damaged page half way through the range, as a migration that lost a write would leave it
    m.guestMemory.write(0x8010_0000 + 50 * 0x10_0000, Uint8Array.of(7));
    const result = await m.run({ timeoutMs: 20_000 });
    expect(Buffer.concat(chunks).toString("latin1")).toBe("AE\n");
    expect(result).toEqual({ kind: "exit", code: 2, cause: "guest-shutdown" });
  });

  it("bench prints its checksum for a shortened run", async () => {
    const elf = patchElfU64(read("bench/bench.elf"), "bench_iterations", 300n);
    const { result, output } = await runFerry(elf, 20_000);
    expect(output).toMatch(/^bench: 300 iterations in S-mode with Sv39\nbench: checksum [0-9a-f]{16}\n$/);
    expect(result).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
  });
});

/** Debian's OpenSBI, the firmware QEMU's `-bios default` loads. */
/** The OpenSBI build FerryVM ships as its default firmware (Debian's, as QEMU's -bios default). */
const OPENSBI = join(root, "../packages/devices/firmware/opensbi-riscv64-generic-fw_dynamic.bin");
const opensbi = new Uint8Array(readFileSync(OPENSBI));
const SBI_START = "sbi: S-mode kernel started";

/** The S-mode kernel's own output: what follows OpenSBI's banner. */
function afterBanner(output: string): string {
  const at = output.indexOf(SBI_START);
  return at < 0 ? `(no "${SBI_START}" line in:)\n${output}` : output.slice(at);
}

describe("S-mode kernel under OpenSBI", () => {
  it("sbi.elf passes on FerryVM with OpenSBI", async () => {
    const { result, output } = await runFerry(read("sbi/sbi.elf"), 20_000, 1, opensbi);
    // OpenSBI's console turns "\n" into "\r\n", on QEMU too.
    expect(afterBanner(output)).toContain("sbi: PASS\r\n");
    expect(result).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
  });
  const dsit = qemuInstalled ? it : it.skip;
  dsit("sbi.elf prints the same after OpenSBI's banner on QEMU and FerryVM", async () => {
    const [qemu, ferry] = await Promise.all([
      runQemu("virt", join(root, "sbi", "sbi.elf"), 1, 20_000, "default"),
      runFerry(read("sbi/sbi.elf"), 20_000, 1, opensbi),
    ]);
    expect(qemu.code).toBe(0);
    expect(afterBanner(ferry.output)).toBe(afterBanner(qemu.output));
  });
});

/** The built CLI (`pnpm build`); its own tests live in packages/cli. */
const CLI = join(root, "../packages/cli/dist/cli.js");
const cliBuilt = existsSync(CLI);

function runCli(args: string[], timeoutMs = 20_000): Promise<QemuOutcome> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, "run", ...args], { timeout: timeoutMs, encoding: "latin1" },
      (error, stdout) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, output: stdout });
      });
    child.stdin?.end();
  });
}

describe("guests through vm-cli", () => {
  if (!cliBuilt) it.skip(`${CLI} is not built (pnpm build): vm-cli checks skipped`, () => {});
  const cit = cliBuilt ? it : it.skip;
  const base = ["-M", "virt", "-m", "128M", "-bios", "none", "-nographic", "--timeout", "15"];
  for (const name of htif) {
    cit(`htif/${name} exits with its HTIF status`, async () => {
      const r = await runCli([...base, "-kernel", join(root, "htif", name)]);
      expect(r.output).toBe(htifExpected[name]!.output);
      expect(r.code).toBe(htifExpected[name]!.code);
    });
  }
  cit("exit.elf's finisher code becomes vm-cli's exit status", async () => {
    const r = await runCli([...base, "-kernel", join(root, "exit", "exit.elf")]);
    expect(r.output).toBe("exit: leaving with code 42\n");
    expect(r.code).toBe(42);
  });
  cit("isa/rv64i.elf passes through vm-cli", async () => {
    const r = await runCli([...base, "-kernel", join(root, "isa", "rv64i.elf")]);
    expect(r.output).toContain("rv64i: PASS\n");
    expect(r.code).toBe(0);
  });
});

describe("differential checks against QEMU 7.2", () => {
  const dqit = qemuInstalled ? it : it.skip;
  if (!qemuInstalled) it.skip(noQemu, () => {});

  for (const name of isa) {
    dqit(`${name} prints the same on QEMU and FerryVM`, async () => {
      const [qemu, ferry] = await Promise.all([
        runQemu("virt", join(root, "isa", name), hartsFor(name)),
        runFerry(read(`isa/${name}`), 10_000, hartsFor(name)),
      ]);
      expect(qemu.code).toBe(0);
      expect(ferry.output).toBe(qemu.output);
    });
  }

  for (const name of htif) {
    if (qemuHtifUnsupported.has(name)) {
      it.skip(`${name}: QEMU 7.2's HTIF has no syscall proxy`, () => {});
      continue;
    }
    dqit(`${name} ends the same on QEMU (-M spike) and FerryVM`, async () => {
      const [qemu, ferry] = await Promise.all([
        runQemu("spike", join(root, "htif", name)),
        runFerry(read(`htif/${name}`), 10_000),
      ]);
      expect(qemu.code).toBe(htifExpected[name]!.code);
      expect(ferry.output).toBe(qemu.output);
      expect(ferry.result).toEqual({ kind: "exit", code: qemu.code, cause: "guest-shutdown" });
    });
  }

  dqit("exit.elf ends with the same status and output on QEMU and FerryVM", async () => {
    const [qemu, ferry] = await Promise.all([
      runQemu("virt", join(root, "exit", "exit.elf")),
      runFerry(read("exit/exit.elf"), 10_000),
    ]);
    expect(qemu.code).toBe(42);
    expect(ferry.output).toBe(qemu.output);
    expect(ferry.result).toEqual({ kind: "exit", code: 42, cause: "guest-shutdown" });
  });

  dqit("bench computes the same checksum on QEMU and FerryVM", async () => {
    const elf = patchElfU64(read("bench/bench.elf"), "bench_iterations", 2000n);
    const dir = mkdtempSync(join(tmpdir(), "ferryvm-bench-"));
    writeFileSync(join(dir, "bench.elf"), elf);
    const [qemu, ferry] = await Promise.all([runQemu("virt", join(dir, "bench.elf")), runFerry(elf, 30_000)]);
    expect(qemu.code).toBe(0);
    expect(ferry.output).toBe(qemu.output);
  });
});
