// Lockstep differential tests against the installed QEMU 7.2 (skipped when it is missing):
// random RV64IMAC programs, random CSR traffic, and page-table corner cases.
import { describe, it, expect } from "vitest";
import { hasQemu, qemuTrace, lockstep, IMAGE_BASE } from "./testing/qemu.ts";
import * as A from "./rv-asm.ts";

const qemu = hasQemu();

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 8;
  };
}

/** Stores 0x5555 to the sifive_test finisher: QEMU exits. */
function finish(a: A.Asm): void {
  a.emit(A.lui(29, 0x10_0000), ...A.li(28, 0x5555n), A.sw(28, 29, 0));
}

const INTERESTING = [0n, 1n, -1n, 0x8000_0000_0000_0000n, 0x7fff_ffff_ffff_ffffn, 0x8000_0000n, 0xffff_ffffn,
  0x7fff_ffffn, -0x8000_0000n, 2n, -2n, 63n, 31n, 32n];
const BUF = 0x8010_0000n;

function randomProgram(seed: number, n: number): Uint8Array {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length]!;
  const r64 = (): bigint => BigInt.asUintN(64, (BigInt(rnd()) << 40n) ^ (BigInt(rnd()) << 20n) ^ BigInt(rnd()));
  // x2 and x8 point into the buffer (c.*sp and c.lw/c.sd bases), x31 is the buffer, x29 a temporary.
  const reserved = new Set([0, 2, 8, 29, 31]);
  const free = Array.from({ length: 32 }, (_, i) => i).filter((i) => !reserved.has(i));
  const cfree = free.filter((r) => r >= 8 && r <= 15);
  const reg = () => pick(free);
  const any = () => rnd() % 32;
  const rops = ["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and", "mul", "mulh", "mulhsu", "mulhu",
    "div", "divu", "rem", "remu", "addw", "subw", "sllw", "srlw", "sraw", "mulw", "divw", "divuw", "remw", "remuw"];
  const iops = [A.addi, A.slti, A.sltiu, A.xori, A.ori, A.andi, A.addiw];
  const amos = ["amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin", "amomax", "amominu", "amomaxu"];
  const a = new A.Asm(IMAGE_BASE);
  for (const r of free) a.emit(...A.li(r, rnd() % 3 === 0 ? pick(INTERESTING) : r64()));
  a.emit(...A.li(31, BUF), ...A.li(8, BUF + 1024n), ...A.li(2, BUF + 1024n));
  for (let i = 0; i < n; i++) {
    const k = rnd() % 20;
    if (k < 5) a.emit(A.op(pick(rops), reg(), any(), any()));
    else if (k < 8) a.emit(pick(iops)(reg(), any(), (rnd() % 4096) - 2048));
    else if (k < 9) a.emit(pick([A.slli, A.srli, A.srai])(reg(), any(), rnd() % 64));
    else if (k < 10) a.emit(pick([A.slliw, A.srliw, A.sraiw])(reg(), any(), rnd() % 32));
    else if (k < 11) a.emit(rnd() % 2 ? A.lui(reg(), rnd() << 12) : A.auipc(reg(), rnd() << 12));
    else if (k < 12) a.emit(pick([A.lb, A.lh, A.lw, A.ld, A.lbu, A.lhu, A.lwu])(reg(), 31, rnd() % 2040));
    else if (k < 13) a.emit(pick([A.sb, A.sh, A.sw, A.sd])(any(), 31, rnd() % 2040));
    else if (k < 14) a.emit(A.addi(29, 31, (rnd() % 255) * 8), A.amo(pick(amos), rnd() % 2 ? "w" : "d", reg(), 29, any()));
    else if (k < 15) a.emit(pick([A.beq, A.bne, A.blt, A.bge, A.bltu, A.bgeu])(any(), any(), 8), A.op(pick(rops), reg(), any(), any()));
    else {
      const cr = pick(cfree), cr2 = pick(cfree), fr = reg(), imm6 = (rnd() % 64) - 32;
      const forms = [
        () => A.C.addi(fr, imm6 || 1), () => A.C.li(fr, imm6), () => A.C.lui(fr, ((rnd() % 31) + 1) << 12),
        () => A.C.mv(fr, pick(free)), () => A.C.add(fr, pick(free)), () => A.C.sub(cr, cr2), () => A.C.xor(cr, cr2),
        () => A.C.or(cr, cr2), () => A.C.and(cr, cr2), () => A.C.subw(cr, cr2), () => A.C.addw(cr, cr2),
        () => A.C.srli(cr, (rnd() % 63) + 1), () => A.C.srai(cr, (rnd() % 63) + 1), () => A.C.andi(cr, imm6),
        () => A.C.slli(fr, (rnd() % 63) + 1), () => A.C.addiw(fr, imm6),
        () => pick([A.C.lw(cr, 8, (rnd() % 32) * 4), A.C.ld(cr, 8, (rnd() % 32) * 8), A.C.sw(cr, 8, (rnd() % 32) * 4), A.C.sd(cr, 8, (rnd() % 32) * 8)]),
        () => pick([A.C.lwsp(fr, (rnd() % 64) * 4), A.C.ldsp(fr, (rnd() % 64) * 8), A.C.swsp(fr, (rnd() % 64) * 4), A.C.sdsp(fr, (rnd() % 64) * 8)]),
      ];
      a.emit16(pick(forms)(), A.C.addi(0, 0));
    }
  }
  finish(a);
  return a.bytes();
}

/** CSR reads and writes in M-mode (no timer CSRs: their values depend on QEMU's wall clock). */
function csrProgram(seed: number, n: number): Uint8Array {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length]!;
  const r64 = (): bigint => BigInt.asUintN(64, (BigInt(rnd()) << 40n) ^ (BigInt(rnd()) << 20n) ^ BigInt(rnd()));
  // [csr, mask of bits that may be written]: mstatus never sets MIE or MPRV, PMP never locks.
  const csrs: [number, bigint][] = [
    [0x300, ~((1n << 3n) | (1n << 17n))], [0x100, -1n], [0x302, -1n], [0x303, -1n], [0x305, 0n], [0x105, -1n],
    [0x306, -1n], [0x106, -1n], [0x30a, ~(1n << 63n)], [0x10a, -1n], [0x340, -1n], [0x140, -1n], [0x341, -1n],
    [0x141, -1n], [0x342, -1n], [0x142, -1n], [0x343, -1n], [0x143, -1n], [0x344, -1n], [0x144, -1n], [0x180, -1n],
    [0x301, -1n], [0x3a0, 0x7f7f_7f7f_7f7f_7f7fn], [0x3a2, 0x7f7f_7f7f_7f7f_7f7fn], [0x3b0, -1n], [0x3b1, -1n],
    [0x3bf, -1n], [0xb03, -1n], [0xb12, -1n], [0xb13, -1n], [0x323, -1n], [0x332, -1n], [0x320, -1n],
    [0xf11, 0n], [0xf12, 0n], [0xf13, 0n], [0xf14, 0n], [0xf15, 0n], [0x304, 0n], [0x104, 0n],
  ];
  const a = new A.Asm(IMAGE_BASE);
  // A trap (an access QEMU refuses) ends the program through the handler.
  a.emit(...A.li(5, CSR_HANDLER), A.csrrw(0, 0x305, 5));
  for (let i = 0; i < n; i++) {
    const [csr, mask] = pick(csrs);
    let v = BigInt.asUintN(64, (rnd() % 3 === 0 ? pick(INTERESTING) : r64()) & mask);
    // Small mhpmevent values name SBI PMU events that QEMU then counts in real time.
    if (csr >= 0x323 && csr <= 0x33f) v |= 1n << 19n;
    a.emit(...A.li(5, v));
    if (mask === 0n) a.emit(A.csrrs(6, csr, 0));
    else a.emit(pick([A.csrrw, A.csrrs, A.csrrc])(6, csr, 5), A.csrrs(7, csr, 0));
  }
  finish(a);
  const img = new Uint8Array(Number(CSR_HANDLER - IMAGE_BASE) + 64);
  img.set(a.bytes(), 0);
  const h = new A.Asm(CSR_HANDLER);
  h.emit(A.csrrs(20, 0x342, 0), A.csrrs(21, 0x343, 0));
  finish(h);
  img.set(h.bytes(), Number(CSR_HANDLER - IMAGE_BASE));
  return img;
}
const CSR_HANDLER = 0x8000_8000n;

/**
 * CSR accesses from S or U (privilege rules, counteren, TVM): M-mode picks random counteren
 * and TVM/TW/TSR, then drops to `mode`; the handler records mcause and skips the instruction.
 */
function lowerCsrProgram(seed: number, n: number, mode: 0 | 1): Uint8Array {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length]!;
  const r64 = (): bigint => BigInt.asUintN(64, (BigInt(rnd()) << 40n) ^ (BigInt(rnd()) << 20n) ^ BigInt(rnd()));
  const csrs = [0x100, 0x104, 0x105, 0x106, 0x10a, 0x140, 0x141, 0x142, 0x143, 0x144, 0x180, 0x14d, 0x300, 0x305,
    0x344, 0xc00, 0xc01, 0xc02, 0xc03, 0xc12, 0xc13, 0xc1f, 0xb03, 0xf14, 0x7a0, 0x5a8, 0x3a0, 0x301];
  const a = new A.Asm(IMAGE_BASE);
  a.emit(...A.li(5, LOWER_HANDLER), A.csrrw(0, 0x305, 5));
  a.emit(...A.li(5, 0x3f_ffff_ffff_ffffn), A.csrrw(0, 0x3b0, 5), A.addi(5, 0, 0x1f), A.csrrw(0, 0x3a0, 5));
  // Counter-enable bits for cycle/time/instret stay clear: QEMU's values come from the host clock.
  a.emit(...A.li(5, r64() & ~7n), A.csrrw(0, 0x306, 5), ...A.li(5, r64() & ~7n), A.csrrw(0, 0x106, 5));
  a.emit(...A.li(5, BigInt(rnd() % 8) << 20n), A.csrrs(0, 0x300, 5));
  a.emit(...A.li(5, 0x1800n), A.csrrc(0, 0x300, 5), ...A.li(5, BigInt(mode) << 11n), A.csrrs(0, 0x300, 5));
  a.emit(A.auipc(5, 0), A.addi(5, 5, 16), A.csrrw(0, 0x341, 5), A.MRET);
  for (let i = 0; i < n; i++) {
    const csr = pick(csrs);
    // Never write satp from below M: translation would turn on under random tables.
    const v = csr === 0x180 ? 0n : r64();
    a.emit(...A.li(5, v));
    if (csr === 0x180) a.emit(A.csrrs(6, csr, 0));
    else a.emit(pick([A.csrrw, A.csrrs, A.csrrc])(6, csr, 5), A.csrrs(7, csr, 0));
    if (rnd() % 8 === 0) a.emit(pick([A.sfenceVma(0, 0), A.ECALL]));
  }
  a.emit(...A.li(5, 0xe0n), A.ECALL);
  const img = new Uint8Array(Number(LOWER_HANDLER - IMAGE_BASE) + 128);
  img.set(a.bytes(), 0);
  // Handler: record mcause and mtval; an ecall with x5 = 0xe0 ends the run; else skip the instruction.
  const h = new A.Asm(LOWER_HANDLER);
  h.emit(A.csrrs(20, 0x342, 0), A.csrrs(21, 0x343, 0), A.addi(22, 0, 0xe0), A.bne(5, 22, 8), A.jal(0, 8 * 4 + 4));
  h.emit(A.csrrs(23, 0x341, 0), A.addi(23, 23, 4), A.csrrw(0, 0x341, 23), A.MRET);
  h.emit(A.addi(0, 0, 0), A.addi(0, 0, 0), A.addi(0, 0, 0), A.addi(0, 0, 0), A.addi(0, 0, 0));
  finish(h);
  img.set(h.bytes(), Number(LOWER_HANDLER - IMAGE_BASE));
  return img;
}
const LOWER_HANDLER = 0x8000_8000n;

/**
 * Software interrupts (SSIP, STIP, SEIP from M, MTIP from mtimecmp = 0) with random enables,
 * delegation of SSIP, and trips to S and U; handlers fold the causes into x20 (M) and x21 (S).
 */
function interruptProgram(seed: number, n: number): Uint8Array {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length]!;
  const a = new A.Asm(IMAGE_BASE);
  a.emit(...A.li(5, IRQ_MH), A.csrrw(0, 0x305, 5), ...A.li(5, IRQ_SH), A.csrrw(0, 0x105, 5));
  a.emit(...A.li(5, 0x3f_ffff_ffff_ffffn), A.csrrw(0, 0x3b0, 5), A.addi(5, 0, 0x1f), A.csrrw(0, 0x3a0, 5));
  for (let i = 0; i < n; i++) {
    const k = rnd() % 6;
    if (k === 0) a.emit(...A.li(5, pick([0x2n, 0x20n, 0x200n, 0x22n, 0x222n])), A.csrrs(0, 0x344, 5));
    else if (k === 1) a.emit(...A.li(5, BigInt(rnd() % 0x400) & 0x2a2n), pick([A.csrrs, A.csrrc])(0, 0x304, 5));
    else if (k === 2) a.emit(...A.li(5, pick([0x2n, 0x8n, 0xan])), pick([A.csrrs, A.csrrc])(0, 0x300, 5));
    else if (k === 3) a.emit(...A.li(5, pick([0n, 0x2n])), A.csrrw(0, 0x303, 5));
    else if (k === 4) {
      // MIE off, MTIE on: MTIP is pending (mtimecmp = 0), so WFI goes on without a trap.
      a.emit(A.csrrci(0, 0x300, 8), ...A.li(5, 0x80n), A.csrrs(0, 0x304, 5), A.WFI);
    }
    else {
      // A trip to S or U: mret there, a few instructions, ecall back to M.
      const mode = BigInt(pick([0, 1]));
      a.emit(...A.li(5, 0x1800n), A.csrrc(0, 0x300, 5), ...A.li(5, mode << 11n), A.csrrs(0, 0x300, 5));
      a.emit(A.auipc(5, 0), A.addi(5, 5, 16), A.csrrw(0, 0x341, 5), A.MRET);
      a.emit(A.addi(1, 1, 1), A.addi(2, 2, 3), A.ECALL);
    }
  }
  finish(a);
  const img = new Uint8Array(Number(IRQ_SH - IMAGE_BASE) + 256);
  img.set(a.bytes(), 0);
  // M handler: fold mcause; interrupts clear their source; ecalls return to M after the ecall.
  const m = new A.Asm(IRQ_MH);
  m.emit(A.csrrs(22, 0x342, 0), A.addi(23, 0, 31), A.op("mul", 20, 20, 23), A.op("add", 20, 20, 22));
  const ecallPath = [A.csrrs(23, 0x341, 0), A.addi(23, 23, 4), A.csrrw(0, 0x341, 23), ...A.li(23, 0x1800n), A.csrrs(0, 0x300, 23), A.MRET];
  m.emit(A.blt(22, 0, 4 + 4 * ecallPath.length)); // interrupt: bit 63 set
  m.emit(...ecallPath);
  // interrupts: 1 << code cleared in mip (SSIP/STIP/SEIP) and, for MTI, MTIE cleared in mie
  m.emit(A.andi(22, 22, 63), A.addi(23, 0, 1), A.op("sll", 23, 23, 22), A.csrrc(0, 0x344, 23), A.csrrc(0, 0x304, 23), A.MRET);
  img.set(m.bytes(), Number(IRQ_MH - IMAGE_BASE));
  // S handler: fold scause, clear SSIP, sret.
  const sh = new A.Asm(IRQ_SH);
  sh.emit(A.csrrs(24, 0x142, 0), A.addi(25, 0, 31), A.op("mul", 21, 21, 25), A.op("add", 21, 21, 24));
  sh.emit(A.csrrci(0, 0x144, 2), A.SRET);
  img.set(sh.bytes(), Number(IRQ_SH - IMAGE_BASE));
  return img;
}
const IRQ_MH = 0x8000_8000n;
const IRQ_SH = 0x8000_8100n;

/**
 * Synchronous exceptions: reserved and illegal encodings, HINTs, misaligned lr, accesses
 * and fetches where nothing is mapped (0x9000_0000, past QEMU's 128 MiB of RAM). The handler
 * folds mcause/mtval into x20 and resumes after the instruction (or at ra after a fetch fault).
 */
function exceptionProgram(seed: number, n: number): Uint8Array {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length]!;
  const HOLE = 0x9000_0000n;
  const words32 = [
    0xffff_ffff, 0x0000_0073 | (1 << 7), 0x1050_0073 | (1 << 15), A.sfenceVma(0, 0) | (1 << 7), A.slliw(1, 2, 3) | (1 << 25),
    A.encI(0x03, 7, 1, 2, 0), A.encS(0x23, 4, 2, 1, 0), A.encI(0x67, 1, 1, 2, 0), A.encB(2, 1, 2, 8), A.encI(0x73, 4, 1, 0, 0x300),
    A.op("add", 1, 2, 3) | (1 << 31), A.encI(0x0f, 2, 0, 0, 0), A.amo("lr", "d", 1, 2, 3), A.encR(0x2f, 4, 0, 1, 2, 3),
    A.EBREAK, A.ECALL, A.csrrs(1, 0x7c0, 0), A.csrrw(0, 0xc00, 1), A.encR(0x33, 0, 0x21, 1, 2, 3),
  ];
  const words16 = [
    0x0000, 0x0004, 0x6001 /* c.lui x0? no: c.lui with imm 0 */, 0x6101 /* c.addi16sp 0 */, 0x8002 /* c.jr x0 */,
    0x4002 /* c.lwsp x0 */, 0x2001 /* c.addiw x0 */, 0x2000 /* c.fld */, 0xa002 /* c.fsdsp */, 0x9c41 /* c.subw reserved? */,
    0x9c61, 0x9c81, 0x0082 /* c.slli x1, 0 */, 0x8001 /* c.srli x8, 0 */, 0x4001 /* c.li x0 */, 0x8082 /* ret */,
    0x0005 /* c.addi x0, 1: hint */, 0x9002 /* c.ebreak */, 0x6005 /* c.lui x0, 1 */,
  ];
  const a = new A.Asm(IMAGE_BASE);
  a.emit(...A.li(5, EXC_HANDLER), A.csrrw(0, 0x305, 5), ...A.li(2, 0x8010_0000n), ...A.li(3, 0x8010_0008n));
  for (let i = 0; i < n; i++) {
    const k = rnd() % 6;
    if (k === 0) a.emit(pick(words32));
    else if (k === 1) {
      const w = pick(words16);
      // `ret` would jump to ra: point ra at the next instruction first.
      if (w === 0x8082) a.emit(A.auipc(1, 0), A.addi(1, 1, 10));
      a.emit16(w, A.C.addi(0, 0));
    } else if (k === 2) {
      // Misaligned lr only: QEMU 7.2 with one vCPU emulates AMOs as load + store, so a misaligned
      // or unmapped AMO reports load-misaligned / load access fault (4 / 5), and a misaligned sc
      // without reservation fails silently; we follow the spec (6 / 7).
      a.emit(A.addi(4, 2, (rnd() % 16) - 8), A.amo("lr", pick(["w", "d"] as const), 6, 4, 0));
    }
    else if (k === 3) a.emit(...A.li(4, HOLE + BigInt(rnd() % 64)), pick([A.ld(6, 4, 0), A.sw(6, 4, 0), A.lbu(6, 4, 3), A.sh(6, 4, 1)]));
    else if (k === 4) a.emit(...A.li(4, HOLE), A.jalr(1, 4, 0));
    else a.emit(A.addi(8, 8, 1), A.op("mul", 9, 8, 8));
  }
  finish(a);
  const img = new Uint8Array(Number(EXC_HANDLER - IMAGE_BASE) + 256);
  img.set(a.bytes(), 0);
  const h = new A.Asm(EXC_HANDLER);
  h.emit(A.csrrs(21, 0x342, 0), A.csrrs(22, 0x343, 0), A.addi(23, 0, 31), A.op("mul", 20, 20, 23), A.op("add", 20, 20, 21));
  h.emit(A.op("mul", 20, 20, 23), A.op("add", 20, 20, 22));
  // Fetch fault: resume at ra. Otherwise skip 2 or 4 bytes by the instruction's low bits.
  const skip = [A.csrrs(24, 0x341, 0), A.lhu(25, 24, 0), A.andi(25, 25, 3), A.addi(26, 0, 3), A.addi(24, 24, 2),
    A.bne(25, 26, 8), A.addi(24, 24, 2), A.csrrw(0, 0x341, 24), A.MRET];
  h.emit(A.addi(23, 0, 1), A.bne(21, 23, 12), A.csrrw(0, 0x341, 1), A.MRET, ...skip);
  img.set(h.bytes(), Number(EXC_HANDLER - IMAGE_BASE));
  return img;
}
const EXC_HANDLER = 0x8000_8000n;

/**
 * PMP: random unlocked OFF/TOR/NA4/NAPOT entries 0..7 over a 16 KiB data area (entry 15 opens
 * everything), then S-mode loads, stores and lr of every size into the area; the handler
 * folds mcause/mtval into x20 and skips the instruction.
 */
function pmpProgram(seed: number, n: number): Uint8Array {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length]!;
  const AREA = 0x8010_0000n;
  const a = new A.Asm(IMAGE_BASE);
  a.emit(...A.li(5, PMP_HANDLER), A.csrrw(0, 0x305, 5));
  let cfg = 0n;
  for (let i = 0; i < 8; i++) {
    const mode = i === 0 ? pick([0, 2, 3]) : pick([0, 1, 2, 3]);
    let addr = (AREA + BigInt(rnd() % 0x4000)) >> 2n;
    if (mode === 3) {
      const k = rnd() % 10; // NAPOT of 8 << k bytes
      addr = ((addr >> BigInt(k + 1)) << BigInt(k + 1)) | ((1n << BigInt(k)) - 1n);
    }
    a.emit(...A.li(5, addr), A.csrrw(0, 0x3b0 + i, 5));
    cfg |= (BigInt((mode << 3) | (rnd() % 8))) << BigInt(8 * i);
  }
  a.emit(...A.li(5, cfg), A.csrrw(0, 0x3a0, 5));
  a.emit(...A.li(5, 0x3f_ffff_ffff_ffffn), A.csrrw(0, 0x3bf, 5), ...A.li(5, 0x1fn << 56n), A.csrrw(0, 0x3a2, 5));
  a.emit(...A.li(5, 0x800n), A.csrrs(0, 0x300, 5), A.auipc(5, 0), A.addi(5, 5, 16), A.csrrw(0, 0x341, 5), A.MRET);
  const ops = [A.lb, A.lh, A.lw, A.ld, A.sb, A.sh, A.sw, A.sd];
  for (let i = 0; i < n; i++) {
    a.emit(...A.li(4, AREA + BigInt(rnd() % 0x4000)));
    if (rnd() % 6 === 0) a.emit(A.andi(4, 4, -8), A.amo("lr", pick(["w", "d"] as const), 6, 4, 0)); // not AMOs: see above
    else {
      const op = pick(ops);
      a.emit(op === A.sb || op === A.sh || op === A.sw || op === A.sd ? op(7, 4, 0) : op(6, 4, 0));
    }
  }
  a.emit(A.ECALL);
  const img = new Uint8Array(Number(PMP_HANDLER - IMAGE_BASE) + 256);
  img.set(a.bytes(), 0);
  const h = new A.Asm(PMP_HANDLER);
  h.emit(A.csrrs(21, 0x342, 0), A.csrrs(22, 0x343, 0), A.addi(23, 0, 31), A.op("mul", 20, 20, 23), A.op("add", 20, 20, 21));
  h.emit(A.op("mul", 20, 20, 23), A.op("add", 20, 20, 22), A.addi(23, 0, 9));
  const fin = new A.Asm(0n);
  finish(fin);
  h.emit(A.bne(21, 23, 4 + fin.bytes().length)); // not the final ecall from S: skip the instruction
  finish(h);
  h.emit(A.csrrs(24, 0x341, 0), A.addi(24, 24, 4), A.csrrw(0, 0x341, 24), A.MRET);
  img.set(h.bytes(), Number(PMP_HANDLER - IMAGE_BASE));
  return img;
}
const PMP_HANDLER = 0x8000_8000n;

/**
 * Random Sv39 tables over the window at 0x4000_0000 (a megapage or 4 KiB pages with random
 * permission, U, G, A and D bits), then random loads, stores, lr and calls there from S or U,
 * with SUM and MXR toggled. Each target page starts with `ret`. At the end M folds every PTE
 * (A/D updates) into x20.
 */
function pagingProgram(seed: number, n: number): Uint8Array {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length]!;
  const mode = rnd() % 2; // 0 U, 1 S
  const img = new Uint8Array(0x30_0000);
  const dv = new DataView(img.buffer);
  const put64 = (pa: bigint, v: bigint): void => dv.setBigUint64(Number(pa - IMAGE_BASE), v, true);
  const TARGET = 0x8020_0000n;
  const flags = (): bigint => {
    let f = V | (BigInt(rnd() % 16) << 1n) | (rnd() % 2 ? U : 0n) | (rnd() % 4 ? AC : 0n) | (rnd() % 3 ? D : 0n) | (rnd() % 2 ? G : 0n);
    if ((f & (R | W | X)) === 0n) f |= R; // keep it a leaf
    if (rnd() % 12 === 0) f &= ~V;
    return f;
  };
  put64(PG_ROOT + 2n * 8n, pte(IMAGE_BASE, V | R | W | X | AC | D | (mode === 0 ? U : 0n)));
  put64(PG_ROOT + 1n * 8n, pte(PG_L1, V));
  const ptes: bigint[] = [PG_ROOT + 8n];
  // L1 entry 1: a megapage at TARGET; entry 0: 4 KiB pages through L0.
  put64(PG_L1 + 8n, pte(TARGET, flags()));
  put64(PG_L1, pte(PG_L0, V));
  ptes.push(PG_L1, PG_L1 + 8n);
  for (let i = 0n; i < 8n; i++) {
    put64(PG_L0 + i * 8n, pte(TARGET + i * 0x1000n, flags()));
    ptes.push(PG_L0 + i * 8n);
  }
  for (let i = 0n; i < 8n; i++) dv.setUint16(Number(TARGET + i * 0x1000n - IMAGE_BASE), 0x8082, true); // ret
  const a = new A.Asm(IMAGE_BASE);
  a.emit(...A.li(5, PG_HANDLER), A.csrrw(0, 0x305, 5));
  a.emit(...A.li(5, 0x3f_ffff_ffff_ffffn), A.csrrw(0, 0x3b0, 5), A.addi(5, 0, 0x1f), A.csrrw(0, 0x3a0, 5));
  a.emit(...A.li(5, (8n << 60n) | (PG_ROOT >> 12n)), A.csrrw(0, 0x180, 5));
  a.emit(...A.li(5, BigInt(rnd() % 4) << 18n), A.csrrs(0, 0x300, 5)); // SUM, MXR
  a.emit(...A.li(5, BigInt(mode) << 11n), A.csrrs(0, 0x300, 5), A.auipc(5, 0), A.addi(5, 5, 16), A.csrrw(0, 0x341, 5), A.MRET);
  for (let i = 0; i < n; i++) {
    const mega = rnd() % 2;
    const va = 0x4000_0000n + BigInt(mega) * 0x20_0000n + BigInt(rnd() % 8) * 0x1000n + BigInt(8 + (rnd() % 500) * 8);
    const k = rnd() % 8;
    a.emit(...A.li(4, va));
    if (k < 3) a.emit(pick([A.ld(6, 4, 0), A.lw(6, 4, 4), A.lbu(6, 4, 1)]));
    else if (k < 5) a.emit(pick([A.sd(7, 4, 0), A.sw(7, 4, 4), A.sb(7, 4, 1)]));
    else if (k < 6) a.emit(A.andi(4, 4, -8), A.amo("lr", "d", 6, 4, 0)); // AMOs: see exceptionProgram
    else if (k < 7) a.emit(A.andi(4, 4, -4096), A.jalr(1, 4, 0));
    else if (mode === 1) a.emit(...A.li(5, BigInt(rnd() % 4) << 18n), pick([A.csrrs, A.csrrc])(0, 0x100, 5));
  }
  a.emit(...A.li(5, 0xe0n), A.ECALL);
  img.set(a.bytes(), 0);
  const h = new A.Asm(PG_HANDLER);
  h.emit(A.csrrs(21, 0x342, 0), A.csrrs(22, 0x343, 0), A.addi(23, 0, 31), A.op("mul", 20, 20, 23), A.op("add", 20, 20, 21));
  h.emit(A.op("mul", 20, 20, 23), A.op("add", 20, 20, 22));
  // Final ecall (x5 = 0xe0): fold the PTEs and exit.
  const fold: number[] = [];
  for (const p of ptes) fold.push(...A.li(24, p), A.ld(25, 24, 0), A.op("mul", 20, 20, 23), A.op("add", 20, 20, 25));
  const fin = new A.Asm(0n);
  finish(fin);
  h.emit(A.addi(24, 0, 0xe0), A.bne(5, 24, 4 + 4 * fold.length + fin.bytes().length), ...fold);
  finish(h);
  // Fetch faults resume at ra; anything else skips the 4-byte instruction.
  h.emit(A.addi(24, 0, 12), A.beq(21, 24, 16), A.addi(24, 0, 1), A.beq(21, 24, 8), A.jal(0, 12), A.csrrw(0, 0x341, 1), A.MRET);
  h.emit(A.csrrs(24, 0x341, 0), A.addi(24, 24, 4), A.csrrw(0, 0x341, 24), A.MRET);
  img.set(h.bytes(), Number(PG_HANDLER - IMAGE_BASE));
  return img;
}
const PG_HANDLER = 0x8000_8000n;
const PG_ROOT = 0x8001_0000n, PG_L1 = 0x8001_1000n, PG_L0 = 0x8001_2000n;

// Page-table corner cases: M-mode builds Sv39 tables, then one S-mode access at VA.
const ROOT = 0x8001_0000n, L1 = 0x8001_1000n, L0 = 0x8001_2000n, DATA = 0x8002_0000n, HANDLER = 0x8000_8000n;
const VA = 0x4000_0000n;
const [V, R, W, X, U, G, AC, D] = [1n, 2n, 4n, 8n, 16n, 32n, 64n, 128n];
const pte = (pa: bigint, f: bigint): bigint => ((pa >> 12n) << 10n) | f;
const MEGA = DATA & ~0x1f_ffffn;
interface Probe { name: string; l2: bigint; l1?: bigint; l0?: bigint; mstatus?: bigint; menvcfg?: bigint; store?: boolean; noPmp?: boolean; va?: bigint }
const PROBES: Probe[] = [
  { name: "non-leaf with A", l2: pte(L1, V | AC), l1: pte(MEGA, V | R | W | AC | D) },
  { name: "non-leaf with D", l2: pte(L1, V | D), l1: pte(MEGA, V | R | W | AC | D) },
  { name: "non-leaf with U", l2: pte(L1, V | U), l1: pte(MEGA, V | R | W | AC | D) },
  { name: "leaf with N", l2: pte(L1, V), l1: pte(MEGA, V | R | AC | (1n << 63n)) },
  { name: "leaf with PBMT, PBMTE=0", l2: pte(L1, V), l1: pte(MEGA, V | R | AC | (1n << 61n)) },
  { name: "leaf with PBMT, PBMTE=1", l2: pte(L1, V), l1: pte(MEGA, V | R | AC | (1n << 61n)), menvcfg: 1n << 62n },
  { name: "leaf with bit 54", l2: pte(L1, V), l1: pte(MEGA, V | R | AC | (1n << 54n)) },
  { name: "misaligned megapage", l2: pte(L1, V), l1: pte(DATA, V | R | AC) },
  { name: "U gigapage from S without SUM", l2: pte(0n, V | R | U | AC) },
  { name: "U gigapage from S with SUM", l2: pte(0n, V | R | U | AC), mstatus: 1n << 18n, va: VA + 0x100_0000n },
  { name: "store sets A and D", l2: pte(L1, V), l1: pte(L0, V), l0: pte(DATA, V | R | W), store: true },
  { name: "load sets A only", l2: pte(L1, V), l1: pte(L0, V), l0: pte(DATA, V | R | W) },
  { name: "X-only without MXR", l2: pte(L1, V), l1: pte(L0, V), l0: pte(DATA, V | X | AC) },
  { name: "X-only with MXR", l2: pte(L1, V), l1: pte(L0, V), l0: pte(DATA, V | X | AC), mstatus: 1n << 19n },
  { name: "W-only leaf", l2: pte(L1, V), l1: pte(L0, V), l0: pte(DATA, V | W | AC | D) },
  { name: "global page, A/D clear", l2: pte(L1, V | G), l1: pte(L0, V), l0: pte(DATA, V | R | W | G), store: true },
  { name: "mret to S without PMP rules", l2: pte(L1, V), l1: pte(L0, V), l0: pte(DATA, V | R | AC), noPmp: true },
];

function probeImage(p: Probe): Uint8Array {
  const img = new Uint8Array(0x3_0000);
  const dv = new DataView(img.buffer);
  const put64 = (pa: bigint, v: bigint): void => dv.setBigUint64(Number(pa - IMAGE_BASE), v, true);
  put64(ROOT + 2n * 8n, pte(IMAGE_BASE, V | R | W | X | AC | D)); // the image, identity-mapped
  put64(ROOT + ((VA >> 30n) & 511n) * 8n, p.l2);
  if (p.l1 !== undefined) put64(L1, p.l1);
  if (p.l0 !== undefined) put64(L0, p.l0);
  put64(DATA, 0x1122_3344_5566_7788n);
  const a = new A.Asm(IMAGE_BASE);
  a.emit(...A.li(5, HANDLER), A.csrrw(0, 0x305, 5));
  if (!p.noPmp) a.emit(...A.li(5, 0x3f_ffff_ffff_ffffn), A.csrrw(0, 0x3b0, 5), A.addi(5, 0, 0x1f), A.csrrw(0, 0x3a0, 5));
  a.emit(...A.li(5, (8n << 60n) | (ROOT >> 12n)), A.csrrw(0, 0x180, 5));
  if (p.mstatus) a.emit(...A.li(5, p.mstatus), A.csrrs(0, 0x300, 5));
  if (p.menvcfg) a.emit(...A.li(5, p.menvcfg), A.csrrs(0, 0x30a, 5));
  a.emit(...A.li(5, 0x800n), A.csrrs(0, 0x300, 5), A.auipc(5, 0), A.addi(5, 5, 16), A.csrrw(0, 0x341, 5), A.MRET);
  a.emit(...A.li(1, p.va ?? VA));
  if (p.store) a.emit(A.addi(2, 0, 0x55), A.sd(2, 1, 0));
  a.emit(A.ld(27, 1, 0), A.ECALL);
  img.set(a.bytes(), 0);
  // The handler collects mcause, mtval and the PTEs (to see A/D updates), then exits.
  const h = new A.Asm(HANDLER);
  h.emit(A.csrrs(20, 0x342, 0), A.csrrs(21, 0x343, 0), ...A.li(5, ROOT), A.ld(24, 5, 8), ...A.li(5, L1), A.ld(25, 5, 0));
  h.emit(...A.li(5, L0), A.ld(26, 5, 0));
  finish(h);
  img.set(h.bytes(), Number(HANDLER - IMAGE_BASE));
  return img;
}

const FEATURE_HANDLER = IMAGE_BASE + 0x8000n;

/**
 * Random code for a hart without M, A, C and Zifencei: MUL/DIV, atomics, fence.i, compressed
 * pairs, and jal/jalr/taken branches to addresses with bit 1 set. The M-mode handler records
 * mcause (and mtval, except for cause 0, where QEMU 7.2 writes a stale value) and skips 4 bytes.
 */
function featureProgram(seed: number, n: number): Uint8Array {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length]!;
  const r64 = (): bigint => BigInt.asUintN(64, (BigInt(rnd()) << 40n) ^ (BigInt(rnd()) << 20n) ^ BigInt(rnd()));
  const reserved = new Set([0, 2, 5, 8, 20, 21, 23, 29, 31]);
  const free = Array.from({ length: 32 }, (_, i) => i).filter((i) => !reserved.has(i));
  const reg = () => pick(free);
  const any = () => rnd() % 32;
  const mops = ["mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu", "mulw", "divw", "divuw", "remw", "remuw"];
  const ops = ["add", "sub", "xor", "sltu", "sraw"];
  const amos = ["amoswap", "amoadd", "amoxor", "amomax", "lr", "sc"];
  const img = new Uint8Array(0x9000);
  const a = new A.Asm(IMAGE_BASE);
  a.emit(...A.li(5, FEATURE_HANDLER), A.csrrw(0, 0x305, 5));
  for (const r of free) a.emit(...A.li(r, rnd() % 3 === 0 ? pick(INTERESTING) : r64()));
  a.emit(...A.li(31, BUF), ...A.li(8, BUF + 1024n), ...A.li(2, BUF + 1024n));
  for (let i = 0; i < n; i++) {
    const k = rnd() % 10;
    if (k < 3) a.emit(A.op(pick(mops), reg(), any(), any()));
    // Only the .w forms: QEMU 7.2 forgets the A check on the RV64-only .d atomics (we trap them).
    else if (k < 4) a.emit(A.addi(29, 31, (rnd() % 255) * 8), A.amo(pick(amos), "w", reg(), 29, any()));
    else if (k < 5) a.emit(A.FENCE_I);
    else if (k < 6) a.emit16(A.C.addi(reg(), (rnd() % 31) + 1), A.C.li(reg(), (rnd() % 64) - 32));
    else if (k < 7) a.emit(A.jal(reg(), 6));
    else if (k < 8) a.emit(pick([A.beq, A.bne, A.blt, A.bge, A.bltu, A.bgeu])(any(), any(), 6 + 4 * (rnd() % 2)));
    else if (k < 9) a.emit(A.auipc(29, 0), A.jalr(reg(), 29, 11));
    else a.emit(A.op(pick(ops), reg(), any(), any()));
  }
  finish(a);
  img.set(a.bytes());
  const h = new A.Asm(FEATURE_HANDLER);
  h.emit(A.csrrs(20, 0x342, 0), A.beq(20, 0, 8), A.csrrs(21, 0x343, 0));
  h.emit(A.csrrs(23, 0x341, 0), A.addi(23, 23, 4), A.csrrw(0, 0x341, 23), A.MRET);
  img.set(h.bytes(), Number(FEATURE_HANDLER - IMAGE_BASE));
  return img;
}

describe.skipIf(!qemu)("lockstep against QEMU 7.2", () => {
  it("random RV64IMAC programs step through the same pc and registers", () => {
    for (const seed of [1, 2, 3, 4]) {
      const img = randomProgram(seed, 250);
      const trace = qemuTrace(img);
      expect(trace.length).toBeGreaterThan(250);
      expect(lockstep(img, trace), `seed ${seed}`).toBe("");
    }
  });

  it("random CSR reads and writes see the same values", () => {
    for (const seed of [11, 12, 13, 14]) {
      const img = csrProgram(seed, 120);
      const trace = qemuTrace(img);
      expect(trace.length).toBeGreaterThan(5);
      expect(lockstep(img, trace), `seed ${seed}`).toBe("");
    }
  });

  it("CSR accesses from S and U trap or succeed alike", () => {
    for (const [seed, mode] of [[21, 1], [22, 0], [23, 1], [24, 0]] as const) {
      const img = lowerCsrProgram(seed, 60, mode);
      const trace = qemuTrace(img);
      expect(trace.length).toBeGreaterThan(100);
      expect(lockstep(img, trace), `seed ${seed}`).toBe("");
    }
  });

  it("software and timer interrupts are taken at the same instructions with the same causes", () => {
    for (const seed of [41, 42, 43, 44]) {
      const img = interruptProgram(seed, 60);
      const trace = qemuTrace(img);
      expect(trace.length).toBeGreaterThan(100);
      expect(lockstep(img, trace), `seed ${seed}`).toBe("");
    }
  });

  it("reserved encodings, HINTs, misaligned lr and unmapped accesses trap alike", () => {
    for (const seed of [61, 62, 63, 64]) {
      const img = exceptionProgram(seed, 80);
      const trace = qemuTrace(img);
      expect(trace.length).toBeGreaterThan(150);
      expect(lockstep(img, trace), `seed ${seed}`).toBe("");
    }
  });

  it("PMP entries allow and refuse the same S-mode accesses", () => {
    for (const seed of [81, 82, 83, 84]) {
      const img = pmpProgram(seed, 80);
      const trace = qemuTrace(img);
      expect(trace.length).toBeGreaterThan(150);
      expect(lockstep(img, trace), `seed ${seed}`).toBe("");
    }
  });

  it("random Sv39 mappings fault, update A/D and read alike", () => {
    for (const seed of [91, 92, 93, 94]) {
      const img = pagingProgram(seed, 60);
      const trace = qemuTrace(img);
      expect(trace.length).toBeGreaterThan(100);
      expect(lockstep(img, trace), `seed ${seed}`).toBe("");
    }
  });

  it("page-table corner cases end with the same cause, value and PTEs", () => {
    for (const p of PROBES) {
      const img = probeImage(p);
      const trace = qemuTrace(img);
      expect(trace[trace.length - 1]!.pc, p.name).toBeGreaterThan(HANDLER);
      expect(lockstep(img, trace), p.name).toBe("");
    }
  });

  it("a hart with c, m, a and Zifencei off traps where QEMU's does, with the same causes", () => {
    for (const seed of [101, 102, 103]) {
      const img = featureProgram(seed, 120);
      const trace = qemuTrace(img, "c=off,m=off,a=off,Zifencei=off");
      expect(trace.length).toBeGreaterThan(200);
      expect(lockstep(img, trace, { c: false, m: false, a: false, zifencei: false }), `seed ${seed}`).toBe("");
    }
  });
});
