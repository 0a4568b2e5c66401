// The C extension: expands a 16-bit instruction into its 32-bit equivalent (ILLEGAL if reserved).

/** An always-illegal 32-bit encoding (major opcode 0x7f). */
export const ILLEGAL: u32 = 0xffff_ffff;

@inline function r(op: u32, f3: u32, f7: u32, rd: u32, rs1: u32, rs2: u32): u32 {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
@inline function i(op: u32, f3: u32, rd: u32, rs1: u32, imm: i32): u32 {
  return ((<u32>imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
@inline function s(op: u32, f3: u32, rs1: u32, rs2: u32, imm: i32): u32 {
  const u = <u32>imm;
  return (((u >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((u & 0x1f) << 7) | op;
}
@inline function b(f3: u32, rs1: u32, rs2: u32, imm: i32): u32 {
  const u = <u32>imm;
  return (((u >> 12) & 1) << 31) | (((u >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
    (f3 << 12) | (((u >> 1) & 0xf) << 8) | (((u >> 11) & 1) << 7) | 0x63;
}
@inline function j(rd: u32, imm: i32): u32 {
  const u = <u32>imm;
  return (((u >> 20) & 1) << 31) | (((u >> 1) & 0x3ff) << 21) | (((u >> 11) & 1) << 20) |
    (((u >> 12) & 0xff) << 12) | (rd << 7) | 0x6f;
}
@inline function sext(v: u32, bits: u32): i32 {
  return (<i32>(v << (32 - bits))) >> (32 - bits);
}

export function expandC(c: u32): u32 {
  const rdp = 8 + ((c >> 2) & 7);
  const rs1p = 8 + ((c >> 7) & 7);
  const rd = (c >> 7) & 31;
  const rs2 = (c >> 2) & 31;
  const imm6 = sext(((c >> 7) & 0x20) | ((c >> 2) & 0x1f), 6);
  switch (((c & 3) << 3) | (c >> 13)) {
    case 0x00: { // c.addi4spn
      const imm = (((c >> 6) & 1) << 2) | (((c >> 5) & 1) << 3) | (((c >> 11) & 3) << 4) | (((c >> 7) & 0xf) << 6);
      if (imm == 0) return ILLEGAL;
      return i(0x13, 0, rdp, 2, imm);
    }
    case 0x02: // c.lw
      return i(0x03, 2, rdp, rs1p, <i32>((((c >> 10) & 7) << 3) | (((c >> 6) & 1) << 2) | (((c >> 5) & 1) << 6)));
    case 0x03: // c.ld
      return i(0x03, 3, rdp, rs1p, <i32>((((c >> 10) & 7) << 3) | (((c >> 5) & 3) << 6)));
    case 0x06: // c.sw
      return s(0x23, 2, rs1p, rdp, <i32>((((c >> 10) & 7) << 3) | (((c >> 6) & 1) << 2) | (((c >> 5) & 1) << 6)));
    case 0x07: // c.sd
      return s(0x23, 3, rs1p, rdp, <i32>((((c >> 10) & 7) << 3) | (((c >> 5) & 3) << 6)));
    case 0x08: // c.addi
      return i(0x13, 0, rd, rd, imm6);
    case 0x09: // c.addiw
      if (rd == 0) return ILLEGAL;
      return i(0x1b, 0, rd, rd, imm6);
    case 0x0a: // c.li
      return i(0x13, 0, rd, 0, imm6);
    case 0x0b: {
      if (rd == 2) { // c.addi16sp
        const imm = sext((((c >> 12) & 1) << 9) | (((c >> 6) & 1) << 4) | (((c >> 5) & 1) << 6) |
          (((c >> 3) & 3) << 7) | (((c >> 2) & 1) << 5), 10);
        if (imm == 0) return ILLEGAL;
        return i(0x13, 0, 2, 2, imm);
      }
      if (imm6 == 0) return ILLEGAL; // c.lui
      return ((<u32>imm6 << 12) & 0xffff_f000) | (rd << 7) | 0x37;
    }
    case 0x0c: { // misc-alu
      const shamt: i32 = <i32>(((c >> 7) & 0x20) | ((c >> 2) & 0x1f));
      switch ((c >> 10) & 3) {
        case 0: return i(0x13, 5, rs1p, rs1p, shamt); // c.srli
        case 1: return i(0x13, 5, rs1p, rs1p, shamt | 0x400); // c.srai
        case 2: return i(0x13, 7, rs1p, rs1p, imm6); // c.andi
        default: {
          const f = ((c >> 10) & 4) | ((c >> 5) & 3);
          switch (f) {
            case 0: return r(0x33, 0, 0x20, rs1p, rs1p, rdp); // c.sub
            case 1: return r(0x33, 4, 0, rs1p, rs1p, rdp); // c.xor
            case 2: return r(0x33, 6, 0, rs1p, rs1p, rdp); // c.or
            case 3: return r(0x33, 7, 0, rs1p, rs1p, rdp); // c.and
            case 4: return r(0x3b, 0, 0x20, rs1p, rs1p, rdp); // c.subw
            case 5: return r(0x3b, 0, 0, rs1p, rs1p, rdp); // c.addw
            default: return ILLEGAL;
          }
        }
      }
    }
    case 0x0d: { // c.j
      const imm = sext((((c >> 12) & 1) << 11) | (((c >> 11) & 1) << 4) | (((c >> 9) & 3) << 8) |
        (((c >> 8) & 1) << 10) | (((c >> 7) & 1) << 6) | (((c >> 6) & 1) << 7) |
        (((c >> 3) & 7) << 1) | (((c >> 2) & 1) << 5), 12);
      return j(0, imm);
    }
    case 0x0e:
    case 0x0f: { // c.beqz, c.bnez
      const imm = sext((((c >> 12) & 1) << 8) | (((c >> 10) & 3) << 3) | (((c >> 5) & 3) << 6) |
        (((c >> 3) & 3) << 1) | (((c >> 2) & 1) << 5), 9);
      return b((c >> 13) & 1, rs1p, 0, imm);
    }
    case 0x10: // c.slli
      return i(0x13, 1, rd, rd, <i32>(((c >> 7) & 0x20) | ((c >> 2) & 0x1f)));
    case 0x12: // c.lwsp
      if (rd == 0) return ILLEGAL;
      return i(0x03, 2, rd, 2, <i32>((((c >> 12) & 1) << 5) | (((c >> 4) & 7) << 2) | (((c >> 2) & 3) << 6)));
    case 0x13: // c.ldsp
      if (rd == 0) return ILLEGAL;
      return i(0x03, 3, rd, 2, <i32>((((c >> 12) & 1) << 5) | (((c >> 5) & 3) << 3) | (((c >> 2) & 7) << 6)));
    case 0x14: {
      if (!(c & 0x1000)) {
        if (rs2 == 0) { // c.jr
          if (rd == 0) return ILLEGAL;
          return i(0x67, 0, 0, rd, 0);
        }
        return r(0x33, 0, 0, rd, 0, rs2); // c.mv
      }
      if (rs2 == 0) {
        if (rd == 0) return 0x00100073; // c.ebreak
        return i(0x67, 0, 1, rd, 0); // c.jalr
      }
      return r(0x33, 0, 0, rd, rd, rs2); // c.add
    }
    case 0x16: // c.swsp
      return s(0x23, 2, 2, rs2, <i32>((((c >> 9) & 0xf) << 2) | (((c >> 7) & 3) << 6)));
    case 0x17: // c.sdsp
      return s(0x23, 3, 2, rs2, <i32>((((c >> 10) & 7) << 3) | (((c >> 7) & 7) << 6)));
    default:
      return ILLEGAL;
  }
}
