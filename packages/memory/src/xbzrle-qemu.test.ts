import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import xxhash from "xxhash-wasm";
import { kernelBench } from "./testing/kernel-bench.ts";
import { XBZRLE_CASES, xbzrleCase } from "./testing/xbzrle-cases.ts";
import { xbzrleEncode } from "./xbzrle.ts";

interface Fixture {
  source: string;
  cases: [number, string][];
}

const fixture = JSON.parse(readFileSync(new URL("./testdata/xbzrle-qemu.json", import.meta.url), "utf8")) as Fixture;

describe("XBZRLE against QEMU 7.2's encoder", () => {
  it("produces QEMU's bytes (or QEMU's overflow) for every reference page pair", async () => {
    const { h64Raw } = await xxhash();
    const kb = kernelBench(false);
    const [OLD, NEW, DST, DST2] = [kb.slot(0), kb.slot(1), kb.slot(2), kb.slot(3)];
    expect(fixture.cases).toHaveLength(XBZRLE_CASES);
    let overflows = 0;
    for (let n = 0; n < XBZRLE_CASES; n++) {
      const { old, cur, dlen } = xbzrleCase(n);
      const [qemuLength, qemuHash] = fixture.cases[n]!;
      kb.u8.set(old, OLD);
      kb.u8.set(cur, NEW);
      const simd = kb.k.xbzrle_encode(OLD, NEW, 4096, DST, dlen);
      const scalar = kb.k.xbzrle_encode_scalar(OLD, NEW, 4096, DST2, dlen);
      const tsOut = new Uint8Array(dlen);
      const ts = xbzrleEncode(old, cur, tsOut);
      expect([simd, scalar, ts], `case ${n}`).toEqual([qemuLength, qemuLength, qemuLength]);
      if (qemuLength < 0) {
        overflows++;
        continue;
      }
      const hash = (b: Uint8Array) => h64Raw(b, 0n).toString(16).padStart(16, "0");
      expect(hash(kb.u8.slice(DST, DST + simd)), `case ${n}`).toBe(qemuHash);
      expect(hash(kb.u8.slice(DST2, DST2 + scalar)), `case ${n}`).toBe(qemuHash);
      expect(hash(tsOut.slice(0, ts)), `case ${n}`).toBe(qemuHash);
    }
    expect(overflows).toBeGreaterThan(50); // the overflow rule is exercised too
  });
});
