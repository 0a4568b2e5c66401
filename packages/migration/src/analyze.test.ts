import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { analyzeMigration, formatAnalysis, type AnalyzeJson } from "./analyze.ts";
import { createTinyMachine, populateTinyMachine, saveTinyMachine, saveTinyMachineLive } from "./testing.ts";

const FIXTURES = new URL("../testdata/", import.meta.url);
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(name, FIXTURES)));
const SCRIPT = "/tmp/qemu-src/qemu-7.2+dfsg/scripts/analyze-migration.py";
const haveScript = existsSync(SCRIPT) && (() => {
  try {
    execFileSync("python3", ["--version"]);
    return true;
  } catch {
    return false;
  }
})();

/** Runs QEMU's own analyzer on `bytes`; returns its stdout. */
function qemuAnalyze(bytes: Uint8Array, args: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), "ferry-analyze-"));
  try {
    const file = join(dir, "stream.mig");
    writeFileSync(file, bytes);
    return execFileSync("python3", [SCRIPT, "-f", file, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Obj = { [key: string]: AnalyzeJson };

describe("analyzeMigration on streams QEMU 7.2 wrote", () => {
  it("names the RAM blocks and every field of the device sections", () => {
    const json = analyzeMigration(fixture("qemu72-virt-hello-paused.mig")) as Obj;
    expect(Object.keys(json)[0]).toBe("ram (2)");
    expect((json["ram (2)"] as Obj)["section sizes"]).toEqual({
      "virt.flash0": "0x0000000002000000",
      "virt.flash1": "0x0000000002000000",
      "riscv_virt_board.ram": "0x0000000001000000",
      "riscv_virt_board.mrom": "0x000000000000f000",
    });
    const cpu = Object.entries(json).find(([k]) => k.startsWith("cpu ("))![1] as Obj;
    expect((cpu["env.gpr"] as string[]).length).toBe(32);
    expect(cpu["env.pc"]).toMatch(/^0x[0-9a-f]{16}$/);
  });

  it("reads a live stream with PART sections, and dumps pages with --memory", () => {
    const json = analyzeMigration(fixture("qemu72-virt-a-b-running.mig"), { memory: true, configuration: true }) as Obj;
    expect(json.configuration).toEqual({ name: "virt" });
    const memory = (json["ram (2)"] as Obj).memory as Obj;
    expect(memory["riscv_virt_board.ram (0x0000000000000000)"]).toMatch(/^[0-9a-f]{2}( [0-9a-f]{2}){4095}$/);
    expect(memory["virt.flash0 (0x0000000000000000)"]).toBe("Filled with 0x00");
  });

  it.skipIf(!haveScript)("prints exactly what QEMU's analyze-migration.py prints (state and desc)", () => {
    for (const name of ["qemu72-virt-hello-paused.mig", "qemu72-virt-a-b-running.mig"]) {
      const bytes = fixture(name);
      expect(`${formatAnalysis(analyzeMigration(bytes))}\n`).toBe(qemuAnalyze(bytes));
      expect(`${formatAnalysis(analyzeMigration(bytes, { dumpDesc: true }))}\n`).toBe(qemuAnalyze(bytes, ["-d", "desc"]));
    }
  });
});

describe("our streams", () => {
  it.skipIf(!haveScript)("are read by QEMU's analyze-migration.py, with the same output as ours", async () => {
    const m = createTinyMachine({ ramPages: 8 });
    populateTinyMachine(m);
    const bytes = await saveTinyMachine(m);
    const qemu = qemuAnalyze(bytes);
    expect(qemu).toBe(`${formatAnalysis(analyzeMigration(bytes))}\n`);
    const json = JSON.parse(qemu) as Obj;
    expect(json["serial (1)"]).toEqual({
      divider: "0x000c",
      fifo: ["0x01", "0x02", "0x03", "0x04"],
      count: "0x00000007",
      "serial/thr_ipending": { thr_ipending: "0x00000001" },
    });
    expect((json["ram (0)"] as Obj)["section sizes"]).toEqual({
      "riscv_virt_board.ram": "0x0000000000008000",
      "riscv_virt_board.mrom": "0x0000000000002000",
    });
    expect(JSON.parse(qemuAnalyze(bytes, ["-d", "desc"]))).toEqual(analyzeMigration(bytes, { dumpDesc: true }));
  });

  it.skipIf(!haveScript)("with PART sections from a precopy are read by QEMU's script too", async () => {
    const m = createTinyMachine({ ramPages: 8 });
    populateTinyMachine(m);
    const base = m.memory.block("riscv_virt_board.ram").base!;
    const bytes = await saveTinyMachineLive(m, 3, (r) => void m.memory.write(base + 4096 * r, new Uint8Array([r + 1])));
    expect(qemuAnalyze(bytes)).toBe(`${formatAnalysis(analyzeMigration(bytes))}\n`);
  });

  it("list zero and normal pages with --memory", async () => {
    const m = createTinyMachine();
    populateTinyMachine(m);
    const json = analyzeMigration(await saveTinyMachine(m), { memory: true }) as Obj;
    const memory = (json["ram (0)"] as Obj).memory as Obj;
    expect(memory["riscv_virt_board.ram (0x0000000000000000)"]).toBe("Filled with 0x00");
    expect((memory["riscv_virt_board.ram (0x0000000000001000)"] as string).slice(0, 8)).toBe("ab ab ab");
  });
});
