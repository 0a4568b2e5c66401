/**
 * QMP's JSON, as QEMU reads and writes it (qobject/json-lexer.c, json-streamer.c,
 * json-parser.c, qjson.c): a stream of top-level values with no framing (newlines are only
 * whitespace, several commands may share a line, one may span lines), QEMU's extension of
 * single-quoted strings, and its error messages ("JSON parse error, ..."). Output uses QEMU's
 * separators (`", "` and `": "`), one value per line ending in CRLF.
 *
 * @module
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One top-level value or the error QEMU reports for it. */
export type JsonItem = { value: JsonValue } | { error: string };

/** Nesting and size limits as QEMU's streamer (MAX_NESTING 1024, MAX_TOKEN_SIZE 64 MiB). */
export const MAX_NESTING = 1024;
export const MAX_INPUT = 64 << 20;

class ParseError extends Error {}

/** Parses one complete top-level value (the streamer found its end). */
export function parseJson(text: string): JsonValue {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && " \t\r\n".includes(text[i]!)) i++;
  };
  const fail = (m: string): never => {
    throw new ParseError(m);
  };
  function str(): string {
    const q = text[i++]!;
    let out = "";
    for (;;) {
      if (i >= text.length) fail("premature EOI");
      const c = text[i++]!;
      if (c === q) return out;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = text[i++];
      const simple: Record<string, string> = { '"': '"', "'": "'", "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e !== undefined && Object.hasOwn(simple, e)) out += simple[e];
      else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i, i + 4))) {
        out += String.fromCharCode(parseInt(text.slice(i, i + 4), 16));
        i += 4;
      } else fail("invalid escape sequence in string");
    }
  }
  function value(depth: number): JsonValue {
    ws();
    if (i >= text.length) fail("premature EOI");
    if (depth > MAX_NESTING) fail("nesting depth limit exceeded");
    const c = text[i]!;
    if (c === "{") {
      i++;
      const entries = new Map<string, JsonValue>();
      ws();
      if (text[i] === "}") {
        i++;
        return {};
      }
      for (;;) {
        ws();
        if (i >= text.length) fail("premature EOI");
        if (text[i] === "}") fail("expecting value");
        if (text[i] !== '"' && text[i] !== "'") fail("key is not a string in object");
        const key = str();
        ws();
        if (i >= text.length) fail("premature EOI");
        if (text[i] !== ":") fail("missing : in object pair");
        i++;
        const v = value(depth + 1);
        if (entries.has(key)) fail("duplicate key");
        entries.set(key, v);
        ws();
        if (i >= text.length) fail("premature EOI");
        if (text[i] === "}") {
          i++;
          return Object.fromEntries(entries);
        }
        if (text[i] !== ",") fail("expected separator in dict");
        i++;
      }
    }
    if (c === "[") {
      i++;
      const list: JsonValue[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return list;
      }
      for (;;) {
        ws();
        if (text[i] === "]") fail("expecting value");
        list.push(value(depth + 1));
        ws();
        if (i >= text.length) fail("premature EOI");
        if (text[i] === "]") {
          i++;
          return list;
        }
        if (text[i] !== ",") fail("expected separator in list");
        i++;
      }
    }
    if (c === '"' || c === "'") return str();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|[A-Za-z_]\w*)/.exec(text.slice(i));
    if (m === null) return fail("expecting value");
    i += m[0].length;
    if (m[0] === "true") return true;
    if (m[0] === "false") return false;
    if (m[0] === "null") return null;
    if (/^[A-Za-z_]/.test(m[0])) return fail(`invalid keyword '${m[0]}'`);
    return Number(m[0]);
  }
  const v = value(0);
  ws();
  if (i < text.length) fail("expecting value");
  return v;
}

/** Splits an input stream into top-level JSON values, as QEMU's json-streamer. */
export class JsonStreamer {
  #buf = "";
  /** Scan state of #buf[0..#pos). */
  #pos = 0;
  #depth = 0;
  #quote: string | undefined;
  #escape = false;

  /** Feeds text; returns the values (or errors) it completed, in order. */
  push(text: string): JsonItem[] {
    this.#buf += text;
    const out: JsonItem[] = [];
    while (this.#pos < this.#buf.length) {
      const c = this.#buf[this.#pos]!;
      if (this.#quote !== undefined) {
        this.#pos++;
        if (this.#escape) this.#escape = false;
        else if (c === "\\") this.#escape = true;
        else if (c === this.#quote) {
          this.#quote = undefined;
          if (this.#depth === 0) this.#emit(out);
        }
        continue;
      }
      if (this.#depth === 0 && this.#pos === 0 && " \t\r\n".includes(c)) {
        this.#buf = this.#buf.slice(1);
        continue;
      }
      if (c === '"' || c === "'") {
        this.#quote = c;
        this.#pos++;
      } else if (c === "{" || c === "[") {
        this.#depth++;
        this.#pos++;
      } else if (c === "}" || c === "]") {
        this.#pos++;
        if (this.#depth === 0) {
          this.#emit(out);
          continue;
        }
        if (--this.#depth === 0) this.#emit(out);
      } else if (this.#depth === 0) {
        // A top-level scalar ends at whitespace or at the start of a structure.
        const m = /^[^\s{}[\]"']+/.exec(this.#buf.slice(this.#pos));
        const end = this.#pos + m![0].length;
        if (end >= this.#buf.length) break;
        this.#pos = end;
        this.#emit(out);
      } else {
        this.#pos++;
      }
      if (this.#buf.length > MAX_INPUT) {
        out.push({ error: "JSON token size limit exceeded" });
        this.#reset("");
      }
    }
    return out;
  }

  #emit(out: JsonItem[]): void {
    const chunk = this.#buf.slice(0, this.#pos);
    this.#reset(this.#buf.slice(this.#pos));
    try {
      out.push({ value: parseJson(chunk) });
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      out.push({ error: `JSON parse error, ${e.message}` });
    }
  }

  #reset(rest: string): void {
    this.#buf = rest;
    this.#pos = 0;
    this.#depth = 0;
    this.#quote = undefined;
    this.#escape = false;
  }
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** A string as qobject/json-writer.c's quoted_str: `\\uXXXX` (upper case) below 0x20 and from 0x7F up. */
export function quoteString(text: string): string {
  let out = '"';
  for (const ch of text) {
    const short = SHORT_ESCAPES[ch];
    if (short !== undefined) {
      out += short;
      continue;
    }
    const cp = ch.codePointAt(0)!;
    if (cp > 0xffff) {
      const hi = 0xd800 + ((cp - 0x10000) >> 10);
      const lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
      out += `\\u${hi.toString(16).toUpperCase()}\\u${lo.toString(16).toUpperCase()}`;
    } else if (cp < 0x20 || cp >= 0x7f) {
      out += `\\u${cp.toString(16).toUpperCase().padStart(4, "0")}`;
    } else {
      out += ch;
    }
  }
  return out + '"';
}

/** QEMU's compact JSON (`{"a": 1, "b": [2, 3]}`), or its pretty form with 4-space indents. */
export function formatJson(v: JsonValue, pretty = false, indent = ""): string {
  if (typeof v === "string") return quoteString(v);
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  const inner = indent + "    ";
  if (Array.isArray(v)) {
    if (!pretty) return `[${v.map((x) => formatJson(x)).join(", ")}]`;
    if (v.length === 0) return "[\n" + indent + "]";
    return `[\n${v.map((x) => inner + formatJson(x, true, inner)).join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(v);
  if (!pretty) return `{${entries.map(([k, x]) => `${quoteString(k)}: ${formatJson(x)}`).join(", ")}}`;
  if (entries.length === 0) return "{\n" + indent + "}";
  return `{\n${entries.map(([k, x]) => `${inner}${quoteString(k)}: ${formatJson(x, true, inner)}`).join(",\n")}\n${indent}}`;
}
