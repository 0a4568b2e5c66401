import { describe, expect, it } from "vitest";
import { MIP_MEIP, MIP_SEIP, Plic } from "./plic.ts";

function plic(harts = 1) {
  const h = Array.from({ length: harts }, () => ({ mipExternal: 0 }));
  const errors: string[] = [];
  const p = new Plic({ harts, hart: (i) => h[i]!, onGuestError: (m) => errors.push(m) });
  return { p, h, errors };
}

const prio = (irq: number) => 4 * irq;
const enable = (ctx: number) => 0x2000 + 0x80 * ctx;
const threshold = (ctx: number) => 0x20_0000 + 0x1000 * ctx;
const claim = (ctx: number) => 0x20_0004 + 0x1000 * ctx;

describe("Plic", () => {
  it("asserts SEIP for an enabled source above the S context's threshold, and claims it", () => {
    const { p, h } = plic();
    p.write(prio(10), 4, 1);
    p.write(enable(1), 4, 1 << 10);
    p.setIrq(10, true);
    expect(h[0]!.mipExternal).toBe(MIP_SEIP);
    expect(p.read(0x1000, 4)).toBe(1 << 10);
    expect(p.read(claim(1), 4)).toBe(10);
    expect(h[0]!.mipExternal).toBe(0);
    expect(p.read(0x1000, 4)).toBe(0);
    // claimed: a new raise is pending but not delivered until complete
    p.setIrq(10, true);
    expect(h[0]!.mipExternal).toBe(0);
    expect(p.read(claim(1), 4)).toBe(0);
    p.write(claim(1), 4, 10);
    expect(h[0]!.mipExternal).toBe(MIP_SEIP);
  });

  it("drives MEIP from context 0 and keeps contexts of two harts apart", () => {
    const { p, h } = plic(2);
    p.write(prio(3), 4, 2);
    p.write(enable(0), 4, 1 << 3);
    p.write(enable(3), 4, 1 << 3);
    p.setIrq(3, true);
    expect(h[0]!.mipExternal).toBe(MIP_MEIP);
    expect(h[1]!.mipExternal).toBe(MIP_SEIP);
    expect(p.read(claim(3), 4)).toBe(3);
    expect(h[0]!.mipExternal).toBe(0);
    expect(h[1]!.mipExternal).toBe(0);
  });

  it("masks sources at or below the threshold and those with priority 0", () => {
    const { p, h } = plic();
    p.write(enable(1), 4, 0b110);
    p.setIrq(1, true);
    p.setIrq(2, true);
    expect(h[0]!.mipExternal).toBe(0); // priority 0
    p.write(prio(2), 4, 3);
    p.write(threshold(1), 4, 3);
    expect(h[0]!.mipExternal).toBe(0);
    p.write(threshold(1), 4, 2);
    expect(h[0]!.mipExternal).toBe(MIP_SEIP);
  });

  it("claims the highest priority first, the lowest number on a tie", () => {
    const { p } = plic();
    p.write(enable(1), 4, (1 << 5) | (1 << 7) | (1 << 9));
    p.write(prio(5), 4, 2);
    p.write(prio(7), 4, 6);
    p.write(prio(9), 4, 6);
    for (const i of [5, 7, 9]) p.setIrq(i, true);
    expect([p.read(claim(1), 4), p.read(claim(1), 4), p.read(claim(1), 4), p.read(claim(1), 4)]).toEqual([7, 9, 5, 0]);
  });

  it("keeps priorities and thresholds WARL modulo 8, as QEMU's 7 levels", () => {
    const { p } = plic();
    p.write(prio(1), 4, 9);
    expect(p.read(prio(1), 4)).toBe(1);
    p.write(threshold(1), 4, 15);
    expect(p.read(threshold(1), 4)).toBe(7);
  });

  it("leaves a source pending when its line drops, as QEMU (the PLIC latches raises)", () => {
    const { p } = plic();
    p.setIrq(4, true);
    p.setIrq(4, false);
    expect(p.read(0x1000, 4)).toBe(1 << 4);
  });

  it("reads and writes the enable words of sources 64..95", () => {
    const { p, h } = plic();
    p.write(enable(1) + 8, 4, 1 << 31);
    expect(p.read(enable(1) + 8, 4)).toBe((1 << 31) >>> 0);
    p.write(prio(95), 4, 1);
    p.setIrq(95, true);
    expect(h[0]!.mipExternal).toBe(MIP_SEIP);
    expect(p.read(0x1008, 4)).toBe((1 << 31) >>> 0);
  });

  it("rejects other than 4-byte accesses and ignores invalid registers", () => {
    const { p, errors } = plic();
    expect(p.read(prio(1), 2)).toBeUndefined();
    expect(p.write(prio(1), 1, 1)).toBe(false);
    expect(p.write(0x1000, 4, 0xffff_ffff)).toBe(true);
    expect(p.read(0x1000, 4)).toBe(0);
    expect(p.read(threshold(2), 4)).toBe(0); // no context 2 with one hart
    expect(p.write(claim(0) + 4, 4, 1)).toBe(true);
    expect(errors.length).toBe(3);
  });

  it("does not let a complete of an out-of-range source do anything", () => {
    const { p, h } = plic();
    p.write(prio(1), 4, 1);
    p.write(enable(1), 4, 2);
    p.setIrq(1, true);
    expect(p.read(claim(1), 4)).toBe(1);
    p.write(claim(1), 4, 1000);
    expect(h[0]!.mipExternal).toBe(0);
    p.setIrq(1, true);
    expect(h[0]!.mipExternal).toBe(0);
  });
});
