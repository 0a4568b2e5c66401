/**
 * A tiny RISC-V encoder for tests and the benchmark loop: one function per format, plus
 * named helpers. Registers are numbers (x0..x31); immediates are byte offsets.
 */

export function encR(op: number, f3: number, f7: number, rd: number, rs1: number, rs2: number): number {
  return ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
}
export function encI(op: number, f3: number, rd: number, rs1: number, imm: number): number {
  return (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
}
export function encS(op: number, f3: number, rs1: number, rs2: number, imm: number): number {
  return ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op) >>> 0;
}
export function encB(f3: number, rs1: number, rs2: number, imm: number): number {
  return ((((imm >> 12) & 1) << 31) | (((imm >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
    (((imm >> 1) & 0xf) << 8) | (((imm >> 11) & 1) << 7) | 0x63) >>> 0;
}
export function encU(op: number, rd: number, imm: number): number {
  return ((imm & 0xfffff000) | (rd << 7) | op) >>> 0;
}
export function encJ(rd: number, imm: number): number {
  return ((((imm >> 20) & 1) << 31) | (((imm >> 1) & 0x3ff) << 21) | (((imm >> 11) & 1) << 20) |
    (((imm >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) >>> 0;
}

export const lui = (rd: number, imm: number): number => encU(0x37, rd, imm);
export const auipc = (rd: number, imm: number): number => encU(0x17, rd, imm);
export const jal = (rd: number, off: number): number => encJ(rd, off);
export const jalr = (rd: number, rs1: number, imm: number): number => encI(0x67, 0, rd, rs1, imm);
export const beq = (a: number, b: number, off: number): number => encB(0, a, b, off);
export const bne = (a: number, b: number, off: number): number => encB(1, a, b, off);
export const blt = (a: number, b: number, off: number): number => encB(4, a, b, off);
export const bge = (a: number, b: number, off: number): number => encB(5, a, b, off);
export const bltu = (a: number, b: number, off: number): number => encB(6, a, b, off);
export const bgeu = (a: number, b: number, off: number): number => encB(7, a, b, off);
export const lb = (rd: number, rs1: number, imm: number): number => encI(0x03, 0, rd, rs1, imm);
export const lh = (rd: number, rs1: number, imm: number): number => encI(0x03, 1, rd, rs1, imm);
export const lw = (rd: number, rs1: number, imm: number): number => encI(0x03, 2, rd, rs1, imm);
export const ld = (rd: number, rs1: number, imm: number): number => encI(0x03, 3, rd, rs1, imm);
export const lbu = (rd: number, rs1: number, imm: number): number => encI(0x03, 4, rd, rs1, imm);
export const lhu = (rd: number, rs1: number, imm: number): number => encI(0x03, 5, rd, rs1, imm);
export const lwu = (rd: number, rs1: number, imm: number): number => encI(0x03, 6, rd, rs1, imm);
export const sb = (rs2: number, rs1: number, imm: number): number => encS(0x23, 0, rs1, rs2, imm);
export const sh = (rs2: number, rs1: number, imm: number): number => encS(0x23, 1, rs1, rs2, imm);
export const sw = (rs2: number, rs1: number, imm: number): number => encS(0x23, 2, rs1, rs2, imm);
export const sd = (rs2: number, rs1: number, imm: number): number => encS(0x23, 3, rs1, rs2, imm);
export const addi = (rd: number, rs1: number, imm: number): number => encI(0x13, 0, rd, rs1, imm);
export const slti = (rd: number, rs1: number, imm: number): number => encI(0x13, 2, rd, rs1, imm);
export const sltiu = (rd: number, rs1: number, imm: number): number => encI(0x13, 3, rd, rs1, imm);
export const xori = (rd: number, rs1: number, imm: number): number => encI(0x13, 4, rd, rs1, imm);
export const ori = (rd: number, rs1: number, imm: number): number => encI(0x13, 6, rd, rs1, imm);
export const andi = (rd: number, rs1: number, imm: number): number => encI(0x13, 7, rd, rs1, imm);
export const slli = (rd: number, rs1: number, sh: number): number => encI(0x13, 1, rd, rs1, sh);
export const srli = (rd: number, rs1: number, sh: number): number => encI(0x13, 5, rd, rs1, sh);
export const srai = (rd: number, rs1: number, sh: number): number => encI(0x13, 5, rd, rs1, sh | 0x400);
export const addiw = (rd: number, rs1: number, imm: number): number => encI(0x1b, 0, rd, rs1, imm);
export const slliw = (rd: number, rs1: number, sh: number): number => encI(0x1b, 1, rd, rs1, sh);
export const srliw = (rd: number, rs1: number, sh: number): number => encI(0x1b, 5, rd, rs1, sh);
export const sraiw = (rd: number, rs1: number, sh: number): number => encI(0x1b, 5, rd, rs1, sh | 0x400);

const OPS: Record<string, [number, number, number]> = {
  add: [0x33, 0, 0], sub: [0x33, 0, 0x20], sll: [0x33, 1, 0], slt: [0x33, 2, 0], sltu: [0x33, 3, 0],
  xor: [0x33, 4, 0], srl: [0x33, 5, 0], sra: [0x33, 5, 0x20], or: [0x33, 6, 0], and: [0x33, 7, 0],
  mul: [0x33, 0, 1], mulh: [0x33, 1, 1], mulhsu: [0x33, 2, 1], mulhu: [0x33, 3, 1],
  div: [0x33, 4, 1], divu: [0x33, 5, 1], rem: [0x33, 6, 1], remu: [0x33, 7, 1],
  addw: [0x3b, 0, 0], subw: [0x3b, 0, 0x20], sllw: [0x3b, 1, 0], srlw: [0x3b, 5, 0], sraw: [0x3b, 5, 0x20],
  mulw: [0x3b, 0, 1], divw: [0x3b, 4, 1], divuw: [0x3b, 5, 1], remw: [0x3b, 6, 1], remuw: [0x3b, 7, 1],
};
export type RegOp = keyof typeof OPS;
/** Register-register operation by mnemonic (`op("add", rd, rs1, rs2)`). */
export function op(name: string, rd: number, rs1: number, rs2: number): number {
  const o = OPS[name];
  if (o === undefined) throw new RangeError(`unknown op ${name}`);
  return encR(o[0], o[1], o[2], rd, rs1, rs2);
}

const AMOS: Record<string, number> = {
  "lr": 0x02, "sc": 0x03, "amoswap": 0x01, "amoadd": 0x00, "amoxor": 0x04, "amoand": 0x0c,
  "amoor": 0x08, "amomin": 0x10, "amomax": 0x14, "amominu": 0x18, "amomaxu": 0x1c,
};
/** Atomic by mnemonic and width: `amo("amoadd", "d", rd, rs1, rs2)`. */
export function amo(name: string, width: "w" | "d", rd: number, rs1: number, rs2: number, aqrl = 0): number {
  const f5 = AMOS[name];
  if (f5 === undefined) throw new RangeError(`unknown atomic ${name}`);
  return encR(0x2f, width === "w" ? 2 : 3, (f5 << 2) | aqrl, rd, rs1, rs2);
}

export const csrrw = (rd: number, csr: number, rs1: number): number => encI(0x73, 1, rd, rs1, csr);
export const csrrs = (rd: number, csr: number, rs1: number): number => encI(0x73, 2, rd, rs1, csr);
export const csrrc = (rd: number, csr: number, rs1: number): number => encI(0x73, 3, rd, rs1, csr);
export const csrrwi = (rd: number, csr: number, uimm: number): number => encI(0x73, 5, rd, uimm, csr);
export const csrrsi = (rd: number, csr: number, uimm: number): number => encI(0x73, 6, rd, uimm, csr);
export const csrrci = (rd: number, csr: number, uimm: number): number => encI(0x73, 7, rd, uimm, csr);
export const ECALL = 0x0000_0073;
export const EBREAK = 0x0010_0073;
export const MRET = 0x3020_0073;
export const SRET = 0x1020_0073;
export const WFI = 0x1050_0073;
export const FENCE = 0x0ff0_000f;
export const FENCE_I = 0x0000_100f;
export const sfenceVma = (rs1: number, rs2: number): number => encR(0x73, 0, 0x09, 0, rs1, rs2);

/** Compressed encoders (16-bit values). `p` registers are x8..x15. */
const cp = (r: number): number => {
  if (r < 8 || r > 15) throw new RangeError(`x${r} is not a compressed register`);
  return r - 8;
};
export const C = {
  addi4spn: (rd: number, imm: number): number =>
    (((imm >> 4) & 3) << 11) | (((imm >> 6) & 0xf) << 7) | (((imm >> 2) & 1) << 6) | (((imm >> 3) & 1) << 5) | (cp(rd) << 2),
  lw: (rd: number, rs1: number, imm: number): number =>
    (2 << 13) | (((imm >> 3) & 7) << 10) | (cp(rs1) << 7) | (((imm >> 2) & 1) << 6) | (((imm >> 6) & 1) << 5) | (cp(rd) << 2),
  ld: (rd: number, rs1: number, imm: number): number =>
    (3 << 13) | (((imm >> 3) & 7) << 10) | (cp(rs1) << 7) | (((imm >> 6) & 3) << 5) | (cp(rd) << 2),
  sw: (rs2: number, rs1: number, imm: number): number =>
    (6 << 13) | (((imm >> 3) & 7) << 10) | (cp(rs1) << 7) | (((imm >> 2) & 1) << 6) | (((imm >> 6) & 1) << 5) | (cp(rs2) << 2),
  sd: (rs2: number, rs1: number, imm: number): number =>
    (7 << 13) | (((imm >> 3) & 7) << 10) | (cp(rs1) << 7) | (((imm >> 6) & 3) << 5) | (cp(rs2) << 2),
  ci: (f3: number, rd: number, imm: number): number =>
    (f3 << 13) | (((imm >> 5) & 1) << 12) | (rd << 7) | ((imm & 0x1f) << 2) | 1,
  addi: (rd: number, imm: number): number => C.ci(0, rd, imm),
  addiw: (rd: number, imm: number): number => C.ci(1, rd, imm),
  li: (rd: number, imm: number): number => C.ci(2, rd, imm),
  lui: (rd: number, imm: number): number => C.ci(3, rd, imm >> 12),
  addi16sp: (imm: number): number =>
    (3 << 13) | (((imm >> 9) & 1) << 12) | (2 << 7) | (((imm >> 4) & 1) << 6) | (((imm >> 6) & 1) << 5) |
    (((imm >> 7) & 3) << 3) | (((imm >> 5) & 1) << 2) | 1,
  srli: (rd: number, sh: number): number => (4 << 13) | (((sh >> 5) & 1) << 12) | (cp(rd) << 7) | ((sh & 0x1f) << 2) | 1,
  srai: (rd: number, sh: number): number =>
    (4 << 13) | (((sh >> 5) & 1) << 12) | (1 << 10) | (cp(rd) << 7) | ((sh & 0x1f) << 2) | 1,
  andi: (rd: number, imm: number): number =>
    (4 << 13) | (((imm >> 5) & 1) << 12) | (2 << 10) | (cp(rd) << 7) | ((imm & 0x1f) << 2) | 1,
  ca: (f6: number, f2: number, rd: number, rs2: number): number => (f6 << 10) | (cp(rd) << 7) | (f2 << 5) | (cp(rs2) << 2) | 1,
  sub: (rd: number, rs2: number): number => C.ca(0x23, 0, rd, rs2),
  xor: (rd: number, rs2: number): number => C.ca(0x23, 1, rd, rs2),
  or: (rd: number, rs2: number): number => C.ca(0x23, 2, rd, rs2),
  and: (rd: number, rs2: number): number => C.ca(0x23, 3, rd, rs2),
  subw: (rd: number, rs2: number): number => C.ca(0x27, 0, rd, rs2),
  addw: (rd: number, rs2: number): number => C.ca(0x27, 1, rd, rs2),
  j: (off: number): number =>
    (5 << 13) | (((off >> 11) & 1) << 12) | (((off >> 4) & 1) << 11) | (((off >> 8) & 3) << 9) | (((off >> 10) & 1) << 8) |
    (((off >> 6) & 1) << 7) | (((off >> 7) & 1) << 6) | (((off >> 1) & 7) << 3) | (((off >> 5) & 1) << 2) | 1,
  beqz: (rs1: number, off: number): number => cb(6, rs1, off),
  bnez: (rs1: number, off: number): number => cb(7, rs1, off),
  slli: (rd: number, sh: number): number => (((sh >> 5) & 1) << 12) | (rd << 7) | ((sh & 0x1f) << 2) | 2,
  lwsp: (rd: number, imm: number): number =>
    (2 << 13) | (((imm >> 5) & 1) << 12) | (rd << 7) | (((imm >> 2) & 7) << 4) | (((imm >> 6) & 3) << 2) | 2,
  ldsp: (rd: number, imm: number): number =>
    (3 << 13) | (((imm >> 5) & 1) << 12) | (rd << 7) | (((imm >> 3) & 3) << 5) | (((imm >> 6) & 7) << 2) | 2,
  jr: (rs1: number): number => (4 << 13) | (rs1 << 7) | 2,
  mv: (rd: number, rs2: number): number => (4 << 13) | (rd << 7) | (rs2 << 2) | 2,
  ebreak: (): number => 0x9002,
  jalr: (rs1: number): number => (4 << 13) | (1 << 12) | (rs1 << 7) | 2,
  add: (rd: number, rs2: number): number => (4 << 13) | (1 << 12) | (rd << 7) | (rs2 << 2) | 2,
  swsp: (rs2: number, imm: number): number => (6 << 13) | (((imm >> 2) & 0xf) << 9) | (((imm >> 6) & 3) << 7) | (rs2 << 2) | 2,
  sdsp: (rs2: number, imm: number): number => (7 << 13) | (((imm >> 3) & 7) << 10) | (((imm >> 6) & 7) << 7) | (rs2 << 2) | 2,
};
function cb(f3: number, rs1: number, off: number): number {
  return (f3 << 13) | (((off >> 8) & 1) << 12) | (((off >> 3) & 3) << 10) | (cp(rs1) << 7) | (((off >> 6) & 3) << 5) |
    (((off >> 1) & 3) << 3) | (((off >> 5) & 1) << 2) | 1;
}

/** Loads a 64-bit constant into rd (lui/addi/slli sequence, at most 8 instructions). */
export function li(rd: number, value: bigint): number[] {
  const v = BigInt.asIntN(64, value);
  if (v >= -2048n && v < 2048n) return [addi(rd, 0, Number(v))];
  if (v >= -0x8000_0000n && v < 0x8000_0000n) {
    const lo = Number(BigInt.asIntN(12, v));
    const hi = Number(BigInt.asIntN(32, v - BigInt(lo)));
    const out = [lui(rd, hi)];
    if (lo !== 0) out.push(addiw(rd, rd, lo));
    return out;
  }
  const lo = Number(BigInt.asIntN(12, v));
  const rest = (v - BigInt(lo)) >> 12n;
  return [...li(rd, rest), slli(rd, rd, 12), ...(lo !== 0 ? [addi(rd, rd, lo)] : [])];
}

/**
 * A code buffer: `emit` 32-bit or 16-bit instructions, `here()` gives the current address,
 * `bytes()` the little-endian image.
 */
export class Asm {
  readonly base: bigint;
  #bytes: number[] = [];
  constructor(base: bigint) {
    this.base = base;
  }
  here(): bigint {
    return this.base + BigInt(this.#bytes.length);
  }
  /** Emits 32-bit instructions. */
  emit(...insns: number[]): this {
    for (const i of insns) this.#bytes.push(i & 0xff, (i >>> 8) & 0xff, (i >>> 16) & 0xff, (i >>> 24) & 0xff);
    return this;
  }
  /** Emits 16-bit (compressed) instructions. */
  emit16(...insns: number[]): this {
    for (const i of insns) this.#bytes.push(i & 0xff, (i >>> 8) & 0xff);
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}
