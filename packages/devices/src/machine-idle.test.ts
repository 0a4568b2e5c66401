import { describe, expect, it, vi } from "vitest";
import { createMachine } from "./machine.ts";

function program(words: number[]): Uint8Array {
  const bytes = new Uint8Array(words.length * 4);
  const view = new DataView(bytes.buffer);
  words.forEach((w, i) => view.setUint32(i * 4, w >>> 0, true));
  return bytes;
}

/** mtimecmp = all ones through the CLINT, then `wfi; j .-4` with nothing enabled. */
const IDLE_FOREVER = program([
  0x0200_42b7, // lui t0, 0x2004 (CLINT mtimecmp, hart 0)
  0xfff0_0313, // addi t1, zero, -1
  0x0062_b023, // sd t1, 0(t0)
  0x1050_0073, // wfi
  0xffdf_f06f, // j .-4
]);

describe("Machine idle", () => {
  it("sleeps through a timer deadline beyond setTimeout's range instead of waking every millisecond", async () => {
    const m = await createMachine({ bios: "none", kernel: IDLE_FOREVER, ramSize: 8 << 20 });
    const spy = vi.spyOn(globalThis, "setTimeout");
    try {
      const stopper = new Promise<void>((resolve) => {
        // setImmediate is not spied on: stop the run after ~200 ms of idling.
        const t0 = performance.now();
        const poll = (): void => {
          if (performance.now() - t0 >= 200) {
            m.stop();
            resolve();
          } else setImmediate(poll);
        };
        setImmediate(poll);
      });
      const result = await m.run();
      await stopper;
      expect(result).toEqual({ kind: "stopped" });
      expect(m.hart(0).mtimecmp).toBe(2n ** 64n - 1n);
      // One sleep (and a re-check after a wake-up) is all an idle guest needs.
      expect(spy.mock.calls.length).toBeLessThan(5);
    } finally {
      spy.mockRestore();
    }
  });
});
