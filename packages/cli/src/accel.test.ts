// `-accel tcg,thread=single|multi`: multi runs the vCPU in a worker thread (@ferryvm/devices'
// vcpuThread "worker"); guests end and print the same, what needs the harts on the main
// thread (-icount, -d int) is refused with a clear error.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseRunArgs, tcgThreadOf, UsageError } from "./args.ts";
import { main, type CliIo } from "./main.ts";

const fixtures = fileURLToPath(new URL("../../devices/test-fixtures/", import.meta.url));
const WORKER_BUILT = existsSync(new URL("../../devices/dist/vcpu-thread.js", import.meta.url));

function io() {
  const out: number[] = [];
  let err = "";
  const cli: CliIo = { stdout: (b) => out.push(...b), stderr: (t) => { err += t; }, stdin: null, isTTY: false, readFile: (p) => readFileSync(p) };
  return { cli, out: () => new TextDecoder().decode(Uint8Array.from(out)), err: () => err };
}

const run = (kernel: string, ...extra: string[]) =>
  ["run", "-M", "virt", "-m", "128M", "-bios", "none", "-kernel", fixtures + kernel, "-nographic", ...extra];

describe("-accel", () => {
  it("takes tcg with thread=single or multi and refuses anything else", () => {
    expect(parseRunArgs(["-accel", "tcg", "-kernel", "k"]).tcgThread).toBe(undefined);
    expect(parseRunArgs(["-accel", "tcg,thread=multi", "-kernel", "k"]).tcgThread).toBe("multi");
    expect(parseRunArgs(["-accel", "tcg,thread=single", "-kernel", "k"]).tcgThread).toBe("single");
    expect(() => parseRunArgs(["-accel", "tcg,thread=many"])).toThrow("-accel: Invalid 'thread' setting many");
    expect(() => parseRunArgs(["-accel", "kvm"])).toThrow(UsageError);
    expect(() => parseRunArgs(["-accel", "tcg,tb-size=4"])).toThrow(/property 'tb-size' is not supported/);
  });

  it("runs the vCPU in a worker by default (QEMU's riscv64 MTTCG default), on the main thread with -icount or -d int", () => {
    expect(tcgThreadOf(parseRunArgs(["-kernel", "k"]))).toBe("multi");
    expect(tcgThreadOf(parseRunArgs(["-kernel", "k", "-icount", "3"]))).toBe("single");
    expect(tcgThreadOf(parseRunArgs(["-kernel", "k", "-d", "int"]))).toBe("single");
    expect(tcgThreadOf(parseRunArgs(["-kernel", "k", "-d", "guest_errors"]))).toBe("multi");
    expect(tcgThreadOf(parseRunArgs(["-kernel", "k", "-accel", "tcg,thread=single"]))).toBe("single");
  });

  it.skipIf(!WORKER_BUILT)("runs guests with thread=multi to the same exit status and output", async () => {
    for (const [kernel, code, text] of [["uart-hello.elf", 0, "hello from uart\n"], ["htif-syscall.elf", 7, "syscall out\n"], ["finisher-fail.elf", 3, ""]] as const) {
      const t = io();
      expect(await main(run(kernel, "-accel", "tcg,thread=multi"), t.cli)).toBe(code);
      expect(t.out()).toBe(text);
    }
  });

  it.skipIf(!WORKER_BUILT)("refuses -icount and -d int with thread=multi", async () => {
    const a = io();
    expect(await main(run("uart-hello.elf", "-accel", "tcg,thread=multi", "-icount", "3"), a.cli)).toBe(1);
    expect(a.err()).toContain("icount is not supported with the vCPU in a worker thread");
    const b = io();
    expect(await main(run("uart-hello.elf", "-accel", "tcg,thread=multi", "-d", "int"), b.cli)).toBe(1);
    expect(b.err()).toContain("tracing traps (onTrap, -d int) is not supported with the vCPU in a worker thread");
  });
});
