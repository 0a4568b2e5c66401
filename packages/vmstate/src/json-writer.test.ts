import { describe, expect, it } from "vitest";
import { JsonWriter, quoteJsonString } from "./mod.ts";

describe("JsonWriter", () => {
  it("separates members with \", \" and names with \": \" as QEMU's json-writer", () => {
    const w = new JsonWriter();
    w.startObject();
    w.int("page_size", 4096);
    w.startArray("devices");
    w.startObject();
    w.str("name", "ram");
    w.bool("on", true);
    w.null("none");
    w.int("big", 2n ** 64n - 1n);
    w.endObject();
    w.int(undefined, -1);
    w.endArray();
    w.endObject();
    expect(w.toString()).toBe(
      '{"page_size": 4096, "devices": [{"name": "ram", "on": true, "none": null, "big": 18446744073709551615}, -1]}',
    );
  });

  it("indents by four spaces when pretty", () => {
    const w = new JsonWriter({ pretty: true });
    w.startObject();
    w.startArray("a");
    w.int(undefined, 1);
    w.endArray();
    w.endObject();
    expect(w.toString()).toBe('{\n    "a": [\n        1\n    ]\n}');
  });

  it("escapes as QEMU's quoted_str: short escapes, \\u00XX controls, non-ASCII and surrogate pairs", () => {
    expect(quoteJsonString('a"b\\c\n\t\b\f\r')).toBe('"a\\"b\\\\c\\n\\t\\b\\f\\r"');
    expect(quoteJsonString("\x01\x7f")).toBe('"\\u0001\\u007F"');
    expect(quoteJsonString("é😀")).toBe('"\\u00E9\\uD83D\\uDE00"');
    expect(quoteJsonString("\ud800")).toBe('"\\uFFFD"');
  });

  it("refuses unbalanced containers and unnamed object members", () => {
    const w = new JsonWriter();
    w.startObject();
    expect(() => w.toString()).toThrow("1 container(s) left open");
    expect(() => w.int(undefined, 1)).toThrow("needs a name");
    expect(() => w.endArray()).toThrow("no open array");
  });
});
