import { describe, expect, it } from "vitest";
import { buildResetVector, FW_DYNAMIC_INFO_OFFSET } from "./mrom.ts";

describe("buildResetVector", () => {
  it("lays out QEMU's reset vector with the start and FDT addresses", () => {
    const rom = buildResetVector({ startAddr: 0x8000_0000n, fdtAddr: 0x87e0_0000n, nextAddr: 0x8020_0000n });
    const dv = new DataView(rom.buffer);
    const words = Array.from({ length: 6 }, (_, i) => dv.getUint32(i * 4, true));
    expect(words).toEqual([0x00000297, 0x02828613, 0xf1402573, 0x0202b583, 0x0182b283, 0x00028067]);
    expect(dv.getBigUint64(24, true)).toBe(0x8000_0000n);
    expect(dv.getBigUint64(32, true)).toBe(0x87e0_0000n);
  });

  it("follows the vector with fw_dynamic_info (magic, version 2, next_addr, S mode)", () => {
    const rom = buildResetVector({ startAddr: 0x8000_0000n, fdtAddr: 0x87e0_0000n, nextAddr: 0x8020_0000n });
    const dv = new DataView(rom.buffer);
    const info = Array.from({ length: 6 }, (_, i) => dv.getBigUint64(FW_DYNAMIC_INFO_OFFSET + i * 8, true));
    expect(info).toEqual([0x4942534fn, 2n, 0x8020_0000n, 1n, 0n, 0n]);
  });

  it("puts fw_dynamic_info where `addi a2, t0, 40` points", () => {
    // addi a2, t0, imm: imm = bits 31:20 of 0x02828613
    expect(0x02828613 >> 20).toBe(FW_DYNAMIC_INFO_OFFSET);
  });
});
