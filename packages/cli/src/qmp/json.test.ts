import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatJson, JsonStreamer, parseJson } from "./json.ts";

describe("JsonStreamer", () => {
  it("splits values with no framing: several per line, one over several lines", () => {
    const s = new JsonStreamer();
    expect(s.push('{"a": 1}{"b": [2, {"c": "}"}]} {"d"')).toEqual([{ value: { a: 1 } }, { value: { b: [2, { c: "}" }] } }]);
    expect(s.push(":\n true}\r\n")).toEqual([{ value: { d: true } }]);
  });

  it("ends a top-level scalar at whitespace and reports QEMU's errors", () => {
    const s = new JsonStreamer();
    expect(s.push("garbage")).toEqual([]);
    expect(s.push("\n123 \"x\" }")).toEqual([
      { error: "JSON parse error, invalid keyword 'garbage'" },
      { value: 123 },
      { value: "x" },
      { error: "JSON parse error, expecting value" },
    ]);
  });

  it("keeps escaped quotes and braces inside strings", () => {
    const s = new JsonStreamer();
    expect(s.push(String.raw`{"k": "a\"}b", 'q': 'it\'s "x"'}`)).toEqual([{ value: { k: 'a"}b', q: 'it\'s "x"' } }]);
  });
});

describe("parseJson", () => {
  it("gives QEMU's messages for malformed objects", () => {
    const msg = (t: string) => {
      try {
        parseJson(t);
        return "ok";
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(msg('{"execute":}')).toBe("expecting value");
    expect(msg('{"execute" "x"}')).toBe("missing : in object pair");
    expect(msg('{"a":1,}')).toBe("expecting value");
    expect(msg('{"a":1,"a":2}')).toBe("duplicate key");
    expect(msg("{1:2}")).toBe("key is not a string in object");
    expect(msg('{"a":1 "b":2}')).toBe("expected separator in dict");
    expect(msg("[1 2]")).toBe("expected separator in list");
    expect(msg('"\\q"')).toBe("invalid escape sequence in string");
    expect(msg('{"__proto__": 1}')).toBe("ok");
    expect(Object.getPrototypeOf(parseJson('{"__proto__": {"x": 1}}'))).toBe(Object.prototype);
  });
});

describe("formatJson", () => {
  it("quotes strings as QEMU's json-writer: upper-case \\u escapes for control and non-ASCII", () => {
    expect(formatJson("a\"\\\n\r\t\x01\x7f\u00e9\u{1f600}/")).toBe('"a\\"\\\\\\n\\r\\t\\u0001\\u007F\\u00E9\\uD83D\\uDE00/"');
  });

  it("writes QEMU's compact and pretty forms", () => {
    expect(formatJson({ return: { a: [1, "x"], b: {} } })).toBe('{"return": {"a": [1, "x"], "b": {}}}');
    // qemu-system-riscv64 -qmp-pretty unix:S,server=on,wait=off: {"execute":"qmp_capabilities"}
    expect(formatJson({ return: {} }, true)).toBe('{\n    "return": {\n    }\n}');
    expect(formatJson({ return: [{ "cpu-index": 0, props: { "core-id": 0 } }] }, true)).toBe(
      '{\n    "return": [\n        {\n            "cpu-index": 0,\n            "props": {\n                "core-id": 0\n            }\n        }\n    ]\n}',
    );
  });
});

describe("the streamer and formatJson together", () => {
  it("give back any JSON value, compact or pretty, however the bytes are split", () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { minLength: 1, maxLength: 4 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 8 }), (values, pretty, cuts) => {
        // Objects and arrays end by themselves; scalars need the whitespace after them.
        const text = values.map((v) => formatJson(v as never, pretty) + "\n").join("");
        const s = new JsonStreamer();
        const got = [];
        let at = 0;
        for (const c of [...cuts.map((n) => n % (text.length + 1)), text.length].sort((a, b) => a - b)) {
          got.push(...s.push(text.slice(at, c)));
          at = c;
        }
        expect(got).toEqual(values.map((v) => ({ value: JSON.parse(JSON.stringify(v)) })));
      }),
      { numRuns: 300 },
    );
  });
});
