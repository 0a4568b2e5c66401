import { describe, expect, it } from "vitest";
import { GoldfishRtc, hostClockNs } from "./goldfish-rtc.ts";

function rtc(start = 1_700_000_000_000_000_000n) {
  const clock = { ns: start };
  const irqs: boolean[] = [];
  const r = new GoldfishRtc({ nowNs: () => clock.ns, onIrq: (l) => irqs.push(l) });
  return { r, clock, irqs };
}

describe("GoldfishRtc", () => {
  it("reads the clock as TIME_LOW then the latched TIME_HIGH", () => {
    const { r, clock } = rtc(0x1_2345_6789n);
    expect(r.read(0, 4)).toBe(0x2345_6789);
    clock.ns = 0x2_0000_0000n;
    expect(r.read(4, 4)).toBe(1);
  });

  it("tells the host's wall-clock time by default", () => {
    const r = new GoldfishRtc();
    const lo = r.read(0, 4)!;
    const t = (BigInt(r.read(4, 4)!) << 32n) | BigInt(lo);
    expect(Number(t - hostClockNs()) / 1e9).toBeCloseTo(0, 0);
  });

  it("moves the count when the guest writes the time", () => {
    const { r } = rtc(1000n);
    r.write(4, 4, 5);
    r.write(0, 4, 7);
    expect(r.read(0, 4)).toBe(7);
    expect(r.read(4, 4)).toBe(5);
  });

  it("fires the alarm when the count reaches it, with the irq enabled", () => {
    const { r, clock, irqs } = rtc(1000n);
    r.write(0x10, 4, 1);
    r.write(0x0c, 4, 0);
    r.write(0x08, 4, 2000);
    expect(r.read(0x18, 4)).toBe(1);
    expect(r.nsUntilAlarm()).toBe(1000);
    r.poll();
    expect(irqs.at(-1)).toBe(false);
    clock.ns = 2000n;
    r.poll();
    expect(irqs.at(-1)).toBe(true);
    expect(r.read(0x18, 4)).toBe(0);
    r.write(0x1c, 4, 1);
    expect(irqs.at(-1)).toBe(false);
  });

  it("fires at once for an alarm in the past, and CLEAR_ALARM stops a running one", () => {
    const { r, irqs } = rtc(5000n);
    r.write(0x10, 4, 1);
    r.write(0x08, 4, 10);
    expect(irqs.at(-1)).toBe(true);
    r.write(0x1c, 4, 0);
    r.write(0x08, 4, 9000);
    r.write(0x14, 4, 1);
    expect(r.read(0x18, 4)).toBe(0);
    expect(r.nsUntilAlarm()).toBe(-1);
  });

  it("only takes 4-byte accesses", () => {
    const { r } = rtc();
    expect(r.read(0, 8)).toBeUndefined();
    expect(r.write(0, 2, 1)).toBe(false);
  });
});
