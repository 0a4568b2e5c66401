import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ByteWriter,
  JsonWriter,
  loadStateFromBytes,
  saveState,
  type VMStateDescription,
  vmstateBool,
  vmstateBuffer,
  vmstateInt16,
  vmstateInt32,
  vmstateInt64,
  vmstateInt8,
  vmstateInt8Array,
  vmstateStructArray,
  vmstateUint16,
  vmstateUint32,
  vmstateUint64,
  vmstateUint64Array,
  vmstateUint8,
  vmstateVarrayUint32,
} from "./mod.ts";

interface Pair {
  lo: number;
  hi: bigint;
}
interface State {
  b: boolean;
  i8: number;
  i16: number;
  i32: number;
  i64: bigint;
  u8: number;
  u16: number;
  u32: number;
  u64: bigint;
  s8: Int8Array;
  q: BigUint64Array;
  n: number;
  v: Uint32Array;
  mem: Uint8Array;
  pairs: Pair[];
  sub: number;
}
const pair: VMStateDescription<Pair> = {
  name: "pair",
  version_id: 1,
  minimum_version_id: 1,
  fields: [vmstateUint16("lo"), vmstateInt64("hi")],
};
const vmsd: VMStateDescription<State> = {
  name: "rt",
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
    vmstateInt8Array("s8", 3),
    vmstateUint64Array("q", 2),
    vmstateVarrayUint32("v", "n"),
    vmstateBuffer("mem"),
    vmstateStructArray("pairs", 2, pair),
  ],
  subsections: [{
    name: "rt/sub",
    version_id: 1,
    minimum_version_id: 1,
    needed: (s) => s.sub !== 0,
    fields: [vmstateUint32("sub")],
  }],
};

const arbPair = fc.record({ lo: fc.integer({ min: 0, max: 0xffff }), hi: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) });
const arbState: fc.Arbitrary<State> = fc.record({
  b: fc.boolean(),
  i8: fc.integer({ min: -128, max: 127 }),
  i16: fc.integer({ min: -32768, max: 32767 }),
  i32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  i64: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  u8: fc.integer({ min: 0, max: 255 }),
  u16: fc.integer({ min: 0, max: 0xffff }),
  u32: fc.integer({ min: 0, max: 0xffffffff }),
  u64: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  s8: fc.int8Array({ minLength: 3, maxLength: 3 }),
  q: fc.bigUint64Array({ minLength: 2, maxLength: 2 }),
  n: fc.constant(0),
  v: fc.uint32Array({ minLength: 0, maxLength: 6 }),
  mem: fc.uint8Array({ minLength: 5, maxLength: 5 }),
  pairs: fc.tuple(arbPair, arbPair),
  sub: fc.integer({ min: 0, max: 0xffffffff }),
}).map((s) => ({ ...s, n: s.v.length }));

const blank = (n: number): State => ({
  b: false,
  i8: 0,
  i16: 0,
  i32: 0,
  i64: 0n,
  u8: 0,
  u16: 0,
  u32: 0,
  u64: 0n,
  s8: new Int8Array(3),
  q: new BigUint64Array(2),
  n,
  v: new Uint32Array(n),
  mem: new Uint8Array(5),
  pairs: [{ lo: 0, hi: 0n }, { lo: 0, hi: 0n }],
  sub: 0,
});

describe("round trips", () => {
  it("loadState() of saveState() gives the same state back", async () => {
    await fc.assert(
      fc.asyncProperty(arbState, async (state) => {
        const out = new ByteWriter();
        saveState(out, vmsd, state);
        const copy = blank(state.n);
        await loadStateFromBytes(out.bytes(), vmsd, copy);
        expect(copy).toEqual(state);
      }),
      { numRuns: 300 },
    );
  });

  it("the vmdesc field sizes add up to the bytes before the subsections", () => {
    fc.assert(
      fc.property(arbState, (state) => {
        const out = new ByteWriter();
        const w = new JsonWriter();
        w.startObject();
        saveState(out, vmsd, state, { vmdesc: w });
        w.endObject();
        const desc = JSON.parse(w.toString()) as {
          fields: { size: number; array_len?: number }[];
          subsections?: { fields: { size: number }[] }[];
        };
        const fields = desc.fields.reduce((sum, f) => sum + f.size * (f.array_len ?? 1), 0);
        const subs = (desc.subsections ?? []).map((s) => 1 + 1 + "rt/sub".length + 4 + s.fields[0]!.size);
        expect(fields + subs.reduce((a, b) => a + b, 0)).toBe(out.position);
        expect(desc.subsections !== undefined).toBe(state.sub !== 0);
      }),
      { numRuns: 100 },
    );
  });
});
