import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FdtBuilder } from "./fdt.ts";
import { buildPlaceholderFdt } from "./virt-fdt.ts";

function hasDtc(): boolean {
  try {
    execFileSync("dtc", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("FdtBuilder", () => {
  it("writes a version 17 header whose offsets and sizes add up", () => {
    const dtb = new FdtBuilder().begin("").prop("model", "x").end().finish();
    const dv = new DataView(dtb.buffer);
    expect(dv.getUint32(0)).toBe(0xd00dfeed);
    expect(dv.getUint32(4)).toBe(dtb.length);
    expect(dv.getUint32(20)).toBe(17);
    expect(dv.getUint32(24)).toBe(16);
    const offStruct = dv.getUint32(8);
    const offStrings = dv.getUint32(12);
    expect(offStruct + dv.getUint32(36)).toBe(offStrings);
    expect(offStrings + dv.getUint32(32)).toBe(dtb.length);
    expect(dv.getUint32(offStruct)).toBe(1);
    expect(dv.getUint32(offStrings - 4)).toBe(9);
  });

  it("refuses to finish with an open node", () => {
    expect(() => new FdtBuilder().begin("").finish()).toThrow(/open node/);
  });

  it.skipIf(!hasDtc())("produces a tree dtc decompiles with the expected properties", () => {
    const dtb = buildPlaceholderFdt({ ramBase: 0x8000_0000, ramSize: 128 << 20, harts: 2 });
    const dir = mkdtempSync(join(tmpdir(), "fdt-"));
    writeFileSync(join(dir, "t.dtb"), dtb);
    const dts = execFileSync("dtc", ["-I", "dtb", "-O", "dts", join(dir, "t.dtb")], { stdio: ["ignore", "pipe", "ignore"] }).toString();
    expect(dts).toContain("reg = <0x00 0x80000000 0x00 0x8000000>;");
    expect(dts).toContain("timebase-frequency = <0x989680>;");
    expect(dts).toContain("cpu@1 {");
    expect(dts).toContain('compatible = "ns16550a";');
  });
});
