import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter, ShortReadError } from "./mod.ts";

describe("ByteWriter and ByteReader", () => {
  it("ByteWriter keeps every value when it grows mid-write", () => {
    const out = new ByteWriter(16);
    for (let i = 0; i < 100; i++) {
      out.putU8(i);
      out.putBe16(0x0102);
      out.putBe32(0x03040506);
      out.putBe64(0x0708090a0b0c0d0en);
    }
    const bytes = out.bytes();
    expect(bytes.length).toBe(1500);
    for (let i = 0; i < 100; i++) {
      expect([...bytes.subarray(i * 15, i * 15 + 15)]).toEqual([i, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    }
  });

  it("ByteReader reads back what ByteWriter wrote and fails past the end", async () => {
    const out = new ByteWriter();
    out.putBe64(-1n);
    out.putBytes(new Uint8Array([1, 2, 3]));
    const input = new ByteReader(out.bytes());
    expect(input.getBe64()).toBe(0xffffffffffffffffn);
    expect([...(await input.peek(8))]).toEqual([1, 2, 3]);
    await input.skip(1);
    const err = await input.fill(4).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShortReadError);
    expect((err as Error).message).toBe("short read at offset 9 (needed 4 bytes, 2 left)");
    expect(() => input.getBe32()).toThrow("short read at offset 9 (needed 4 bytes, 2 left)");
  });
});
