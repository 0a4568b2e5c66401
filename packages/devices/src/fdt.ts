/**
 * Flattened device tree (DTB) writer, devicetree specification v0.4 §5, version 17.
 *
 * ```
 * header (40 bytes, big-endian u32): magic 0xd00dfeed, totalsize, off_dt_struct,
 *   off_dt_strings, off_mem_rsvmap, version 17, last_comp_version 16, boot_cpuid_phys,
 *   size_dt_strings, size_dt_struct
 * mem_rsvmap: (address u64, size u64)* terminated by (0, 0)
 * struct: FDT_BEGIN_NODE 1 name\0 pad4 | FDT_PROP 3 len nameoff value pad4 | FDT_END_NODE 2 | FDT_END 9
 * strings: property names, NUL-terminated
 * ```
 *
 * @module
 */

const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_END = 9;

export type FdtValue = string | number | bigint | readonly number[] | Uint8Array;

/** Builds a DTB node by node: `begin(name)`, `prop(...)`, `end()`, then `finish()`. */
export class FdtBuilder {
  #struct: number[] = [];
  #strings: number[] = [];
  #stringOffsets = new Map<string, number>();
  #depth = 0;

  begin(name: string): this {
    this.#u32(FDT_BEGIN_NODE);
    this.#bytes(new TextEncoder().encode(name + "\0"));
    this.#pad();
    this.#depth++;
    return this;
  }

  end(): this {
    if (this.#depth === 0) throw new Error("FdtBuilder.end() without a matching begin()");
    this.#u32(FDT_END_NODE);
    this.#depth--;
    return this;
  }

  /** A string is NUL-terminated; a number is one u32 cell; a bigint is two cells; an array is cells. */
  prop(name: string, value: FdtValue = new Uint8Array(0)): this {
    let data: Uint8Array;
    if (typeof value === "string") {
      data = new TextEncoder().encode(value + "\0");
    } else if (typeof value === "number") {
      data = cells([value]);
    } else if (typeof value === "bigint") {
      data = cells([Number(value >> 32n), Number(value & 0xffff_ffffn)]);
    } else if (value instanceof Uint8Array) {
      data = value;
    } else {
      data = cells(value);
    }
    this.#u32(FDT_PROP);
    this.#u32(data.length);
    this.#u32(this.#stringOffset(name));
    this.#bytes(data);
    this.#pad();
    return this;
  }

  finish(options: { bootCpuidPhys?: number } = {}): Uint8Array {
    if (this.#depth !== 0) throw new Error(`FdtBuilder.finish() with ${this.#depth} open node(s)`);
    const struct = [...this.#struct];
    const s = new DataView(new ArrayBuffer(4));
    s.setUint32(0, FDT_END);
    struct.push(...new Uint8Array(s.buffer));
    const offRsv = 40;
    const offStruct = offRsv + 16;
    const offStrings = offStruct + struct.length;
    const total = offStrings + this.#strings.length;
    const out = new Uint8Array(total);
    const dv = new DataView(out.buffer);
    const header = [
      FDT_MAGIC, total, offStruct, offStrings, offRsv, 17, 16,
      options.bootCpuidPhys ?? 0, this.#strings.length, struct.length,
    ];
    header.forEach((v, i) => dv.setUint32(i * 4, v));
    out.set(struct, offStruct);
    out.set(this.#strings, offStrings);
    return out;
  }

  #stringOffset(name: string): number {
    let off = this.#stringOffsets.get(name);
    if (off === undefined) {
      off = this.#strings.length;
      this.#strings.push(...new TextEncoder().encode(name + "\0"));
      this.#stringOffsets.set(name, off);
    }
    return off;
  }

  #u32(v: number): void {
    this.#struct.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }

  #bytes(b: Uint8Array): void {
    for (const x of b) this.#struct.push(x);
  }

  #pad(): void {
    while (this.#struct.length % 4 !== 0) this.#struct.push(0);
  }
}

function cells(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => dv.setUint32(i * 4, v >>> 0));
  return out;
}
