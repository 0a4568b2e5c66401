import { describe, expect, it } from "vitest";
import { SifiveTest, type FinisherEvent } from "./sifive-test.ts";

function finisher(): { dev: SifiveTest; events: FinisherEvent[] } {
  const events: FinisherEvent[] = [];
  return { dev: new SifiveTest((e) => events.push(e)), events };
}

describe("SifiveTest", () => {
  it("reports a pass as exit code 0", () => {
    const { dev, events } = finisher();
    expect(dev.write(0, 4, 0x5555, 0)).toBe(true);
    expect(events).toEqual([{ kind: "exit", code: 0 }]);
  });

  it("reports a failure with the code from bits 31:16", () => {
    const { dev, events } = finisher();
    dev.write(0, 4, (42 << 16) | 0x3333, 0);
    expect(events).toEqual([{ kind: "exit", code: 42 }]);
  });

  it("reports a reset request", () => {
    const { dev, events } = finisher();
    dev.write(0, 4, 0x7777, 0);
    expect(events).toEqual([{ kind: "reset" }]);
  });

  it("ignores other values and other offsets, and reads zero", () => {
    const { dev, events } = finisher();
    expect(dev.write(0, 4, 0x1234, 0)).toBe(true);
    expect(dev.write(4, 4, 0x5555, 0)).toBe(true);
    expect(dev.write(0, 2, 0x3334, 0)).toBe(true);
    expect(events).toEqual([]);
    expect(dev.read(0, 4)).toBe(0);
  });

  it("accepts 16-bit writes of the status", () => {
    const { dev, events } = finisher();
    dev.write(0, 2, 0x5555, 0);
    expect(events).toEqual([{ kind: "exit", code: 0 }]);
  });

  it("rejects 1- and 8-byte and misaligned accesses like QEMU (access fault)", () => {
    const { dev, events } = finisher();
    expect(dev.write(0, 8, 0x5555n, 0)).toBe(false);
    expect(dev.write(0, 1, 0x55, 0)).toBe(false);
    expect(dev.write(2, 4, 0x5555, 0)).toBe(false);
    expect(dev.read(0, 8)).toBeUndefined();
    expect(events).toEqual([]);
  });
});
