import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { main, type CliIo } from "./main.ts";

const guest = fileURLToPath(new URL("../test-fixtures/guest-error.elf", import.meta.url));

function io() {
  let err = "";
  let out = "";
  const cli: CliIo = {
    stdout: (b) => { out += new TextDecoder().decode(b); },
    stderr: (t) => { err += t; },
    stdin: null,
    isTTY: false,
    readFile: (p) => readFileSync(p),
  };
  return { cli, err: () => err, out: () => out };
}

const run = (...extra: string[]) => ["run", "-M", "virt", "-bios", "none", "-kernel", guest, "-nographic", ...extra];

describe("-d and -D", () => {
  it("log guest errors only when -d guest_errors asks, as QEMU", async () => {
    const quiet = io();
    expect(await main(run(), quiet.cli)).toBe(0);
    expect(quiet.err()).toBe("");
    const loud = io();
    expect(await main(run("-d", "guest_errors"), loud.cli)).toBe(0);
    // qemu-system-riscv64 -M virt -bios none -kernel guest-error.elf -nographic -d guest_errors
    // prints "sifive_plic: invalid register read 0x1400" (and a second line of its own).
    expect(loud.err()).toContain("sifive_plic: invalid register read 0x1400\n");
    expect(loud.out()).toBe("");
  });

  it("write the log to the -D file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-cli-log-"));
    try {
      const t = io();
      expect(await main(run("-d", "guest_errors", "-D", join(dir, "log.txt")), t.cli)).toBe(0);
      expect(t.err()).toBe("");
      expect(readFileSync(join(dir, "log.txt"), "utf8")).toContain("sifive_plic: invalid register read 0x1400\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("say what -d help lists", async () => {
    const h = io();
    expect(await main(["run", "-d", "help"], h.cli)).toBe(0);
    expect(h.out()).toMatch(/^Log items \(comma separated\):\nguest_errors +log when the guest OS does something invalid/);
  });

  it("log every trap (-d int) and hart reset (-d cpu_reset) in QEMU's line formats", async () => {
    const traps = fileURLToPath(new URL("../../../guests/isa/traps.elf", import.meta.url));
    const t = io();
    const args = ["run", "-M", "virt", "-bios", "none", "-kernel", traps, "-nographic", "-d", "int,cpu_reset"];
    expect(await main(args, t.cli)).toBe(0);
    const lines = t.err().split("\n");
    expect(lines[0]).toBe("CPU Reset (CPU 0)");
    const desc = /^riscv_cpu_do_interrupt: hart:0, async:0, cause:0000000000000002, epc:0x[0-9a-f]{16}, tval:0x[0-9a-f]{16}, desc=illegal_instruction$/;
    expect(lines.some((l) => desc.test(l))).toBe(true);
    expect(lines.filter((l) => l.startsWith("riscv_cpu_do_interrupt: ")).length).toBeGreaterThan(10);
    expect(lines.every((l) => l === "" || l.startsWith("riscv_cpu_do_interrupt: hart:0, async:") || l === "CPU Reset (CPU 0)")).toBe(true);
  });
});
