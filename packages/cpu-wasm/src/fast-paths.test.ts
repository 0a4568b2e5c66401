// The edges of the interpreter's fast paths: the cached code page ends two bytes before the
// page end (a 32-bit instruction there is fetched by the slow path and handed back to the
// loop), and the TLB tag compare of loads and stores uses the page of the last byte (an
// access crossing into the next page takes the slow path even when its first page is cached).
import { describe, it, expect } from "vitest";
import { ExitReason } from "./mod.ts";
import { makeMachine, CODE, TOHOST } from "./testing/machine.ts";
import * as A from "./rv-asm.ts";

/** Loop start: a 32-bit instruction lands on the last two bytes of the page (0x...1ffe). */
const LOOP = CODE + 0xff6n;
const ROUNDS = 100;

/**
 * A loop whose body crosses from page CODE into the next one with a 32-bit instruction split
 * over both: per round x1 += 3 + 5, x3 += 1; x2 counts down from ROUNDS.
 */
function straddlingLoop() {
  const m = makeMachine();
  m.code(CODE, (a) => a.emit(A.addi(1, 0, 0), A.addi(2, 0, ROUNDS), A.addi(3, 0, 0), A.jal(0, Number(LOOP - CODE - 12n))));
  m.code(LOOP, (a) => {
    a.emit16(A.C.addi(3, 1)); // 0x...ff6
    a.emit(A.addi(1, 1, 3)); // 0x...ff8
    a.emit16(A.C.addi(0, 0)); // 0x...ffc: c.nop
    expect(a.here()).toBe(CODE + 0xffen);
    a.emit(A.addi(1, 1, 5)); // 0x...ffe, split over two pages
    a.emit(A.addi(2, 2, -1));
    a.emit(A.bne(2, 0, Number(LOOP - a.here())));
    a.emit(...A.li(31, TOHOST), A.sd(0, 31, 0));
  });
  return m;
}

describe("fast path edges", () => {
  it("runs a 32-bit instruction split over two code pages on every round of a loop", () => {
    const m = straddlingLoop();
    expect(m.runToHtif()).toBe(ExitReason.Htif);
    const x = m.cpu.hart(0).x;
    expect(x[1]).toBe(BigInt(8 * ROUNDS));
    expect(x[3]).toBe(BigInt(ROUNDS));
    expect(x[2]).toBe(0n);
  });

  it("gives the same registers and instruction count whatever the run() budget", () => {
    const reference = straddlingLoop();
    expect(reference.runToHtif()).toBe(ExitReason.Htif);
    const total = reference.cpu.hart(0).instret;
    for (const budget of [1, 2, 3, 7]) {
      const m = straddlingLoop();
      let exit: number = ExitReason.Budget;
      let calls = 0;
      while (exit === ExitReason.Budget && calls < 10_000) {
        exit = m.cpu.run(0, budget);
        calls++;
      }
      expect(exit).toBe(ExitReason.Htif);
      expect(m.cpu.hart(0).instret).toBe(total);
      expect(Array.from(m.cpu.hart(0).x)).toEqual(Array.from(reference.cpu.hart(0).x));
    }
  });

  it("reads and writes both pages for loads and stores that cross a page boundary after the first page is cached", () => {
    const m = makeMachine();
    const page = 0x8010_0000n;
    const end = page + 0x1000n;
    for (let i = 0n; i < 16n; i++) m.mem.setUint8(Number(0x40_0000n + (end - 8n + i - 0x8000_0000n)), Number(0x10n + i));
    m.code(CODE, (a) => {
      a.emit(...A.li(10, page));
      a.emit(A.ld(1, 10, 0), A.sd(1, 10, 8)); // fill the load and store TLB entries of the page
      a.emit(...A.li(11, end));
      a.emit(A.ld(2, 11, -4)); // bytes end-4 .. end+3
      a.emit(A.lw(3, 11, -2)); // end-2 .. end+1
      a.emit(A.lh(4, 11, -1)); // end-1 .. end
      a.emit(A.lhu(5, 11, -2)); // within the first page: fast path
      a.emit(...A.li(6, 0x0123_4567_89ab_cdefn));
      a.emit(A.sd(6, 11, -3)); // end-3 .. end+4
      a.emit(A.ld(7, 11, -8), A.ld(8, 11, 0));
      a.emit(...A.li(31, TOHOST), A.sd(0, 31, 0));
    });
    expect(m.runToHtif()).toBe(ExitReason.Htif);
    const x = m.cpu.hart(0).x;
    expect(x[2]).toBe(0x1b1a_1918_1716_1514n);
    expect(x[3]).toBe(0x1918_1716n);
    expect(x[4]).toBe(0x1817n);
    expect(x[5]).toBe(0x1716n);
    // The store: bytes end-3 .. end+4 are ef cd ab 89 67 45 23 01 (little endian).
    expect(x[7]).toBe(0xabcd_ef14_1312_1110n);
    expect(x[8]).toBe(0x1f1e_1d01_2345_6789n);
  });
});
