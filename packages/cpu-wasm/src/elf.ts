/**
 * ELF64 little-endian RISC-V reader: the program headers a loader needs and the symbol table
 * (for HTIF's `tohost`/`fromhost`).
 *
 * ```
 * Elf64_Ehdr (64 bytes)
 * 0x00 e_ident[16]  7f 'E' 'L' 'F', class 2 (64), data 1 (LE), version 1, ...
 * 0x10 e_type u16   2 EXEC, 3 DYN        0x12 e_machine u16  243 EM_RISCV
 * 0x18 e_entry u64  0x20 e_phoff u64     0x28 e_shoff u64    0x30 e_flags u32
 * 0x36 e_phentsize u16  0x38 e_phnum u16  0x3a e_shentsize u16  0x3c e_shnum u16  0x3e e_shstrndx u16
 * Elf64_Phdr (56): type u32, flags u32, offset u64, vaddr u64, paddr u64, filesz u64, memsz u64, align u64
 * Elf64_Shdr (64): name u32, type u32, flags u64, addr u64, offset u64, size u64, link u32, info u32, addralign u64, entsize u64
 * Elf64_Sym  (24): name u32, info u8, other u8, shndx u16, value u64, size u64
 * ```
 *
 * @module
 */

export const EM_RISCV = 243;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const PT_LOAD = 1;
const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const SHN_UNDEF = 0;

export interface ElfSegment {
  /** Physical load address (p_paddr): where QEMU's loader places the bytes. */
  readonly paddr: bigint;
  readonly vaddr: bigint;
  /** Bytes taken from the file; the rest up to `memsz` is zero (bss). */
  readonly filesz: number;
  readonly memsz: number;
  /** p_flags: PF_X 1, PF_W 2, PF_R 4. */
  readonly flags: number;
  /** The segment's file bytes (a view into the image, `filesz` long). */
  readonly data: Uint8Array;
}

export interface ElfSymbol {
  readonly name: string;
  readonly value: bigint;
  readonly size: bigint;
  /** STT_* (low nibble of st_info). */
  readonly type: number;
  /** STB_* (high nibble of st_info). */
  readonly bind: number;
}

export interface ElfImage {
  readonly type: number;
  readonly entry: bigint;
  readonly flags: number;
  /** PT_LOAD segments in file order. */
  readonly segments: readonly ElfSegment[];
  readonly symbols: readonly ElfSymbol[];
  /** The first defined symbol called `name`, or undefined. */
  symbol(name: string): ElfSymbol | undefined;
}

/** Thrown for anything that is not a loadable ELF64 little-endian RISC-V file. */
export class ElfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ElfError";
  }
}

function toNumber(v: bigint, what: string, limit: number): number {
  if (v > BigInt(limit)) throw new ElfError(`${what} ${v} exceeds the file size ${limit}`);
  return Number(v);
}

function checkRange(offset: bigint, size: bigint, fileSize: number, what: string): void {
  if (offset + size > BigInt(fileSize)) {
    throw new ElfError(`${what} at offset ${offset} size ${size} runs past the end of the ${fileSize}-byte file`);
  }
}

function cString(bytes: Uint8Array, start: number, end: number): string {
  let i = start;
  while (i < end && bytes[i] !== 0) i++;
  return new TextDecoder().decode(bytes.subarray(start, i));
}

/** Parses and validates an ELF image; the result's segment data are views into `bytes`. */
export function parseElf(bytes: Uint8Array): ElfImage {
  if (bytes.length < 64) throw new ElfError(`file too short for an ELF header: ${bytes.length} bytes`);
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new ElfError("not an ELF file: bad magic (expected 7f 45 4c 46)");
  }
  if (bytes[4] !== 2) throw new ElfError(`ELF class ${bytes[4]} is not ELFCLASS64 (2): only 64-bit RISC-V is supported`);
  if (bytes[5] !== 1) throw new ElfError(`ELF data encoding ${bytes[5]} is not little-endian (1)`);
  if (bytes[6] !== 1) throw new ElfError(`ELF ident version ${bytes[6]} is not EV_CURRENT (1)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = dv.getUint16(0x10, true);
  const machine = dv.getUint16(0x12, true);
  if (machine !== EM_RISCV) throw new ElfError(`ELF machine ${machine} is not EM_RISCV (243)`);
  if (type !== ET_EXEC && type !== ET_DYN) {
    throw new ElfError(`ELF type ${type} is not loadable: expected ET_EXEC (2) or ET_DYN (3)`);
  }
  const entry = dv.getBigUint64(0x18, true);
  const phoff = dv.getBigUint64(0x20, true);
  const shoff = dv.getBigUint64(0x28, true);
  const flags = dv.getUint32(0x30, true);
  const phentsize = dv.getUint16(0x36, true);
  const phnum = dv.getUint16(0x38, true);
  const shentsize = dv.getUint16(0x3a, true);
  const shnum = dv.getUint16(0x3c, true);

  const segments: ElfSegment[] = [];
  if (phnum > 0) {
    if (phentsize < 56) throw new ElfError(`program header entry size ${phentsize} is smaller than 56`);
    checkRange(phoff, BigInt(phentsize) * BigInt(phnum), bytes.length, "program header table");
    for (let i = 0; i < phnum; i++) {
      const o = Number(phoff) + i * phentsize;
      if (dv.getUint32(o, true) !== PT_LOAD) continue;
      const pflags = dv.getUint32(o + 4, true);
      const offset = dv.getBigUint64(o + 8, true);
      const vaddr = dv.getBigUint64(o + 16, true);
      const paddr = dv.getBigUint64(o + 24, true);
      const filesz = dv.getBigUint64(o + 32, true);
      const memsz = dv.getBigUint64(o + 40, true);
      if (filesz > memsz) throw new ElfError(`segment ${i}: p_filesz ${filesz} is larger than p_memsz ${memsz}`);
      checkRange(offset, filesz, bytes.length, `segment ${i}`);
      if (memsz > 0xffff_ffffn) throw new ElfError(`segment ${i}: p_memsz ${memsz} is larger than 4 GiB`);
      const off = Number(offset);
      const fsz = Number(filesz);
      segments.push({ paddr, vaddr, filesz: fsz, memsz: Number(memsz), flags: pflags, data: bytes.subarray(off, off + fsz) });
    }
  }

  const symbols: ElfSymbol[] = [];
  if (shnum > 0 && shoff !== 0n) {
    if (shentsize < 64) throw new ElfError(`section header entry size ${shentsize} is smaller than 64`);
    checkRange(shoff, BigInt(shentsize) * BigInt(shnum), bytes.length, "section header table");
    const sh = (i: number) => Number(shoff) + i * shentsize;
    let table = -1;
    for (let i = 0; i < shnum; i++) {
      const t = dv.getUint32(sh(i) + 4, true);
      if (t === SHT_SYMTAB) { table = i; break; }
      if (t === SHT_DYNSYM && table < 0) table = i;
    }
    if (table >= 0) {
      const o = sh(table);
      const symOff = dv.getBigUint64(o + 24, true);
      const symSize = dv.getBigUint64(o + 32, true);
      const link = dv.getUint32(o + 40, true);
      const entsize = Number(dv.getBigUint64(o + 56, true)) || 24;
      if (entsize < 24) throw new ElfError(`symbol table entry size ${entsize} is smaller than 24`);
      if (link >= shnum) throw new ElfError(`symbol table links to string table section ${link} of ${shnum}`);
      checkRange(symOff, symSize, bytes.length, "symbol table");
      const so = sh(link);
      const strOff = dv.getBigUint64(so + 24, true);
      const strSize = dv.getBigUint64(so + 32, true);
      checkRange(strOff, strSize, bytes.length, "string table");
      const strStart = toNumber(strOff, "string table offset", bytes.length);
      const strEnd = strStart + Number(strSize);
      const count = Math.floor(Number(symSize) / entsize);
      for (let i = 1; i < count; i++) {
        const e = Number(symOff) + i * entsize;
        const nameOff = dv.getUint32(e, true);
        const info = dv.getUint8(e + 4);
        const shndx = dv.getUint16(e + 6, true);
        if (shndx === SHN_UNDEF || nameOff === 0) continue;
        if (strStart + nameOff >= strEnd) throw new ElfError(`symbol ${i}: name offset ${nameOff} is outside the string table`);
        symbols.push({
          name: cString(bytes, strStart + nameOff, strEnd),
          value: dv.getBigUint64(e + 8, true),
          size: dv.getBigUint64(e + 16, true),
          type: info & 0xf,
          bind: info >> 4,
        });
      }
    }
  }
  const byName = new Map<string, ElfSymbol>();
  for (const s of symbols) if (!byName.has(s.name)) byName.set(s.name, s);

  return {
    type,
    entry,
    flags,
    segments,
    symbols,
    symbol: (name: string) => byName.get(name),
  };
}

/**
 * A copy of `elf` with the little-endian u64 at symbol `name` set to `value`: how tests and
 * benchmarks set a guest's tunable words (iteration counts, ranges) without rebuilding it.
 */
export function patchElfU64(elf: Uint8Array, name: string, value: bigint): Uint8Array {
  const copy = elf.slice();
  const image = parseElf(copy);
  const sym = image.symbol(name);
  if (!sym) throw new ElfError(`no symbol ${name}`);
  for (const seg of image.segments) {
    const off = Number(sym.value - seg.vaddr);
    if (off >= 0 && off + 8 <= seg.filesz) {
      new DataView(seg.data.buffer, seg.data.byteOffset + off, 8).setBigUint64(0, value, true);
      return copy;
    }
  }
  throw new ElfError(`symbol ${name} is not in a loaded segment`);
}
