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

  it("say what -d help lists, and warn that int has no CPU hook yet", async () => {
    const h = io();
    expect(await main(["run", "-d", "help"], h.cli)).toBe(0);
    expect(h.out()).toMatch(/^Log items \(comma separated\):\nguest_errors +log when the guest OS does something invalid/);
    const w = io();
    expect(await main(run("-d", "int"), w.cli)).toBe(0);
    expect(w.err()).toMatch(/-d int: the CPU has no trace hook for it yet/);
  });
});
