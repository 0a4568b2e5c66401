import { describe, it, expect } from "vitest";
import {
  CpuIsaError,
  DEFAULT_CPU_ISA,
  cpuIsa,
  formatCpuIsaProperties,
  isaFromOffBits,
  isaOffBits,
  isaString,
  misaForIsa,
  parseCpuIsaProperties,
  type CpuIsa,
} from "./isa.ts";
import * as L from "./layout.ts";
import { trapProgram, prologue, makeMachine, runProgram, CODE, HANDLER, TOHOST, type TestMachine } from "./testing/machine.ts";
import * as A from "./rv-asm.ts";

function csrs(m: TestMachine, ...names: string[]): bigint[] {
  return names.map((n) => m.cpu.hart(0).csr(n));
}

/** Runs `insn` (after `before`) on a hart with `isa`; returns [mcause, mepc, mtval] and the machine. */
function trapOf(isa: Partial<CpuIsa>, emit: (a: A.Asm) => void): { m: TestMachine; at: bigint; trap: bigint[] } {
  let at = 0n;
  const m = trapProgram((a) => {
    at = a.here();
    emit(a);
    a.emit(A.addi(30, 0, 0x55)); // not reached when the instruction traps
  }, (mm) => mm.cpu.setIsa(0, isa));
  return { m, at, trap: csrs(m, "mcause", "mepc", "mtval") };
}

/**
 * Runs `insn` alone, mtvec set by the host: for an ISA without the CSRs the prologue writes
 * (zicsr, pmp). Returns where it sat and its trap.
 */
function trapWithoutPrologue(isa: Partial<CpuIsa>, insn: number): { at: bigint; trap: bigint[] } {
  let at = 0n;
  const m = makeMachine();
  m.code(CODE, (a) => {
    at = a.here();
    a.emit(insn);
  });
  m.code(HANDLER, (a) => a.emit(...A.li(31, TOHOST), A.sd(0, 31, 0)));
  m.cpu.setIsa(0, isa);
  m.cpu.hart(0).setCsr("mtvec", HANDLER);
  expect(m.runToHtif()).toBe(2);
  return { at, trap: csrs(m, "mcause", "mepc", "mtval") };
}

const MISA_FULL = 0x8000_0000_0014_1105n;

describe("CPU ISA configuration", () => {
  it("the default is today's RV64IMACSU hart and its misa", () => {
    const m = makeMachine();
    expect(m.cpu.isa(0)).toEqual(DEFAULT_CPU_ISA);
    expect(m.cpu.hart(0).csr("misa")).toBe(MISA_FULL);
    expect(misaForIsa(DEFAULT_CPU_ISA)).toBe(MISA_FULL);
    expect(isaString(DEFAULT_CPU_ISA)).toBe("rv64imac_zicsr_zifencei_zihintpause_sstc");
  });

  it("misa drops exactly the letters turned off and keeps I and MXL", () => {
    const m = makeMachine();
    for (const [props, misa] of [
      [{ m: false }, MISA_FULL & ~(1n << 12n)],
      [{ a: false }, MISA_FULL & ~1n],
      [{ c: false }, MISA_FULL & ~4n],
      [{ m: false, a: false, c: false }, 0x8000_0000_0014_0100n],
      [{ sstc: false, zifencei: false, pmp: false, mmu: false }, MISA_FULL],
    ] as [Partial<CpuIsa>, bigint][]) {
      m.cpu.setIsa(0, { ...DEFAULT_CPU_ISA, ...props });
      expect(m.cpu.hart(0).csr("misa")).toBe(misa);
      expect(misaForIsa(cpuIsa(props))).toBe(misa);
    }
  });

  it("reset keeps the configuration and misa", () => {
    const m = makeMachine();
    m.cpu.setIsa(0, { c: false, m: false });
    m.cpu.reset(0, CODE);
    expect(m.cpu.isa(0)).toEqual({ ...DEFAULT_CPU_ISA, c: false, m: false });
    expect(m.cpu.hart(0).csr("misa")).toBe(MISA_FULL & ~(4n | (1n << 12n)));
  });

  it("the ISA string follows QEMU 7.2's order and omits what is off", () => {
    expect(isaString(cpuIsa({ c: false, m: false }))).toBe("rv64ia_zicsr_zifencei_zihintpause_sstc");
    expect(isaString(cpuIsa({ sstc: false, zifencei: false }))).toBe("rv64imac_zicsr_zihintpause");
    expect(isaString(cpuIsa({ zicsr: false, sstc: false, pmp: false, mmu: false, a: false }))).toBe("rv64imc_zifencei_zihintpause");
  });

  it("H_ISA_OFF bits round-trip and 0 means every extension on", () => {
    expect(isaOffBits(DEFAULT_CPU_ISA)).toBe(0);
    const isa = cpuIsa({ c: false, pmp: false });
    expect(isaOffBits(isa)).toBe(L.ISA_OFF_C | L.ISA_OFF_PMP);
    expect(isaFromOffBits(isaOffBits(isa))).toEqual(isa);
  });

  it("impossible sets are refused with the property named, as QEMU's realize", () => {
    expect(() => cpuIsa({ u: false })).toThrow(/Setting S extension without U extension is illegal/);
    expect(() => cpuIsa({ s: false })).toThrow(/s=off is not supported/);
    expect(() => cpuIsa({ zicsr: false })).toThrow(/sstc=on requires zicsr=on/);
    expect(() => cpuIsa({ zicsr: false, sstc: false })).toThrow(/pmp=on requires zicsr=on/);
    expect(() => cpuIsa({ zicsr: false, sstc: false, pmp: false })).toThrow(/mmu=on requires zicsr=on/);
    expect(() => cpuIsa({ f: false } as Partial<CpuIsa>)).toThrow(CpuIsaError);
    const m = makeMachine();
    expect(() => m.cpu.setIsa(0, { u: false })).toThrow(/u=on/);
    expect(m.cpu.isa(0)).toEqual(DEFAULT_CPU_ISA);
  });

  it("QEMU-style property lists parse, case-insensitively, and format back", () => {
    const isa = parseCpuIsaProperties("c=off,M=false,Zifencei=off");
    expect(isa).toEqual({ ...DEFAULT_CPU_ISA, c: false, m: false, zifencei: false });
    expect(formatCpuIsaProperties(isa)).toBe("m=off,c=off,zifencei=off");
    expect(parseCpuIsaProperties(["c=on"], isa).c).toBe(true);
    expect(() => parseCpuIsaProperties("c=maybe")).toThrow(/'c' must be on or off/);
    expect(() => parseCpuIsaProperties("zfh=on")).toThrow(/unknown property 'zfh'/);
  });
});

describe("m=off", () => {
  it("every MUL/DIV/REM and W form is an illegal instruction with the bits in mtval", () => {
    for (const name of ["mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu", "mulw", "divw", "divuw", "remw", "remuw"]) {
      const insn = A.op(name, 3, 1, 2);
      const { m, at, trap } = trapOf({ m: false }, (a) => a.emit(A.addi(1, 0, 6), A.addi(2, 0, 7), insn));
      expect(trap, name).toEqual([2n, at + 8n, BigInt(insn >>> 0)]);
      expect(m.cpu.hart(0).x[3], name).toBe(0n);
    }
  });

  it("the rest of OP still runs", () => {
    const m = runProgram((a) => a.emit(A.addi(1, 0, 6), A.addi(2, 0, 7), A.op("sub", 3, 1, 2), A.op("sraw", 4, 2, 1)), (mm) => mm.cpu.setIsa(0, { m: false }));
    expect(m.cpu.hart(0).x[3]).toBe(BigInt.asUintN(64, -1n));
    expect(m.cpu.hart(0).x[4]).toBe(0n);
  });
});

describe("a=off", () => {
  it("LR, SC and AMOs are illegal instructions and leave memory alone", () => {
    const DATA = 0x8000_2000n;
    for (const insn of [A.amo("lr", "w", 3, 1, 0), A.amo("sc", "d", 3, 1, 2), A.amo("amoadd", "w", 3, 1, 2), A.amo("amoswap", "d", 3, 1, 2)]) {
      let at = 0n;
      const m = trapProgram((a) => {
        a.emit(...A.li(1, DATA), A.addi(2, 0, 9));
        at = a.here();
        a.emit(insn);
      }, (mm) => {
        mm.cpu.setIsa(0, { a: false });
        mm.write64(DATA, 5n);
      });
      expect(csrs(m, "mcause", "mepc", "mtval")).toEqual([2n, at, BigInt(insn >>> 0)]);
      expect(m.read64(DATA)).toBe(5n);
    }
  });
});

describe("c=off", () => {
  it("every 16-bit encoding is an illegal instruction with the 16 bits in mtval, c.ebreak included", () => {
    for (const c of [A.C.addi(1, 1), A.C.li(5, 3), A.C.mv(5, 6), A.C.ebreak(), A.C.j(8), A.C.lw(8, 9, 0)]) {
      let at = 0n;
      const m = trapProgram((a) => {
        at = a.here();
        a.emit16(c, 0x0001);
      }, (mm) => mm.cpu.setIsa(0, { c: false }));
      expect(csrs(m, "mcause", "mepc", "mtval")).toEqual([2n, at, BigInt(c)]);
    }
  });

  it("jal, jalr and taken branches to an address with bit 1 set raise misaligned fetch without writing rd", () => {
    const cases: [string, (a: A.Asm) => number, (at: bigint) => bigint][] = [
      ["jal", () => A.jal(7, 6), (at) => at + 6n],
      ["beq", () => A.beq(0, 0, -10), (at) => at - 10n],
      ["bne", () => A.bne(1, 0, 14), (at) => at + 14n],
      ["bltu", () => A.bltu(0, 1, 2), (at) => at + 2n],
      ["jalr", () => A.jalr(7, 1, 3), () => ((CODE + 0x100n + 3n) & ~1n)],
    ];
    for (const [name, insn, target] of cases) {
      let at = 0n;
      const m = trapProgram((a) => {
        a.emit(...A.li(1, CODE + 0x100n), ...A.li(7, 0x77n));
        at = a.here();
        a.emit(insn(a));
      }, (mm) => mm.cpu.setIsa(0, { c: false }));
      expect(csrs(m, "mcause", "mepc", "mtval"), name).toEqual([0n, at, target(at)]);
      expect(m.cpu.hart(0).x[7], name).toBe(0x77n);
    }
  });

  it("aligned jumps, untaken branches and jalr clearing bit 0 run normally", () => {
    const m = runProgram((a) => {
      a.emit(A.addi(1, 0, 1));
      a.emit(A.beq(1, 0, 6)); // not taken: the target's alignment does not matter
      a.emit(A.jal(5, 8), A.addi(9, 0, 1)); // skips the addi
      a.emit(A.auipc(6, 0), A.jalr(7, 6, 9)); // target = auipc + 8 (bit 0 cleared)
      a.emit(A.addi(10, 0, 1));
    }, (mm) => mm.cpu.setIsa(0, { c: false }));
    expect(m.cpu.hart(0).x[9]).toBe(0n);
    expect(m.cpu.hart(0).x[10]).toBe(1n);
  });

  it("mret to an mepc with bit 1 set raises misaligned fetch at the mret; mepc keeps bit 1 (QEMU 7.2)", () => {
    let at = 0n;
    const m = trapProgram((a) => {
      a.emit(...A.li(5, CODE + 0x102n), A.csrrw(0, L.CSR_MEPC, 5), A.csrrs(6, L.CSR_MEPC, 0));
      at = a.here();
      a.emit(A.MRET);
    }, (mm) => mm.cpu.setIsa(0, { c: false }));
    expect(m.cpu.hart(0).x[6]).toBe(CODE + 0x102n);
    expect(csrs(m, "mcause", "mepc", "mtval")).toEqual([0n, at, CODE + 0x102n]);
  });

  it("with C on the same compressed code runs", () => {
    const m = runProgram((a) => a.emit16(A.C.li(5, 3), A.C.addi(5, 4)));
    expect(m.cpu.hart(0).x[5]).toBe(7n);
  });
});

describe("zifencei=off", () => {
  it("fence.i is illegal and fence is not", () => {
    const { at, trap } = trapOf({ zifencei: false }, (a) => a.emit(A.FENCE, A.FENCE_I));
    expect(trap).toEqual([2n, at + 4n, BigInt(A.FENCE_I)]);
  });
});

describe("zicsr=off", () => {
  it("every CSR instruction is illegal", () => {
    for (const insn of [A.csrrs(5, L.CSR_MSTATUS, 0), A.csrrwi(0, L.CSR_MSCRATCH, 1), A.csrrs(5, L.CSR_CYCLE, 0)]) {
      const { at, trap } = trapWithoutPrologue({ zicsr: false, sstc: false, pmp: false, mmu: false }, insn);
      expect(trap).toEqual([2n, at, BigInt(insn >>> 0)]);
    }
  });
});

describe("sstc=off", () => {
  it("stimecmp is illegal even in M-mode", () => {
    const insn = A.csrrs(5, L.CSR_STIMECMP, 0);
    const { at, trap } = trapOf({ sstc: false }, (a) => a.emit(insn));
    expect(trap).toEqual([2n, at, BigInt(insn >>> 0)]);
  });

  it("menvcfg.STCE stays writable, as on QEMU 7.2, but mip.STIP stays writable too", () => {
    const m = runProgram((a) => {
      a.emit(A.addi(5, 0, 1), A.slli(5, 5, 63), A.csrrs(0, L.CSR_MENVCFG, 5), A.csrrs(6, L.CSR_MENVCFG, 0));
      a.emit(A.addi(5, 0, 0x20), A.csrrs(0, L.CSR_MIP, 5), A.csrrs(7, L.CSR_MIP, 0));
    }, (mm) => mm.cpu.setIsa(0, { sstc: false }));
    expect(m.cpu.hart(0).x[6]! >> 63n).toBe(1n);
    expect(m.cpu.hart(0).x[7]! & 0x20n).toBe(0x20n);
  });

  it("with Sstc, setting STCE makes mip.STIP read-only", () => {
    const m = runProgram((a) => {
      a.emit(A.addi(5, 0, 1), A.slli(5, 5, 63), A.csrrs(0, L.CSR_MENVCFG, 5));
      a.emit(A.addi(5, 0, 0x20), A.csrrs(0, L.CSR_MIP, 5), A.csrrs(7, L.CSR_MIP, 0));
    }, (mm) => {
      mm.cpu.mtime = 0n;
      mm.cpu.hart(0).setCsr("stimecmp", -1n);
    });
    expect(m.cpu.hart(0).x[7]! & 0x20n).toBe(0n);
  });
});

describe("mmu=off", () => {
  it("satp ignores writes and reads 0, so S-mode addresses stay physical", () => {
    const DATA = 0x8000_3000n;
    let mode = 0n;
    const m = runProgram((a) => {
      prologue(a);
      // Sv39 with a root table at 0 would fault every S access if it were taken.
      a.emit(A.addi(5, 0, 8), A.slli(5, 5, 60), A.csrrw(0, L.CSR_SATP, 5), A.csrrs(6, L.CSR_SATP, 0));
      a.emit(...A.li(5, 0x800n), A.csrrs(0, L.CSR_MSTATUS, 5)); // MPP = S
      a.emit(A.auipc(5, 0), A.addi(5, 5, 16), A.csrrw(0, L.CSR_MEPC, 5), A.MRET);
      a.emit(...A.li(8, DATA), A.ld(9, 8, 0));
    }, (mm) => {
      mm.cpu.setIsa(0, { mmu: false });
      mm.write64(DATA, 0x1234n);
    });
    mode = m.cpu.hart(0).x[6]!;
    expect(mode).toBe(0n);
    expect(m.cpu.hart(0).priv).toBe(1);
    expect(m.cpu.hart(0).x[9]).toBe(0x1234n);
  });
});

describe("pmp=off", () => {
  it("pmpcfg and pmpaddr are illegal", () => {
    for (const insn of [A.csrrs(5, L.CSR_PMPCFG0, 0), A.csrrw(0, L.CSR_PMPADDR0 + 3, 5)]) {
      const { at, trap } = trapWithoutPrologue({ pmp: false }, insn);
      expect(trap).toEqual([2n, at, BigInt(insn >>> 0)]);
    }
    expect(() => makeMachine().cpu.hart(0).csr("pmpcfg0")).not.toThrow();
  });

  it("mret goes to U without any PMP entry and U reaches all of RAM", () => {
    const DATA = 0x8000_3000n;
    const program = (a: A.Asm): void => {
      a.emit(A.addi(5, 0, 3), A.slli(5, 5, 11), A.csrrc(0, L.CSR_MSTATUS, 5)); // MPP = U
      a.emit(A.auipc(5, 0), A.addi(5, 5, 16), A.csrrw(0, L.CSR_MEPC, 5), A.MRET);
      a.emit(...A.li(8, DATA), A.ld(9, 8, 0));
    };
    const m = runProgram(program, (mm) => {
      mm.cpu.setIsa(0, { pmp: false });
      mm.write64(DATA, 0x77n);
    });
    expect(m.cpu.hart(0).priv).toBe(0);
    expect(m.cpu.hart(0).x[9]).toBe(0x77n);
    // With PMP and no entry, QEMU 7.2 refuses that mret.
    const withPmp = makeMachine();
    withPmp.code(CODE, program);
    withPmp.code(HANDLER, (a) => a.emit(...A.li(31, TOHOST), A.sd(0, 31, 0)));
    withPmp.cpu.hart(0).setCsr("mtvec", HANDLER);
    expect(withPmp.runToHtif()).toBe(2);
    expect(withPmp.cpu.hart(0).csr("mcause")).toBe(2n);
  });
});

describe("per-hart configuration", () => {
  it("each hart runs with its own set: the same code traps on a hart without C only", () => {
    for (const offHart of [0, 1]) {
      const m = makeMachine({ harts: 2 });
      m.code(CODE, (a) => a.emit16(A.C.li(5, 3), A.C.addi(5, 4)).emit(A.jal(0, 0)));
      m.cpu.setIsa(offHart, { c: false });
      for (const h of [0, 1]) {
        m.cpu.reset(h, CODE);
        m.cpu.hart(h).setCsr("mtvec", HANDLER);
        m.cpu.run(h, 3);
      }
      const onHart = 1 - offHart;
      expect(m.cpu.hart(onHart).x[5]).toBe(7n);
      expect(m.cpu.hart(onHart).csr("misa") & 4n).toBe(4n);
      expect(m.cpu.hart(offHart).x[5]).toBe(0n);
      expect(m.cpu.hart(offHart).csr("mcause")).toBe(2n);
      expect(m.cpu.hart(offHart).csr("misa") & 4n).toBe(0n);
    }
  });
});
