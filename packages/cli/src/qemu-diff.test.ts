import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { main, type CliIo } from "./main.ts";

const fixtures = fileURLToPath(new URL("../../devices/test-fixtures/", import.meta.url));
const hasQemu = spawnSync("qemu-system-riscv64", ["--version"], { stdio: "ignore" }).status === 0;

/** Same command line for both; input is written to stdin. */
async function both(args: string[], input = ""): Promise<{ qemu: [number | null, string]; ours: [number, string] }> {
  const q = spawnSync("qemu-system-riscv64", args, { input, timeout: 20_000 });
  const out: number[] = [];
  const stdin = new PassThrough();
  const io: CliIo = {
    stdout: (b) => out.push(...b),
    stderr: () => {},
    stdin,
    isTTY: false,
    readFile: (p) => readFileSync(p),
  };
  const status = main(["run", ...args, "--timeout", "20"], io);
  stdin.end(input);
  const code = await status;
  return { qemu: [q.status, q.stdout.toString()], ours: [code, new TextDecoder().decode(Uint8Array.from(out))] };
}

describe.skipIf(!hasQemu)("vm-cli against QEMU 7.2", () => {
  for (const [name, extra, input] of [
    ["uart-hello", [], ""],
    ["finisher-fail", [], ""],
    ["regs", [], ""],
    ["timer", [], ""],
    ["smp", ["-smp", "4"], ""],
    ["reset", [], ""],
    ["echo", [], "mixed Case q"],
  ] as const) {
    it(`gives the same console output and exit status for ${name}`, async () => {
      const r = await both(["-M", "virt", "-m", "128M", "-bios", "none", "-kernel", `${fixtures}${name}.elf`, "-nographic", ...extra], input);
      expect(r.ours).toEqual(r.qemu);
    });
  }
});
