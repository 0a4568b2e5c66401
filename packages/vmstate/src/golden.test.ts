import { describe, expect, it } from "vitest";
import {
  type VMStateDescription,
  type VMStateTimer,
  loadStateFromBytes,
  saveStateToBytes,
  vmstateBitmap,
  vmstateBool,
  vmstateBuffer,
  vmstateInt16,
  vmstateInt32,
  vmstateInt32Equal,
  vmstateInt32Le,
  vmstateInt64,
  vmstateInt8,
  vmstateStruct,
  vmstateStructArray,
  vmstateStructVarray,
  vmstateTimer,
  vmstateUint16,
  vmstateUint16Array,
  vmstateUint32,
  vmstateUint32Equal,
  vmstateUint64,
  vmstateUint64Equal,
  vmstateUint8,
  vmstateUint8Array,
  vmstateUint8Equal,
  vmstateUnused,
  vmstateVarrayUint32,
  vmstateVBuffer,
  vmstateVStruct,
  vmstateWithTmp,
} from "./mod.ts";

/** A timer that records what the engine did to it. */
class FakeTimer implements VMStateTimer {
  expire = -1n;
  expireTime(): bigint {
    return this.expire;
  }
  modNs(ns: bigint): void {
    this.expire = ns;
  }
  del(): void {
    this.expire = -1n;
  }
}

describe("integer and bool fields", () => {
  interface Ints {
    b: boolean;
    i8: number;
    i16: number;
    i32: number;
    i64: bigint;
    u8: number;
    u16: number;
    u32: number;
    u64: bigint;
  }
  const vmsd: VMStateDescription<Ints> = {
    name: "ints",
    version_id: 1,
    minimum_version_id: 1,
    fields: [
      vmstateBool("b"),
      vmstateInt8("i8"),
      vmstateInt16("i16"),
      vmstateInt32("i32"),
      vmstateInt64("i64"),
      vmstateUint8("u8"),
      vmstateUint16("u16"),
      vmstateUint32("u32"),
      vmstateUint64("u64"),
    ],
  };
  const state: Ints = {
    b: true,
    i8: -2,
    i16: -300,
    i32: -70000,
    i64: -(2n ** 40n),
    u8: 0xfe,
    u16: 0xbeef,
    u32: 0xdeadbeef,
    u64: 0xfedcba9876543210n,
  };
  const golden = new Uint8Array([
    /* b */ 0x01,
    /* i8 */ 0xfe,
    /* i16 */ 0xfe, 0xd4,
    /* i32 */ 0xff, 0xfe, 0xee, 0x90,
    /* i64 */ 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* u8 */ 0xfe,
    /* u16 */ 0xbe, 0xef,
    /* u32 */ 0xde, 0xad, 0xbe, 0xef,
    /* u64 */ 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
  ]);

  it("saveState() writes each integer big-endian in its width", () => {
    expect(saveStateToBytes(vmsd, state)).toEqual(golden);
  });

  it("loadState() reads them back, signed types sign-extended", async () => {
    const copy: Ints = { b: false, i8: 0, i16: 0, i32: 0, i64: 0n, u8: 0, u16: 0, u32: 0, u64: 0n };
    await loadStateFromBytes(golden, vmsd, copy);
    expect(copy).toEqual(state);
  });

  it("loadState() reads any non-zero bool byte as true", async () => {
    const bytes = golden.slice();
    bytes[0] = 0x80;
    const copy: Ints = { ...state, b: false };
    await loadStateFromBytes(bytes, vmsd, copy);
    expect(copy.b).toBe(true);
  });

  it("saveState() rejects a value that does not fit its type", () => {
    expect(() => saveStateToBytes(vmsd, { ...state, u16: 0x10000 })).toThrow(
      "vmstate: ints/u16: value 65536 does not fit uint16",
    );
    expect(() => saveStateToBytes(vmsd, { ...state, u64: -1n })).toThrow("value -1 does not fit uint64");
    expect(() => saveStateToBytes(vmsd, { ...state, i8: 1.5 })).toThrow("value 1.5 does not fit int8");
  });
});

describe("*_EQUAL and int32 le fields", () => {
  interface Eq {
    n8: number;
    n32: number;
    s32: number;
    n64: bigint;
    le: number;
  }
  const vmsd: VMStateDescription<Eq> = {
    name: "eq",
    version_id: 1,
    minimum_version_id: 1,
    fields: [
      vmstateUint8Equal("n8"),
      vmstateUint32Equal("n32", { errHint: "num_sources must match" }),
      vmstateInt32Equal("s32"),
      vmstateUint64Equal("n64"),
      vmstateInt32Le("le"),
    ],
  };
  const golden = new Uint8Array([
    /* n8 */ 0x03,
    /* n32 */ 0x00, 0x00, 0x00, 0x60,
    /* s32 */ 0xff, 0xff, 0xff, 0xff,
    /* n64 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
    /* le */ 0x00, 0x00, 0x00, 0x05,
  ]);
  const local = (): Eq => ({ n8: 3, n32: 96, s32: -1, n64: 4096n, le: 16 });

  it("saveState() writes the local values", () => {
    expect(saveStateToBytes(vmsd, { ...local(), le: 5 })).toEqual(golden);
  });

  it("loadState() accepts equal values and stores the int32 le value", async () => {
    const obj = local();
    await loadStateFromBytes(golden, vmsd, obj);
    expect(obj).toEqual({ ...local(), le: 5 });
  });

  it("loadState() rejects a value that differs from the local one, with the hint", async () => {
    const bytes = golden.slice();
    bytes[4] = 0x61;
    await expect(loadStateFromBytes(bytes, vmsd, local())).rejects.toThrow(
      "vmstate: eq/n32: loaded value 97 != local value 96 (uint32 equal): num_sources must match",
    );
    const b64 = golden.slice();
    b64[16] = 1;
    await expect(loadStateFromBytes(b64, vmsd, local())).rejects.toThrow(
      "vmstate: eq/n64: loaded value 4097 != local value 4096 (int64 equal)",
    );
  });

  it("loadState() rejects an int32 le value above the local one or negative", async () => {
    const above = golden.slice();
    above[20] = 17;
    await expect(loadStateFromBytes(above, vmsd, local())).rejects.toThrow(
      "vmstate: eq/le: invalid value 17, expecting 0 <= value <= 16 (int32 le)",
    );
    const negative = golden.slice();
    negative.fill(0xff, 17, 21);
    await expect(loadStateFromBytes(negative, vmsd, local())).rejects.toThrow("invalid value -1");
  });
});

describe("arrays and VARRAY", () => {
  interface Plic {
    num_sources: number;
    source_priority: Uint32Array;
    regs: number[];
    window: Uint8Array;
  }
  const vmsd: VMStateDescription<Plic> = {
    name: "plic",
    version_id: 1,
    minimum_version_id: 1,
    fields: [
      vmstateVarrayUint32("source_priority", "num_sources"),
      vmstateUint16Array("regs", 2),
      vmstateUint8Array("window", 2, { start: 1 }),
    ],
  };
  const state = (): Plic => ({
    num_sources: 3,
    source_priority: new Uint32Array([1, 7, 0x01020304, 99]),
    regs: [0x1234, 0xabcd],
    window: new Uint8Array([9, 0xaa, 0xbb, 9]),
  });
  const golden = new Uint8Array([
    /* source_priority[0] */ 0x00, 0x00, 0x00, 0x01,
    /* source_priority[1] */ 0x00, 0x00, 0x00, 0x07,
    /* source_priority[2] */ 0x01, 0x02, 0x03, 0x04,
    /* regs[0] */ 0x12, 0x34,
    /* regs[1] */ 0xab, 0xcd,
    /* window[1..2] */ 0xaa, 0xbb,
  ]);

  it("saveState() writes num_sources elements of a VARRAY and a sub-array from start", () => {
    expect(saveStateToBytes(vmsd, state())).toEqual(golden);
  });

  it("loadState() fills the same elements and leaves the others", async () => {
    const obj: Plic = {
      num_sources: 3,
      source_priority: new Uint32Array(4).fill(5),
      regs: [0, 0],
      window: new Uint8Array(4),
    };
    await loadStateFromBytes(golden, vmsd, obj);
    expect([...obj.source_priority]).toEqual([1, 7, 0x01020304, 5]);
    expect(obj.regs).toEqual([0x1234, 0xabcd]);
    expect([...obj.window]).toEqual([0, 0xaa, 0xbb, 0]);
  });

  it("loadState() rejects a VARRAY count above the local array before reading", async () => {
    const obj = { ...state(), num_sources: 4096 };
    await expect(loadStateFromBytes(golden, vmsd, obj)).rejects.toThrow(
      "vmstate: plic/source_priority: VARRAY count 4096 exceeds 4",
    );
  });

  it("a VARRAY of count 0 writes nothing", () => {
    expect(saveStateToBytes(vmsd, { ...state(), num_sources: 0 })).toEqual(golden.subarray(12));
  });

  it("a VARRAY with alloc replaces the array by one of the loaded count, bounded by max", async () => {
    interface Alloc {
      n: number;
      v: Uint16Array;
    }
    const alloc: VMStateDescription<Alloc> = {
      name: "alloc",
      version_id: 1,
      minimum_version_id: 1,
      fields: [vmstateUint32("n"), vmstateVarrayUint32("v", "n", { alloc: { max: 4 } })],
    };
    const obj: Alloc = { n: 0, v: new Uint16Array(0) };
    // n = 2, v[0] and v[1] as uint32 (the count's type by default)
    await loadStateFromBytes(new Uint8Array([0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 6]), alloc, obj);
    expect(obj.v).toBeInstanceOf(Uint16Array);
    expect([...obj.v]).toEqual([5, 6]);
    await expect(loadStateFromBytes(new Uint8Array([0, 0, 0, 5]), alloc, obj)).rejects.toThrow(
      "vmstate: alloc/v: VARRAY count 5 exceeds 4",
    );
  });
});

describe("buffers", () => {
  interface Fifo {
    data: Uint8Array;
    capacity: number;
    head: number;
  }
  const fifo8: VMStateDescription<Fifo> = {
    name: "Fifo8",
    version_id: 1,
    minimum_version_id: 1,
    fields: [vmstateVBuffer("data", "capacity"), vmstateUint32("head")],
  };
  interface Buffers {
    mem: Uint8Array;
    fifo: Fifo;
  }
  const vmsd: VMStateDescription<Buffers> = {
    name: "buffers",
    version_id: 1,
    minimum_version_id: 1,
    fields: [
      vmstateBuffer("mem"),
      vmstateBuffer("mem", { start: 1, size: 2, name: "mem_middle" }),
      vmstateUnused(3),
      vmstateStruct("fifo", fifo8),
    ],
  };
  const golden = new Uint8Array([
    /* mem */ 0x11, 0x22, 0x33, 0x44,
    /* mem_middle */ 0x22, 0x33,
    /* unused */ 0x00, 0x00, 0x00,
    /* fifo.data */ 0x61, 0x62,
    /* fifo.head */ 0x00, 0x00, 0x00, 0x01,
  ]);
  const state = (): Buffers => ({
    mem: new Uint8Array([0x11, 0x22, 0x33, 0x44]),
    fifo: { data: new Uint8Array([0x61, 0x62]), capacity: 2, head: 1 },
  });

  it("saveState() writes buffers raw, VBUFFER by its size member, unused as zeros", () => {
    expect(saveStateToBytes(vmsd, state())).toEqual(golden);
  });

  it("loadState() reads them back and skips unused bytes whatever they hold", async () => {
    const bytes = golden.slice();
    bytes.fill(0xee, 6, 9);
    const obj: Buffers = { mem: new Uint8Array(4), fifo: { data: new Uint8Array(2), capacity: 2, head: 0 } };
    await loadStateFromBytes(bytes, vmsd, obj);
    expect(obj).toEqual(state());
  });

  it("loadState() rejects a VBUFFER size larger than the local buffer", async () => {
    const obj = state();
    obj.fifo.capacity = 0x7fffffff;
    await expect(loadStateFromBytes(golden, vmsd, obj)).rejects.toThrow(
      "vmstate: buffers/fifo/data: buffer size 2147483647 exceeds the local 2",
    );
  });
});

describe("structs", () => {
  interface Entry {
    addr: bigint;
    cfg: number;
  }
  const entryV1: VMStateDescription<Entry> = {
    name: "entry",
    version_id: 2,
    minimum_version_id: 1,
    fields: [vmstateUint64("addr"), vmstateUint8("cfg", { version: 2 })],
  };
  interface Cpu {
    pmp: Entry[];
    n: number;
    ctrs: Entry[];
    one: Entry;
    old: Entry;
  }
  const vmsd: VMStateDescription<Cpu> = {
    name: "cpu",
    version_id: 1,
    minimum_version_id: 1,
    fields: [
      vmstateStructArray("pmp", 2, entryV1),
      vmstateStructVarray("ctrs", "n", entryV1),
      vmstateStruct("one", entryV1),
      vmstateVStruct("old", entryV1, { structVersion: 1 }),
    ],
  };
  const state = (): Cpu => ({
    pmp: [{ addr: 1n, cfg: 0x1f }, { addr: 2n, cfg: 0x18 }],
    n: 1,
    ctrs: [{ addr: 3n, cfg: 4 }, { addr: 99n, cfg: 99 }],
    one: { addr: 5n, cfg: 6 },
    old: { addr: 7n, cfg: 8 },
  });
  const golden = new Uint8Array([
    /* pmp[0].addr */ 0, 0, 0, 0, 0, 0, 0, 1,
    /* pmp[0].cfg */ 0x1f,
    /* pmp[1].addr */ 0, 0, 0, 0, 0, 0, 0, 2,
    /* pmp[1].cfg */ 0x18,
    /* ctrs[0].addr */ 0, 0, 0, 0, 0, 0, 0, 3,
    /* ctrs[0].cfg */ 4,
    /* one.addr */ 0, 0, 0, 0, 0, 0, 0, 5,
    /* one.cfg */ 6,
    /* old.addr (VSTRUCT version 1: no cfg) */ 0, 0, 0, 0, 0, 0, 0, 7,
  ]);

  it("saveState() writes struct arrays, struct VARRAYs, structs at their version, VSTRUCTs at theirs", () => {
    expect(saveStateToBytes(vmsd, state())).toEqual(golden);
  });

  it("loadState() reads each struct with the same versions", async () => {
    const zero = (): Entry => ({ addr: 0n, cfg: 0 });
    const obj: Cpu = { pmp: [zero(), zero()], n: 1, ctrs: [zero(), zero()], one: zero(), old: zero() };
    await loadStateFromBytes(golden, vmsd, obj);
    expect(obj).toEqual({ ...state(), ctrs: [{ addr: 3n, cfg: 4 }, zero()], old: { addr: 7n, cfg: 0 } });
  });

  it("a VSTRUCT newer than the local struct fails naming both", async () => {
    const newer: VMStateDescription<Cpu> = {
      ...vmsd,
      fields: [vmstateVStruct("old", entryV1, { structVersion: 3 })],
    };
    await expect(loadStateFromBytes(new Uint8Array(9), newer, state())).rejects.toThrow(
      "vmstate: cpu/old: entry: incoming version_id 3 is too new for local version_id 2",
    );
  });
});

describe("bitmap, timer and WITH_TMP", () => {
  interface Misc {
    nbits: number;
    bits64: BigUint64Array;
    bits32: Uint32Array;
    t: FakeTimer;
    idle: FakeTimer;
    ratio: number;
  }
  interface Tmp {
    parent: Misc;
    percent: number;
  }
  const tmpVmsd: VMStateDescription<Tmp> = {
    name: "misc/tmp",
    version_id: 0,
    minimum_version_id: 0,
    fields: [vmstateUint8("percent")],
    pre_save: (tmp) => void (tmp.percent = Math.round(tmp.parent.ratio * 100)),
    post_load: (tmp) => void (tmp.parent.ratio = tmp.percent / 100),
  };
  const vmsd: VMStateDescription<Misc> = {
    name: "misc",
    version_id: 1,
    minimum_version_id: 1,
    fields: [
      vmstateBitmap("bits64", "nbits"),
      vmstateBitmap("bits32", "nbits"),
      vmstateTimer("t"),
      vmstateTimer("idle"),
      vmstateWithTmp(tmpVmsd, (parent: Misc): Tmp => ({ parent, percent: 0 })),
    ],
  };
  const timer = (ns: bigint) => Object.assign(new FakeTimer(), { expire: ns });
  const state = (): Misc => ({
    nbits: 70,
    bits64: new BigUint64Array([0x8000000000000001n, 0x20n]),
    bits32: new Uint32Array([0x00000001, 0x80000000, 0x20]),
    t: timer(0x123456789n),
    idle: timer(-1n),
    ratio: 0.25,
  });
  const golden = new Uint8Array([
    /* bits64 word 0 */ 0x80, 0, 0, 0, 0, 0, 0, 0x01,
    /* bits64 word 1 */ 0, 0, 0, 0, 0, 0, 0, 0x20,
    /* bits32 word 0 */ 0x80, 0, 0, 0, 0, 0, 0, 0x01,
    /* bits32 word 1 */ 0, 0, 0, 0, 0, 0, 0, 0x20,
    /* t */ 0, 0, 0, 0x01, 0x23, 0x45, 0x67, 0x89,
    /* idle (not armed) */ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    /* tmp.percent */ 25,
  ]);

  it("saveState() writes bitmaps as be64 words, timers as their expiry, the temporary's fields", () => {
    expect(saveStateToBytes(vmsd, state())).toEqual(golden);
  });

  it("loadState() sets the bits, re-arms or disarms the timers, runs the temporary's hooks", async () => {
    const obj: Misc = {
      nbits: 70,
      bits64: new BigUint64Array(2),
      bits32: new Uint32Array(3),
      t: timer(-1n),
      idle: timer(5n),
      ratio: 0,
    };
    await loadStateFromBytes(golden, vmsd, obj);
    expect(obj).toEqual(state());
  });

  it("loadState() rejects a bitmap larger than the local one", async () => {
    await expect(loadStateFromBytes(golden, vmsd, { ...state(), nbits: 129 })).rejects.toThrow(
      "vmstate: misc/bits64: bitmap of 129 bits exceeds the local 128",
    );
  });
});

describe("QEMU 7.2's own sections", () => {
  it("the serial_mm section of a fresh virt machine has QEMU's bytes", () => {
    interface SerialState {
      divider: number;
      rbr: number;
      ier: number;
      iir: number;
      lcr: number;
      mcr: number;
      lsr: number;
      msr: number;
      scr: number;
      fcr_vmstate: number;
    }
    const uint8s = ["rbr", "ier", "iir", "lcr", "mcr", "lsr", "msr", "scr"] as const;
    const serial: VMStateDescription<SerialState> = {
      name: "serial",
      version_id: 3,
      minimum_version_id: 2,
      fields: [
        vmstateUint16("divider", { version: 2 }),
        ...uint8s.map((k) => vmstateUint8<SerialState>(k)),
        vmstateUint8("fcr_vmstate", { version: 3 }),
      ],
    };
    const serialMm: VMStateDescription<{ serial: SerialState }> = {
      name: "serial",
      version_id: 3,
      minimum_version_id: 2,
      fields: [vmstateStruct("serial", serial)],
    };
    const s = { divider: 12, rbr: 0, ier: 0, iir: 1, lcr: 0, mcr: 8, lsr: 0x60, msr: 0xb0, scr: 0, fcr_vmstate: 0 };
    // qemu-system-riscv64 -M virt -S -nic none -bios none, HMP migrate "exec:cat > f": the
    // bytes of section "serial" between its header and footer.
    expect(saveStateToBytes(serialMm, { serial: s })).toEqual(new Uint8Array([
      /* divider */ 0x00, 0x0c,
      /* rbr */ 0x00,
      /* ier */ 0x00,
      /* iir */ 0x01,
      /* lcr */ 0x00,
      /* mcr */ 0x08,
      /* lsr */ 0x60,
      /* msr */ 0xb0,
      /* scr */ 0x00,
      /* fcr_vmstate */ 0x00,
    ]));
  });
});
