import { describe, expect, it } from "vitest";
import { VirtualClock } from "./clock.ts";

describe("VirtualClock", () => {
  it("advances 2^shift ns per instruction in icount mode", () => {
    const c = new VirtualClock({ icountShift: 3 });
    c.addInstructions(100);
    expect(c.ns()).toBe(800);
    expect(c.mtime).toBe(8n);
  });

  it("follows the host clock only while started", () => {
    let host = 1000;
    const c = new VirtualClock({ hostNowMs: () => host });
    host += 5;
    expect(c.ns()).toBe(0);
    c.start();
    host += 2;
    expect(c.ns()).toBe(2_000_000);
    c.stop();
    host += 100;
    expect(c.ns()).toBe(2_000_000);
    expect(c.mtime).toBe(20_000n);
  });

  it("maps an mtime deadline back to virtual ns after a guest moved mtime", () => {
    const c = new VirtualClock({ icountShift: 0 });
    c.addInstructions(1000);
    c.setMtime(5000n);
    expect(c.nsForMtime(5010n)).toBe(2000);
  });

  it("warps idle time forward but never back", () => {
    const c = new VirtualClock({ icountShift: 0 });
    c.warpTo(10_000);
    c.warpTo(5);
    expect(c.ns()).toBe(10_000);
  });
});
