import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { formatTrapQemu, type TrapEvent } from "@ferryvm/cpu-wasm";
import { createMachine, type CpuResetEvent, type MachineOptions } from "./machine.ts";

function fixture(name: string): Uint8Array {
  return readFileSync(new URL(`../test-fixtures/${name}.elf`, import.meta.url));
}

function program(words: number[]): Uint8Array {
  const bytes = new Uint8Array(words.length * 4);
  const view = new DataView(bytes.buffer);
  words.forEach((w, i) => view.setUint32(i * 4, w >>> 0, true));
  return bytes;
}

function boot(name: string, options: MachineOptions = {}) {
  return createMachine({ bios: "none", kernel: fixture(name), ramSize: 8 << 20, ...options });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe("Machine trace hooks", () => {
  it("reports each trap to onTrap in QEMU's -d int form until the hook is removed", async () => {
    const events: TrapEvent[] = [];
    // An illegal instruction with mtvec = 0: then fetch faults at 0 forever.
    const m = await createMachine({
      bios: "none", kernel: program([0xffff_ffff]), ramSize: 8 << 20,
      onTrap: (e) => {
        events.push(e);
        if (events.length === 3) m.onTrap = undefined;
      },
    });
    expect(await m.run({ timeoutMs: 50 })).toEqual({ kind: "timeout" });
    expect(events.map(formatTrapQemu)).toEqual([
      "riscv_cpu_do_interrupt: hart:0, async:0, cause:0000000000000002, epc:0x0000000080000000, tval:0x00000000ffffffff, desc=illegal_instruction",
      "riscv_cpu_do_interrupt: hart:0, async:0, cause:0000000000000001, epc:0x0000000000000000, tval:0x0000000000000000, desc=fault_fetch",
      "riscv_cpu_do_interrupt: hart:0, async:0, cause:0000000000000001, epc:0x0000000000000000, tval:0x0000000000000000, desc=fault_fetch",
    ]);
    expect(m.instructions).toBeGreaterThan(1000);
  });

  it("calls onCpuReset for every hart at power-on and at each system reset", async () => {
    const resets: CpuResetEvent[] = [];
    const m = await boot("reset", { harts: 2, onCpuReset: (e) => resets.push(e) });
    expect(resets.map((e) => e.line)).toEqual(["CPU Reset (CPU 0)", "CPU Reset (CPU 1)"]);
    const r = await m.run({ timeoutMs: 5000 });
    expect(r).toEqual({ kind: "reset", cause: "guest-reset" });
    m.reset();
    expect(resets.map((e) => e.hart)).toEqual([0, 1, 0, 1]);
  });
});

describe("Machine run results", () => {
  it("say why the guest ended", async () => {
    const pass = await (await boot("uart-hello")).run({ timeoutMs: 5000 });
    expect(pass).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    const fail = await (await boot("finisher-fail")).run({ timeoutMs: 5000 });
    expect(fail.kind === "exit" && [fail.code, fail.cause]).toEqual([3, "guest-shutdown"]);
    const htif = await (await boot("htif-fail")).run({ timeoutMs: 5000 });
    expect(htif.kind === "exit" && [htif.code, htif.cause]).toEqual([5, "guest-shutdown"]);
    const reset = await (await boot("reset")).run({ timeoutMs: 5000 });
    expect(reset.kind === "reset" && reset.cause).toBe("guest-reset");
  });
});

describe("Machine pause", () => {
  it("stops every hart and the clock without ending run(), and resume() continues", async () => {
    const m = await boot("spin", { harts: 2 });
    const running = m.run({ timeoutMs: 10_000 });
    await sleep(30);
    expect(m.paused).toBe(false);
    await m.pause();
    expect(m.paused).toBe(true);
    const n = m.instructions;
    const t = m.clock.mtime;
    const pcs = [m.hart(0).pc, m.hart(1).pc];
    await sleep(40);
    expect([m.instructions, m.clock.mtime, m.hart(0).pc, m.hart(1).pc]).toEqual([n, t, ...pcs]);
    m.resume();
    expect(m.paused).toBe(false);
    await sleep(30);
    expect(m.instructions).toBeGreaterThan(n);
    expect(m.clock.mtime).toBeGreaterThan(t);
    m.stop();
    expect(await running).toEqual({ kind: "stopped" });
  });

  it("holds a run() started while paused until resume(), and stop() ends a paused run", async () => {
    const m = await boot("spin");
    await m.pause();
    const running = m.run({ timeoutMs: 10_000 });
    await sleep(30);
    expect(m.instructions).toBe(0);
    m.resume();
    await sleep(30);
    expect(m.instructions).toBeGreaterThan(0);
    await m.pause();
    m.stop();
    expect(await running).toEqual({ kind: "stopped" });
  });

  it("settles a pause() asked for just before the run ends", async () => {
    const m = await boot("spin");
    const running = m.run({ timeoutMs: 10_000 });
    await sleep(10);
    m.stop();
    const paused = m.pause();
    expect(await running).toEqual({ kind: "stopped" });
    await paused;
    expect(m.paused).toBe(true);
    expect(m.hart(0).stopRequest).toBe(false);
  });
});

describe("Machine throttle", () => {
  it("runs the vCPU (100 - pct)% of the time, as QEMU's cpu_throttle", async () => {
    const m = await boot("spin");
    expect(() => m.setThrottle(100)).toThrow(RangeError);
    const rate = async (pct: number): Promise<number> => {
      m.setThrottle(pct);
      const n = m.instructions;
      const t0 = performance.now();
      await m.run({ timeoutMs: 400 });
      return (m.instructions - n) / (performance.now() - t0);
    };
    await rate(0); // warm up (JIT tiers)
    const r0 = await rate(0);
    const r50 = await rate(50) / r0;
    const r90 = await rate(90) / r0;
    expect(r50).toBeGreaterThan(0.35);
    expect(r50).toBeLessThan(0.65);
    expect(r90).toBeGreaterThan(0.04);
    expect(r90).toBeLessThan(0.18);
  });
});
