import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { findVmdesc } from "@ferryvm/migration";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "./args.ts";
import { compatCheckCommand, parseCompatCheckArgs } from "./compat-check.ts";

const goldenGz = fileURLToPath(new URL("../compat/golden/virt-1.0/stream.bin.gz", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "ferryvm-compat-check-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const raw = gunzipSync(readFileSync(goldenGz));
const vmdescText = findVmdesc(raw);
const rawPath = join(dir, "stream.bin");
writeFileSync(rawPath, raw);
const jsonPath = join(dir, "golden.json");
writeFileSync(jsonPath, `\n${JSON.stringify(JSON.parse(vmdescText), null, 2)}\n`);

interface Vd {
  page_size: number;
  devices: { name: string; instance_id: number; version: number; fields?: { size: number }[] }[];
}

function variant(name: string, edit: (d: Vd) => void): string {
  const d = JSON.parse(vmdescText) as Vd;
  edit(d);
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(d));
  return path;
}

async function runCli(argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const status = await compatCheckCommand(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { status, out, err };
}

describe("vm-cli compat-check", () => {
  it("finds the golden stream compatible with itself whether given as .gz, raw stream or vmdesc JSON", async () => {
    for (const [s, d] of [[goldenGz, rawPath], [rawPath, jsonPath], [jsonPath, goldenGz]] as const) {
      const r = await runCli(["-s", s, "-d", d, "--same-state"]);
      expect(r.err).toBe("");
      expect(r.status).toBe(0);
      expect(r.out).toBe(`${s} -> ${d}: compatible (0 errors, 0 warnings)\n`);
    }
  });

  it("exits 1 with QEMU's sentence when dest lacks a section, and 0 with a warning the other way", async () => {
    const noRtc = variant("no-rtc.json", (d) => (d.devices = d.devices.filter((x) => x.name !== "goldfish_rtc")));
    const r = await runCli(["-s", goldenGz, "-d", noRtc]);
    expect(r.status).toBe(1);
    expect(r.out).toContain('error: Section "goldfish_rtc" does not exist in dest [section-missing goldfish_rtc]\n');
    expect(r.out).toContain("incompatible (1 error, 0 warnings)");
    const back = await runCli(["-s", goldenGz, "-d", noRtc, "--reverse"]);
    expect(back.status).toBe(0);
    expect(back.out).toContain("warning: Section \"goldfish_rtc\" exists only in dest");
    expect(back.out).toContain(`${noRtc} -> ${goldenGz}: compatible (0 errors, 1 warning)`);
  });

  it("reports a field size change and a newer version as JSON", async () => {
    const changed = variant("changed.json", (d) => {
      d.devices.find((x) => x.name === "riscv_sifive_plic")!.fields![3]!.size = 8;
      d.devices.find((x) => x.name === "serial")!.version += 1;
    });
    const r = await runCli(["--src", changed, "--dest=" + rawPath, "--json"]);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.out) as { compatible: boolean; errors: { code: string; path: string }[]; warnings: unknown[] };
    expect(j.compatible).toBe(false);
    expect(j.errors.map((e) => `${e.code} ${e.path}`)).toEqual(["field-size riscv_sifive_plic/fields[3]", "version-newer serial"]);
    const fwd = await runCli(["-s", rawPath, "-d", changed, "--json"]);
    expect(JSON.parse(fwd.out).errors.map((e: { code: string }) => e.code)).toEqual(["field-size"]);
  });

  it("exits 2 with a message on usage errors and unreadable inputs", async () => {
    const notVmdesc = join(dir, "junk.bin");
    writeFileSync(notVmdesc, new Uint8Array([0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3, 1, 2, 3]));
    const cases: [string[], RegExp][] = [
      [["-s", goldenGz], /both -s SRC and -d DEST are required/],
      [["-s", goldenGz, "-d", jsonPath, "--frob"], /unknown option --frob/],
      [["-s", goldenGz, "-d", join(dir, "missing.json")], /cannot read .*missing\.json.*ENOENT/],
      [["-s", notVmdesc, "-d", jsonPath], /junk\.bin.*no vmdesc/],
      [["-s", goldenGz, "-d"], /-d needs a file/],
    ];
    for (const [argv, message] of cases) {
      const r = await runCli(argv);
      expect(r.status).toBe(2);
      expect(r.out).toBe("");
      expect(r.err).toMatch(message);
    }
  });

  it("prints its usage for --help and parses every option", async () => {
    const r = await runCli(["--help"]);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^usage: vm-cli compat-check -s SRC -d DEST/);
    expect(parseCompatCheckArgs(["-d", "b", "-s", "a", "--same-state", "--reverse", "--json"]))
      .toEqual({ src: "a", dest: "b", sameState: true, reverse: true, json: true });
    expect(() => parseCompatCheckArgs(["a", "b"])).toThrow(UsageError);
  });
});
