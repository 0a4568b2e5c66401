import { describe, it, expect } from "vitest";
import { ExitReason } from "./mod.ts";
import * as L from "./layout.ts";
import { trapProgram, enterMode, prologue, makeMachine, CODE, HANDLER, TOHOST, type TestMachine } from "./testing/machine.ts";
import * as A from "./rv-asm.ts";

const IRQ = 1n << 63n;

/** Address of the next instruction the builder will emit. */
function mark(a: A.Asm): bigint {
  return a.here();
}

function csrs(m: TestMachine, ...names: string[]): bigint[] {
  return names.map((n) => m.cpu.hart(0).csr(n));
}

describe("synchronous exceptions", () => {
  it("ecall reports the privilege it came from in mcause, with mepc at the ecall and mtval 0", () => {
    for (const [mode, cause] of [[3, 11n], [1, 9n], [0, 8n]] as const) {
      let at = 0n;
      const m = trapProgram((a) => {
        enterMode(a, mode);
        at = mark(a);
        a.emit(A.ECALL);
      });
      expect(csrs(m, "mcause", "mepc", "mtval")).toEqual([cause, at, 0n]);
      expect(m.cpu.hart(0).priv).toBe(3);
      expect((m.cpu.hart(0).csr("mstatus") >> 11n) & 3n).toBe(BigInt(mode));
    }
  });

  it("illegal instructions put the instruction bits in mtval, 16 bits for compressed ones", () => {
    const cases: [number, boolean, bigint][] = [
      [0xffff_ffff, false, 0xffff_ffffn], [A.csrrw(1, 0x7ff, 0), false, BigInt(A.csrrw(1, 0x7ff, 0))],
      [0x2001, true, 0x2001n] /* c.addiw x0 */, [0x0000, true, 0n], [A.encI(0x03, 7, 1, 0, 0), false, BigInt(A.encI(0x03, 7, 1, 0, 0))],
    ];
    for (const [insn, compressed, tval] of cases) {
      let at = 0n;
      const m = trapProgram((a) => {
        at = mark(a);
        if (compressed) a.emit16(insn);
        else a.emit(insn);
      });
      expect(csrs(m, "mcause", "mepc", "mtval")).toEqual([2n, at, tval]);
    }
  });

  it("ebreak and c.ebreak raise breakpoint with mtval 0", () => {
    for (const c of [false, true]) {
      let at = 0n;
      const m = trapProgram((a) => {
        at = mark(a);
        if (c) a.emit16(A.C.ebreak());
        else a.emit(A.EBREAK);
      });
      expect(csrs(m, "mcause", "mepc", "mtval")).toEqual([3n, at, 0n]);
    }
  });

  it("loads and stores where nothing is mapped raise access faults with the address", () => {
    const m1 = trapProgram((a) => a.emit(...A.li(1, 0x4000_0010n), A.ld(2, 1, 0)));
    expect(csrs(m1, "mcause", "mtval")).toEqual([5n, 0x4000_0010n]);
    // Misaligned: QEMU 7.2 reads the two aligned doublewords and reports the first one's address.
    const m3 = trapProgram((a) => a.emit(...A.li(1, 0x4000_0010n), A.ld(2, 1, 1)));
    expect(csrs(m3, "mcause", "mtval")).toEqual([5n, 0x4000_0010n]);
    const m2 = trapProgram((a) => a.emit(...A.li(1, 0x4000_0010n), A.sw(2, 1, -4)));
    expect(csrs(m2, "mcause", "mtval")).toEqual([7n, 0x4000_000cn]);
  });

  it("fetching from MMIO or from nothing raises an instruction access fault", () => {
    const m = trapProgram((a) => a.emit(...A.li(1, 0x1000_0000n), A.jalr(0, 1, 0)), (m) => m.devices.set(0x1000_0000, 0n));
    expect(csrs(m, "mcause", "mepc", "mtval")).toEqual([1n, 0x1000_0000n, 0x1000_0000n]);
  });

  it("a faulting load leaves its destination register unchanged", () => {
    const m = trapProgram((a) => {
      a.emit(...A.li(8, 0x4000_0000n), A.ld(8, 8, 0));
      a.emit16(A.C.lw(8, 8, 4));
    });
    expect(csrs(m, "mcause", "mtval")).toEqual([5n, 0x4000_0000n]);
    expect(m.cpu.hart(0).x[8]).toBe(0x4000_0000n);
  });

  it("fetching from a never-fetchable address faults instead of reading the guard page", () => {
    for (const target of [0n, 0x7fff_ffff_ffff_f010n]) {
      const m = trapProgram((a) => a.emit(...A.li(1, target), A.jalr(0, 1, 0)));
      expect(csrs(m, "mcause", "mepc", "mtval")).toEqual([1n, target, target]);
    }
  });

  it("executes a 32-bit instruction that crosses a page boundary", () => {
    const m = trapProgram((a) => {
      a.emit(...A.li(1, 0x8000_2ffen), A.jalr(0, 1, 0));
    }, (m) => {
      m.code(0x8000_2ffen, (a) => a.emit(A.addi(7, 0, 77), A.EBREAK));
    });
    expect(csrs(m, "mcause", "mepc")).toEqual([3n, 0x8000_3002n]);
    expect(m.cpu.hart(0).x[7]).toBe(77n);
  });

  it("misaligned atomics raise address-misaligned: load for lr, store/AMO for sc and AMOs", () => {
    const m1 = trapProgram((a) => a.emit(...A.li(1, 0x8000_2004n), A.amo("lr", "d", 2, 1, 0)));
    expect(csrs(m1, "mcause", "mtval")).toEqual([4n, 0x8000_2004n]);
    const m2 = trapProgram((a) => a.emit(...A.li(1, 0x8000_2002n), A.amo("amoadd", "w", 2, 1, 0)));
    expect(csrs(m2, "mcause", "mtval")).toEqual([6n, 0x8000_2002n]);
    const m3 = trapProgram((a) => a.emit(...A.li(1, 0x8000_2002n), A.amo("sc", "w", 2, 1, 0)));
    expect(csrs(m3, "mcause", "mtval")).toEqual([6n, 0x8000_2002n]);
  });

  it("AMOs on MMIO and stores to read-only regions are store access faults", () => {
    const m = trapProgram((a) => a.emit(...A.li(1, 0x1000_0000n), A.amo("amoswap", "w", 2, 1, 0)), (m) => m.devices.set(0x1000_0000, 0n));
    expect(csrs(m, "mcause", "mtval")).toEqual([7n, 0x1000_0000n]);
    expect(m.accesses).toEqual([]);
  });

  it("stores to a read-only region are store access faults and loads from it work", () => {
    const m = trapProgram((a) => {
      a.emit(...A.li(1, 0x1000n), A.ld(2, 1, 8), A.sd(2, 1, 0));
    }, (m) => {
      m.cpu.setRegions([
        { base: 0x8000_0000, size: 0x40_0000, hostOffset: 0x40_0000 },
        { base: 0x1000, size: 0x1000, hostOffset: 0x30_0000, readonly: true },
      ]);
      new DataView(m.cpu.memory.buffer).setBigUint64(0x30_0008, 0x1234n, true);
    });
    expect(csrs(m, "mcause", "mtval")).toEqual([7n, 0x1000n]);
    expect(m.cpu.hart(0).x[2]).toBe(0x1234n);
  });

  it("uses vectored mtvec only for interrupts", () => {
    const m = trapProgram((a) => {
      a.emit(...A.li(5, HANDLER | 1n), A.csrrw(0, L.CSR_MTVEC, 5), A.ECALL);
    });
    expect(m.cpu.hart(0).csr("mcause")).toBe(11n);
  });
});

describe("CSRs", () => {
  it("reading an unimplemented CSR or writing a read-only one is an illegal instruction", () => {
    for (const insn of [A.csrrs(1, 0x7c0, 0), A.csrrw(0, L.CSR_MHARTID, 1), A.csrrs(0, L.CSR_CYCLE, 1), A.csrrwi(0, L.CSR_MVENDORID, 0), A.csrrs(1, L.CSR_PMPCFG0 + 1, 0)]) {
      const m = trapProgram((a) => a.emit(insn));
      expect(csrs(m, "mcause", "mtval")).toEqual([2n, BigInt(insn)]);
    }
  });

  it("csrrs/csrrc with x0 and the immediate forms with 0 do not write", () => {
    const m = trapProgram((a) => {
      a.emit(A.csrrs(1, L.CSR_MHARTID, 0), A.csrrsi(2, L.CSR_MVENDORID, 0), A.csrrc(3, L.CSR_MISA, 0));
      a.emit(A.csrrwi(0, L.CSR_MSCRATCH, 21), A.csrrsi(4, L.CSR_MSCRATCH, 2), A.csrrci(5, L.CSR_MSCRATCH, 1), A.csrrs(6, L.CSR_MSCRATCH, 0));
      a.emit(A.ECALL);
    });
    const x = m.cpu.hart(0).x;
    expect([x[1], x[2], x[4], x[5], x[6]]).toEqual([0n, 0n, 21n, 23n, 22n]);
    expect(x[3]).toBe((2n << 62n) | 0x14_1105n);
  });

  it("lower privileges cannot touch higher-privilege CSRs", () => {
    const m = trapProgram((a) => {
      enterMode(a, 1);
      a.emit(A.csrrs(1, L.CSR_MSTATUS, 0));
    });
    expect(csrs(m, "mcause")).toEqual([2n]);
    expect((m.cpu.hart(0).csr("mstatus") >> 11n) & 3n).toBe(1n);
  });

  it("counters need mcounteren in S and U, and scounteren too in U", () => {
    const run = (mode: 0 | 1, mcounteren: number, scounteren: number, csr: number) => trapProgram((a) => {
      a.emit(A.addi(5, 0, mcounteren), A.csrrw(0, L.CSR_MCOUNTEREN, 5), A.addi(5, 0, scounteren), A.csrrw(0, L.CSR_SCOUNTEREN, 5));
      enterMode(a, mode);
      a.emit(A.csrrs(1, csr, 0), A.ECALL);
    }, (m) => {
      m.cpu.mtime = 0x1234n;
    });
    expect(run(1, 0, 0, L.CSR_CYCLE).cpu.hart(0).csr("mcause")).toBe(2n);
    expect(run(1, 1, 0, L.CSR_CYCLE).cpu.hart(0).csr("mcause")).toBe(9n);
    expect(run(0, 2, 0, L.CSR_TIME).cpu.hart(0).csr("mcause")).toBe(2n);
    const ok = run(0, 2, 2, L.CSR_TIME);
    expect(ok.cpu.hart(0).csr("mcause")).toBe(8n);
    expect(ok.cpu.hart(0).x[1]).toBe(0x1234n);
    expect(run(0, 7, 3, L.CSR_INSTRET).cpu.hart(0).csr("mcause")).toBe(2n);
    expect(run(1, 0, 0, L.CSR_HPMCOUNTER3 + 1).cpu.hart(0).csr("mcause")).toBe(2n);
  });

  it("minstret and mcycle count retired instructions and are writable", () => {
    const m = trapProgram((a) => {
      a.emit(A.csrrs(1, L.CSR_MINSTRET, 0), A.addi(0, 0, 0), A.addi(0, 0, 0), A.csrrs(2, L.CSR_INSTRET, 0));
      a.emit(...A.li(5, 1000n), A.csrrw(0, L.CSR_MINSTRET, 5), A.csrrs(3, L.CSR_MINSTRET, 0), A.csrrs(4, L.CSR_CYCLE, 0));
    });
    const x = m.cpu.hart(0).x;
    expect(x[2]! - x[1]!).toBe(3n);
    expect(x[3]).toBe(1001n);
    expect(x[4]! >= x[2]!).toBe(true);
  });

  it("mstatus keeps SXL at 2 and FS at 0, and like QEMU 7.2 stores VS, nonzero UXL and MPP = 2", () => {
    const m = makeMachine();
    const h = m.cpu.hart(0);
    expect((h.csr("mstatus") >> 32n) & 0xfn).toBe(0xan);
    h.setCsr("mstatus", 0xffff_ffff_ffff_ffffn);
    const ms = h.csr("mstatus");
    expect((ms >> 32n) & 0xfn).toBe(0xbn); // SXL 2, UXL 3
    expect((ms >> 13n) & 3n).toBe(0n);
    expect((ms >> 9n) & 3n).toBe(3n);
    expect(ms >> 63n).toBe(1n); // SD: VS dirty
    expect((ms >> 11n) & 3n).toBe(3n);
    h.setCsr("mstatus", 2n << 11n);
    expect((h.csr("mstatus") >> 11n) & 3n).toBe(2n);
    expect((h.csr("mstatus") >> 32n) & 0xfn).toBe(0xbn); // UXL 0 written: unchanged
    h.setCsr("sstatus", 0n);
    expect(h.csr("mstatus") & 0x2n).toBe(0n);
    h.setCsr("mstatus", 0x8n | 0x2n | (1n << 18n) | (2n << 32n));
    expect(h.csr("sstatus")).toBe(0x2n | (1n << 18n) | (2n << 32n));
  });

  it("sie and sip show only delegated bits; mideleg and medeleg keep the delegable ones", () => {
    const m = makeMachine();
    const h = m.cpu.hart(0);
    h.setCsr("mideleg", 0xffffn);
    expect(h.csr("mideleg")).toBe(0x2666n); // QEMU 7.2 also takes the VS and LCOFI bits
    h.setCsr("medeleg", 0xffff_ffffn);
    expect(h.csr("medeleg")).toBe(0xf0_bfffn);
    h.setCsr("mie", 0xffffn);
    expect(h.csr("mie")).toBe(0x3eeen);
    expect(h.csr("sie")).toBe(0x222n);
    h.setCsr("mip", 0x222n);
    expect(h.csr("sip")).toBe(0x222n);
    h.setCsr("sip", 0n);
    expect(h.csr("mip") & 0x222n).toBe(0x220n);
  });

  it("satp ignores writes of unsupported modes and accepts Sv39, Sv48, Sv57 and bare", () => {
    const m = makeMachine();
    const h = m.cpu.hart(0);
    h.setCsr("satp", (8n << 60n) | 0x80002n);
    expect(h.csr("satp")).toBe((8n << 60n) | 0x80002n);
    h.setCsr("satp", (11n << 60n) | 0x1n);
    expect(h.csr("satp")).toBe((8n << 60n) | 0x80002n);
    h.setCsr("satp", (10n << 60n) | 0x1n);
    expect(h.csr("satp")).toBe((10n << 60n) | 0x1n);
    h.setCsr("satp", (9n << 60n) | 0x3n);
    expect(h.csr("satp")).toBe((9n << 60n) | 0x3n);
    h.setCsr("satp", 0n);
    expect(h.csr("satp")).toBe(0n);
  });

  it("has QEMU 7.2's 16 programmable counters (3..18) holding what was written and all 29 event selectors", () => {
    const m = makeMachine();
    const h = m.cpu.hart(0);
    h.setCsr("mhpmcounter3", 5n);
    h.setCsr("mhpmevent18", 7n);
    h.setCsr("mhpmevent31", 9n);
    expect([h.csr("mhpmcounter3"), h.csr("hpmcounter3"), h.csr("mhpmevent18"), h.csr("mhpmevent31")]).toEqual([5n, 5n, 7n, 9n]);
    expect(() => h.csr("mhpmcounter19")).toThrow(RangeError);
    expect(() => h.csr("hpmcounter19")).toThrow(RangeError);
  });

  it("machine information registers read as on QEMU 7.2.22", () => {
    const m = makeMachine({ harts: 2 });
    expect(csrs(m, "mvendorid", "marchid", "mimpid", "mhartid", "mconfigptr")).toEqual([0n, 0x70216n, 0x70216n, 0n, 0n]);
    expect(m.cpu.hart(1).csr("mhartid")).toBe(1n);
    expect(m.cpu.hart(0).csr("misa")).toBe((2n << 62n) | (1n << 0n) | (1n << 2n) | (1n << 8n) | (1n << 12n) | (1n << 18n) | (1n << 20n));
  });
});

describe("privilege changes and delegation", () => {
  it("delegated exceptions from U go to S with scause, sepc, stval and SPP", () => {
    const sHandler = 0x8000_9000n;
    let at = 0n;
    const m = trapProgram((a) => {
      a.emit(...A.li(5, sHandler), A.csrrw(0, L.CSR_STVEC, 5), ...A.li(5, 0x100n | 0x4n), A.csrrw(0, L.CSR_MEDELEG, 5));
      a.emit(A.csrrsi(0, L.CSR_MSTATUS, 2)); // SIE
      enterMode(a, 0);
      at = mark(a);
      a.emit(A.ECALL);
    }, (m) => m.code(sHandler, (a) => a.emit(A.csrrs(10, L.CSR_SSTATUS, 0), A.ECALL)));
    const h = m.cpu.hart(0);
    expect(csrs(m, "scause", "sepc", "stval")).toEqual([8n, at, 0n]);
    expect(h.x[10]! & 0x122n).toBe(0x20n); // SPP = U, SPIE = 1, SIE = 0
    expect(csrs(m, "mcause")).toEqual([9n]); // then the ecall from S went to M
  });

  it("exceptions in M are never delegated", () => {
    const m = trapProgram((a) => a.emit(...A.li(5, 0xfffn), A.csrrw(0, L.CSR_MEDELEG, 5), A.EBREAK));
    expect(csrs(m, "mcause", "scause")).toEqual([3n, 0n]);
  });

  it("mret restores MIE from MPIE, sets MPIE and MPP = U and clears MPRV when leaving M", () => {
    const m = trapProgram((a) => {
      a.emit(...A.li(5, 0x80n | (1n << 17n)), A.csrrs(0, L.CSR_MSTATUS, 5));
      enterMode(a, 1);
      a.emit(A.ECALL);
    });
    const ms = m.cpu.hart(0).csr("mstatus");
    // After the ecall from S: MPP = S, MPIE = MIE after mret (1), MIE = 0, MPRV cleared by mret.
    expect((ms >> 11n) & 3n).toBe(1n);
    expect((ms >> 7n) & 1n).toBe(1n);
    expect((ms >> 17n) & 1n).toBe(0n);
  });

  it("sret is illegal in U and in S with TSR; mret is illegal below M", () => {
    const m1 = trapProgram((a) => { enterMode(a, 0); a.emit(A.SRET); });
    expect(csrs(m1, "mcause", "mtval")).toEqual([2n, BigInt(A.SRET)]);
    const m2 = trapProgram((a) => { a.emit(...A.li(5, 1n << 22n), A.csrrs(0, L.CSR_MSTATUS, 5)); enterMode(a, 1); a.emit(A.SRET); });
    expect(csrs(m2, "mcause")).toEqual([2n]);
    const m3 = trapProgram((a) => { enterMode(a, 1); a.emit(A.MRET); });
    expect(csrs(m3, "mcause")).toEqual([2n]);
  });

  it("sret returns to SPP with SIE from SPIE", () => {
    let target = 0n;
    const m = trapProgram((a) => {
      enterMode(a, 1);
      a.emit(...A.li(5, 0x20n), A.csrrs(0, L.CSR_SSTATUS, 5)); // SPIE = 1, SPP = U
      a.emit(A.auipc(5, 0), A.addi(5, 5, 16), A.csrrw(0, L.CSR_SEPC, 5), A.SRET);
      target = mark(a);
      a.emit(A.csrrs(1, L.CSR_CYCLE, 0)); // illegal in U without counteren: proves U
    });
    expect(csrs(m, "mcause", "mepc")).toEqual([2n, target]);
    expect((m.cpu.hart(0).csr("mstatus") >> 11n) & 3n).toBe(0n);
  });

  it("sfence.vma is illegal in U and in S with TVM, and satp is illegal in S with TVM", () => {
    const m1 = trapProgram((a) => { enterMode(a, 0); a.emit(A.sfenceVma(0, 0)); });
    expect(csrs(m1, "mcause")).toEqual([2n]);
    const m2 = trapProgram((a) => { a.emit(...A.li(5, 1n << 20n), A.csrrs(0, L.CSR_MSTATUS, 5)); enterMode(a, 1); a.emit(A.sfenceVma(0, 0)); });
    expect(csrs(m2, "mcause")).toEqual([2n]);
    const m3 = trapProgram((a) => { a.emit(...A.li(5, 1n << 20n), A.csrrs(0, L.CSR_MSTATUS, 5)); enterMode(a, 1); a.emit(A.csrrs(1, L.CSR_SATP, 0)); });
    expect(csrs(m3, "mcause")).toEqual([2n]);
    const m4 = trapProgram((a) => { enterMode(a, 1); a.emit(A.sfenceVma(0, 0), A.csrrs(1, L.CSR_SATP, 0), A.ECALL); });
    expect(csrs(m4, "mcause")).toEqual([9n]);
  });
});

describe("interrupts", () => {
  it("takes the machine timer interrupt when mtime reaches mtimecmp with MIE and MTIE set", () => {
    const m = makeMachine();
    m.code(HANDLER, (a) => a.emit(...A.li(31, TOHOST), A.sd(0, 31, 0)));
    m.code(CODE, (a) => {
      prologue(a);
      a.emit(...A.li(5, 0x80n), A.csrrs(0, L.CSR_MIE, 5), A.csrrsi(0, L.CSR_MSTATUS, 8));
      a.emit(A.addi(1, 1, 1), A.jal(0, -4));
    });
    m.cpu.hart(0).mtimecmp = 1000n;
    m.cpu.mtime = 999n;
    expect(m.cpu.run(0, 200)).toBe(ExitReason.Budget);
    expect(m.cpu.hart(0).csr("mip") & 0x80n).toBe(0n);
    m.cpu.mtime = 1000n;
    expect(m.cpu.run(0, 200)).toBe(ExitReason.Htif);
    expect(m.cpu.hart(0).csr("mcause")).toBe(IRQ | 7n);
    expect(m.cpu.hart(0).csr("mip") & 0x80n).toBe(0x80n);
  });

  it("takes simultaneous interrupts of one level lowest number first, as QEMU 7.2 without AIA", () => {
    const order: bigint[] = [];
    let pending = 0xaaa;
    while (pending !== 0) {
      const m = trapProgram((a) => {
        a.emit(...A.li(5, 0xaaan), A.csrrw(0, L.CSR_MIE, 5), A.csrrsi(0, L.CSR_MSTATUS, 8), A.addi(0, 0, 0));
      }, (m) => {
        m.cpu.hart(0).mipExternal = pending & 0xa08;
        m.cpu.hart(0).setCsr("mip", BigInt(pending & 0x222));
        m.cpu.hart(0).mtimecmp = pending & 0x80 ? 0n : -1n;
      });
      const cause = m.cpu.hart(0).csr("mcause");
      expect(cause & IRQ).toBe(IRQ);
      order.push(cause & 63n);
      pending &= ~(1 << Number(cause & 63n));
    }
    expect(order).toEqual([1n, 3n, 5n, 7n, 9n, 11n]);
  });

  it("delegated interrupts go to S, are masked by SIE in S and always taken from U", () => {
    const sHandler = 0x8000_9000n;
    const build = (mode: 0 | 1, sie: boolean) => trapProgram((a) => {
      a.emit(...A.li(5, sHandler), A.csrrw(0, L.CSR_STVEC, 5), ...A.li(5, 0x222n), A.csrrw(0, L.CSR_MIDELEG, 5), A.csrrw(0, L.CSR_MIE, 5));
      if (sie) a.emit(A.csrrsi(0, L.CSR_MSTATUS, 2));
      a.emit(A.addi(5, 0, 0x20), A.csrrs(0, L.CSR_MIP, 5)); // STIP from M
      enterMode(a, mode);
      a.emit(A.addi(0, 0, 0), A.ECALL);
    }, (m) => m.code(sHandler, (a) => a.emit(A.csrrs(10, L.CSR_SCAUSE, 0), ...A.li(31, TOHOST), A.sd(0, 31, 0))));
    expect(build(1, false).cpu.hart(0).csr("mcause")).toBe(9n);
    expect(build(1, true).cpu.hart(0).x[10]).toBe(IRQ | 5n);
    expect(build(0, false).cpu.hart(0).x[10]).toBe(IRQ | 5n);
  });

  it("does not take S interrupts in M even with SIE set", () => {
    const m = trapProgram((a) => {
      a.emit(...A.li(5, 0x222n), A.csrrw(0, L.CSR_MIDELEG, 5), A.csrrw(0, L.CSR_MIE, 5), A.csrrsi(0, L.CSR_MSTATUS, 10));
      a.emit(A.addi(5, 0, 0x2), A.csrrs(0, L.CSR_MIP, 5), A.addi(0, 0, 0), A.ECALL);
    });
    expect(m.cpu.hart(0).csr("mcause")).toBe(11n);
  });

  it("WFI exits with Wfi, then wakes on a pending enabled interrupt even with MIE clear", () => {
    const m = makeMachine();
    m.code(CODE, (a) => {
      prologue(a);
      a.emit(...A.li(5, 0x800n), A.csrrw(0, L.CSR_MIE, 5), A.WFI, A.addi(1, 0, 7), ...A.li(31, TOHOST), A.sd(0, 31, 0));
    });
    expect(m.cpu.run(0, 1000)).toBe(ExitReason.Wfi);
    expect(m.cpu.hart(0).wfi).toBe(true);
    expect(m.cpu.run(0, 1000)).toBe(ExitReason.Wfi);
    expect(m.cpu.hart(0).lastRetired).toBe(0n);
    m.cpu.hart(0).mipExternal = 0x800;
    expect(m.cpu.run(0, 1000)).toBe(ExitReason.Htif);
    expect(m.cpu.hart(0).x[1]).toBe(7n);
    expect(m.cpu.hart(0).wfi).toBe(false);
  });

  it("WFI is illegal in U, and in S when TW is set", () => {
    const m1 = trapProgram((a) => { enterMode(a, 0); a.emit(A.WFI); });
    expect(csrs(m1, "mcause")).toEqual([2n]);
    const m2 = trapProgram((a) => { a.emit(...A.li(5, 1n << 21n), A.csrrs(0, L.CSR_MSTATUS, 5)); enterMode(a, 1); a.emit(A.WFI); });
    expect(csrs(m2, "mcause", "mtval")).toEqual([2n, BigInt(A.WFI)]);
  });

  it("readable SEIP is the software bit OR the external line", () => {
    const m = makeMachine();
    const h = m.cpu.hart(0);
    h.mipExternal = 0x200;
    expect(h.csr("mip") & 0x200n).toBe(0x200n);
    h.setCsr("mip", 0n);
    expect(h.csr("mip") & 0x200n).toBe(0x200n);
    h.mipExternal = 0;
    expect(h.csr("mip") & 0x200n).toBe(0n);
  });
});

describe("Sstc", () => {
  it("stimecmp needs mcounteren.TM and menvcfg.STCE below M", () => {
    const access = (tm: boolean, stce: boolean) => trapProgram((a) => {
      if (tm) a.emit(A.csrrsi(0, L.CSR_MCOUNTEREN, 2));
      if (stce) a.emit(...A.li(5, 1n << 63n), A.csrrs(0, L.CSR_MENVCFG, 5));
      enterMode(a, 1);
      a.emit(A.addi(1, 0, 33), A.csrrw(0, L.CSR_STIMECMP, 1), A.csrrs(2, L.CSR_STIMECMP, 0), A.ECALL);
    }).cpu.hart(0);
    expect(access(false, true).csr("mcause")).toBe(2n);
    expect(access(true, false).csr("mcause")).toBe(2n);
    const ok = access(true, true);
    expect(ok.csr("mcause")).toBe(9n);
    expect(ok.x[2]).toBe(33n);
  });

  it("sets STIP when an armed stimecmp is reached, not before it is written, as QEMU 7.2", () => {
    const m = makeMachine();
    const h = m.cpu.hart(0);
    h.setCsr("menvcfg", 1n << 63n);
    m.cpu.mtime = 1000n;
    expect(h.csr("mip") & 0x20n).toBe(0n); // stimecmp = 0 but never written
    h.setCsr("stimecmp", 1500n);
    h.mtimecmp = 2000n;
    expect(h.timerDeadline).toBe(1500n);
    h.setCsr("mip", 0x20n); // not writable with STCE
    expect(h.csr("mip") & 0x20n).toBe(0n);
    m.cpu.mtime = 1500n;
    expect(h.csr("mip") & 0x20n).toBe(0x20n);
    expect(h.timerDeadline).toBe(2000n); // fired: no longer armed
    h.setCsr("stimecmp", 1400n); // already due: STIP stays set
    expect(h.csr("mip") & 0x20n).toBe(0x20n);
    h.setCsr("stimecmp", 1_000_000n); // a later time clears STIP
    expect(h.csr("mip") & 0x20n).toBe(0n);
    h.setCsr("menvcfg", 0n);
    h.setCsr("mip", 0x20n);
    expect(h.csr("mip") & 0x20n).toBe(0x20n);
  });

  it("delivers the stimecmp timer to S through mideleg", () => {
    const sHandler = 0x8000_9000n;
    const m = trapProgram((a) => {
      a.emit(...A.li(5, sHandler), A.csrrw(0, L.CSR_STVEC, 5), ...A.li(5, 0x20n), A.csrrw(0, L.CSR_MIDELEG, 5), A.csrrw(0, L.CSR_MIE, 5));
      a.emit(A.csrrsi(0, L.CSR_MCOUNTEREN, 2), ...A.li(5, 1n << 63n), A.csrrs(0, L.CSR_MENVCFG, 5));
      enterMode(a, 1);
      a.emit(A.csrrsi(0, L.CSR_SSTATUS, 2), A.addi(1, 0, 100), A.csrrw(0, L.CSR_STIMECMP, 1));
      a.emit(A.addi(0, 0, 0), A.jal(0, -4));
    }, (m) => {
      m.cpu.mtime = 100n;
      m.code(sHandler, (a) => a.emit(A.csrrs(10, L.CSR_SCAUSE, 0), ...A.li(31, TOHOST), A.sd(0, 31, 0)));
    });
    expect(m.cpu.hart(0).x[10]).toBe(IRQ | 5n);
  });
});
