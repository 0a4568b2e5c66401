import { describe, expect, it } from "vitest";
import { Htif } from "./htif.ts";
import { PhysicalMemory } from "./physical-memory.ts";

const BASE = 0x8000_0000;
const TOHOST = 0x8000_1000n;
const FROMHOST = 0x8000_1008n;

function setup(withFromhost = true) {
  const ram = new PhysicalMemory();
  ram.add({ name: "ram", base: BASE, bytes: new Uint8Array(0x10000) });
  const out: number[] = [];
  const err: number[] = [];
  const unknown: string[] = [];
  const htif = new Htif({
    memory: ram,
    tohost: TOHOST,
    fromhost: withFromhost ? FROMHOST : null,
    onConsoleOutput: (b) => out.push(...b),
    onErrorOutput: (b) => err.push(...b),
    onUnknown: (m) => unknown.push(m),
  });
  return { ram, htif, out, err, unknown };
}

describe("Htif", () => {
  it("turns tohost = 1 into exit code 0 (riscv-tests pass)", () => {
    const { ram, htif } = setup();
    ram.writeU64(TOHOST, 1n);
    expect(htif.handleTohost()).toEqual({ kind: "exit", code: 0 });
  });

  it("turns (testnum << 1) | 1 into exit code testnum (riscv-tests fail)", () => {
    const { ram, htif } = setup();
    ram.writeU64(TOHOST, (7n << 1n) | 1n);
    expect(htif.handleTohost()).toEqual({ kind: "exit", code: 7 });
  });

  it("ignores a tohost of zero", () => {
    const { htif } = setup();
    expect(htif.handleTohost()).toBeUndefined();
  });

  it("prints console characters and answers in fromhost, clearing tohost", () => {
    const { ram, htif, out } = setup();
    for (const c of [0x4f, 0x4b]) {
      ram.writeU64(TOHOST, (1n << 56n) | (1n << 48n) | BigInt(c));
      expect(htif.handleTohost()).toBeUndefined();
      expect(ram.readU64(TOHOST)).toBe(0n);
      expect(ram.readU64(FROMHOST)).toBe((1n << 56n) | (1n << 48n) | 0x100n | BigInt(c));
    }
    expect(String.fromCharCode(...out)).toBe("OK");
  });

  it("serves a console read when input arrives", () => {
    const { ram, htif } = setup();
    ram.writeU64(TOHOST, 1n << 56n);
    htif.handleTohost();
    expect(htif.wantsInput).toBe(true);
    expect(ram.readU64(FROMHOST)).toBe(0n);
    htif.receive(0x7a);
    expect(ram.readU64(FROMHOST)).toBe((1n << 56n) | 0x17an);
    expect(htif.wantsInput).toBe(false);
  });

  function syscall(ram: PhysicalMemory, at: number, args: bigint[]): void {
    args.forEach((a, i) => ram.writeU64(at + 8 * i, a));
    ram.writeU64(TOHOST, BigInt(at));
  }

  it("proxies write(1, buf, len) to the console and returns len in magic_mem[0]", () => {
    const { ram, htif, out } = setup();
    ram.write(0x8000_2000, new TextEncoder().encode("hello"));
    syscall(ram, 0x8000_3000, [64n, 1n, 0x8000_2000n, 5n]);
    expect(htif.handleTohost()).toBeUndefined();
    expect(String.fromCharCode(...out)).toBe("hello");
    expect(ram.readU64(0x8000_3000)).toBe(5n);
    expect(ram.readU64(FROMHOST)).toBe(1n);
    expect(ram.readU64(TOHOST)).toBe(0n);
  });

  it("proxies write(2, ...) to the error output", () => {
    const { ram, htif, out, err } = setup();
    ram.write(0x8000_2000, Uint8Array.of(0x21));
    syscall(ram, 0x8000_3000, [64n, 2n, 0x8000_2000n, 1n]);
    htif.handleTohost();
    expect(err).toEqual([0x21]);
    expect(out).toEqual([]);
  });

  it("proxies exit(code)", () => {
    const { ram, htif } = setup();
    syscall(ram, 0x8000_3000, [93n, 3n]);
    expect(htif.handleTohost()).toEqual({ kind: "exit", code: 3 });
  });

  it("answers an unknown syscall with -ENOSYS and reports it", () => {
    const { ram, htif, unknown } = setup();
    syscall(ram, 0x8000_3000, [999n]);
    htif.handleTohost();
    expect(ram.readU64(0x8000_3000)).toBe(BigInt.asUintN(64, -38n));
    expect(unknown).toHaveLength(1);
  });

  it("answers a write from outside RAM with -EFAULT", () => {
    const { ram, htif } = setup();
    syscall(ram, 0x8000_3000, [64n, 1n, 0x1000n, 4n]);
    htif.handleTohost();
    expect(ram.readU64(0x8000_3000)).toBe(BigInt.asUintN(64, -14n));
  });

  it("works without a fromhost symbol", () => {
    const { ram, htif, out } = setup(false);
    ram.writeU64(TOHOST, (1n << 56n) | (1n << 48n) | 0x41n);
    htif.handleTohost();
    expect(out).toEqual([0x41]);
  });
});
