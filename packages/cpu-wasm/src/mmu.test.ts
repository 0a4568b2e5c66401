import { describe, it, expect } from "vitest";
import * as L from "./layout.ts";
import { trapProgram, enterMode, makeMachine, prologue, CODE, HANDLER, TOHOST, RAM_BASE, RAM_HOST, type TestMachine } from "./testing/machine.ts";
import * as A from "./rv-asm.ts";

const V = 1n, R = 2n, W = 4n, X = 8n, U = 16n, AC = 64n, D = 128n;
const ROOT = 0x8010_0000n;
const VA = 0x1_0000_0000n; // a test window outside the identity-mapped gigapage
const PA = 0x8020_0000n;

/** Page tables built from TypeScript in test RAM. */
class PageTables {
  #next = ROOT + 0x1000n;
  constructor(readonly m: TestMachine, readonly levels: 3 | 4 | 5) {}

  /** Maps `va` to `pa` with a leaf at `level` (0 = 4 KiB), creating tables as needed. */
  map(va: bigint, pa: bigint, flags: bigint, level = 0): bigint {
    let table = ROOT;
    for (let l = this.levels - 1; l > level; l--) {
      const pteAddr = table + ((va >> BigInt(12 + 9 * l)) & 511n) * 8n;
      let pte = this.m.read64(pteAddr);
      if ((pte & V) === 0n) {
        const t = this.#next;
        this.#next += 0x1000n;
        pte = ((t >> 12n) << 10n) | V;
        this.m.write64(pteAddr, pte);
      }
      table = (pte >> 10n) << 12n;
    }
    const leaf = table + ((va >> BigInt(12 + 9 * level)) & 511n) * 8n;
    this.m.write64(leaf, ((pa >> 12n) << 10n) | flags);
    return leaf;
  }

  satp(): bigint {
    return satpFor(this.levels);
  }
}

function satpFor(levels: 3 | 4 | 5): bigint {
  return (BigInt(levels + 5) << 60n) | (ROOT >> 12n);
}

/**
 * Runs `body` in `mode` with paging on: RAM is identity-mapped by a gigapage (with U set when
 * mode is U so that user code can run) and `setup` adds mappings.
 */
function paged(
  mode: 0 | 1,
  body: (a: A.Asm) => void,
  setup: (pt: PageTables, m: TestMachine) => void = () => {},
  opts: { levels?: 3 | 4 | 5; mstatus?: bigint } = {},
): TestMachine {
  let pt: PageTables | undefined;
  return trapProgram((a) => {
    if (opts.mstatus) a.emit(...A.li(5, opts.mstatus), A.csrrs(0, L.CSR_MSTATUS, 5));
    a.emit(...A.li(5, satpFor(opts.levels ?? 3)), A.csrrw(0, L.CSR_SATP, 5));
    enterMode(a, mode);
    body(a);
    a.emit(A.ECALL);
  }, (m) => {
    pt = new PageTables(m, opts.levels ?? 3);
    pt.map(BigInt(RAM_BASE), BigInt(RAM_BASE), V | R | W | X | AC | D | (mode === 0 ? U : 0n), 2);
    setup(pt, m);
  });
}

const cause = (m: TestMachine): bigint[] => [m.cpu.hart(0).csr("mcause"), m.cpu.hart(0).csr("mtval")];

describe("Sv39 and Sv48 translation", () => {
  it("translates 4 KiB pages and sets A on loads, A and D on stores", () => {
    let leaf = 0n;
    const m = paged(1, (a) => {
      a.emit(...A.li(1, VA + 0x10n), A.ld(2, 1, 0), A.addi(3, 0, 9), A.sd(3, 1, 8));
    }, (pt, m) => {
      leaf = pt.map(VA, PA, V | R | W);
      m.write64(PA + 0x10n, 0x1234n);
    });
    expect(m.cpu.hart(0).csr("mcause")).toBe(9n);
    expect(m.cpu.hart(0).x[2]).toBe(0x1234n);
    expect(m.read64(PA + 0x18n)).toBe(9n);
    expect(m.read64(leaf) & (AC | D)).toBe(AC | D);
  });

  it("sets only A when a page is only read", () => {
    let leaf = 0n;
    const m = paged(1, (a) => a.emit(...A.li(1, VA), A.ld(2, 1, 0)), (pt) => {
      leaf = pt.map(VA, PA, V | R | W);
    });
    expect(m.cpu.hart(0).csr("mcause")).toBe(9n);
    expect(m.read64(leaf) & (AC | D)).toBe(AC);
  });

  it("translates megapages, gigapages, Sv48 and Sv57 walks", () => {
    const m = paged(1, (a) => {
      a.emit(...A.li(1, VA + 0x1f_f008n), A.ld(2, 1, 0), ...A.li(1, 0x2_0000_0000n + 0x20_1000n), A.ld(3, 1, 0));
    }, (pt, m) => {
      pt.map(VA, 0x8000_0000n + 0x20_0000n, V | R | AC, 1);
      pt.map(0x2_0000_0000n, 0x8000_0000n, V | R | AC, 2);
      m.write64(0x8000_0000n + 0x20_0000n + 0x1f_f008n, 77n);
      m.write64(0x8000_0000n + 0x20_1000n, 88n);
    });
    expect([m.cpu.hart(0).x[2], m.cpu.hart(0).x[3]]).toEqual([77n, 88n]);

    const va48 = 0x7fff_0000_0000n;
    const m48 = paged(1, (a) => a.emit(...A.li(1, va48), A.ld(2, 1, 0)), (pt, m) => {
      pt.map(va48, PA, V | R | AC);
      m.write64(PA, 99n);
    }, { levels: 4 });
    expect(m48.cpu.hart(0).csr("mcause")).toBe(9n);
    expect(m48.cpu.hart(0).x[2]).toBe(99n);

    const va57 = 0xff_0000_0000_0000n; // canonical only with 57 bits
    const m57 = paged(1, (a) => a.emit(...A.li(1, va57), A.ld(2, 1, 0)), (pt, m) => {
      pt.map(va57, PA, V | R | AC);
      m.write64(PA, 57n);
    }, { levels: 5 });
    expect(m57.cpu.hart(0).csr("mcause")).toBe(9n);
    expect(m57.cpu.hart(0).x[2]).toBe(57n);
  });

  it("raises page faults with the virtual address for each invalid PTE case", () => {
    const cases: [string, bigint, number][] = [
      ["invalid", R | W, 0], ["W without R", V | W, 0], ["reserved bit 63", V | R | W | (1n << 63n), 0],
      ["reserved bit 54", V | R | (1n << 54n), 0],
    ];
    for (const [, flags] of cases) {
      const m = paged(1, (a) => a.emit(...A.li(1, VA + 8n), A.ld(2, 1, 0)), (pt) => pt.map(VA, PA, flags));
      expect(cause(m)).toEqual([13n, VA + 8n]);
    }
    const st = paged(1, (a) => a.emit(...A.li(1, VA + 8n), A.sd(2, 1, 0)), (pt) => pt.map(VA, PA, V | R));
    expect(cause(st)).toEqual([15n, VA + 8n]);
    const fetch = paged(1, (a) => a.emit(...A.li(1, VA + 4n), A.jalr(0, 1, 0)), (pt) => pt.map(VA, PA, V | R | W));
    expect(cause(fetch)).toEqual([12n, VA + 4n]);
  });

  it("faults on non-canonical addresses, misaligned superpages and a pointer at the last level", () => {
    const nonCanonical = 0x0000_0040_0000_0000n;
    const m1 = paged(1, (a) => a.emit(...A.li(1, nonCanonical), A.ld(2, 1, 0)));
    expect(cause(m1)).toEqual([13n, nonCanonical]);
    const m2 = paged(1, (a) => a.emit(...A.li(1, VA), A.ld(2, 1, 0)), (pt) => pt.map(VA, PA + 0x1000n, V | R, 1));
    expect(cause(m2)).toEqual([13n, VA]);
    const m3 = paged(1, (a) => a.emit(...A.li(1, VA), A.ld(2, 1, 0)), (pt) => pt.map(VA, PA, V));
    expect(cause(m3)).toEqual([13n, VA]);
  });

  it("applies the U bit: S needs SUM for U pages and never fetches them, U cannot touch S pages", () => {
    const noSum = paged(1, (a) => a.emit(...A.li(1, VA), A.ld(2, 1, 0)), (pt) => pt.map(VA, PA, V | R | U));
    expect(cause(noSum)).toEqual([13n, VA]);
    const sum = paged(1, (a) => a.emit(...A.li(1, VA), A.ld(2, 1, 0)), (pt, m) => {
      pt.map(VA, PA, V | R | U);
      m.write64(PA, 5n);
    }, { mstatus: BigInt(L.MSTATUS_SUM) });
    expect(sum.cpu.hart(0).csr("mcause")).toBe(9n);
    expect(sum.cpu.hart(0).x[2]).toBe(5n);
    const fetch = paged(1, (a) => a.emit(...A.li(1, VA), A.jalr(0, 1, 0)), (pt) => pt.map(VA, PA, V | R | X | U), { mstatus: BigInt(L.MSTATUS_SUM) });
    expect(cause(fetch)).toEqual([12n, VA]);
    const user = paged(0, (a) => a.emit(...A.li(1, VA), A.ld(2, 1, 0)), (pt) => pt.map(VA, PA, V | R));
    expect(cause(user)).toEqual([13n, VA]);
  });

  it("MXR makes execute-only pages readable", () => {
    const noMxr = paged(1, (a) => a.emit(...A.li(1, VA), A.ld(2, 1, 0)), (pt) => pt.map(VA, PA, V | X));
    expect(cause(noMxr)).toEqual([13n, VA]);
    const mxr = paged(1, (a) => a.emit(...A.li(1, VA), A.ld(2, 1, 0)), (pt, m) => {
      pt.map(VA, PA, V | X);
      m.write64(PA, 6n);
    }, { mstatus: BigInt(L.MSTATUS_MXR) });
    expect(mxr.cpu.hart(0).x[2]).toBe(6n);
  });

  it("MPRV makes M-mode loads and stores use MPP's translation", () => {
    let pt: PageTables | undefined;
    const m = trapProgram((a) => {
      a.emit(...A.li(5, satpFor(3)), A.csrrw(0, L.CSR_SATP, 5));
      a.emit(...A.li(5, (1n << 11n) | BigInt(L.MSTATUS_MPRV)), A.csrrs(0, L.CSR_MSTATUS, 5));
      a.emit(...A.li(1, VA), A.ld(2, 1, 0), A.csrrc(0, L.CSR_MSTATUS, 5), A.ld(3, 1, 0));
    }, (m) => {
      pt = new PageTables(m, 3);
      pt.map(VA, PA, V | R | AC);
      m.write64(PA, 42n);
    });
    expect(m.cpu.hart(0).x[2]).toBe(42n);
    expect(cause(m)).toEqual([5n, VA]); // without MPRV, VA is a physical address with nothing there
  });

  it("uses the new mapping after sfence.vma", () => {
    // Remap from the guest: write the leaf PTE, then sfence.vma.
    const m2 = paged(1, (a) => {
      a.emit(...A.li(1, VA), A.ld(2, 1, 0));
      a.emit(...A.li(7, leafAddr), ...A.li(8, (((PA + 0x1000n) >> 12n) << 10n) | V | R | AC), A.sd(8, 7, 0));
      a.emit(A.sfenceVma(0, 0), A.ld(3, 1, 0));
    }, (pt, m) => {
      expect(pt.map(VA, PA, V | R | AC)).toBe(leafAddr);
      m.write64(PA, 1n);
      m.write64(PA + 0x1000n, 2n);
    });
    expect([m2.cpu.hart(0).x[2], m2.cpu.hart(0).x[3]]).toEqual([1n, 2n]);
  });

  it("checks both pages of a misaligned store before writing any byte", () => {
    const m = paged(1, (a) => {
      a.emit(...A.li(1, VA + 0xffcn), ...A.li(2, -1n), A.sd(2, 1, 0));
    }, (pt) => {
      pt.map(VA, PA, V | R | W | AC | D);
      pt.map(VA + 0x1000n, PA + 0x1000n, V | R | AC);
    });
    expect(cause(m)).toEqual([15n, VA + 0x1000n]);
    expect(m.read64(PA + 0xff8n)).toBe(0n);
  });
});

// The leaf PTE of VA in the tables paged() builds: ROOT -> L1 (ROOT + 0x1000) -> L0 (ROOT + 0x2000).
const leafAddr = ROOT + 0x2000n;

describe("PMP", () => {
  it("S and U accesses fail when no PMP entry matches", () => {
    const m = trapProgram((a) => {
      // Replace the prologue's open entry with one 4-byte entry elsewhere.
      a.emit(...A.li(5, 0x1000n >> 2n), A.csrrw(0, L.CSR_PMPADDR0, 5), A.addi(5, 0, 0x17), A.csrrw(0, L.CSR_PMPCFG0, 5));
      enterMode(a, 1);
      a.emit(A.addi(0, 0, 0));
    });
    expect(m.cpu.hart(0).csr("mcause")).toBe(1n);
  });

  it("refuses mret to a lower mode while no PMP entry is active, as QEMU 7.2", () => {
    let at = 0n;
    const m = trapProgram((a) => {
      a.emit(A.csrrw(0, L.CSR_PMPCFG0, 0));
      a.emit(...A.li(5, 0x1800n), A.csrrc(0, L.CSR_MSTATUS, 5), ...A.li(5, 1n << 11n), A.csrrs(0, L.CSR_MSTATUS, 5));
      a.emit(A.auipc(5, 0), A.addi(5, 5, 16), A.csrrw(0, L.CSR_MEPC, 5));
      at = a.here();
      a.emit(A.MRET);
    });
    expect(cause(m)).toEqual([2n, BigInt(A.MRET)]);
    expect(m.cpu.hart(0).csr("mepc")).toBe(at);
  });

  it("page-faults on A, D or U in a non-leaf PTE, as QEMU 7.2", () => {
    for (const bit of [AC, D, U]) {
      const m = paged(1, (a) => a.emit(...A.li(1, VA), A.ld(2, 1, 0)), (pt, m) => {
        pt.map(VA, PA, V | R | AC);
        const l1 = ROOT + ((VA >> 30n) & 511n) * 8n;
        m.write64(l1, m.read64(l1) | bit);
      });
      expect(cause(m)).toEqual([13n, VA]);
    }
  });

  it("enforces TOR, NA4 and NAPOT permissions for S and lets M through unless locked", () => {
    const data = 0x8000_2000n;
    const setup = (a: A.Asm, cfg1: bigint) => {
      // Entry 0: NA4 at data, no permissions. Entry 1: TOR [0, data + 0x1000) with cfg1.
      // Entry 2: NAPOT over everything, RWX.
      a.emit(...A.li(5, data >> 2n), A.csrrw(0, L.CSR_PMPADDR0, 5));
      a.emit(...A.li(5, (data + 0x1000n) >> 2n), A.csrrw(0, L.CSR_PMPADDR0 + 1, 5));
      a.emit(...A.li(5, 0x3f_ffff_ffff_ffffn), A.csrrw(0, L.CSR_PMPADDR0 + 2, 5));
      a.emit(...A.li(5, (0x1fn << 16n) | (cfg1 << 8n) | 0x10n), A.csrrw(0, L.CSR_PMPCFG0, 5));
    };
    // S load of the NA4 word: no permission.
    const m1 = trapProgram((a) => { setup(a, 0x0fn); enterMode(a, 1); a.emit(...A.li(1, data), A.lw(2, 1, 0)); });
    expect(cause(m1)).toEqual([5n, data]);
    // The word next to it falls in TOR with R|W|X: fine; a store with TOR R only fails.
    const m2 = trapProgram((a) => { setup(a, 0x09n); enterMode(a, 1); a.emit(...A.li(1, data), A.lw(2, 1, 4), A.sw(2, 1, 8)); });
    expect(cause(m2)).toEqual([7n, data + 8n]);
    // An access straddling the NA4 entry fails (partial match).
    const m3 = trapProgram((a) => { setup(a, 0x0fn); enterMode(a, 1); a.emit(...A.li(1, data), A.ld(2, 1, 4 - 8 + 4)); });
    expect(cause(m3)).toEqual([5n, data]);
    // M ignores unlocked entries, but not locked ones.
    const m4 = trapProgram((a) => { setup(a, 0x0fn); a.emit(...A.li(1, data), A.lw(2, 1, 0), A.ECALL); });
    expect(m4.cpu.hart(0).csr("mcause")).toBe(11n);
    const m5 = trapProgram((a) => {
      setup(a, 0x0fn);
      a.emit(A.addi(5, 0, 0x80), A.csrrs(0, L.CSR_PMPCFG0, 5), ...A.li(1, data), A.lw(2, 1, 0));
    });
    expect(cause(m5)).toEqual([5n, data]);
  });

  it("ignores writes to locked entries and to the address below a locked TOR entry", () => {
    const m = makeMachine();
    const h = m.cpu.hart(0);
    h.setCsr("pmpaddr0", 0x100n);
    h.setCsr("pmpaddr1", 0x200n);
    h.setCsr("pmpcfg0", 0x8b00n); // entry 1: L | TOR | R | X
    h.setCsr("pmpaddr0", 0x111n);
    h.setCsr("pmpaddr1", 0x222n);
    h.setCsr("pmpcfg0", 0x1fn);
    expect([h.csr("pmpaddr0"), h.csr("pmpaddr1"), h.csr("pmpcfg0")]).toEqual([0x100n, 0x200n, 0x8b1fn]);
    expect(() => h.csr(L.CSR_PMPCFG0 + 1)).toThrow(RangeError);
  });

  it("checks page-table walks against PMP", () => {
    let pt: PageTables | undefined;
    const m = trapProgram((a) => {
      // Entry 0: NAPOT 4 KiB over the root table, no permission; entry 1: everything.
      a.emit(...A.li(5, (ROOT >> 2n) | 0x1ffn), A.csrrw(0, L.CSR_PMPADDR0, 5));
      a.emit(...A.li(5, 0x3f_ffff_ffff_ffffn), A.csrrw(0, L.CSR_PMPADDR0 + 1, 5));
      a.emit(...A.li(5, 0x1f18n), A.csrrw(0, L.CSR_PMPCFG0, 5));
      a.emit(...A.li(5, satpFor(3)), A.csrrw(0, L.CSR_SATP, 5));
      enterMode(a, 1);
    }, (m) => {
      pt = new PageTables(m, 3);
      pt.map(BigInt(RAM_BASE), BigInt(RAM_BASE), V | R | W | X | AC | D, 2);
    });
    expect(m.cpu.hart(0).csr("mcause")).toBe(1n);
  });
});

describe("dirty tracking", () => {
  const BITMAP = 0x10_0000 + 0x1_0000 * 31; // a spare hart block in the test memory

  it("marks each stored-to page in every client bitmap and counts newly dirtied pages once", () => {
    const m = makeMachine({ dirtyBitmaps: [BITMAP, BITMAP + 0x100] });
    m.code(HANDLER, (a) => a.emit(...A.li(31, TOHOST), A.sd(0, 31, 0)));
    m.code(CODE, (a) => {
      prologue(a);
      a.emit(...A.li(1, 0x8000_5000n), A.sd(1, 1, 0), A.sd(1, 1, 8), A.lui(2, 0x1000), A.op("add", 2, 1, 2), A.sw(1, 2, 0), A.amo("amoadd", "d", 0, 1, 1, 0));
      a.emit(A.ECALL);
    });
    new Uint8Array(m.cpu.memory.buffer, BITMAP, 0x200).fill(0);
    expect(m.cpu.run(0, 1000)).toBe(2);
    const bm = new DataView(m.cpu.memory.buffer);
    for (const base of [BITMAP, BITMAP + 0x100]) {
      // pages 5 and 6; page 0 (tohost); HANDLER's page is only read
      expect(bm.getBigUint64(base, true)).toBe((1n << 5n) | (1n << 6n) | 1n);
    }
    expect(m.cpu.hart(0).dirtyPages).toBe(3n);
  });

  it("notices a cleared bitmap after a store-TLB flush request", () => {
    const m = makeMachine({ dirtyBitmaps: [BITMAP] });
    m.code(CODE, (a) => a.emit(...A.li(1, 0x8000_5000n), A.sd(1, 1, 0), A.jal(0, -4)));
    new Uint8Array(m.cpu.memory.buffer, BITMAP, 0x100).fill(0);
    m.cpu.run(0, 100);
    const bm = new DataView(m.cpu.memory.buffer);
    expect(bm.getBigUint64(BITMAP, true)).toBe(1n << 5n);
    bm.setBigUint64(BITMAP, 0n, true);
    m.cpu.run(0, 100);
    expect(bm.getBigUint64(BITMAP, true)).toBe(0n); // the store TLB still holds the page
    m.cpu.hart(0).requestStoreFlush();
    m.cpu.run(0, 100);
    expect(bm.getBigUint64(BITMAP, true)).toBe(1n << 5n);
    expect(m.cpu.hart(0).dirtyPages).toBe(2n);
    void RAM_HOST;
  });
});
