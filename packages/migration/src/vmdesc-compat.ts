/**
 * Static migration compatibility of two vmdescs, after QEMU's
 * `scripts/vmstate-static-checker.py`: can a destination load what a source sends?
 *
 * `src` is the vmdesc at the end of the stream a sender writes; `dest` is the vmdesc the
 * receiver writes for the same machine type and (ideally) the same guest state. Each rule of
 * QEMU's script is kept, adapted to what a vmdesc holds:
 *
 * - QEMU's script reads `-dump-vmstate`: every registered VMSD with *all* its subsections,
 *   `version_id` and `minimum_version_id`, field sizes of the C types. A vmdesc describes what
 *   was *sent*: only the subsections whose `needed` was true, only the fields whose `_TEST`
 *   held, `size` as the bytes written (so a struct's size depends on the state inside it),
 *   one `version` (no minimum). Hence:
 * - Sections are matched by idstr + instance id (what loadvm matches). A section of `src`
 *   missing in `dest` is an error ("section-missing": loadvm fails on an unknown section). A
 *   section only in `dest` is a warning ("section-extra"): QEMU's loadvm succeeds and the
 *   device keeps its reset state, which for the same machine and config means the two sides
 *   were not configured alike. The order of sections does not matter (loadvm looks them up).
 *   A matched section whose VMSD name differs is an error ("vmsd-name"), as in QEMU's script.
 * - `version`: src newer than dest is an error ("version-newer"), at every level (sections,
 *   structs, subsections). The minimum version cannot be checked: vmdescs do not carry it.
 * - Fields are compared in order, matched by name + `index` (an element of an uncompressed
 *   array), with the `renamed` whitelist of QEMU's `changed_names`. A field src sends that
 *   dest lacks is an error ("field-missing"); a field dest reads that src did not send is an
 *   error ("field-extra") unless src's version is older than dest's — then it is a warning,
 *   since dest may gate it with `_V(version)`, which a vmdesc cannot show. The comparison
 *   resynchronises on the next matching name so one inserted field is reported once (and a
 *   run of array elements once); with no name to resynchronise on it is "field-name"
 *   (QEMU's "expected field X, got Y").
 * - For a matched field: type ("field-type"), `array_len` ("field-array-len") and, for
 *   non-struct fields, size ("field-size") must agree. As in QEMU's script the size of a
 *   struct is not compared (it counts state-dependent bytes such as subsections); the struct
 *   is compared recursively instead ("struct-name" when its VMSD differs,
 *   "struct-description" when one side lacks the nested description).
 * - QEMU's two wire-preserving refactors are accepted: an `unused` field (VMSTATE_UNUSED,
 *   type `unused_buffer`) on one side may stand for fields of the same total byte count on the
 *   other ("unused-size" when the counts do not add up), and fields moved into (or out of) a
 *   struct without subsections, whose first field is the field expected, are compared inline.
 * - Subsections are matched by VMSD name. One src sent that dest never sent is a warning
 *   ("subsection-missing"): dest's vmdesc only lists the subsections *it* needed for *its*
 *   state, so dest may well know it. With `sameState: true` (both vmdescs describe the same
 *   state, e.g. the same golden workload) it is an error: dest would have sent it too if it
 *   knew it. A subsection dest sends that src lacks is fine: an older sender did not have it,
 *   and dest's pre_load/post_load must default it (QEMU's rule).
 * - `page_size` must agree ("page-size"): the RAM section is addressed in target pages.
 *
 * Every issue has a stable `code`, a `path` (`riscv_sifive_plic/fields[3]`,
 * `cpu#1/subsections[cpu/pmp]/fields[0]/fields[1]`; `#n` is a non-zero instance id, field
 * indexes are src's except for "field-extra", which uses dest's) and a sentence worded like
 * QEMU's script.
 *
 * @example
 * ```ts
 * import { checkVmdescCompat, findVmdesc, parseVmdescJson } from "@ferryvm/migration";
 * const src = parseVmdescJson(findVmdesc(oldStream));
 * const dest = parseVmdescJson(findVmdesc(newStream));
 * const { errors, warnings } = checkVmdescCompat(src, dest, { sameState: true });
 * ```
 *
 * @module
 */

/** One field of a vmdesc, as QEMU's vmstate.c writes it. */
export interface VmdescField {
  name: string;
  type: string;
  size: number;
  array_len?: number;
  index?: number;
  struct?: VmdescStruct;
}

/** A VMSD as it was sent: its name, the version written, its fields and sent subsections. */
export interface VmdescStruct {
  vmsd_name: string;
  version: number;
  fields?: VmdescField[];
  subsections?: VmdescStruct[];
}

/** A top-level section: idstr + instance id, and its VMSD. */
export interface VmdescDevice extends VmdescStruct {
  name: string;
  instance_id: number;
}

/** The JSON that ends a QEMU 7.2 stream (QEMU_VM_VMDESCRIPTION). */
export interface Vmdesc {
  page_size: number;
  devices: VmdescDevice[];
}

export type CompatIssueCode =
  | "page-size"
  | "section-missing"
  | "section-extra"
  | "vmsd-name"
  | "version-newer"
  | "field-missing"
  | "field-extra"
  | "field-name"
  | "field-type"
  | "field-size"
  | "field-array-len"
  | "unused-size"
  | "struct-name"
  | "struct-description"
  | "subsection-missing";

export interface CompatIssue {
  code: CompatIssueCode;
  severity: "error" | "warning";
  /** Where: `section[#instance]` then `/fields[i]`, `/subsections[name]` steps. */
  path: string;
  message: string;
}

export interface CompatResult {
  errors: CompatIssue[];
  warnings: CompatIssue[];
}

export interface VmdescCompatOptions {
  /** Both vmdescs describe the same guest state: a subsection src sent and dest did not is an error. */
  sameState?: boolean;
  /**
   * QEMU's `changed_names`: per VMSD name (the description that holds the field or the
   * nested struct/subsection; for a section's own VMSD name, the section idstr), pairs of names that are the same thing under an old and a
   * new name. A pair matches in either direction.
   */
  renamed?: Readonly<Record<string, readonly (readonly [string, string])[]>>;
  /** Section idstrs that were renamed (QEMU's `get_changed_sec_name`), either direction. */
  renamedSections?: readonly (readonly [string, string])[];
}

/** Parses and validates a vmdesc JSON text (throws `Error` naming what is wrong). */
export function parseVmdescJson(text: string): Vmdesc {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`vmdesc is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isObject(json)) throw new Error("vmdesc is not a JSON object");
  if (typeof json.page_size !== "number") throw new Error("vmdesc lacks a numeric page_size");
  if (!Array.isArray(json.devices)) throw new Error("vmdesc lacks a devices array");
  json.devices.forEach((d, i) => {
    const where = `devices[${i}]`;
    if (!isObject(d)) throw new Error(`vmdesc: ${where} is not an object`);
    if (typeof d.name !== "string") throw new Error(`vmdesc: ${where} lacks a name`);
    if (typeof d.instance_id !== "number") throw new Error(`vmdesc: ${where} lacks an instance_id`);
    checkStruct(d, `${where} (${d.name})`, 0);
  });
  return json as unknown as Vmdesc;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkStruct(s: Record<string, unknown>, where: string, depth: number): void {
  if (depth > 64) throw new Error(`vmdesc: ${where}: nested too deep`);
  if (typeof s.vmsd_name !== "string") throw new Error(`vmdesc: ${where} lacks a vmsd_name`);
  if (typeof s.version !== "number") throw new Error(`vmdesc: ${where} lacks a version`);
  if (s.fields !== undefined) {
    if (!Array.isArray(s.fields)) throw new Error(`vmdesc: ${where}: fields is not an array`);
    s.fields.forEach((f, i) => {
      const at = `${where}/fields[${i}]`;
      if (!isObject(f)) throw new Error(`vmdesc: ${at} is not an object`);
      if (typeof f.name !== "string" || typeof f.type !== "string" || typeof f.size !== "number") {
        throw new Error(`vmdesc: ${at} lacks a name, type or size`);
      }
      if (f.array_len !== undefined && typeof f.array_len !== "number") throw new Error(`vmdesc: ${at}: array_len is not a number`);
      if (f.index !== undefined && typeof f.index !== "number") throw new Error(`vmdesc: ${at}: index is not a number`);
      if (f.struct !== undefined) {
        if (!isObject(f.struct)) throw new Error(`vmdesc: ${at}: struct is not an object`);
        checkStruct(f.struct, at, depth + 1);
      }
    });
  }
  if (s.subsections !== undefined) {
    if (!Array.isArray(s.subsections)) throw new Error(`vmdesc: ${where}: subsections is not an array`);
    s.subsections.forEach((sub, i) => {
      const at = `${where}/subsections[${i}]`;
      if (!isObject(sub)) throw new Error(`vmdesc: ${at} is not an object`);
      checkStruct(sub, at, depth + 1);
    });
  }
}

/** Checks whether `dest` can load what `src` sent (see the module doc for the rules). */
export function checkVmdescCompat(src: Vmdesc, dest: Vmdesc, options: VmdescCompatOptions = {}): CompatResult {
  const c = new Checker(options);
  if (src.page_size !== dest.page_size) {
    c.error("page-size", "", `page size ${src.page_size} in src, ${dest.page_size} in dest`);
  }
  const destByKey = new Map<string, VmdescDevice>();
  for (const d of dest.devices) destByKey.set(sectionKey(d.name, d.instance_id), d);
  const matched = new Set<VmdescDevice>();
  for (const s of src.devices) {
    const label = sectionLabel(s.name, s.instance_id);
    let d = destByKey.get(sectionKey(s.name, s.instance_id));
    if (d === undefined) {
      for (const other of renamedTo(options.renamedSections ?? [], s.name)) {
        d = destByKey.get(sectionKey(other, s.instance_id));
        if (d !== undefined) break;
      }
    }
    if (d === undefined) {
      c.error("section-missing", label, `Section "${s.name}"${instanceText(s.instance_id)} does not exist in dest`);
      continue;
    }
    matched.add(d);
    if (s.vmsd_name !== d.vmsd_name && !c.renamed(s.name, s.vmsd_name, d.vmsd_name)) {
      c.error("vmsd-name", label, `Section "${s.name}"${instanceText(s.instance_id)}: Description "${s.vmsd_name}" missing, got "${d.vmsd_name}" instead; skipping`);
      continue;
    }
    c.compareStruct(s, d, label, s.name);
  }
  for (const d of dest.devices) {
    if (matched.has(d)) continue;
    c.warning("section-extra", sectionLabel(d.name, d.instance_id),
      `Section "${d.name}"${instanceText(d.instance_id)} exists only in dest: loading succeeds but the device keeps its reset state`);
  }
  return { errors: c.errors, warnings: c.warnings };
}

function sectionKey(name: string, instance: number): string {
  return `${instance}\u0000${name}`;
}

function sectionLabel(name: string, instance: number): string {
  return instance === 0 ? name : `${name}#${instance}`;
}

function instanceText(instance: number): string {
  return instance === 0 ? "" : ` instance ${instance}`;
}

function renamedTo(pairs: readonly (readonly [string, string])[], name: string): string[] {
  const out: string[] = [];
  for (const [a, b] of pairs) {
    if (a === name) out.push(b);
    else if (b === name) out.push(a);
  }
  return out;
}

/** A field in a flattened walk, with its path. */
interface Slot {
  field: VmdescField;
  path: string;
  /** Index within its own description (for messages). */
  at: number;
}

function isUnused(f: VmdescField): boolean {
  return f.type === "unused_buffer" || f.name === "unused";
}

function byteCount(f: VmdescField): number {
  return f.size * (f.array_len ?? 1);
}

function describeField(f: VmdescField): string {
  return f.index === undefined ? `"${f.name}"` : `"${f.name}" [index ${f.index}]`;
}

/**
 * Slots `from..to` grouped into runs: consecutive elements of one uncompressed array (same
 * name, consecutive `index`) form one run, so 512 missing elements are one issue.
 */
function runs(slots: readonly Slot[], from: number, to: number): [first: Slot, count: number, last: Slot][] {
  const out: [Slot, number, Slot][] = [];
  for (let k = from; k < to; k++) {
    const s = slots[k]!;
    const prev = out.at(-1);
    if (prev !== undefined && s.field.index !== undefined && prev[2].field.index === s.field.index - 1 && prev[2].field.name === s.field.name) {
      prev[1]++;
      prev[2] = s;
    } else {
      out.push([s, 1, s]);
    }
  }
  return out;
}

function describeRun(first: VmdescField, count: number, last: VmdescField): string {
  return count === 1 ? describeField(first) : `"${first.name}" [index ${first.index}..${last.index}, ${count} elements]`;
}

class Checker {
  readonly errors: CompatIssue[] = [];
  readonly warnings: CompatIssue[] = [];
  readonly #options: VmdescCompatOptions;

  constructor(options: VmdescCompatOptions) {
    this.#options = options;
  }

  error(code: CompatIssueCode, path: string, message: string): void {
    this.errors.push({ code, severity: "error", path, message });
  }

  warning(code: CompatIssueCode, path: string, message: string): void {
    this.warnings.push({ code, severity: "warning", path, message });
  }

  /** `a` and `b` are the same name in description `desc`, or a whitelisted rename there. */
  renamed(desc: string, a: string, b: string): boolean {
    if (a === b) return true;
    const pairs = this.#options.renamed?.[desc];
    if (pairs === undefined) return false;
    return pairs.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
  }

  #fieldsMatch(desc: string, s: VmdescField, d: VmdescField): boolean {
    return s.index === d.index && this.renamed(desc, s.name, d.name);
  }

  compareStruct(s: VmdescStruct, d: VmdescStruct, path: string, sec: string): void {
    const where = `Section "${sec}", Description "${s.vmsd_name}"`;
    if (s.version > d.version) {
      this.error("version-newer", path, `${where}: version ${s.version} is newer than ${d.version} (version error: ${s.version} > ${d.version})`);
    }
    this.#compareFields(s, d, path, sec);
    const destSubs = d.subsections ?? [];
    for (const sub of s.subsections ?? []) {
      const subPath = `${path}/subsections[${sub.vmsd_name}]`;
      const match = destSubs.find((x) => this.renamed(s.vmsd_name, sub.vmsd_name, x.vmsd_name));
      if (match === undefined) {
        const message = `${where}: Subsection "${sub.vmsd_name}" not found: src sent it, dest did not`;
        if (this.#options.sameState) this.error("subsection-missing", subPath, `${message} for the same state`);
        else this.warning("subsection-missing", subPath, `${message} (dest may lack it, or not need it for its state)`);
        continue;
      }
      this.compareStruct(sub, match, subPath, sec);
    }
  }

  #compareFields(sDesc: VmdescStruct, dDesc: VmdescStruct, path: string, sec: string): void {
    const desc = sDesc.vmsd_name;
    const where = `Section "${sec}", Description "${desc}"`;
    const S: Slot[] = (sDesc.fields ?? []).map((field, at) => ({ field, path: `${path}/fields[${at}]`, at }));
    const D: Slot[] = (dDesc.fields ?? []).map((field, at) => ({ field, path: `${path}/fields[${at}]`, at }));
    const extraSeverity = sDesc.version < dDesc.version ? "warning" : "error";
    const extras = (from: number, to: number): void => {
      for (const [d, n, last] of runs(D, from, to)) {
        const message = `${where}: field ${d.at} ${describeRun(d.field, n, last.field)} is in dest but src did not send it`;
        if (extraSeverity === "error") this.error("field-extra", d.path, message);
        else this.warning("field-extra", d.path, `${message} (dest may read it only from version ${dDesc.version}; src is version ${sDesc.version})`);
      }
    };
    const missing = (from: number, to: number, tail: boolean): void => {
      for (const [m, n, last] of runs(S, from, to)) {
        this.error("field-missing", m.path, tail
          ? `${where}: expected field ${describeRun(m.field, n, last.field)} (field ${m.at}), while dest has no further fields`
          : `${where}: field ${m.at} ${describeRun(m.field, n, last.field)} sent by src does not exist in dest`);
      }
    };
    let i = 0;
    let j = 0;
    while (i < S.length && j < D.length) {
      const s = S[i]!;
      const d = D[j]!;
      if (this.#fieldsMatch(desc, s.field, d.field)) {
        this.#compareField(s, d, sec, desc);
        i++;
        j++;
        continue;
      }
      // Fields moved into a struct (dest) or out of one (src): the wire is the same.
      if (this.#opensWith(desc, d.field, s.field)) {
        D.splice(j, 1, ...d.field.struct!.fields!.map((field, at) => ({ field, path: `${d.path}/fields[${at}]`, at })));
        continue;
      }
      if (this.#opensWith(desc, s.field, d.field)) {
        S.splice(i, 1, ...s.field.struct!.fields!.map((field, at) => ({ field, path: `${s.path}/fields[${at}]`, at })));
        continue;
      }
      // VMSTATE_UNUSED on one side standing for real fields on the other.
      if (isUnused(s.field) || isUnused(d.field)) {
        const [one, others, oneIsSrc] = isUnused(d.field) ? [d, S, false] : [s, D, true];
        let k = oneIsSrc ? j : i;
        let sum = 0;
        const want = byteCount(one.field);
        while (sum < want && k < others.length) sum += byteCount(others[k++]!.field);
        if (sum !== want) {
          const near = others[Math.min(k, others.length) - 1] ?? one;
          this.error("unused-size", one.path,
            `${where}: unused size mismatch near ${describeField(near.field)}: ${want} unused bytes in ${oneIsSrc ? "src" : "dest"} do not cover whole fields (${sum} bytes) in ${oneIsSrc ? "dest" : "src"}`);
          return;
        }
        if (oneIsSrc) {
          i++;
          j = k;
        } else {
          j++;
          i = k;
        }
        continue;
      }
      // Resynchronise: one side inserted fields.
      const inDest = D.findIndex((x, k) => k > j && this.#fieldsMatch(desc, s.field, x.field));
      const inSrc = S.findIndex((x, k) => k > i && this.#fieldsMatch(desc, x.field, d.field));
      if (inDest >= 0 && (inSrc < 0 || inDest - j <= inSrc - i)) {
        extras(j, inDest);
        j = inDest;
        continue;
      }
      if (inSrc >= 0) {
        missing(i, inSrc, false);
        i = inSrc;
        continue;
      }
      this.error("field-name", s.path, `${where}: expected field ${describeField(s.field)}, got ${describeField(d.field)} (field ${s.at} in src, ${d.at} in dest)`);
      i++;
      j++;
    }
    missing(i, S.length, true);
    extras(j, D.length);
  }

  /** `outer` is a single struct without subsections whose first field is `first`. */
  #opensWith(desc: string, outer: VmdescField, first: VmdescField): boolean {
    if (outer.type !== "struct" || outer.array_len !== undefined || outer.index !== undefined) return false;
    const st = outer.struct;
    if (st === undefined || (st.subsections?.length ?? 0) > 0 || (st.fields?.length ?? 0) === 0) return false;
    const head = st.fields![0]!;
    return head.index === first.index && (this.renamed(st.vmsd_name, head.name, first.name) || this.renamed(desc, head.name, first.name));
  }

  #compareField(s: Slot, d: Slot, sec: string, desc: string): void {
    const where = `Section "${sec}", Description "${desc}", Field ${describeField(s.field)} (field ${s.at})`;
    const sf = s.field;
    const df = d.field;
    if (sf.type !== df.type) {
      this.error("field-type", s.path, `${where} type mismatch: "${sf.type}" in src, "${df.type}" in dest`);
      return;
    }
    if (sf.array_len !== df.array_len) {
      this.error("field-array-len", s.path, `${where} array length mismatch: ${sf.array_len ?? "none"} in src, ${df.array_len ?? "none"} in dest`);
    }
    if (sf.type !== "struct") {
      if (sf.size !== df.size) this.error("field-size", s.path, `${where} size mismatch: ${sf.size} in src, ${df.size} in dest`);
      return;
    }
    if (sf.struct === undefined || df.struct === undefined) {
      if (sf.struct !== df.struct) {
        this.error("struct-description", s.path, `${where}: missing description in ${sf.struct === undefined ? "src" : "dest"}`);
      }
      return;
    }
    if (!this.renamed(desc, sf.struct.vmsd_name, df.struct.vmsd_name)) {
      this.error("struct-name", s.path, `${where}: Description "${sf.struct.vmsd_name}" missing, got "${df.struct.vmsd_name}" instead; skipping`);
      return;
    }
    this.compareStruct(sf.struct, df.struct, s.path, sec);
  }
}
