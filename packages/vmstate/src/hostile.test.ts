import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  loadStateFromBytes,
  MigrationError,
  saveStateToBytes,
  type VMStateDescription,
  VMStateError,
  vmstateBitmap,
  vmstateBool,
  vmstateInt32,
  vmstateStructVarray,
  vmstateUint32,
  vmstateUint32Equal,
  vmstateUint64,
  vmstateUint8,
  vmstateVarrayUint32,
  vmstateVBuffer,
} from "./mod.ts";

// A description whose counts and sizes come from the stream itself: the shape QEMU's
// loadvm CVEs came from.
interface Entry {
  addr: bigint;
  on: boolean;
}
interface Dev {
  num: number;
  regs: Uint32Array;
  len: number;
  data: Uint8Array;
  nbits: number;
  bits: BigUint64Array;
  nentries: number;
  entries: Entry[];
  magic: number;
  extra: number;
}
const entry: VMStateDescription<Entry> = {
  name: "dev/entry",
  version_id: 1,
  minimum_version_id: 1,
  fields: [vmstateUint64("addr"), vmstateBool("on")],
};
const vmsd: VMStateDescription<Dev> = {
  name: "dev",
  version_id: 2,
  minimum_version_id: 1,
  fields: [
    vmstateUint32("num"),
    vmstateVarrayUint32("regs", "num"),
    vmstateInt32("len"),
    vmstateVBuffer("data", "len"),
    vmstateUint32("nbits"),
    vmstateBitmap("bits", "nbits"),
    vmstateUint8("nentries"),
    vmstateStructVarray("entries", "nentries", entry),
    vmstateUint32Equal("magic"),
  ],
  subsections: [{
    name: "dev/extra",
    version_id: 1,
    minimum_version_id: 1,
    needed: (d) => d.extra !== 0,
    fields: [vmstateUint32("extra")],
  }],
};
const blank = (): Dev => ({
  num: 0,
  regs: new Uint32Array(8),
  len: 0,
  data: new Uint8Array(16),
  nbits: 0,
  bits: new BigUint64Array(2),
  nentries: 0,
  entries: [{ addr: 0n, on: false }, { addr: 0n, on: false }],
  magic: 0x51,
  extra: 0,
});
const state: Dev = {
  ...blank(),
  num: 3,
  regs: new Uint32Array([1, 2, 3, 0, 0, 0, 0, 0]),
  len: 5,
  data: new Uint8Array([...new TextEncoder().encode("hello"), ...new Uint8Array(11)]),
  nbits: 100,
  bits: new BigUint64Array([0xffn, 1n << 35n]),
  nentries: 2,
  entries: [{ addr: 0x1000n, on: true }, { addr: 0x2000n, on: false }],
  extra: 7,
};
const golden = saveStateToBytes(vmsd, state);
// Offsets of the count/size fields in `golden` and where the optional subsection starts.
const NUM = 0;
const LEN = 4 + 12;
const NBITS = LEN + 4 + 5;
const NENTRIES = NBITS + 4 + 16;
const SUBSECTION = NENTRIES + 1 + 18 + 4;

function withBytes(at: number, bytes: number[]): Uint8Array {
  const b = golden.slice();
  b.set(bytes, at);
  return b;
}

async function loadError(bytes: Uint8Array, versionId = 2): Promise<unknown> {
  return await loadStateFromBytes(bytes, vmsd, blank(), { versionId }).then(() => undefined, (e: unknown) => e);
}

describe("hostile streams", () => {
  it("the golden stream loads (the offsets below are right)", async () => {
    const obj = blank();
    await loadStateFromBytes(golden, vmsd, obj);
    expect(obj).toEqual(state);
    expect(golden[SUBSECTION]).toBe(0x05);
    expect(golden.length).toBe(SUBSECTION + 1 + 1 + 9 + 4 + 4);
  });

  it("every truncation fails with a short read naming the field, except before the optional subsection", async () => {
    for (let n = 0; n < golden.length; n++) {
      const err = await loadError(golden.subarray(0, n));
      if (n === SUBSECTION) {
        expect(err).toBeUndefined();
        continue;
      }
      expect(err, `truncated to ${n}`).toBeInstanceOf(VMStateError);
      if (n > SUBSECTION && n < SUBSECTION + 2 + 9) {
        // A subsection header cut short is not a subsection (QEMU's peek fails the same way):
        // its bytes are left for the caller, who then fails on them.
        expect((err as Error).message).toBe(`vmstate: dev: ${n - SUBSECTION} bytes left over at offset ${SUBSECTION}`);
        continue;
      }
      expect((err as Error).message).toMatch(/^vmstate: dev(\/extra)?(\/[a-z]+(\[\d\])?(\/[a-z]+)?)?: .*short read at offset \d+ \(needed \d+ bytes, \d+ left\)$/);
    }
  });

  it("a VARRAY count of 0, max or -1 from the stream fails cleanly", async () => {
    expect(String(await loadError(withBytes(NUM, [0xff, 0xff, 0xff, 0xff])))).toContain(
      "vmstate: dev/regs: VARRAY count 4294967295 exceeds 8",
    );
    expect(String(await loadError(withBytes(NUM, [0, 0, 0, 9])))).toContain("vmstate: dev/regs: VARRAY count 9 exceeds 8");
    expect(await loadError(withBytes(NUM, [0, 0, 0, 0]))).toBeInstanceOf(MigrationError);
  });

  it("a VBUFFER size of max or -1 from the stream fails before reading", async () => {
    expect(String(await loadError(withBytes(LEN, [0x7f, 0xff, 0xff, 0xff])))).toContain(
      "vmstate: dev/data: buffer size 2147483647 exceeds the local 16",
    );
    expect(String(await loadError(withBytes(LEN, [0xff, 0xff, 0xff, 0xff])))).toContain(
      "vmstate: dev/data: VBUFFER size -1 (member len) is not a valid count",
    );
    expect(await loadError(withBytes(LEN, [0, 0, 0, 0]))).toBeInstanceOf(MigrationError);
  });

  it("a bitmap size or struct count of max from the stream fails before reading", async () => {
    expect(String(await loadError(withBytes(NBITS, [0xff, 0xff, 0xff, 0xff])))).toContain(
      "vmstate: dev/bits: bitmap of 4294967295 bits exceeds the local 128",
    );
    expect(String(await loadError(withBytes(NENTRIES, [0xff])))).toContain(
      "vmstate: dev/entries: VARRAY count 255 exceeds 2",
    );
  });

  it("section and subsection versions of 0, max and -1 fail with the numbers", async () => {
    for (const v of [0, 3, 0x7fffffff, 0xffffffff]) {
      expect(String(await loadError(golden, v))).toMatch(/vmstate: dev: incoming version_id \d+ is too (new|old)/);
    }
    const subVersion = SUBSECTION + 2 + 9;
    for (const v of [[0, 0, 0, 0], [0, 0, 0, 2], [0xff, 0xff, 0xff, 0xff]]) {
      expect(String(await loadError(withBytes(subVersion, v)))).toMatch(
        /vmstate: dev\/extra: incoming version_id \d+ is too (new|old)/,
      );
    }
  });

  it("random corruption either loads or fails with a MigrationError, never anything else", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: golden.length - 1 }), fc.constantFrom(0x00, 0xff, 0x05, 0x7f, 0x80, 0x01)), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.nat({ max: golden.length }),
        async (edits, cut) => {
          const bytes = golden.slice(0, Math.max(cut, 1));
          for (const [at, v] of edits) if (at < bytes.length) bytes[at] = v;
          const err = await loadError(bytes);
          if (err !== undefined) expect(err).toBeInstanceOf(MigrationError);
        },
      ),
      { numRuns: 500 },
    );
  });
});
