import { describe, expect, it } from "vitest";
import {
  ByteReader,
  loadState,
  loadStateFromBytes,
  saveStateToBytes,
  type VMStateDescription,
  VMStateError,
  vmstateInt32,
  vmstateUint16,
  vmstateUint32Test,
  vmstateUint64V,
  vmstateUint8,
  vmstateValidate,
} from "./mod.ts";

interface Dev {
  a: number;
  x: bigint;
  flag: number;
  opt: number;
  thr: number;
  deep: number;
}

const log: string[] = [];
const hooks = (name: string) => ({
  pre_save: () => void log.push(`${name}:pre_save`),
  post_save: () => void log.push(`${name}:post_save`),
  pre_load: () => void log.push(`${name}:pre_load`),
  post_load: (_: Dev, v: number) => void log.push(`${name}:post_load(${v})`),
});

const deepSub: VMStateDescription<Dev> = {
  name: "dev/thr/deep",
  version_id: 1,
  minimum_version_id: 1,
  needed: (d) => d.deep !== 0,
  fields: [vmstateUint8("deep")],
  ...hooks("deep"),
};
const thrSub: VMStateDescription<Dev> = {
  name: "dev/thr",
  version_id: 2,
  minimum_version_id: 1,
  needed: (d) => d.thr !== 0,
  fields: [vmstateInt32("thr")],
  subsections: [deepSub],
  ...hooks("thr"),
};
const optSub: VMStateDescription<Dev> = {
  name: "dev/opt",
  version_id: 1,
  minimum_version_id: 1,
  needed: (d) => d.opt !== 0,
  fields: [vmstateUint16("opt")],
  ...hooks("opt"),
};
const dev: VMStateDescription<Dev> = {
  name: "dev",
  version_id: 3,
  minimum_version_id: 2,
  fields: [
    vmstateUint8("a"),
    vmstateUint64V("x", 3),
    vmstateUint32Test("flag", (d) => d.a === 1),
  ],
  subsections: [thrSub, optSub],
  ...hooks("dev"),
};
const blank = (): Dev => ({ a: 0, x: 0n, flag: 0, opt: 0, thr: 0, deep: 0 });

describe("versions, _V and _TEST fields", () => {
  it("a _V field is saved at the description's version and skipped in older streams", async () => {
    const s = { ...blank(), a: 2, x: 0x0102n };
    expect(saveStateToBytes(dev, s)).toEqual(new Uint8Array([
      /* a */ 0x02,
      /* x (since version 3) */ 0, 0, 0, 0, 0, 0, 0x01, 0x02,
    ]));
    const v2 = blank();
    await loadStateFromBytes(new Uint8Array([/* a */ 0x02]), dev, v2, { versionId: 2 });
    expect(v2).toEqual({ ...blank(), a: 2 });
  });

  it("a _TEST field exists where its predicate holds, on save and on load", async () => {
    const bytes = saveStateToBytes(dev, { ...blank(), a: 1, flag: 0xabcd });
    expect(bytes).toEqual(new Uint8Array([
      /* a */ 0x01,
      /* x */ 0, 0, 0, 0, 0, 0, 0, 0,
      /* flag (a == 1) */ 0, 0, 0xab, 0xcd,
    ]));
    const obj = blank();
    await loadStateFromBytes(bytes, dev, obj);
    expect(obj.flag).toBe(0xabcd);
  });

  it("loadState() rejects a version above version_id or below minimum_version_id", async () => {
    const input = () => new ByteReader(new Uint8Array(16));
    await expect(loadState(input(), dev, blank(), 4)).rejects.toThrow(
      "vmstate: dev: incoming version_id 4 is too new for local version_id 3",
    );
    await expect(loadState(input(), dev, blank(), 1)).rejects.toThrow(
      "vmstate: dev: incoming version_id 1 is too old for local minimum version_id 2",
    );
    await expect(loadState(input(), dev, blank(), 0xffffffff)).rejects.toThrow("incoming version_id 4294967295");
  });

  it("VMSTATE_VALIDATE fails the load when its predicate does not hold", async () => {
    const checked: VMStateDescription<Dev> = {
      name: "checked",
      version_id: 1,
      minimum_version_id: 1,
      fields: [vmstateUint8("a"), vmstateValidate("a is below 8", (d) => d.a < 8)],
    };
    await loadStateFromBytes(new Uint8Array([7]), checked, blank());
    await expect(loadStateFromBytes(new Uint8Array([8]), checked, blank())).rejects.toThrow(
      "vmstate: checked/a is below 8: input validation failed",
    );
  });
});

describe("subsections", () => {
  const withAll = { ...blank(), a: 2, x: 5n, thr: -2, deep: 9, opt: 0x0304 };
  const golden = new Uint8Array([
    /* a */ 0x02,
    /* x */ 0, 0, 0, 0, 0, 0, 0, 0x05,
    /* subsection */ 0x05,
    /* name */ 0x07, ...new TextEncoder().encode("dev/thr"),
    /* version */ 0, 0, 0, 2,
    /* thr */ 0xff, 0xff, 0xff, 0xfe,
    /* nested subsection */ 0x05,
    /* name */ 0x0c, ...new TextEncoder().encode("dev/thr/deep"),
    /* version */ 0, 0, 0, 1,
    /* deep */ 0x09,
    /* subsection */ 0x05,
    /* name */ 0x07, ...new TextEncoder().encode("dev/opt"),
    /* version */ 0, 0, 0, 1,
    /* opt */ 0x03, 0x04,
  ]);

  it("saveState() sends the needed subsections after the fields, nested ones inside their parent", () => {
    expect(saveStateToBytes(dev, withAll)).toEqual(golden);
  });

  it("saveState() leaves out a subsection whose needed is false", () => {
    expect(saveStateToBytes(dev, { ...withAll, thr: 0 })).toEqual(
      new Uint8Array([...golden.subarray(0, 9), ...golden.subarray(45)]),
    );
  });

  it("loadState() reads subsections and runs hooks in QEMU's order", async () => {
    log.length = 0;
    saveStateToBytes(dev, withAll);
    expect(log).toEqual([
      "dev:pre_save",
      "thr:pre_save",
      "deep:pre_save",
      "deep:post_save",
      "thr:post_save",
      "opt:pre_save",
      "opt:post_save",
      "dev:post_save",
    ]);
    log.length = 0;
    const obj = blank();
    await loadStateFromBytes(golden, dev, obj);
    expect(obj).toEqual(withAll);
    expect(log).toEqual([
      "dev:pre_load",
      "thr:pre_load",
      "deep:pre_load",
      "deep:post_load(1)",
      "thr:post_load(2)",
      "opt:pre_load",
      "opt:post_load(1)",
      "dev:post_load(3)",
    ]);
  });

  it("loadState() accepts subsections in any order", async () => {
    const opt = golden.subarray(45);
    const thr = golden.subarray(9, 45);
    const obj = blank();
    await loadStateFromBytes(new Uint8Array([...golden.subarray(0, 9), ...opt, ...thr]), dev, obj);
    expect(obj).toEqual(withAll);
  });

  it("an unknown subsection with the parent's prefix fails the load", async () => {
    const bytes = golden.slice();
    bytes.set(new TextEncoder().encode("dev/opX"), 47);
    await expect(loadStateFromBytes(bytes, dev, blank())).rejects.toThrow(
      'vmstate: dev: unknown subsection "dev/opX" at offset 45',
    );
  });

  it("a subsection without the parent's prefix ends the parent's subsections", async () => {
    const bytes = golden.slice();
    bytes.set(new TextEncoder().encode("cpu/opt"), 47);
    const input = new ByteReader(bytes);
    const obj = blank();
    await loadState(input, dev, obj, 3);
    expect(input.position).toBe(45);
    expect(obj).toEqual({ ...withAll, opt: 0 });
  });

  it("a subsection name shorter than the parent's prefix ends the parent's subsections", async () => {
    const input = new ByteReader(new Uint8Array([...golden.subarray(0, 9), 0x05, 0x03, 0x64, 0x65, 0x76]));
    await loadState(input, dev, blank(), 3);
    expect(input.position).toBe(9);
  });

  it("a subsection version outside its range fails, naming the subsection", async () => {
    const bytes = golden.slice();
    bytes[21] = 3;
    await expect(loadStateFromBytes(bytes, dev, blank())).rejects.toThrow(
      "vmstate: dev/thr: incoming version_id 3 is too new for local version_id 2",
    );
    bytes[21] = 0;
    await expect(loadStateFromBytes(bytes, dev, blank())).rejects.toThrow(
      "vmstate: dev/thr: incoming version_id 0 is too old for local minimum version_id 1",
    );
  });

  it("a failing hook fails the save or load with the description's name", async () => {
    const failing: VMStateDescription<Dev> = {
      ...dev,
      subsections: [],
      post_load: () => {
        throw new Error("bad divisor");
      },
    };
    const err = await loadStateFromBytes(new Uint8Array(9), failing, blank()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VMStateError);
    expect(String(err)).toContain("vmstate: dev: post_load failed: bad divisor");
  });

  it("post_save still runs when a field fails to save", () => {
    log.length = 0;
    expect(() => saveStateToBytes(dev, { ...withAll, a: 300 })).toThrow("vmstate: dev/a: value 300 does not fit uint8");
    expect(log).toEqual(["dev:pre_save", "dev:post_save"]);
  });
});
