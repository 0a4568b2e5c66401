import { describe, it, expect } from "vitest";
import { ExitReason } from "./mod.ts";
import { makeMachine, CODE } from "./testing/machine.ts";
import * as A from "./rv-asm.ts";

const DATA = 0x8000_2000n;
const CODE1 = 0x8000_4000n;

describe("multiple harts", () => {
  it("keep their own registers, mhartid and pc while run in interleaved slices", () => {
    const m = makeMachine({ harts: 2 });
    m.code(CODE, (a) => a.emit(A.csrrs(1, 0xf14, 0), A.addi(2, 2, 1), A.jal(0, -4)));
    m.cpu.reset(1, CODE);
    for (let i = 0; i < 3; i++) {
      expect(m.cpu.run(0, 11)).toBe(ExitReason.Budget);
      expect(m.cpu.run(1, 5)).toBe(ExitReason.Budget);
    }
    const [h0, h1] = [m.cpu.hart(0), m.cpu.hart(1)];
    expect([h0.x[1], h1.x[1]]).toEqual([0n, 1n]);
    expect([h0.x[2], h1.x[2]]).toEqual([16n, 7n]);
    expect([h0.instret, h1.instret]).toEqual([33n, 15n]);
  });

  it("sc fails when another hart changed the reserved value and succeeds when it did not", () => {
    for (const [other, expectFail] of [[5n, 1n], [7n, 0n]] as const) {
      const m = makeMachine({ harts: 2 });
      m.write64(DATA, 7n);
      m.code(CODE, (a) => a.emit(...A.li(1, DATA), A.amo("lr", "d", 2, 1, 0), A.addi(3, 0, 9), A.amo("sc", "d", 4, 1, 3)));
      m.code(CODE1, (a) => a.emit(...A.li(1, DATA), ...A.li(2, other), A.sd(2, 1, 0)));
      m.cpu.reset(1, CODE1);
      // Hart 0 up to and including its lr, then hart 1's store, then the rest of hart 0.
      m.cpu.run(0, A.li(1, DATA).length + 1);
      expect(m.cpu.hart(0).x[2]).toBe(7n);
      m.cpu.run(1, A.li(1, DATA).length + A.li(2, other).length + 1);
      m.cpu.run(0, 2);
      expect(m.cpu.hart(0).x[4]).toBe(expectFail);
      expect(m.read64(DATA)).toBe(expectFail === 0n ? 9n : other);
    }
  });
});
