import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { findVmdesc } from "./analyze.ts";
import {
  checkVmdescCompat,
  parseVmdescJson,
  type CompatIssue,
  type Vmdesc,
  type VmdescCompatOptions,
  type VmdescDevice,
  type VmdescField,
} from "./vmdesc-compat.ts";

function u32(name: string, extra: Partial<VmdescField> = {}): VmdescField {
  return { name, type: "uint32", size: 4, ...extra };
}

function dev(name: string, fields: VmdescField[], extra: Partial<VmdescDevice> = {}): VmdescDevice {
  return { name, instance_id: 0, vmsd_name: name, version: 1, fields, ...extra };
}

function desc(...devices: VmdescDevice[]): Vmdesc {
  return { page_size: 4096, devices };
}

function codes(issues: CompatIssue[]): string[] {
  return issues.map((i) => `${i.code} ${i.path}`);
}

function check(src: Vmdesc, dest: Vmdesc, options?: VmdescCompatOptions): { errors: string[]; warnings: string[]; raw: ReturnType<typeof checkVmdescCompat> } {
  const raw = checkVmdescCompat(src, dest, options);
  return { errors: codes(raw.errors), warnings: codes(raw.warnings), raw };
}

const plic = dev("riscv_sifive_plic", [u32("a"), u32("b"), u32("c"), u32("d")]);

describe("checkVmdescCompat on hand-built vmdescs", () => {
  it("finds nothing when both sides are equal", () => {
    const r = check(desc(plic), desc(structuredClone(plic)));
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
  });

  it("reports a page size mismatch", () => {
    const r = check(desc(plic), { page_size: 65536, devices: [plic] });
    expect(r.errors).toEqual(["page-size "]);
  });

  it("reports a src section that dest lacks, in QEMU's words, and only warns the other way", () => {
    const other = dev("serial", [u32("x")]);
    const r = check(desc(plic, other), desc(plic));
    expect(r.errors).toEqual(["section-missing serial"]);
    expect(r.raw.errors[0]!.message).toBe('Section "serial" does not exist in dest');
    const back = check(desc(plic), desc(plic, other));
    expect(back.errors).toEqual([]);
    expect(back.warnings).toEqual(["section-extra serial"]);
  });

  it("matches sections by idstr and instance id, in any order", () => {
    const cpu0 = dev("cpu", [u32("pc")]);
    const cpu1 = dev("cpu", [u32("pc")], { instance_id: 1 });
    expect(check(desc(cpu0, cpu1), desc(cpu1, cpu0)).errors).toEqual([]);
    const r = check(desc(cpu0, cpu1), desc(cpu0));
    expect(r.errors).toEqual(["section-missing cpu#1"]);
    expect(r.raw.errors[0]!.message).toBe('Section "cpu" instance 1 does not exist in dest');
  });

  it("accepts a renamed section only when whitelisted", () => {
    const old = dev("ICH9 LPC", [u32("x")], { vmsd_name: "ICH9LPC" });
    const now = dev("ICH9-LPC", [u32("x")], { vmsd_name: "ICH9LPC" });
    expect(check(desc(old), desc(now)).errors).toEqual(["section-missing ICH9 LPC"]);
    expect(check(desc(old), desc(now), { renamedSections: [["ICH9-LPC", "ICH9 LPC"]] }).errors).toEqual([]);
  });

  it("reports a different VMSD behind the same section", () => {
    const r = check(desc(plic), desc({ ...plic, vmsd_name: "plic2" }));
    expect(r.errors).toEqual(["vmsd-name riscv_sifive_plic"]);
  });

  it("reports a src version newer than dest, not an older one", () => {
    const v6 = { ...plic, version: 6 };
    const v5 = { ...plic, version: 5 };
    const r = check(desc(v6), desc(v5));
    expect(r.errors).toEqual(["version-newer riscv_sifive_plic"]);
    expect(r.raw.errors[0]!.message).toContain("version 6 is newer than 5");
    expect(check(desc(v5), desc(v6)).errors).toEqual([]);
  });

  it("reports size, type and array length mismatches with the field index and both values", () => {
    const d = dev("riscv_sifive_plic", [u32("a"), u32("b", { type: "int32" }), u32("c", { array_len: 3 }), u32("d", { size: 8, type: "uint32" })]);
    const r = check(desc(plic), desc(d));
    expect(r.errors).toEqual([
      "field-type riscv_sifive_plic/fields[1]",
      "field-array-len riscv_sifive_plic/fields[2]",
      "field-size riscv_sifive_plic/fields[3]",
    ]);
    expect(r.raw.errors[2]!.message).toContain('Field "d" (field 3) size mismatch: 4 in src, 8 in dest');
    expect(r.raw.errors[1]!.message).toContain("none in src, 3 in dest");
  });

  it("reports a field src sends that dest lacks, and resynchronises after it", () => {
    const d = dev("riscv_sifive_plic", [u32("a"), u32("c"), u32("d", { size: 2 })]);
    const r = check(desc(plic), desc(d));
    expect(r.errors).toEqual(["field-missing riscv_sifive_plic/fields[1]", "field-size riscv_sifive_plic/fields[3]"]);
  });

  it("reports a field at the end that dest lacks as QEMU does", () => {
    const r = check(desc(plic), desc(dev("riscv_sifive_plic", [u32("a"), u32("b"), u32("c")])));
    expect(r.errors).toEqual(["field-missing riscv_sifive_plic/fields[3]"]);
    expect(r.raw.errors[0]!.message).toContain("while dest has no further fields");
  });

  it("reports a field dest reads that src did not send; a warning only when src is an older version", () => {
    const d = dev("riscv_sifive_plic", [u32("a"), u32("new"), u32("b"), u32("c"), u32("d")]);
    expect(check(desc(plic), desc(d)).errors).toEqual(["field-extra riscv_sifive_plic/fields[1]"]);
    const r = check(desc(plic), desc({ ...d, version: 2 }));
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual(["field-extra riscv_sifive_plic/fields[1]"]);
  });

  it("reports a renamed field unless the whitelist names the pair", () => {
    const d = dev("riscv_sifive_plic", [u32("a"), u32("bee"), u32("c"), u32("d")]);
    expect(check(desc(plic), desc(d)).errors).toEqual(["field-name riscv_sifive_plic/fields[1]"]);
    const ok = check(desc(plic), desc(d), { renamed: { riscv_sifive_plic: [["b", "bee"]] } });
    expect(ok.errors).toEqual([]);
    const wrongDesc = check(desc(plic), desc(d), { renamed: { serial: [["b", "bee"]] } });
    expect(wrongDesc.errors).toEqual(["field-name riscv_sifive_plic/fields[1]"]);
  });

  it("matches uncompressed array elements by index", () => {
    const el = (i: number): VmdescField => u32("vq", { index: i });
    const r = check(desc(dev("v", [el(0), el(1), el(2)])), desc(dev("v", [el(0), el(1)])));
    expect(r.errors).toEqual(["field-missing v/fields[2]"]);
    const many = (n: number): VmdescField[] => Array.from({ length: n }, (_, i) => el(i));
    const long = desc(dev("v", [...many(6), u32("tail")]));
    const short = desc(dev("v", [...many(2), u32("tail")]));
    const r2 = check(long, short);
    expect(r2.errors).toEqual(["field-missing v/fields[2]"]);
    expect(r2.raw.errors[0]!.message).toContain('"vq" [index 2..5, 4 elements]');
    const back = check(short, long);
    expect(back.errors).toEqual(["field-extra v/fields[2]"]);
    expect(back.raw.errors[0]!.message).toContain('"vq" [index 2..5, 4 elements] is in dest');
  });

  it("compares nested structs recursively, not their sizes", () => {
    const inner = (size: number): VmdescField => ({
      name: "serial", type: "struct", size: 99,
      struct: { vmsd_name: "serial", version: 3, fields: [{ name: "divider", type: "uint16", size: 2 }, { name: "rbr", type: "uint8", size }] },
    });
    const s = dev("serial", [inner(1)]);
    const d = dev("serial", [{ ...inner(1), size: 120 }]);
    expect(check(desc(s), desc(d)).errors).toEqual([]);
    const r = check(desc(s), desc(dev("serial", [inner(2)])));
    expect(r.errors).toEqual(["field-size serial/fields[0]/fields[1]"]);
    const renamedStruct = dev("serial", [{ ...inner(1), struct: { ...inner(1).struct!, vmsd_name: "uart" } }]);
    expect(check(desc(s), desc(renamedStruct)).errors).toEqual(["struct-name serial/fields[0]"]);
    const newer = dev("serial", [{ ...inner(1), struct: { ...inner(1).struct!, version: 4 } }]);
    expect(check(desc(newer), desc(s)).errors).toEqual(["version-newer serial/fields[0]"]);
    const bare = dev("serial", [{ name: "serial", type: "struct", size: 3 }]);
    expect(check(desc(s), desc(bare)).errors).toEqual(["struct-description serial/fields[0]"]);
  });

  it("accepts fields moved into a struct without subsections, in both directions", () => {
    const flat = dev("d", [u32("x"), u32("y"), u32("z")]);
    const nested = dev("d", [{ name: "parent_obj", type: "struct", size: 8, struct: { vmsd_name: "p", version: 1, fields: [u32("x"), u32("y")] } }, u32("z")]);
    expect(check(desc(flat), desc(nested)).errors).toEqual([]);
    expect(check(desc(nested), desc(flat)).errors).toEqual([]);
    const nestedBad = dev("d", [{ name: "parent_obj", type: "struct", size: 8, struct: { vmsd_name: "p", version: 1, fields: [u32("x"), u32("y", { size: 2 })] } }, u32("z")]);
    expect(check(desc(flat), desc(nestedBad)).errors).toEqual(["field-size d/fields[1]"]);
  });

  it("accepts an unused field that covers whole fields of the same byte count, either side", () => {
    const live = dev("timer", [{ name: "a", type: "int64", size: 8 }, u32("b"), u32("c"), { name: "d", type: "int64", size: 8 }]);
    const retired = dev("timer", [{ name: "a", type: "int64", size: 8 }, { name: "unused", type: "unused_buffer", size: 8 }, { name: "d", type: "int64", size: 8 }]);
    expect(check(desc(live), desc(retired)).errors).toEqual([]);
    expect(check(desc(retired), desc(live)).errors).toEqual([]);
    const short = dev("timer", [{ name: "a", type: "int64", size: 8 }, { name: "unused", type: "unused_buffer", size: 6 }, { name: "d", type: "int64", size: 8 }]);
    expect(check(desc(live), desc(short)).errors).toEqual(["unused-size timer/fields[1]"]);
  });

  describe("subsections", () => {
    const withSub = dev("cpu", [u32("pc")], { subsections: [{ vmsd_name: "cpu/pmp", version: 1, fields: [u32("cfg")] }] });
    const withoutSub = dev("cpu", [u32("pc")]);

    it("a subsection src sent and dest did not is a warning, an error for the same state", () => {
      const r = check(desc(withSub), desc(withoutSub));
      expect(r.errors).toEqual([]);
      expect(r.warnings).toEqual(["subsection-missing cpu/subsections[cpu/pmp]"]);
      expect(check(desc(withSub), desc(withoutSub), { sameState: true }).errors).toEqual(["subsection-missing cpu/subsections[cpu/pmp]"]);
    });

    it("a subsection only dest sends is fine (an older sender)", () => {
      const r = check(desc(withoutSub), desc(withSub), { sameState: true });
      expect(r.errors).toEqual([]);
      expect(r.warnings).toEqual([]);
    });

    it("a subsection on both sides is compared recursively", () => {
      const changed = dev("cpu", [u32("pc")], { subsections: [{ vmsd_name: "cpu/pmp", version: 2, fields: [u32("cfg", { size: 8 })] }] });
      expect(check(desc(changed), desc(withSub)).errors).toEqual([
        "version-newer cpu/subsections[cpu/pmp]",
        "field-size cpu/subsections[cpu/pmp]/fields[0]",
      ]);
    });
  });
});

describe("parseVmdescJson", () => {
  it("accepts a well-formed vmdesc and rejects malformed ones naming the place", () => {
    expect(parseVmdescJson(JSON.stringify(desc(plic))).devices[0]!.name).toBe("riscv_sifive_plic");
    expect(() => parseVmdescJson("{")).toThrow(/not JSON/);
    expect(() => parseVmdescJson('{"devices":[]}')).toThrow(/page_size/);
    expect(() => parseVmdescJson('{"page_size":4096,"devices":[{"name":"x","instance_id":0,"vmsd_name":"x","version":1,"fields":[{"name":"a"}]}]}'))
      .toThrow(/devices\[0\] \(x\)\/fields\[0\] lacks a name, type or size/);
  });
});

describe("checkVmdescCompat on the golden virt-1.0 vmdesc", () => {
  const stream = gunzipSync(readFileSync(new URL("../../cli/compat/golden/virt-1.0/stream.bin.gz", import.meta.url)));
  const golden = parseVmdescJson(findVmdesc(new Uint8Array(stream.buffer, stream.byteOffset, stream.byteLength)));
  const copy = (): Vmdesc => structuredClone(golden);
  const both = (a: Vmdesc, b: Vmdesc) => [check(a, b, { sameState: true }), check(b, a, { sameState: true })] as const;

  it("is compatible with itself in both directions", () => {
    expect(golden.devices.length).toBeGreaterThan(5);
    for (const r of both(golden, copy())) {
      expect(r.errors).toEqual([]);
      expect(r.warnings).toEqual([]);
    }
  });

  it("fails on one field size changed, in both directions", () => {
    const b = copy();
    const p = b.devices.find((d) => d.name === "riscv_sifive_plic")!;
    p.fields![3]!.size = 8;
    for (const r of both(golden, b)) {
      expect(r.errors).toEqual(["field-size riscv_sifive_plic/fields[3]"]);
    }
  });

  it("fails on a section removed, and only warns the other way", () => {
    const b = copy();
    b.devices = b.devices.filter((d) => d.name !== "goldfish_rtc");
    const [forward, back] = both(golden, b);
    expect(forward.errors).toEqual(["section-missing goldfish_rtc"]);
    expect(back.errors).toEqual([]);
    expect(back.warnings).toEqual(["section-extra goldfish_rtc"]);
  });

  it("fails on a version bumped only when the sender is the newer one", () => {
    const b = copy();
    const cpu1 = b.devices.find((d) => d.name === "cpu" && d.instance_id === 1)!;
    cpu1.version += 1;
    const [older, newer] = both(golden, b);
    expect(older.errors).toEqual([]);
    expect(newer.errors).toEqual(["version-newer cpu#1"]);
    expect(newer.raw.errors[0]!.message).toContain(`version ${cpu1.version} is newer than ${cpu1.version - 1}`);
  });

  it("fails on a nested virtio field changed, naming the full path", () => {
    const b = copy();
    const blk = b.devices.find((d) => d.vmsd_name === "virtio-blk")!;
    const virtio = blk.fields![0]!.struct!;
    const vqs = virtio.subsections!.find((s) => s.vmsd_name === "virtio/virtqueues")!;
    vqs.fields![0]!.array_len = 512;
    const [forward] = both(golden, b);
    expect(forward.errors).toEqual([`field-array-len ${blk.name}/fields[0]/subsections[virtio/virtqueues]/fields[0]`]);
  });

  it("warns when the sender sent a subsection the receiver did not, an error with the same state", () => {
    const b = copy();
    const cpu0 = b.devices.find((d) => d.name === "cpu" && d.instance_id === 0)!;
    cpu0.subsections = cpu0.subsections!.filter((s) => s.vmsd_name !== "cpu/envcfg");
    expect(check(golden, b).warnings).toEqual(["subsection-missing cpu/subsections[cpu/envcfg]"]);
    expect(check(golden, b, { sameState: true }).errors).toEqual(["subsection-missing cpu/subsections[cpu/envcfg]"]);
    expect(check(b, golden, { sameState: true }).errors).toEqual([]);
  });
});
