import { describe, it, expect } from "vitest";
import { ExitReason } from "./mod.ts";
import { makeMachine, CODE, TOHOST, RAM_BASE } from "./testing/machine.ts";
import * as A from "./rv-asm.ts";

const M64 = (1n << 64n) - 1n;
const s64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/** Runs `body`, then stores x0 to tohost; returns the machine after the Htif exit. */
function exec(body: (a: A.Asm) => void, setup?: (m: ReturnType<typeof makeMachine>) => void) {
  const m = makeMachine();
  m.code(CODE, (a) => {
    body(a);
    a.emit(...A.li(31, TOHOST), A.sd(0, 31, 0));
  });
  setup?.(m);
  const exit = m.runToHtif();
  expect(exit).toBe(ExitReason.Htif);
  return m;
}

describe("RV64I", () => {
  it("lui and auipc sign-extend their 32-bit immediates", () => {
    const m = exec((a) => a.emit(A.lui(1, 0x8000_0000 | 0), A.lui(2, 0x7ffff000), A.auipc(3, 0x1000)));
    const x = m.cpu.hart(0).x;
    expect(x[1]).toBe(0xffff_ffff_8000_0000n);
    expect(x[2]).toBe(0x7fff_f000n);
    expect(x[3]).toBe(CODE + 8n + 0x1000n);
  });

  it("li builds 64-bit constants", () => {
    const values = [0n, -1n, 2047n, -2048n, 0x1234_5678n, -0x8000_0000n, 0x7fff_ffffn, 0x1234_5678_9abc_def0n, -0x7654_3210_0123_4567n];
    const m = exec((a) => values.forEach((v, i) => a.emit(...A.li(i + 1, v))));
    values.forEach((v, i) => expect(m.cpu.hart(0).x[i + 1]).toBe(s64(v)));
  });

  it("writes to x0 are discarded", () => {
    const m = exec((a) => a.emit(A.addi(0, 0, 5), A.lui(0, 0x1000), A.addi(1, 0, 0)));
    expect(m.cpu.hart(0).x[0]).toBe(0n);
    expect(m.cpu.hart(0).x[1]).toBe(0n);
  });

  it("computes the register-register and immediate ALU operations", () => {
    const a1 = 0x8000_0000_0000_0001n, a2 = 0x0000_0000_0000_0041n;
    const m = exec((a) => {
      a.emit(...A.li(1, a1), ...A.li(2, a2));
      a.emit(A.op("add", 3, 1, 2), A.op("sub", 4, 2, 1), A.op("sll", 5, 1, 2), A.op("srl", 6, 1, 2));
      a.emit(A.op("sra", 7, 1, 2), A.op("slt", 8, 1, 2), A.op("sltu", 9, 1, 2), A.op("xor", 10, 1, 2));
      a.emit(A.op("or", 11, 1, 2), A.op("and", 12, 1, 2), A.slti(13, 1, -1), A.sltiu(14, 2, -1));
      a.emit(A.xori(15, 1, -1), A.ori(16, 2, 0x700), A.andi(17, 1, -2), A.slli(18, 2, 63), A.srli(19, 1, 63), A.srai(20, 1, 63));
    });
    const x = m.cpu.hart(0).x;
    expect(x[3]).toBe(s64(a1 + a2));
    expect(x[4]).toBe(s64(a2 - a1));
    expect(x[5]).toBe(s64(a1 << 1n)); // shift amount uses the low 6 bits: 0x41 & 63 = 1
    expect(x[6]).toBe(a1 >> 1n);
    expect(x[7]).toBe(s64(BigInt.asIntN(64, a1) >> 1n));
    expect(x[8]).toBe(1n);
    expect(x[9]).toBe(0n);
    expect(x[10]).toBe(a1 ^ a2);
    expect(x[11]).toBe(a1 | a2);
    expect(x[12]).toBe(a1 & a2);
    expect(x[13]).toBe(1n);
    expect(x[14]).toBe(1n); // -1 sign-extended is the largest unsigned value
    expect(x[15]).toBe(s64(~a1));
    expect(x[16]).toBe(0x741n);
    expect(x[17]).toBe(0x8000_0000_0000_0000n);
    expect(x[18]).toBe(0x8000_0000_0000_0000n);
    expect(x[19]).toBe(1n);
    expect(x[20]).toBe(M64);
  });

  it("sign-extends the results of the W operations and masks their shift amounts to 5 bits", () => {
    const m = exec((a) => {
      a.emit(...A.li(1, 0x7fff_ffffn), ...A.li(2, 0x21n), ...A.li(3, 0xffff_ffff_8000_0000n));
      a.emit(A.addiw(4, 1, 1), A.op("addw", 5, 1, 1), A.op("subw", 6, 3, 2), A.op("sllw", 7, 1, 2));
      a.emit(A.op("srlw", 8, 3, 2), A.op("sraw", 9, 3, 2), A.slliw(10, 1, 31), A.srliw(11, 3, 31), A.sraiw(12, 3, 31));
      a.emit(A.addiw(13, 3, 0));
    });
    const x = m.cpu.hart(0).x;
    expect(x[4]).toBe(0xffff_ffff_8000_0000n);
    expect(x[5]).toBe(0xffff_ffff_ffff_fffen);
    expect(x[6]).toBe(0x7fff_ffdfn);
    expect(x[7]).toBe(0xffff_ffff_ffff_fffen);
    expect(x[8]).toBe(0x4000_0000n);
    expect(x[9]).toBe(0xffff_ffff_c000_0000n);
    expect(x[10]).toBe(0xffff_ffff_8000_0000n);
    expect(x[11]).toBe(1n);
    expect(x[12]).toBe(M64);
    expect(x[13]).toBe(0xffff_ffff_8000_0000n);
  });

  it("takes each branch kind when its condition holds and falls through otherwise", () => {
    const m = exec((a) => {
      a.emit(...A.li(1, -1n), A.addi(2, 0, 1), A.addi(10, 0, 0));
      const cases: [number, boolean][] = [
        [A.beq(1, 1, 8), true], [A.beq(1, 2, 8), false], [A.bne(1, 2, 8), true], [A.bne(2, 2, 8), false],
        [A.blt(1, 2, 8), true], [A.blt(2, 1, 8), false], [A.bge(2, 1, 8), true], [A.bge(1, 2, 8), false],
        [A.bltu(2, 1, 8), true], [A.bltu(1, 2, 8), false], [A.bgeu(1, 2, 8), true], [A.bgeu(2, 1, 8), false],
      ];
      // Each taken branch skips the "addi x10, x10, 1" that follows it.
      cases.forEach(([b]) => a.emit(b, A.addi(10, 10, 1)));
    });
    expect(m.cpu.hart(0).x[10]).toBe(6n);
  });

  it("jal and jalr link the return address and jalr clears bit 0 of the target", () => {
    const m = exec((a) => {
      a.emit(A.jal(1, 8), A.addi(5, 0, 1)); // skipped
      a.emit(A.auipc(2, 0), A.addi(2, 2, 17)); // x2 = CODE + 25, odd
      a.emit(A.jalr(3, 2, 0), A.addi(6, 0, 1)); // jumps to CODE + 24, over the addi
      a.emit(A.addi(7, 0, 7));
    });
    const x = m.cpu.hart(0).x;
    expect(x[1]).toBe(CODE + 4n);
    expect(x[5]).toBe(0n);
    expect(x[3]).toBe(CODE + 20n);
    expect(x[6]).toBe(0n);
    expect(x[7]).toBe(7n);
  });

  it("loads sign- or zero-extend and stores write only their width", () => {
    const data = 0x8000_2000n;
    const m = exec((a) => {
      a.emit(...A.li(1, data), ...A.li(2, 0x8182_8384_8586_8788n));
      a.emit(A.sd(2, 1, 0), A.lb(3, 1, 0), A.lbu(4, 1, 0), A.lh(5, 1, 0), A.lhu(6, 1, 0));
      a.emit(A.lw(7, 1, 0), A.lwu(8, 1, 0), A.ld(9, 1, 0));
      a.emit(A.sb(0, 1, 8), A.sh(0, 1, 16), A.sw(0, 1, 24));
    }, (m) => {
      m.write64(data + 8n, -1n);
      m.write64(data + 16n, -1n);
      m.write64(data + 24n, -1n);
    });
    const x = m.cpu.hart(0).x;
    expect(x[3]).toBe(0xffff_ffff_ffff_ff88n);
    expect(x[4]).toBe(0x88n);
    expect(x[5]).toBe(0xffff_ffff_ffff_8788n);
    expect(x[6]).toBe(0x8788n);
    expect(x[7]).toBe(0xffff_ffff_8586_8788n);
    expect(x[8]).toBe(0x8586_8788n);
    expect(x[9]).toBe(0x8182_8384_8586_8788n);
    expect(m.read64(data + 8n)).toBe(0xffff_ffff_ffff_ff00n);
    expect(m.read64(data + 16n)).toBe(0xffff_ffff_ffff_0000n);
    expect(m.read64(data + 24n)).toBe(0xffff_ffff_0000_0000n);
  });

  it("performs misaligned loads and stores, also across a page boundary", () => {
    const m = exec((a) => {
      a.emit(...A.li(1, 0x8000_2ffdn), ...A.li(2, 0x1122_3344_5566_7788n));
      a.emit(A.sd(2, 1, 0), A.ld(3, 1, 0), A.lw(4, 1, 1), A.lh(5, 1, 3));
    });
    const x = m.cpu.hart(0).x;
    expect(x[3]).toBe(0x1122_3344_5566_7788n);
    expect(x[4]).toBe(0x4455_6677n);
    expect(x[5]).toBe(0x4455n);
    expect(m.read64(0x8000_2ff8n) >> 40n).toBe(0x66_7788n);
  });

  it("returns Budget when the budget runs out and resumes where it stopped", () => {
    const m = makeMachine();
    m.code(CODE, (a) => a.emit(A.addi(1, 1, 1), A.jal(0, -4)));
    expect(m.cpu.run(0, 1001)).toBe(ExitReason.Budget);
    expect(m.cpu.hart(0).x[1]).toBe(501n);
    expect(m.cpu.hart(0).lastRetired).toBe(1001n);
    expect(m.cpu.run(0, 1)).toBe(ExitReason.Budget);
    expect(m.cpu.hart(0).x[1]).toBe(501n);
    expect(m.cpu.run(0, 1)).toBe(ExitReason.Budget);
    expect(m.cpu.hart(0).x[1]).toBe(502n);
    expect(m.cpu.hart(0).instret).toBe(1003n);
  });

  it("returns Htif after a store of any size to tohost, with the store done", () => {
    const m = makeMachine();
    m.code(CODE, (a) => a.emit(...A.li(1, TOHOST + 4n), A.addi(2, 0, 0x55), A.sb(2, 1, 0), A.addi(3, 0, 1)));
    expect(m.cpu.run(0, 100)).toBe(ExitReason.Htif);
    expect(m.read64(TOHOST)).toBe(0x55n << 32n);
    expect(m.cpu.hart(0).x[3]).toBe(0n);
  });

  it("sends non-RAM accesses to the MMIO bus with address, size and value", () => {
    const m = makeMachine();
    m.devices.set(0x1000_0000, 0xabn);
    m.devices.set(0x1000_0008, 0x1234_5678_9abc_def0n);
    m.code(CODE, (a) => {
      a.emit(...A.li(1, 0x1000_0000n), A.lb(2, 1, 0), A.addi(3, 0, 0x66), A.sb(3, 1, 0), A.ld(4, 1, 8));
      a.emit(...A.li(31, TOHOST), A.sd(0, 31, 0));
    });
    expect(m.runToHtif()).toBe(ExitReason.Htif);
    const x = m.cpu.hart(0).x;
    expect(x[2]).toBe(0xffff_ffff_ffff_ffabn);
    expect(x[4]).toBe(0x1234_5678_9abc_def0n);
    expect(m.accesses).toEqual([
      { kind: "read", addr: 0x1000_0000, size: 1 },
      { kind: "write", addr: 0x1000_0000, size: 1, value: 0x66 },
      { kind: "read", addr: 0x1000_0008, size: 8 },
    ]);
  });

  it("splits misaligned MMIO loads into two aligned reads and stores into bytes, as QEMU 7.2", () => {
    const m = makeMachine();
    m.devices.set(0x1000_0000, 0x4433_2211n);
    m.devices.set(0x1000_0004, 0x8877_6655n);
    for (let i = 0; i < 4; i++) m.devices.set(0x1000_0010 + i, 0n);
    m.code(CODE, (a) => {
      a.emit(...A.li(1, 0x1000_0000n), A.lw(2, 1, 2), ...A.li(3, 0x0102_0304n), A.sw(3, 1, 0x11));
      a.emit(...A.li(31, TOHOST), A.sd(0, 31, 0));
    });
    m.devices.set(0x1000_0014, 0n);
    expect(m.runToHtif()).toBe(ExitReason.Htif);
    expect(m.cpu.hart(0).x[2]).toBe(0x6655_4433n);
    expect(m.accesses.map((x) => [x.kind, x.addr, x.size])).toEqual([
      ["read", 0x1000_0000, 4], ["read", 0x1000_0004, 4],
      ["write", 0x1000_0011, 1], ["write", 0x1000_0012, 1], ["write", 0x1000_0013, 1], ["write", 0x1000_0014, 1],
    ]);
    expect(m.accesses.slice(2).map((x) => x.value)).toEqual([4, 3, 2, 1]);
  });

  it("returns Stop after the instruction during which stopRequest was set", () => {
    const m = makeMachine();
    m.devices.set(0x1000_0000, 0n);
    m.onWrite = () => {
      m.cpu.hart(0).stopRequest = true;
    };
    m.code(CODE, (a) => a.emit(...A.li(1, 0x1000_0000n), A.sw(0, 1, 0), A.addi(2, 0, 1)));
    expect(m.cpu.run(0, 100)).toBe(ExitReason.Stop);
    expect(m.cpu.hart(0).pc).toBe(CODE + 8n);
    expect(m.cpu.hart(0).x[2]).toBe(0n);
    expect(m.cpu.hart(0).stopRequest).toBe(false);
  });

  it("keeps RAM_BASE-relative data in the region's host memory", () => {
    const m = exec((a) => a.emit(...A.li(1, BigInt(RAM_BASE) + 0x3000n), A.addi(2, 0, 42), A.sd(2, 1, 0)));
    expect(m.read64(BigInt(RAM_BASE) + 0x3000n)).toBe(42n);
  });
});
