/**
 * QEMU's JSON writer (qobject/json-writer.c), byte for byte: `", "` between members, `": "`
 * after names, every character outside printable ASCII escaped as `\uXXXX` (upper-case hex,
 * surrogate pairs beyond the BMP). The migration stream's vmdesc is written with it, so
 * our vmdesc text is QEMU's.
 *
 * @module
 */

const ESCAPES: Record<number, string> = {
  0x22: '\\"',
  0x5c: "\\\\",
  0x08: "\\b",
  0x0c: "\\f",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
};

const NEEDS_ESCAPE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;

function hex4(v: number): string {
  return v.toString(16).toUpperCase().padStart(4, "0");
}

/** `str` quoted as QEMU's `quoted_str` does. */
export function quoteJsonString(str: string): string {
  // the common case (names, types): printable ASCII without '"' or '\\'
  if (!NEEDS_ESCAPE.test(str)) return `"${str}"`;
  let out = '"';
  for (const ch of str) {
    let cp = ch.codePointAt(0)!;
    const esc = ESCAPES[cp];
    if (esc !== undefined) {
      out += esc;
      continue;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp > 0xffff) {
      out += `\\u${hex4(0xd800 + ((cp - 0x10000) >> 10))}\\u${hex4(0xdc00 + ((cp - 0x10000) & 0x3ff))}`;
    } else if (cp < 0x20 || cp >= 0x7f) {
      out += `\\u${hex4(cp)}`;
    } else {
      out += ch;
    }
  }
  return `${out}"`;
}

/**
 * Streaming JSON writer with QEMU's API: members are written with a name inside objects and
 * without one inside arrays.
 */
export class JsonWriter {
  readonly #pretty: boolean;
  #needComma = false;
  #out = "";
  readonly #containerIsArray: boolean[] = [];

  constructor(options: { pretty?: boolean } = {}) {
    this.#pretty = options.pretty ?? false;
  }

  /** The text written; every container must be closed. */
  toString(): string {
    if (this.#containerIsArray.length !== 0) {
      throw new Error(`JsonWriter: ${this.#containerIsArray.length} container(s) left open`);
    }
    return this.#out;
  }

  #newline(): void {
    if (this.#pretty) this.#out += `\n${" ".repeat(this.#containerIsArray.length * 4)}`;
  }

  #member(name: string | undefined): void {
    if (this.#needComma) {
      this.#out += ",";
      if (this.#pretty) this.#newline();
      else this.#out += " ";
    } else {
      if (this.#out.length !== 0) this.#newline();
      this.#needComma = true;
    }
    const depth = this.#containerIsArray.length;
    if (depth !== 0 && !this.#containerIsArray[depth - 1]) {
      if (name === undefined) throw new Error("JsonWriter: a member of an object needs a name");
      this.#out += `${quoteJsonString(name)}: `;
    }
  }

  #enter(isArray: boolean): void {
    this.#containerIsArray.push(isArray);
    this.#needComma = false;
  }

  #leave(isArray: boolean): void {
    if (this.#containerIsArray.at(-1) !== isArray) {
      throw new Error(`JsonWriter: no open ${isArray ? "array" : "object"} to end`);
    }
    this.#containerIsArray.pop();
    this.#needComma = true;
    this.#newline();
  }

  startObject(name?: string): void {
    this.#member(name);
    this.#out += "{";
    this.#enter(false);
  }

  endObject(): void {
    this.#leave(false);
    this.#out += "}";
  }

  startArray(name?: string): void {
    this.#member(name);
    this.#out += "[";
    this.#enter(true);
  }

  endArray(): void {
    this.#leave(true);
    this.#out += "]";
  }

  bool(name: string | undefined, value: boolean): void {
    this.#member(name);
    this.#out += value ? "true" : "false";
  }

  null(name: string | undefined): void {
    this.#member(name);
    this.#out += "null";
  }

  /** An integer (`json_writer_int64`/`_uint64`). */
  int(name: string | undefined, value: number | bigint): void {
    if (typeof value === "number" && !Number.isSafeInteger(value)) {
      throw new RangeError(`JsonWriter: ${value} is not an integer`);
    }
    this.#member(name);
    this.#out += value.toString();
  }

  str(name: string | undefined, value: string): void {
    this.#member(name);
    this.#out += quoteJsonString(value);
  }
}
