import { describe, expect, it } from "vitest";
import { ConsoleEscape } from "./console.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("ConsoleEscape", () => {
  it("forwards plain input", () => {
    const r = new ConsoleEscape(true).process(bytes("ls\r"));
    expect(r.forward).toEqual(bytes("ls\r"));
    expect(r.actions).toEqual([]);
  });

  it("quits on Ctrl-A x, even when the two bytes arrive separately", () => {
    const e = new ConsoleEscape(true);
    expect(e.process(Uint8Array.of(0x01)).actions).toEqual([]);
    const r = e.process(bytes("x"));
    expect(r.actions).toEqual(["quit"]);
    expect(r.forward).toEqual(new Uint8Array(0));
  });

  it("prints help on Ctrl-A h and sends Ctrl-A on Ctrl-A Ctrl-A", () => {
    const r = new ConsoleEscape(true).process(Uint8Array.of(0x01, 0x68, 0x61, 0x01, 0x01));
    expect(r.actions).toEqual(["help"]);
    expect(r.forward).toEqual(Uint8Array.of(0x61, 0x01));
  });

  it("passes Ctrl-C to the guest with the multiplexer", () => {
    expect(new ConsoleEscape(true).process(Uint8Array.of(3)).forward).toEqual(Uint8Array.of(3));
  });

  it("quits on Ctrl-C without the multiplexer and passes Ctrl-A through", () => {
    const r = new ConsoleEscape(false).process(Uint8Array.of(1, 0x78, 3));
    expect(r.forward).toEqual(Uint8Array.of(1, 0x78));
    expect(r.actions).toEqual(["quit"]);
  });
});
