/**
 * The VMState interpreter (QEMU's migration/vmstate.c): walks a description's field table to
 * save a state object to the stream (and its vmdesc JSON), or to load it back.
 *
 * Wire grammar of one description at version v:
 *
 *   state      = field* subsection*
 *   field      = element*              ; elements of the fields that exist at v, in order
 *   subsection = 0x05 str8(name) be32(version) state
 *
 * Nothing on the wire says which fields follow or how long they are: both sides walk the
 * same table. Counts and sizes come from the local object and are checked before use.
 *
 * @module
 */

import type { AnyVMStateDescription, FieldLayout, VMStateDescription, VMStateField } from "./description.ts";
import { MigrationError, VMStateError } from "./errors.ts";
import { vmstateInfoUint8 } from "./info.ts";
import { JsonWriter } from "./json-writer.ts";
import { ByteReader, ByteWriter, type VMStateInput, type VMStateOutput } from "./stream.ts";

/** Marks a subsection in the stream (QEMU_VM_SUBSECTION). */
export const QEMU_VM_SUBSECTION = 0x05;

type Obj = Record<string, unknown>;
type Desc = AnyVMStateDescription;
type Field = VMStateField<never>;

/** Options of `saveState`. */
export interface SaveStateOptions {
  /** Receives the description's vmdesc members (vmsd_name, version, fields, subsections). */
  vmdesc?: JsonWriter;
}

/** Whether a (sub)section is sent: its `needed` holds, or it has none. */
export function vmstateSaveNeeded<T>(vmsd: VMStateDescription<T>, obj: T): boolean {
  return vmsd.needed === undefined || vmsd.needed(obj);
}

/**
 * Writes `obj` as described by `vmsd` at its `version_id`: pre_save, fields, needed
 * subsections, post_save. With `options.vmdesc`, also writes the description's vmdesc
 * members into the JSON object the caller opened.
 */
export function saveState<T>(out: VMStateOutput, vmsd: VMStateDescription<T>, obj: T, options: SaveStateOptions = {}): void {
  saveStateV(out, vmsd as unknown as Desc, obj as Obj, options.vmdesc, vmsd.version_id);
}

/**
 * Reads a stream of version `versionId` into `obj`: pre_load, fields, subsections (any
 * order, by name), post_load. Rejects versions outside [minimum_version_id, version_id].
 * Fails with a `VMStateError` naming the description, the field and the numbers.
 */
export async function loadState<T>(
  input: VMStateInput,
  vmsd: VMStateDescription<T>,
  obj: T,
  versionId: number,
): Promise<void> {
  await loadStateV(input, vmsd as unknown as Desc, obj as Obj, versionId);
}

/** `obj` saved by `vmsd` into a new byte array. */
export function saveStateToBytes<T>(vmsd: VMStateDescription<T>, obj: T): Uint8Array {
  const out = new ByteWriter();
  saveState(out, vmsd, obj);
  return out.bytes();
}

/** Loads `bytes` (all of them) into `obj`; the version defaults to `vmsd.version_id`. */
export async function loadStateFromBytes<T>(
  bytes: Uint8Array,
  vmsd: VMStateDescription<T>,
  obj: T,
  options: { versionId?: number } = {},
): Promise<void> {
  const input = new ByteReader(bytes);
  await loadState(input, vmsd, obj, options.versionId ?? vmsd.version_id);
  if (input.buffered !== 0) {
    throw new VMStateError(vmsd.name, undefined, `${input.buffered} bytes left over at offset ${input.position}`);
  }
}

class CountingOutput implements VMStateOutput {
  position = 0;
  putU8(): void {
    this.position += 1;
  }
  putBe16(): void {
    this.position += 2;
  }
  putBe32(): void {
    this.position += 4;
  }
  putBe64(): void {
    this.position += 8;
  }
  putBytes(bytes: Uint8Array): void {
    this.position += bytes.length;
  }
}

/**
 * The vmdesc entry QEMU writes for this state, as JSON text:
 * `{"vmsd_name": ..., "version": ..., "fields": [...], "subsections": [...]}`, preceded by
 * `"name"` and `"instance_id"` when `options.name` is given (a section's entry in the
 * stream's `devices` list). It runs a save (hooks included) into a byte counter.
 */
export function vmdescJson<T>(
  vmsd: VMStateDescription<T>,
  obj: T,
  options: { name?: string; instanceId?: number } = {},
): string {
  const w = new JsonWriter();
  w.startObject();
  if (options.name !== undefined) {
    w.str("name", options.name);
    w.int("instance_id", options.instanceId ?? 0);
  }
  saveState(new CountingOutput(), vmsd, obj, { vmdesc: w });
  w.endObject();
  return w.toString();
}

function fieldExists(field: Field, obj: Obj, versionId: number): boolean {
  return field.field_exists !== undefined ? field.field_exists(obj as never, versionId) : field.version_id <= versionId;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function runHook(vmsd: Desc, hook: string, run: () => void): void {
  try {
    run();
  } catch (e) {
    throw new VMStateError(vmsd.name, undefined, `${hook} failed: ${message(e)}`, { cause: e });
  }
}

/** The error `e`, raised while handling element `label` of `vmsd`, with that context. */
function inField(vmsd: Desc, label: string, e: unknown, hint?: string): VMStateError {
  if (e instanceof VMStateError) {
    if (e.field === undefined) return new VMStateError(vmsd.name, label, `${e.vmsd}: ${e.detail}`, { cause: e });
    return new VMStateError(vmsd.name, `${label}/${e.field}`, e.detail, { cause: e });
  }
  return new VMStateError(vmsd.name, label, hint === undefined ? message(e) : `${message(e)}: ${hint}`, { cause: e });
}

/** `name[i]` inside an array's element loop (i ≥ 0), else `name`. */
function elementLabel(field: Field, n: number, i: number): string {
  return n > 1 && i >= 0 ? `${field.name}[${i}]` : field.name;
}

/** A count read from the local object: a non-negative safe integer. */
function memberCount(obj: Obj, key: string, what: string): number {
  const v = obj[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new MigrationError(`${what} ${String(v)} (member ${key}) is not a valid count`);
  }
  return v;
}

function arrayMember(obj: Obj, key: string): ArrayLike<unknown> & Record<number, unknown> {
  const v = obj[key];
  if (v === null || typeof v !== "object" || typeof (v as { length?: unknown }).length !== "number") {
    throw new MigrationError(`member ${key} is not an array`);
  }
  return v as ArrayLike<unknown> & Record<number, unknown>;
}

function bytesMember(obj: Obj, key: string): Uint8Array {
  const v = obj[key];
  if (!(v instanceof Uint8Array)) throw new MigrationError(`member ${key} is not a Uint8Array`);
  return v;
}

/** Number of elements of an array or struct-array layout (VARRAY counts checked). */
function elementCount(layout: FieldLayout & { kind: "array" | "struct" }, obj: Obj): number {
  const count = layout.count;
  if (count === undefined) return 1;
  if ("fixed" in count) return count.fixed;
  const n = memberCount(obj, count.key, "VARRAY count") * count.multiply;
  if (!Number.isSafeInteger(n)) throw new MigrationError(`VARRAY count ${n} is too large`);
  return n;
}

/** Checks that `n` elements from `start` fit `arr` (or `allocMax` when allocating). */
function checkFits(layout: FieldLayout & { kind: "array" | "struct" }, arr: ArrayLike<unknown>, n: number, allocMax?: number): void {
  const varray = layout.count !== undefined && "key" in layout.count;
  if (allocMax !== undefined) {
    if (n > allocMax) throw new MigrationError(`VARRAY count ${n} exceeds ${allocMax}`);
    return;
  }
  const room = Math.max(0, arr.length - layout.start);
  if (n > room) {
    throw new MigrationError(varray ? `VARRAY count ${n} exceeds ${room}` : `array of ${n} elements exceeds the local ${room}`);
  }
}

function bufferSize(layout: FieldLayout & { kind: "buffer" }, obj: Obj, buf: Uint8Array | undefined): number {
  const size = layout.size;
  if ("local" in size) return Math.max(0, (buf?.length ?? 0) - layout.start);
  if ("fixed" in size) return size.fixed;
  const n = memberCount(obj, size.key, "VBUFFER size") * size.multiply;
  if (!Number.isSafeInteger(n)) throw new MigrationError(`VBUFFER size ${n} is too large`);
  return n;
}

function checkBufferFits(layout: FieldLayout & { kind: "buffer" }, buf: Uint8Array, size: number): void {
  if (layout.allocMax !== undefined) {
    if (size > layout.allocMax) throw new MigrationError(`VBUFFER size ${size} exceeds ${layout.allocMax}`);
    return;
  }
  const room = Math.max(0, buf.length - layout.start);
  if (size > room) throw new MigrationError(`buffer size ${size} exceeds the local ${room}`);
}

interface BitmapView {
  /** Number of be64 words on the wire. */
  words: number;
  word(i: number): bigint;
  setWord(i: number, w: bigint): void;
}

function bitmapView(obj: Obj, layout: FieldLayout & { kind: "bitmap" }): BitmapView {
  const nbits = memberCount(obj, layout.nbitsKey, "bitmap size");
  const bmp = obj[layout.key];
  const words = Math.ceil(nbits / 64);
  if (bmp instanceof BigUint64Array) {
    if (bmp.length < words) throw new MigrationError(`bitmap of ${nbits} bits exceeds the local ${bmp.length * 64}`);
    return { words, word: (i) => bmp[i]!, setWord: (i, w) => void (bmp[i] = w) };
  }
  if (bmp instanceof Uint32Array) {
    const longs = Math.ceil(nbits / 32);
    if (bmp.length < longs) throw new MigrationError(`bitmap of ${nbits} bits exceeds the local ${bmp.length * 32}`);
    return {
      words,
      word: (i) => BigInt(bmp[2 * i]!) | (2 * i + 1 < longs ? BigInt(bmp[2 * i + 1]!) << 32n : 0n),
      setWord(i, w) {
        bmp[2 * i] = Number(w & 0xffffffffn);
        if (2 * i + 1 < longs) bmp[2 * i + 1] = Number(w >> 32n);
      },
    };
  }
  throw new MigrationError(`member ${layout.key} is not a BigUint64Array or Uint32Array`);
}

/* ---- vmdesc ---- */

/** vmsd_can_compress: an array's vmdesc may be one entry with array_len. */
function canCompress(field: Field): boolean {
  if (field.field_exists !== undefined) return false;
  const layout = field.layout;
  if (layout.kind === "struct" && layout.structVersion === undefined) {
    if (!layout.vmsd.fields.every(canCompress)) return false;
    if ((layout.vmsd.subsections?.length ?? 0) > 0) return false;
  }
  return true;
}

function typeName(field: Field): string {
  const layout = field.layout;
  switch (layout.kind) {
    case "single":
    case "array":
      return layout.info.name;
    case "struct":
      return layout.structVersion === undefined ? "struct" : "vstruct";
    case "buffer":
      return "buffer";
    case "unused":
      return "unused_buffer";
    case "bitmap":
      return "bitmap";
    case "tmp":
      return "tmp";
    case "validate":
      return "unknown";
  }
}

/** The field's vmdesc name: `name[k]` when several fields share the name. */
function descName(vmsd: Desc, field: Field): string {
  let same = 0;
  let index = -1;
  for (const f of vmsd.fields) {
    if (f.name !== field.name) continue;
    if (f === field) index = same;
    same++;
  }
  return same > 1 ? `${field.name}[${index}]` : field.name;
}

/** A field's vmdesc facts, computed once (a save in the downtime writes them all again). */
interface FieldDesc {
  vmsd: Desc;
  name: string;
  compress: boolean;
  type: string;
}
const fieldDescs = new WeakMap<Field, FieldDesc>();

function fieldDesc(vmsd: Desc, field: Field): FieldDesc {
  let d = fieldDescs.get(field);
  // a Field object could be shared by two descriptions: its vmdesc name depends on the one
  if (d === undefined || d.vmsd !== vmsd) {
    d = { vmsd, name: descName(vmsd, field), compress: canCompress(field), type: typeName(field) };
    fieldDescs.set(field, d);
  }
  return d;
}

function descFieldStart(vmdesc: JsonWriter, vmsd: Desc, field: Field, i: number, n: number): void {
  const d = fieldDesc(vmsd, field);
  vmdesc.startObject();
  vmdesc.str("name", d.name);
  if (n > 1) {
    if (d.compress) vmdesc.int("array_len", n);
    else vmdesc.int("index", i);
  }
  vmdesc.str("type", d.type);
  if (field.layout.kind === "struct" && field.layout.structVersion === undefined) vmdesc.startObject("struct");
}

function descFieldEnd(vmdesc: JsonWriter, field: Field, size: number): void {
  if (field.layout.kind === "struct" && field.layout.structVersion === undefined) vmdesc.endObject();
  vmdesc.int("size", size);
  vmdesc.endObject();
}

/* ---- save ---- */

function saveStateV(out: VMStateOutput, vmsd: Desc, obj: Obj, vmdesc: JsonWriter | undefined, versionId: number): void {
  if (vmsd.pre_save !== undefined) runHook(vmsd, "pre_save", () => vmsd.pre_save!(obj as never));
  let failed = true;
  try {
    if (vmdesc !== undefined) {
      vmdesc.str("vmsd_name", vmsd.name);
      vmdesc.int("version", versionId);
      vmdesc.startArray("fields");
    }
    for (const field of vmsd.fields) {
      if (!fieldExists(field, obj, versionId)) {
        if (field.layout.kind === "validate") {
          throw new VMStateError(vmsd.name, field.name, "output state validation failed");
        }
        continue;
      }
      saveField(out, vmsd, field, obj, vmdesc);
    }
    vmdesc?.endArray();
    saveSubsections(out, vmsd, obj, vmdesc);
    failed = false;
  } finally {
    if (vmsd.post_save !== undefined) {
      if (failed) {
        try {
          vmsd.post_save(obj as never);
        } catch {
          // The save already failed; that error is the one to report.
        }
      } else {
        runHook(vmsd, "post_save", () => vmsd.post_save!(obj as never));
      }
    }
  }
}

function saveField(out: VMStateOutput, vmsd: Desc, field: Field, obj: Obj, vmdesc: JsonWriter | undefined): void {
  const layout = field.layout;
  let n = 0;
  let i = -1;
  try {
    switch (layout.kind) {
      case "validate":
        return;
      case "single": {
        n = 1;
        const at = out.position;
        if (vmdesc !== undefined) descFieldStart(vmdesc, vmsd, field, 0, 1);
        layout.info.put(out, obj[layout.key]);
        if (vmdesc !== undefined) descFieldEnd(vmdesc, field, out.position - at);
        return;
      }
      case "array":
      case "struct": {
        n = elementCount(layout, obj);
        const arr = layout.count === undefined ? undefined : arrayMember(obj, layout.key);
        if (arr !== undefined) checkFits(layout, arr, n);
        let loopDesc = vmdesc;
        const compress = fieldDesc(vmsd, field).compress;
        for (i = 0; i < n; i++) {
          const at = out.position;
          if (loopDesc !== undefined) descFieldStart(loopDesc, vmsd, field, i, n);
          const elem = arr === undefined ? obj[layout.key] : arr[layout.start + i];
          if (layout.kind === "array") {
            layout.info.put(out, elem);
          } else {
            if (elem === null || typeof elem !== "object") throw new MigrationError(`${String(elem)} is not a struct`);
            saveStateV(out, layout.vmsd, elem as Obj, loopDesc, layout.structVersion ?? layout.vmsd.version_id);
          }
          if (loopDesc !== undefined) {
            descFieldEnd(loopDesc, field, out.position - at);
            if (compress) loopDesc = undefined;
          }
        }
        return;
      }
      case "buffer": {
        n = 1;
        const buf = bytesMember(obj, layout.key);
        const size = bufferSize(layout, obj, buf);
        const room = Math.max(0, buf.length - layout.start);
        if (size > room) throw new MigrationError(`buffer size ${size} exceeds the local ${room}`);
        if (vmdesc !== undefined) descFieldStart(vmdesc, vmsd, field, 0, 1);
        out.putBytes(buf.subarray(layout.start, layout.start + size));
        if (vmdesc !== undefined) descFieldEnd(vmdesc, field, size);
        return;
      }
      case "unused": {
        n = 1;
        if (vmdesc !== undefined) descFieldStart(vmdesc, vmsd, field, 0, 1);
        out.putBytes(new Uint8Array(layout.size));
        if (vmdesc !== undefined) descFieldEnd(vmdesc, field, layout.size);
        return;
      }
      case "bitmap": {
        n = 1;
        const view = bitmapView(obj, layout);
        if (vmdesc !== undefined) descFieldStart(vmdesc, vmsd, field, 0, 1);
        for (let w = 0; w < view.words; w++) out.putBe64(view.word(w));
        if (vmdesc !== undefined) descFieldEnd(vmdesc, field, view.words * 8);
        return;
      }
      case "tmp": {
        n = 1;
        const at = out.position;
        if (vmdesc !== undefined) descFieldStart(vmdesc, vmsd, field, 0, 1);
        const tmp = layout.create(obj as never) as Obj;
        saveStateV(out, layout.vmsd, tmp, vmdesc, layout.vmsd.version_id);
        if (vmdesc !== undefined) descFieldEnd(vmdesc, field, out.position - at);
        return;
      }
    }
  } catch (e) {
    throw inField(vmsd, elementLabel(field, n, i), e);
  }
}

function asciiBytes(name: string): Uint8Array {
  const bytes = new Uint8Array(name.length);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0x7e || c < 0x20) throw new MigrationError(`subsection name ${JSON.stringify(name)} is not printable ASCII`);
    bytes[i] = c;
  }
  return bytes;
}

function saveSubsections(out: VMStateOutput, vmsd: Desc, obj: Obj, vmdesc: JsonWriter | undefined): void {
  let opened = false;
  for (const sub of vmsd.subsections ?? []) {
    if (!vmstateSaveNeeded(sub, obj as never)) continue;
    const name = asciiBytes(sub.name);
    if (name.length > 255) throw new VMStateError(vmsd.name, undefined, `subsection name ${sub.name} is longer than 255 bytes`);
    if (vmdesc !== undefined) {
      if (!opened) {
        vmdesc.startArray("subsections");
        opened = true;
      }
      vmdesc.startObject();
    }
    out.putU8(QEMU_VM_SUBSECTION);
    out.putU8(name.length);
    out.putBytes(name);
    out.putBe32(sub.version_id);
    saveStateV(out, sub, obj, vmdesc, sub.version_id);
    vmdesc?.endObject();
  }
  if (opened) vmdesc!.endArray();
}

/* ---- load ---- */

async function loadStateV(input: VMStateInput, vmsd: Desc, obj: Obj, versionId: number): Promise<void> {
  if (!Number.isSafeInteger(versionId)) {
    throw new VMStateError(vmsd.name, undefined, `incoming version_id ${versionId} is not an integer`);
  }
  if (versionId > vmsd.version_id) {
    throw new VMStateError(vmsd.name, undefined, `incoming version_id ${versionId} is too new for local version_id ${vmsd.version_id}`);
  }
  if (versionId < vmsd.minimum_version_id) {
    throw new VMStateError(
      vmsd.name,
      undefined,
      `incoming version_id ${versionId} is too old for local minimum version_id ${vmsd.minimum_version_id}`,
    );
  }
  if (vmsd.pre_load !== undefined) runHook(vmsd, "pre_load", () => vmsd.pre_load!(obj as never));
  for (const field of vmsd.fields) {
    if (fieldExists(field, obj, versionId)) {
      await loadField(input, vmsd, field, obj);
    } else if (field.layout.kind === "validate") {
      throw new VMStateError(vmsd.name, field.name, "input validation failed");
    }
  }
  await loadSubsections(input, vmsd, obj);
  if (vmsd.post_load !== undefined) runHook(vmsd, "post_load", () => vmsd.post_load!(obj as never, versionId));
}

async function loadField(input: VMStateInput, vmsd: Desc, field: Field, obj: Obj): Promise<void> {
  const layout = field.layout;
  let n = 0;
  let i = -1;
  try {
    switch (layout.kind) {
      case "validate":
        return;
      case "single": {
        n = 1;
        const info = layout.info;
        if (input.buffered < info.size) await input.fill(info.size);
        obj[layout.key] = info.get(input, obj[layout.key]);
        return;
      }
      case "array": {
        n = elementCount(layout, obj);
        let arr = arrayMember(obj, layout.key);
        checkFits(layout, arr, n, layout.allocMax);
        if (layout.allocMax !== undefined) {
          arr = allocLike(arr, n);
          obj[layout.key] = arr;
        }
        const info = layout.info;
        const start = layout.start;
        if (info === vmstateInfoUint8 && arr instanceof Uint8Array) {
          await input.readInto(arr.subarray(start, start + n));
          return;
        }
        for (i = 0; i < n; i++) {
          if (input.buffered < info.size) await input.fill(info.size);
          arr[start + i] = info.get(input, arr[start + i]);
        }
        return;
      }
      case "struct": {
        n = elementCount(layout, obj);
        const arr = layout.count === undefined ? undefined : arrayMember(obj, layout.key);
        if (arr !== undefined) checkFits(layout, arr, n);
        const version = layout.structVersion ?? layout.vmsd.version_id;
        for (i = 0; i < n; i++) {
          const elem = arr === undefined ? obj[layout.key] : arr[layout.start + i];
          if (elem === null || typeof elem !== "object") throw new MigrationError(`${String(elem)} is not a struct`);
          await loadStateV(input, layout.vmsd, elem as Obj, version);
        }
        return;
      }
      case "buffer": {
        n = 1;
        let buf = bytesMember(obj, layout.key);
        const size = bufferSize(layout, obj, buf);
        checkBufferFits(layout, buf, size);
        if (layout.allocMax !== undefined) {
          buf = new Uint8Array(size);
          obj[layout.key] = buf;
        }
        await input.readInto(buf.subarray(layout.start, layout.start + size));
        return;
      }
      case "unused":
        n = 1;
        await input.skip(layout.size);
        return;
      case "bitmap": {
        n = 1;
        const view = bitmapView(obj, layout);
        for (let w = 0; w < view.words; w++) {
          if (input.buffered < 8) await input.fill(8);
          view.setWord(w, input.getBe64());
        }
        return;
      }
      case "tmp": {
        n = 1;
        const tmp = layout.create(obj as never) as Obj;
        await loadStateV(input, layout.vmsd, tmp, field.version_id);
        return;
      }
    }
  } catch (e) {
    throw inField(vmsd, elementLabel(field, n, i), e, field.err_hint);
  }
}

/** A new array of `n` elements of the same kind as `arr` (VMS_ALLOC). */
function allocLike(arr: ArrayLike<unknown>, n: number): ArrayLike<unknown> & Record<number, unknown> {
  if (ArrayBuffer.isView(arr) && !(arr instanceof DataView)) {
    const ctor = arr.constructor as new (n: number) => ArrayLike<unknown> & Record<number, unknown>;
    return new ctor(n);
  }
  return new Array<unknown>(n).fill(undefined);
}

async function loadSubsections(input: VMStateInput, vmsd: Desc, obj: Obj): Promise<void> {
  const parent = vmsd.name;
  for (;;) {
    const head = await input.peek(2);
    if (head.length < 2 || head[0] !== QEMU_VM_SUBSECTION) return;
    const len = head[1]!;
    if (len < parent.length + 1) return;
    const framed = await input.peek(2 + len);
    if (framed.length < 2 + len) return;
    let name = "";
    for (let k = 0; k < len; k++) name += String.fromCharCode(framed[2 + k]!);
    if (!name.startsWith(parent)) return;
    const sub = vmsd.subsections?.find((s) => s.name === name);
    if (sub === undefined) {
      throw new VMStateError(parent, undefined, `unknown subsection ${JSON.stringify(name)} at offset ${input.position}`);
    }
    await input.skip(2 + len);
    let version: number;
    try {
      if (input.buffered < 4) await input.fill(4);
      version = input.getBe32();
    } catch (e) {
      throw new VMStateError(name, undefined, `version_id: ${message(e)}`, { cause: e });
    }
    await loadStateV(input, sub, obj, version);
  }
}
