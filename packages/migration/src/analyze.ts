/**
 * A migration stream as JSON, in the shape of QEMU 7.2's scripts/analyze-migration.py: the
 * vmdesc at the end of the stream names every field of every device section; the RAM
 * section is summarised ("section sizes", and with `memory` the pages). Reads streams QEMU
 * writes and ours. Unlike the script it also reads configuration subsections and XBZRLE
 * records (summarised, not decoded), and fails with a `MigrationError` on anything
 * malformed rather than a Python exception.
 *
 * `formatAnalysis` prints it as the script does (indent 4).
 *
 * @module
 */

import { MigrationError } from "@ferryvm/vmstate";
import {
  QEMU_VM_CONFIGURATION,
  QEMU_VM_EOF,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_FOOTER,
  QEMU_VM_SECTION_FULL,
  QEMU_VM_SECTION_PART,
  QEMU_VM_SECTION_START,
  QEMU_VM_SUBSECTION,
  QEMU_VM_VMDESCRIPTION,
  RamSaveFlag,
} from "./constants.ts";
import { hex } from "./errors.ts";

/** The analyzer's JSON values. */
export type AnalyzeJson = string | number | boolean | null | AnalyzeJson[] | { [key: string]: AnalyzeJson };

/** Options of `analyzeMigration` (the script's `-d desc` and `-m`). */
export interface AnalyzeOptions {
  /** Return the vmdesc (`--dump desc`) instead of the state. */
  dumpDesc?: boolean;
  /** Include RAM page contents (`--memory`). */
  memory?: boolean;
  /** Put a "configuration" member first (machine type, capabilities); the script has none. */
  configuration?: boolean;
}

/** A number field of a stream: where it is, its size in bytes and what it is. */
export interface StreamField {
  readonly offset: number;
  readonly size: number;
  readonly what: string;
}

class Cursor {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  pos: number;
  readonly fields: StreamField[] | undefined;
  /** Fields left to read: a vmdesc cannot make the analyzer loop longer than the stream allows. */
  budget: number;
  constructor(bytes: Uint8Array, record = false) {
    this.budget = 4 * bytes.length + 4096;
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    if (record) this.fields = [];
  }
  #num(n: number, what: string): number {
    this.fields?.push({ offset: this.pos, size: n, what });
    return this.#need(n, what);
  }
  #need(n: number, what: string): number {
    if (n < 0 || this.pos + n > this.#bytes.length) {
      throw new MigrationError(`analyze: unexpected end of stream reading ${what} at offset ${this.pos} (needed ${n} bytes, ${this.#bytes.length - this.pos} left)`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u8(what: string): number {
    return this.#bytes[this.#num(1, what)]!;
  }
  peek8(): number | undefined {
    return this.#bytes[this.pos];
  }
  be16(what: string): number {
    return this.#view.getUint16(this.#num(2, what));
  }
  be32(what: string): number {
    return this.#view.getUint32(this.#num(4, what));
  }
  be64(what: string): bigint {
    return this.#view.getBigUint64(this.#num(8, what));
  }
  bytes(n: number, what: string): Uint8Array {
    const at = this.#need(n, what);
    return this.#bytes.subarray(at, at + n);
  }
  str(n: number, what: string): string {
    return new TextDecoder().decode(this.bytes(n, what));
  }
  str8(what: string): string {
    return this.str(this.u8(what), what);
  }
}

interface FieldDesc {
  name: string;
  type: string;
  size: number;
  index?: number;
  array_len?: number;
  struct?: StructDesc;
}
interface StructDesc {
  vmsd_name?: string;
  fields?: FieldDesc[];
  subsections?: StructDesc[];
}
interface DeviceDesc extends StructDesc {
  name: string;
  instance_id: number;
}
interface Vmdesc {
  page_size: number;
  devices: DeviceDesc[];
}

/** The vmdesc found as the script finds it: after the last NUL, the first '{' preceded by 0x06 + be32 length. */
export function findVmdesc(bytes: Uint8Array): string {
  const tailStart = Math.max(0, bytes.length - 10 * 1024 * 1024);
  let nul = bytes.lastIndexOf(0);
  if (nul < tailStart) nul = tailStart - 1;
  const brace = bytes.indexOf(0x7b, Math.max(0, nul));
  if (brace < 5 || bytes[brace - 5] !== QEMU_VM_VMDESCRIPTION) {
    throw new MigrationError("analyze: no vmdesc (VMDESCRIPTION section) at the end of the stream");
  }
  const len = new DataView(bytes.buffer, bytes.byteOffset + brace - 4, 4).getUint32(0);
  if (brace + len > bytes.length) throw new MigrationError(`analyze: vmdesc length ${len} runs past the end of the stream`);
  return new TextDecoder().decode(bytes.subarray(brace, brace + len));
}

function parseVmdesc(text: string): Vmdesc {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new MigrationError(`analyze: vmdesc is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const d = json as Partial<Vmdesc>;
  if (typeof d !== "object" || d === null || !Array.isArray(d.devices) || typeof d.page_size !== "number") {
    throw new MigrationError("analyze: vmdesc lacks page_size or devices");
  }
  if (!Number.isInteger(d.page_size) || d.page_size < 512 || d.page_size > 65536 || (d.page_size & (d.page_size - 1)) !== 0) {
    throw new MigrationError(`analyze: vmdesc page_size ${d.page_size} is not a power of two in 512..65536`);
  }
  return d as Vmdesc;
}

const SIGNED = new Set(["int8", "int16", "int32", "int32 equal", "int32 le", "int64", "int64 equal", "uint8 equal", "uint16 equal"]);
const UNSIGNED = new Set(["uint8", "uint16", "uint32", "uint32 equal", "uint64"]);
const MAX_FIELD_SIZE = 1 << 28;
const MAX_DEPTH = 64;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hexBytes(b: Uint8Array): string {
  let out = "";
  for (let i = 0; i < b.length; i++) out += i === 0 ? HEX[b[i]!] : ` ${HEX[b[i]!]}`;
  return out;
}

function readField(c: Cursor, f: FieldDesc, depth: number, where: string): AnalyzeJson {
  if (--c.budget < 0) throw new MigrationError(`analyze: ${where}: the vmdesc describes more fields than the stream can hold`);
  if (f.type === "struct") {
    if (typeof f.struct !== "object" || f.struct === null) throw new MigrationError(`analyze: ${where}: struct field without a struct description`);
    return readStruct(c, f.struct, depth + 1, where);
  }
  const size = Number(f.size);
  if (!Number.isInteger(size) || size < 0 || size > MAX_FIELD_SIZE) throw new MigrationError(`analyze: ${where}: bad field size ${f.size}`);
  const data = c.bytes(size, where);
  if (f.type === "bool") return size > 0 && data[0] !== 0;
  const signed = SIGNED.has(f.type);
  if ((signed || UNSIGNED.has(f.type)) && size > 0) {
    let u = 0n;
    for (const b of data) u = (u << 8n) | BigInt(b);
    const text = `0x${u.toString(16).padStart(size * 2, "0")}`;
    if (signed && (data[0]! & 0x80) !== 0) return `${text} (${u - (1n << BigInt(size * 8))})`;
    return text;
  }
  return hexBytes(data);
}

function unfold(fields: FieldDesc[], budget: number): FieldDesc[] {
  const out: FieldDesc[] = [];
  for (const f of fields) {
    if (f.array_len === undefined) {
      out.push(f);
      continue;
    }
    const n = Number(f.array_len);
    if (!Number.isInteger(n) || n < 0 || n > budget) throw new MigrationError(`analyze: field ${f.name}: bad array_len ${f.array_len}`);
    if (out.length + n > budget) throw new MigrationError(`analyze: field ${f.name}: more elements than the stream can hold`);
    for (let i = 0; i < n; i++) out.push({ ...f, array_len: undefined, index: i });
  }
  return out;
}

function readStruct(c: Cursor, desc: StructDesc, depth: number, where: string): { [key: string]: AnalyzeJson } {
  if (depth > MAX_DEPTH) throw new MigrationError(`analyze: ${where}: structs nested deeper than ${MAX_DEPTH}`);
  const data: { [key: string]: AnalyzeJson } = {};
  for (const f of unfold(Array.isArray(desc.fields) ? desc.fields : [], c.budget)) {
    const name = String(f.name);
    const value = readField(c, f, depth, `${where}/${name}`);
    if (f.index !== undefined) {
      const a = (data[name] ??= []) as AnalyzeJson[];
      if (!Array.isArray(a) || a.length !== f.index) throw new MigrationError(`analyze: ${where}/${name}: index ${f.index} out of order`);
      a.push(value);
    } else {
      data[name] = value;
    }
  }
  for (const sub of Array.isArray(desc.subsections) ? desc.subsections : []) {
    const at = c.pos;
    if (c.u8(`${where}: subsection marker`) !== QEMU_VM_SUBSECTION) {
      throw new MigrationError(`analyze: ${where}: subsection ${sub.vmsd_name} not found at offset ${hex(at)}`);
    }
    const name = c.str8(`${where}: subsection name`);
    c.be32(`${where}/${name}: version`);
    data[name] = readStruct(c, sub, depth + 1, `${where}/${name}`);
  }
  return data;
}

class RamReader {
  readonly sizes: { [key: string]: AnalyzeJson } = {};
  readonly memory: { [key: string]: AnalyzeJson } | undefined;
  #name = "";
  readonly #pageSize: number;

  constructor(pageSize: number, dumpMemory: boolean) {
    this.#pageSize = pageSize;
    if (dumpMemory) this.memory = {};
  }

  json(): AnalyzeJson {
    return this.memory === undefined ? { "section sizes": this.sizes } : { "section sizes": this.sizes, memory: this.memory };
  }

  #key(addr: bigint): string {
    return `${this.#name} (0x${addr.toString(16).padStart(16, "0")})`;
  }

  read(c: Cursor): void {
    const mask = BigInt(this.#pageSize - 1);
    for (;;) {
      const at = c.pos;
      const word = c.be64("ram: record header");
      let flags = Number(word & mask);
      const addr = word & ~mask;
      if (flags & RamSaveFlag.MEM_SIZE) {
        // as the script: block entries until a byte 0 (the high byte of the next record)
        while (c.peek8() !== undefined && c.peek8() !== 0) {
          this.#name = c.str8("ram: MEM_SIZE idstr");
          const len = c.be64(`ram: MEM_SIZE used length of ${this.#name}`);
          this.sizes[this.#name] = `0x${len.toString(16).padStart(16, "0")}`;
        }
        flags &= ~RamSaveFlag.MEM_SIZE;
      }
      if (flags & (RamSaveFlag.ZERO | RamSaveFlag.PAGE | RamSaveFlag.XBZRLE)) {
        if (flags & RamSaveFlag.CONTINUE) flags &= ~RamSaveFlag.CONTINUE;
        else this.#name = c.str8("ram: block idstr");
      }
      if (flags & RamSaveFlag.ZERO) {
        const fill = c.u8("ram: fill byte");
        if (this.memory) this.memory[this.#key(addr)] = `Filled with 0x${fill.toString(16).padStart(2, "0")}`;
        flags &= ~RamSaveFlag.ZERO;
      } else if (flags & RamSaveFlag.PAGE) {
        const data = c.bytes(this.#pageSize, "ram: page");
        if (this.memory) this.memory[this.#key(addr)] = hexBytes(data);
        flags &= ~RamSaveFlag.PAGE;
      } else if (flags & RamSaveFlag.XBZRLE) {
        const enc = c.u8("ram: XBZRLE encoding");
        const len = c.be16("ram: XBZRLE length");
        if (enc !== 1 || len > this.#pageSize) throw new MigrationError(`analyze: ram: bad XBZRLE header (encoding ${enc}, length ${len}) at offset ${at}`);
        const delta = c.bytes(len, "ram: XBZRLE data");
        if (this.memory) this.memory[this.#key(addr)] = `XBZRLE ${hexBytes(delta)}`;
        flags &= ~RamSaveFlag.XBZRLE;
      } else if (flags & RamSaveFlag.HOOK) {
        throw new MigrationError(`analyze: ram: RAM hooks don't make sense with files (offset ${at})`);
      }
      if (flags & RamSaveFlag.EOS) return;
      if (flags !== 0) throw new MigrationError(`analyze: ram: unknown RAM flags ${hex(flags)} at offset ${at}`);
    }
  }
}

interface Section {
  key: string;
  read(c: Cursor): void;
  json(): AnalyzeJson;
}

/** A stream (the whole of it, in memory) as the script's JSON. */
export function analyzeMigration(bytes: Uint8Array, options: AnalyzeOptions = {}): AnalyzeJson {
  return analyze(new Cursor(bytes), bytes, options);
}

/**
 * Every framing number of a well-formed stream (types, ids, lengths, counts, versions,
 * RAM record headers; not device field values), for the hostile-input tests and the fuzzer.
 */
export function streamFieldMap(bytes: Uint8Array): StreamField[] {
  const c = new Cursor(bytes, true);
  analyze(c, bytes, {});
  const vmdescAt = bytes.length - new TextEncoder().encode(findVmdesc(bytes)).length;
  c.fields!.push({ offset: vmdescAt - 5, size: 1, what: "vmdesc section type" }, { offset: vmdescAt - 4, size: 4, what: "vmdesc length" });
  return c.fields!;
}

function analyze(c: Cursor, bytes: Uint8Array, options: AnalyzeOptions): AnalyzeJson {
  const magic = c.be32("magic");
  if (magic !== QEMU_VM_FILE_MAGIC) throw new MigrationError(`analyze: invalid file magic ${hex(magic)}`);
  const version = c.be32("version");
  if (version !== QEMU_VM_FILE_VERSION) throw new MigrationError(`analyze: invalid version number ${version}`);
  const vmdescText = findVmdesc(bytes);
  const vmdesc = parseVmdesc(vmdescText);
  if (options.dumpDesc) return JSON.parse(vmdescText) as AnalyzeJson;

  const out: { [key: string]: AnalyzeJson } = {};
  const sections = new Map<number, Section>();
  let lastId = -1;
  for (;;) {
    const at = c.pos;
    const type = c.u8("section type");
    if (type === QEMU_VM_EOF) break;
    if (type === QEMU_VM_CONFIGURATION) {
      const name = c.str(c.be32("configuration: len"), "configuration: name");
      const conf: { [key: string]: AnalyzeJson } = { name };
      while (c.peek8() === QEMU_VM_SUBSECTION) {
        const save = c.pos;
        c.u8("subsection");
        const sub = c.str8("configuration subsection name");
        if (!sub.startsWith("configuration")) {
          c.pos = save;
          break;
        }
        c.be32(`${sub}: version`);
        if (sub === "configuration/capabilities") {
          const n = c.be32("capabilities: caps_count");
          if (n > 64) throw new MigrationError(`analyze: configuration/capabilities: caps_count ${n} exceeds 64`);
          conf.capabilities = Array.from({ length: n }, (_, i) => c.str8(`capabilities[${i}]`));
        } else if (sub === "configuration/uuid") {
          conf.uuid = hexBytes(c.bytes(16, "uuid"));
        } else {
          throw new MigrationError(`analyze: unknown configuration subsection '${sub}'`);
        }
      }
      if (options.configuration) out.configuration = conf;
    } else if (type === QEMU_VM_SECTION_START || type === QEMU_VM_SECTION_FULL) {
      const id = c.be32("section_id");
      const name = c.str8("idstr");
      const instance = c.be32(`${name}: instance_id`);
      const ver = c.be32(`${name}: version_id`);
      lastId = id;
      let section: Section;
      if (name === "ram" && instance === 0) {
        if (ver !== 4) throw new MigrationError(`analyze: unknown RAM version ${ver}`);
        const ram = new RamReader(vmdesc.page_size, options.memory ?? false);
        section = { key: `ram (${id})`, read: (cc) => ram.read(cc), json: () => ram.json() };
      } else {
        const desc = vmdesc.devices.find((d) => d.name === name && d.instance_id === instance);
        if (desc === undefined) throw new MigrationError(`analyze: no vmdesc entry for section '${name}' instance ${instance} (offset ${at})`);
        let data: AnalyzeJson = {};
        section = { key: `${name} (${id})`, read: (cc) => (data = readStruct(cc, desc, 0, name)), json: () => data };
      }
      sections.set(id, section);
      section.read(c);
      out[section.key] = section.json();
    } else if (type === QEMU_VM_SECTION_PART || type === QEMU_VM_SECTION_END) {
      const id = c.be32("section_id");
      const section = sections.get(id);
      if (section === undefined) throw new MigrationError(`analyze: PART/END for unknown section id ${id} at offset ${at}`);
      lastId = id;
      section.read(c);
      out[section.key] = section.json();
    } else if (type === QEMU_VM_SECTION_FOOTER) {
      const id = c.be32("footer section_id");
      if (id !== lastId) throw new MigrationError(`analyze: mismatched section footer: ${hex(id)} vs ${hex(lastId)}`);
    } else {
      throw new MigrationError(`analyze: unknown section type ${type} at offset ${at}`);
    }
  }
  return out;
}

/** The script's output text (json.dumps with indent 4), without the final newline. */
export function formatAnalysis(json: AnalyzeJson): string {
  return JSON.stringify(json, null, 4);
}
