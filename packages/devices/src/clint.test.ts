import { describe, expect, it } from "vitest";
import { Clint, CLINT_MTIME, CLINT_MTIMECMP, MIP_MSIP, type ClintHart } from "./clint.ts";
import { VirtualClock } from "./clock.ts";

function setup(harts = 2): { clint: Clint; hs: ClintHart[]; clock: VirtualClock } {
  const hs = Array.from({ length: harts }, () => ({ mtimecmp: 0n, mipExternal: 0 }));
  const clock = new VirtualClock({ icountShift: 0 });
  const clint = new Clint({ harts, hart: (i) => hs[i]!, timebase: clock });
  return { clint, hs, clock };
}

describe("Clint", () => {
  it("drives each hart's MSIP from bit 0 of its msip word", () => {
    const { clint, hs } = setup();
    clint.write(4, 4, 1);
    expect(hs[1]!.mipExternal & MIP_MSIP).toBe(MIP_MSIP);
    expect(hs[0]!.mipExternal).toBe(0);
    expect(clint.read(4, 4)).toBe(1);
    clint.write(4, 4, 2);
    expect(hs[1]!.mipExternal & MIP_MSIP).toBe(0);
    expect(clint.read(4, 4)).toBe(0);
  });

  it("keeps other mipExternal bits when it changes MSIP", () => {
    const { clint, hs } = setup();
    hs[0]!.mipExternal = 1 << 11;
    clint.write(0, 4, 1);
    expect(hs[0]!.mipExternal).toBe((1 << 11) | MIP_MSIP);
    clint.write(0, 4, 0);
    expect(hs[0]!.mipExternal).toBe(1 << 11);
  });

  it("accepts only 4-byte msip accesses", () => {
    const { clint } = setup();
    expect(clint.write(0, 8, 1n)).toBe(false);
    expect(clint.read(0, 1)).toBeUndefined();
  });

  it("writes mtimecmp whole or by 32-bit halves", () => {
    const { clint, hs } = setup();
    clint.write(CLINT_MTIMECMP + 8, 8, 0x1234_5678_9abc_def0n);
    expect(hs[1]!.mtimecmp).toBe(0x1234_5678_9abc_def0n);
    expect(clint.read(CLINT_MTIMECMP + 8, 8)).toBe(0x1234_5678_9abc_def0n);
    clint.write(CLINT_MTIMECMP, 4, 0xffff_ffff);
    clint.write(CLINT_MTIMECMP + 4, 4, 0x7);
    expect(hs[0]!.mtimecmp).toBe(0x7_ffff_ffffn);
    expect(clint.read(CLINT_MTIMECMP, 4)).toBe(0xffff_ffff);
    expect(clint.read(CLINT_MTIMECMP + 4, 4)).toBe(7);
  });

  it("reads mtime from the timebase at 10 MHz and lets the guest set it", () => {
    const { clint, clock } = setup();
    clock.addInstructions(1000); // 1000 ns at shift 0 = 10 ticks
    expect(clint.read(CLINT_MTIME, 8)).toBe(10);
    clint.write(CLINT_MTIME, 8, 1_000_000n);
    expect(clint.read(CLINT_MTIME, 8)).toBe(1_000_000);
    clock.addInstructions(500);
    expect(clint.read(CLINT_MTIME, 4)).toBe(1_000_005);
    expect(clint.read(CLINT_MTIME + 4, 4)).toBe(0);
  });

  it("faults accesses past the MTIMER window and misaligned ones", () => {
    const { clint } = setup();
    expect(clint.read(0xc000, 4)).toBeUndefined();
    expect(clint.read(CLINT_MTIMECMP + 2, 4)).toBeUndefined();
    expect(clint.write(CLINT_MTIMECMP, 2, 1)).toBe(false);
  });

  it("resets mtimecmp to 0 and mtime to 0, as QEMU (MTIP pending at boot)", () => {
    const { clint, hs, clock } = setup();
    hs[0]!.mtimecmp = 55n;
    hs[0]!.mipExternal = MIP_MSIP;
    clock.addInstructions(12345);
    clint.reset();
    expect(hs[0]!.mtimecmp).toBe(0n);
    expect(hs[0]!.mipExternal).toBe(0);
    expect(clock.mtime).toBe(0n);
  });
});
