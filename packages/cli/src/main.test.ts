import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { DEFAULT_BIOS_PATHS, EXIT_TIMEOUT, exitStatus, main, type CliIo } from "./main.ts";

const fixtures = fileURLToPath(new URL("../../devices/test-fixtures/", import.meta.url));

function io(stdin: PassThrough | null = null) {
  const out: number[] = [];
  let err = "";
  const cli: CliIo = {
    stdout: (b) => out.push(...b),
    stderr: (t) => { err += t; },
    stdin,
    isTTY: false,
    readFile: (p) => readFileSync(p),
  };
  return { cli, out: () => new TextDecoder().decode(Uint8Array.from(out)), err: () => err };
}

const run = (kernel: string, ...extra: string[]) =>
  ["run", "-M", "virt", "-m", "128M", "-bios", "none", "-kernel", fixtures + kernel, "-nographic", ...extra];

describe("main", () => {
  it("runs a bare program: console on stdout, finisher status as exit status", async () => {
    const t = io();
    expect(await main(run("uart-hello.elf"), t.cli)).toBe(0);
    expect(t.out()).toBe("hello from uart\n");
    expect(t.err()).toBe("");
  });

  it("exits with the finisher's failure code", async () => {
    expect(await main(run("finisher-fail.elf"), io().cli)).toBe(3);
  });

  it("exits with riscv-tests' HTIF status: 0 for pass, the test number for failure", async () => {
    expect(await main(run("htif-pass.elf"), io().cli)).toBe(0);
    expect(await main(run("htif-fail.elf"), io().cli)).toBe(5);
  });

  it("reads a riscv-tests p-environment report: two 32-bit tohost stores from the M-mode handler", async () => {
    expect(await main(run("rvtest-p-pass.elf"), io().cli)).toBe(0);
    expect(await main(run("rvtest-p-fail.elf"), io().cli)).toBe(3);
  });

  it("prints through the HTIF syscall proxy and exits with its code", async () => {
    const t = io();
    expect(await main(run("htif-syscall.elf"), t.cli)).toBe(7);
    expect(t.out()).toBe("syscall out\n");
  });

  it("ends a guest that runs past --timeout with a message and status 124", async () => {
    const t = io();
    expect(await main(run("spin.elf", "--timeout", "0.2"), t.cli)).toBe(EXIT_TIMEOUT);
    expect(t.err()).toMatch(/timeout: the guest was still running after 0.2 s/);
    expect(t.out()).toBe("");
  });

  it("forwards piped stdin to the guest", async () => {
    const stdin = new PassThrough();
    const t = io(stdin);
    const status = main(run("echo.elf"), t.cli);
    stdin.write("hey q");
    expect(await status).toBe(0);
    expect(t.out()).toBe("> HEY ");
  });

  it("reboots on a finisher reset, or exits with -no-reboot", async () => {
    const t = io();
    expect(await main(run("reset.elf"), t.cli)).toBe(0);
    expect(t.out()).toBe("boot 2\n");
    const u = io();
    expect(await main(run("reset.elf", "-no-reboot"), u.cli)).toBe(0);
    expect(u.out()).toBe("");
  });

  it("runs -smp 4", async () => {
    const t = io();
    expect(await main(run("smp.elf", "-smp", "4"), t.cli)).toBe(0);
    expect(t.out()).toBe("all 4 harts\n");
  });

  it("discards console output with -serial null", async () => {
    const t = io();
    expect(await main(["run", "-bios", "none", "-kernel", fixtures + "uart-hello.elf", "-serial", "null"], t.cli)).toBe(0);
    expect(t.out()).toBe("");
  });

  it("rejects an unknown option with status 1, naming it", async () => {
    const t = io();
    expect(await main(["run", "-frob"], t.cli)).toBe(1);
    expect(t.err()).toBe("vm-cli: -frob: invalid option\n");
  });

  it("reports a missing kernel file", async () => {
    const t = io();
    expect(await main(["run", "-bios", "none", "-kernel", "/nonexistent.elf"], t.cli)).toBe(1);
    expect(t.err()).toMatch(/could not load kernel '\/nonexistent.elf': ENOENT/);
  });

  it("reports a kernel that is not a RISC-V ELF", async () => {
    const t = io();
    const cli = { ...t.cli, readFile: () => Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, ...new Array(60).fill(0)) };
    expect(await main(["run", "-bios", "none", "-kernel", "x.elf"], cli)).toBe(1);
    expect(t.err()).toMatch(/ELFCLASS64/);
  });

  it("prints help, version, machines and CPUs on stdout with status 0", async () => {
    for (const [argv, re] of [
      [["--help"], /usage: vm-cli/],
      [["--version"], /^vm-cli \(FerryVM\) \d+\.\d+\.\d+/],
      [["run", "-M", "help"], /Supported machines are:\nvirt {17}RISC-V VirtIO board/],
      [["run", "-cpu", "help"], /Available CPUs:\n {2}rv64/],
      [["run", "--help"], /-kernel FILE/],
    ] as const) {
      const t = io();
      expect(await main(argv, t.cli)).toBe(0);
      expect(t.out()).toMatch(re);
    }
  });

  it("rejects an unknown command", async () => {
    const t = io();
    expect(await main(["frob"], t.cli)).toBe(1);
    expect(t.err()).toMatch(/frob: unknown command/);
  });
});

describe.skipIf(!DEFAULT_BIOS_PATHS.some((p) => existsSync(p)))("-bios default (OpenSBI fw_dynamic)", () => {
  it("boots a raw S-mode payload at 0x80200000 that prints through SBI and powers off", async () => {
    const t = io();
    expect(await main(["run", "-M", "virt", "-kernel", fixtures + "sbi-hello.bin", "-nographic", "--timeout", "20"], t.cli)).toBe(0);
    expect(t.out()).toMatch(/OpenSBI v/);
    expect(t.out()).toMatch(/Domain0 Next Address\s+: 0x0000000080200000/);
    expect(t.out()).toMatch(/hello from S-mode\r?\n$/);
  });

  it("refuses a kernel that overlaps the firmware", async () => {
    const t = io();
    expect(await main(["run", "-M", "virt", "-kernel", fixtures + "uart-hello.elf", "-nographic"], t.cli)).toBe(1);
    expect(t.err()).toMatch(/overlaps the firmware at 0x80000000\.\.0x[0-9a-f]+ \(use -bios none/);
  });
});

describe("--signature", () => {
  it("writes [begin_signature, end_signature) as Spike does, one 32-bit word per line", async () => {
    const files = new Map<string, string>();
    const t = io();
    const cli = { ...t.cli, writeFile: (p: string, text: string) => files.set(p, text) };
    expect(await main(run("signature.elf", "--signature", "sig.txt"), cli)).toBe(0);
    expect(files.get("sig.txt")).toBe("11223344\ndeadbeef\n000000aa\nffff0102\n");
  });

  it("honours --signature-granularity", async () => {
    const files = new Map<string, string>();
    const cli = { ...io().cli, writeFile: (p: string, text: string) => files.set(p, text) };
    await main(run("signature.elf", "--signature", "s", "--signature-granularity", "8"), cli);
    expect(files.get("s")).toBe("deadbeef11223344\nffff0102000000aa\n");
  });

  it("refuses a kernel without signature symbols", async () => {
    const t = io();
    expect(await main(run("htif-pass.elf", "--signature", "s"), t.cli)).toBe(1);
    expect(t.err()).toMatch(/no begin_signature\/end_signature symbols/);
  });
});

describe("exitStatus", () => {
  it("never turns a failure into 0", () => {
    expect(exitStatus(0)).toBe(0);
    expect(exitStatus(5)).toBe(5);
    expect(exitStatus(256)).toBe(255);
    expect(exitStatus(257)).toBe(1);
  });
});
