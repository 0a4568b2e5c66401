import { describe, it, expect } from "vitest";
import { runProgram, CODE } from "./testing/machine.ts";
import * as A from "./rv-asm.ts";

const s64 = (v: bigint): bigint => BigInt.asUintN(64, v);
const i64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const MIN = 0x8000_0000_0000_0000n;

/** Runs `name rd, a, b` for each pair and returns the results. */
function opResults(name: string, pairs: [bigint, bigint][]): bigint[] {
  const m = runProgram((a) => {
    pairs.forEach(([x, y], i) => a.emit(...A.li(1, x), ...A.li(2, y), A.op(name, 3 + i, 1, 2)));
  });
  return pairs.map((_, i) => m.cpu.hart(0).x[3 + i]!);
}

describe("M extension", () => {
  it("mul, mulh, mulhsu and mulhu give the low and high halves of the 128-bit product", () => {
    const pairs: [bigint, bigint][] = [[-1n, -1n], [MIN, MIN], [0x1234_5678_9abc_def0n, -0x0fed_cba9_8765_4321n], [MIN, -1n], [7n, 3n]];
    const ref = (a: bigint, b: bigint, sa: boolean, sb: boolean): bigint => {
      const x = sa ? i64(a) : s64(a);
      const y = sb ? i64(b) : s64(b);
      return x * y;
    };
    expect(opResults("mul", pairs)).toEqual(pairs.map(([a, b]) => s64(ref(a, b, true, true))));
    expect(opResults("mulh", pairs)).toEqual(pairs.map(([a, b]) => s64(ref(a, b, true, true) >> 64n)));
    expect(opResults("mulhsu", pairs)).toEqual(pairs.map(([a, b]) => s64(ref(a, b, true, false) >> 64n)));
    expect(opResults("mulhu", pairs)).toEqual(pairs.map(([a, b]) => s64(ref(a, b, false, false) >> 64n)));
  });

  it("division by zero and MIN / -1 give the results the spec defines", () => {
    const pairs: [bigint, bigint][] = [[7n, 0n], [MIN, -1n], [-7n, 2n], [7n, -2n], [s64(-7n), 2n]];
    expect(opResults("div", pairs)).toEqual([s64(-1n), MIN, s64(-3n), s64(-3n), s64(-3n)]);
    expect(opResults("rem", pairs)).toEqual([7n, 0n, s64(-1n), 1n, s64(-1n)]);
    expect(opResults("divu", pairs)).toEqual([s64(-1n), 0n, s64(-7n) / 2n, 0n, s64(-7n) / 2n]);
    expect(opResults("remu", pairs)).toEqual([7n, MIN, 1n, 7n, 1n]);
  });

  it("the W forms work on the low 32 bits and sign-extend", () => {
    const pairs: [bigint, bigint][] = [[0x8000_0000n, 0xffff_ffffn], [0x1_0000_0007n, 0n], [0x7fff_ffffn, 2n], [-8n, 3n]];
    expect(opResults("mulw", pairs)).toEqual([0xffff_ffff_8000_0000n, 0n, s64(-2n), s64(-24n)]);
    expect(opResults("divw", pairs)).toEqual([0xffff_ffff_8000_0000n, s64(-1n), 0x3fff_ffffn, s64(-2n)]);
    expect(opResults("remw", pairs)).toEqual([0n, 7n, 1n, s64(-2n)]);
    expect(opResults("divuw", pairs)).toEqual([0n, s64(-1n), 0x3fff_ffffn, 0x5555_5552n]);
    expect(opResults("remuw", pairs)).toEqual([0xffff_ffff_8000_0000n, 7n, 1n, 2n]);
  });
});

describe("A extension", () => {
  const DATA = 0x8000_2000n;

  it("AMOs return the old value and store the combination, with signed and unsigned min/max", () => {
    const cases: [string, bigint, bigint, bigint][] = [
      // name, memory, rs2, expected memory after
      ["amoswap", 5n, 9n, 9n], ["amoadd", 5n, s64(-7n), s64(-2n)], ["amoxor", 0b1100n, 0b1010n, 0b0110n],
      ["amoand", 0b1100n, 0b1010n, 0b1000n], ["amoor", 0b1100n, 0b1010n, 0b1110n],
      ["amomin", s64(-1n), 1n, s64(-1n)], ["amomax", s64(-1n), 1n, 1n],
      ["amominu", s64(-1n), 1n, 1n], ["amomaxu", s64(-1n), 1n, s64(-1n)],
    ];
    const m = runProgram((a) => {
      a.emit(...A.li(1, DATA));
      cases.forEach(([name, , src], i) => {
        a.emit(...A.li(2, src), A.addi(4, 1, i * 8), A.amo(name, "d", 10 + i, 4, 2));
      });
    }, (m) => cases.forEach(([, mem], i) => m.write64(DATA + BigInt(i * 8), mem)));
    cases.forEach(([, mem, , after], i) => {
      expect(m.cpu.hart(0).x[10 + i]).toBe(mem);
      expect(m.read64(DATA + BigInt(i * 8))).toBe(after);
    });
  });

  it("word AMOs sign-extend the old value and compare 32-bit values", () => {
    const m = runProgram((a) => {
      a.emit(...A.li(1, DATA), ...A.li(2, 1n), A.amo("amominu", "w", 3, 1, 2));
      a.emit(A.addi(4, 1, 8), ...A.li(2, 0x1_0000_0001n), A.amo("amomax", "w", 5, 4, 2));
      a.emit(A.addi(6, 1, 16), ...A.li(2, 1n), A.amo("amoadd", "w", 7, 6, 2));
    }, (m) => {
      m.write64(DATA, 0xaaaa_aaaa_8000_0000n);
      m.write64(DATA + 8n, 0x0000_0000_ffff_fff0n);
      m.write64(DATA + 16n, 0x1111_1111_7fff_ffffn);
    });
    const x = m.cpu.hart(0).x;
    expect(x[3]).toBe(0xffff_ffff_8000_0000n);
    expect(m.read64(DATA)).toBe(0xaaaa_aaaa_0000_0001n);
    expect(x[5]).toBe(s64(-16n));
    expect(m.read64(DATA + 8n)).toBe(1n);
    expect(x[7]).toBe(0x7fff_ffffn);
    expect(m.read64(DATA + 16n)).toBe(0x1111_1111_8000_0000n);
  });

  it("sc succeeds after lr to the same address and fails without a reservation or after a change", () => {
    const m = runProgram((a) => {
      a.emit(...A.li(1, DATA), A.addi(2, 0, 42));
      a.emit(A.amo("lr", "d", 3, 1, 0), A.amo("sc", "d", 4, 1, 2)); // succeeds: x4 = 0
      a.emit(A.amo("sc", "d", 5, 1, 2)); // no reservation: x5 = 1
      a.emit(A.amo("lr", "w", 6, 1, 0), A.addi(7, 0, 1), A.sw(7, 1, 0), A.amo("sc", "w", 8, 1, 2)); // value changed
      a.emit(A.amo("lr", "d", 9, 1, 0), A.addi(10, 1, 8), A.amo("sc", "d", 11, 10, 2)); // other address
    }, (m) => m.write64(DATA, 7n));
    const x = m.cpu.hart(0).x;
    expect(x[3]).toBe(7n);
    expect(x[4]).toBe(0n);
    expect(x[5]).toBe(1n);
    expect(x[6]).toBe(42n);
    expect(x[8]).toBe(1n);
    expect(x[11]).toBe(1n);
    expect(m.read64(DATA)).toBe(1n);
    expect(m.read64(DATA + 8n)).toBe(0n);
  });
});

describe("C extension", () => {
  it("executes compressed ALU, load/store and stack-pointer forms", () => {
    const m = runProgram((a) => {
      a.emit(...A.li(2, 0x8000_3000n), ...A.li(8, 0x8000_2000n), ...A.li(9, 100n));
      a.emit16(
        A.C.li(10, -5), A.C.addi(10, 3), A.C.lui(11, 0x1f000), A.C.addiw(9, -1),
        A.C.mv(12, 9), A.C.add(12, 10), A.C.sub(9, 10), A.C.slli(13, 63), A.C.srli(8, 1),
        A.C.srai(10, 1), A.C.andi(12, 0x1e), A.C.addi16sp(-64), A.C.addi4spn(14, 16),
        A.C.sdsp(9, 8), A.C.ldsp(15, 8), A.C.swsp(10, 0), A.C.lwsp(5, 0),
        A.C.sd(9, 14, 8), A.C.ld(11, 14, 8), A.C.sw(9, 14, 0), A.C.lw(6 + 2, 14, 0),
      );
      a.emit16(A.C.xor(9, 10), A.C.or(9, 10), A.C.and(9, 10), A.C.subw(10, 12), A.C.addw(10, 12));
    });
    const x = m.cpu.hart(0).x;
    expect(x[2]).toBe(0x8000_3000n - 64n);
    expect(x[14]).toBe(0x8000_3000n - 48n);
    expect(x[13]).toBe(0n); // 0 << 63
    expect(x[15]).toBe(101n); // x9 = 99 - (-2)
    expect(x[5]).toBe(s64(-1n)); // x10 = -2 >> 1 = -1
    expect(x[11]).toBe(101n);
    expect(x[8]).toBe(101n);
    expect(x[12]).toBe(0n); // 97 & 0x1e
    expect(x[9]).toBe(s64(-1n)); // ((101 ^ -1) | -1) & -1
    expect(x[10]).toBe(s64(-1n));
  });

  it("c.j, c.beqz, c.bnez, c.jr and c.jalr move the pc by 2-byte granules", () => {
    const m = runProgram((a) => {
      a.emit16(A.C.li(8, 0), A.C.li(9, 1));
      a.emit16(A.C.j(4), A.C.li(10, 1)); // skip
      a.emit16(A.C.beqz(8, 4), A.C.li(11, 1)); // skip
      a.emit16(A.C.bnez(8, 4), A.C.li(12, 1)); // not taken: x12 = 1
      a.emit16(A.C.bnez(9, 4), A.C.li(13, 1)); // skip
      a.emit(A.auipc(5, 0), A.addi(5, 5, 12)); // x5 = CODE + 20 + 12
      a.emit16(A.C.jalr(5), A.C.li(14, 1)); // skip; ra = CODE + 30
      a.emit(A.auipc(6, 0), A.addi(6, 6, 12));
      a.emit16(A.C.jr(6), A.C.li(15, 1)); // skip
    });
    const x = m.cpu.hart(0).x;
    expect([x[10], x[11], x[12], x[13], x[14], x[15]]).toEqual([0n, 0n, 1n, 0n, 0n, 0n]);
    expect(x[1]).toBe(CODE + 30n);
  });
});
