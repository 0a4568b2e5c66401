// The vCPU in a worker thread: the same guests behave the same in both modes (exit codes,
// console output, MMIO-heavy UART echo, HTIF, timers, WFI sleep, -smp, reset, stop, pause,
// throttle), and the dirty bitmap misses no store of the worker's harts.
// The worker loads dist/vcpu-thread.js: skipped until the package is built (`pnpm test` builds).
import { readFileSync } from "node:fs";
import { patchElfU64 } from "@ferryvm/cpu-wasm";
import { afterEach, describe, expect, it } from "vitest";
import { createMachine, type Machine, type MachineOptions } from "./machine.ts";
import { MemoryBlockBackend } from "./virtio-blk.ts";
import { vcpuWorkerAvailable } from "./vcpu-worker.ts";

const built = vcpuWorkerAvailable();
const live: Machine[] = [];
afterEach(async () => {
  for (const m of live.splice(0)) await m.dispose();
});

function fixture(name: string): Uint8Array {
  return readFileSync(new URL(`../test-fixtures/${name}.elf`, import.meta.url));
}

async function boot(name: string, options: MachineOptions = {}) {
  return bootElf(fixture(name), options);
}

async function bootElf(kernel: Uint8Array, options: MachineOptions = {}) {
  const out: number[] = [];
  const m = await createMachine({ bios: "none", kernel, onConsoleOutput: (b) => out.push(...b), ...options });
  live.push(m);
  return { m, text: () => new TextDecoder().decode(Uint8Array.from(out)) };
}

const EXIT0 = { kind: "exit", code: 0, cause: "guest-shutdown" };

describe.skipIf(!built)("the vCPU in a worker thread", () => {
  const W: MachineOptions = { vcpuThread: "worker" };

  it.each([
    ["uart-hello", EXIT0, "hello from uart\n"],
    ["finisher-fail", { kind: "exit", code: 3, cause: "guest-shutdown" }, ""],
    ["htif-pass", EXIT0, ""],
    ["htif-fail", { kind: "exit", code: 5, cause: "guest-shutdown" }, ""],
    ["htif-console", EXIT0, "htif says hi\n"],
    ["htif-syscall", { kind: "exit", code: 7, cause: "guest-shutdown" }, "syscall out\n"],
    ["time-csr", EXIT0, ""],
    ["timer", EXIT0, "tick\n"],
    ["stimecmp-wfi", EXIT0, "stip\n"],
    ["regs", EXIT0, ""],
  ])("runs %s to the same end and output as the main thread", async (name, result, output) => {
    for (const mode of ["main", "worker"] as const) {
      const { m, text } = await boot(name, { vcpuThread: mode });
      expect(m.vcpuThread).toBe(mode);
      expect(await m.run({ timeoutMs: 5000 }), mode).toEqual(result);
      expect(text(), mode).toBe(output);
      expect(m.instructions, mode).toBeGreaterThan(0);
    }
  });

  it("echoes console input through the UART (an MMIO round trip per byte) as the main thread does", async () => {
    for (const mode of ["main", "worker"] as const) {
      const { m, text } = await boot("echo", { vcpuThread: mode });
      const done = m.run({ timeoutMs: 5000 });
      m.sendConsoleInput(new TextEncoder().encode("abc"));
      setTimeout(() => m.sendConsoleInput(new TextEncoder().encode("Zq")), 20);
      expect(await done, mode).toEqual(EXIT0);
      expect(text(), mode).toBe("> ABCZ");
    }
  });

  it("runs the guests/virt payload under OpenSBI (virtio-blk, rng, console, UART interrupt) to the same output as the main thread", async () => {
    const payload: Record<string, string> = {};
    for (const mode of ["main", "worker"] as const) {
      const disk = new Uint8Array(65536);
      disk.set(new TextEncoder().encode("FerryVM test disk: hello from sector 0\n"));
      let out = "";
      let vcon = "";
      let sent = false;
      const m = await createMachine({
        bios: "default",
        kernel: readFileSync(new URL("../../../guests/virt/virt.elf", import.meta.url)),
        vcpuThread: mode,
        virtio: [
          { type: "virtio-blk-device", backend: new MemoryBlockBackend(disk) },
          { type: "virtio-rng-device" },
          { type: "virtio-serial-device", onOutput: (b) => (vcon += new TextDecoder().decode(b)) },
        ],
        onConsoleOutput: (b) => {
          out += new TextDecoder().decode(b);
          if (!sent && out.includes("uart: waiting for input")) {
            sent = true;
            m.sendConsoleInput(new TextEncoder().encode("x"));
          }
        },
      });
      live.push(m);
      expect(await m.run({ timeoutMs: 20_000 }), `${mode}: ${out.slice(-300)}`).toEqual(EXIT0);
      expect(vcon, mode).toBe("hello through virtio-console transmitq0\n!\n");
      payload[mode] = out.slice(out.indexOf("virt: S-mode payload")).replace(/\r/g, "");
      expect(payload[mode], mode).toContain("virt: all passed");
      expect(disk.subarray(1024, 1536), mode).toEqual(new Uint8Array(512).map((_, i) => (i * 7 + 3) & 255));
    }
    expect(payload["worker"]).toBe(payload["main"]);
  });

  it("runs several harts round-robin (-smp 4)", async () => {
    const { m, text } = await boot("smp", { ...W, harts: 4 });
    expect(await m.run({ timeoutMs: 5000 })).toEqual(EXIT0);
    expect(text()).toBe("all 4 harts\n");
  });

  it("reports a finisher reset and boots again after reset()", async () => {
    const { m, text } = await boot("reset", W);
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "reset", cause: "guest-reset" });
    m.reset();
    expect(await m.run({ timeoutMs: 5000 })).toEqual(EXIT0);
    expect(text()).toBe("boot 2\n");
  });

  it("stops a spinning guest on stop() and times out one that never ends", async () => {
    const { m } = await boot("spin", W);
    setTimeout(() => m.stop(), 30);
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "stopped" });
    const before = m.instructions;
    const t0 = performance.now();
    expect(await m.run({ timeoutMs: 200 })).toEqual({ kind: "timeout" });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(m.instructions).toBeGreaterThan(before);
  });

  it("sleeps in WFI instead of spinning, on both threads", async () => {
    const { m } = await boot("wfi-idle", W);
    const cpu0 = process.cpuUsage();
    expect(await m.run({ timeoutMs: 400 })).toEqual({ kind: "timeout" });
    const used = process.cpuUsage(cpu0);
    expect((used.user + used.system) / 1000).toBeLessThan(150);
  });

  it("pauses with every hart stopped (instructions and pc stand still) and resumes", async () => {
    const { m } = await boot("spin", W);
    const run = m.run({ timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 30));
    await m.pause();
    const n = m.instructions;
    const pc = m.hart(0).pc;
    expect(n).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 30));
    expect(m.instructions).toBe(n);
    expect(m.hart(0).pc).toBe(pc);
    m.resume();
    await new Promise((r) => setTimeout(r, 30));
    expect(m.instructions).toBeGreaterThan(n);
    m.stop();
    expect(await run).toEqual({ kind: "stopped" });
  });

  it("pauses harts asleep in WFI at once (the sleep is claimed, the thread not woken) and resumes them", async () => {
    // guests/hello with a tick every 10 ms of guest time: between ticks the hart sleeps in WFI
    const hello = readFileSync(new URL("../../../guests/hello/hello.elf", import.meta.url));
    const { m, text } = await bootElf(patchElfU64(new Uint8Array(hello), "hello_interval", 100_000n), W);
    const run = m.run({ timeoutMs: 10_000 });
    const until = async (test: () => boolean): Promise<void> => {
      for (let i = 0; i < 500 && !test(); i++) await new Promise((r) => setTimeout(r, 5));
      expect(test()).toBe(true);
    };
    await until(() => text().includes("tick 2\n"));
    let fast = false;
    for (let i = 0; i < 50 && !fast; i++) {
      await new Promise((r) => setTimeout(r, 3));
      const p = m.pause();
      fast = m.paused; // paused before any await: no round trip through the run loop
      await p;
      if (!fast) m.resume();
    }
    expect(fast).toBe(true);
    const n = m.instructions;
    const out = text();
    // five tick periods: the worker's own sleep ends meanwhile, and it must not run the hart
    await new Promise((r) => setTimeout(r, 50));
    expect(m.instructions).toBe(n);
    expect(text()).toBe(out);
    m.resume();
    const ticks = (): number => text().split("\n").filter((l) => l.startsWith("tick ")).length;
    const before = ticks();
    await until(() => ticks() >= before + 2);
    // every line once, in order, across the pause
    const lines = text().split("\n").filter((l) => l.startsWith("tick "));
    expect(lines).toEqual(lines.map((_, i) => `tick ${i + 1}`));
    m.stop();
    expect(await run).toEqual({ kind: "stopped" });
  });

  it("throttles the worker's harts (auto-converge) to about the asked share", async () => {
    const { m } = await boot("spin", W);
    const rate = async (): Promise<number> => {
      const n0 = m.instructions;
      await m.run({ timeoutMs: 300 });
      return m.instructions - n0;
    };
    const full = await rate();
    m.setThrottle(75);
    const slow = await rate();
    expect(slow / full).toBeLessThan(0.5);
    expect(slow / full).toBeGreaterThan(0.05);
  });

  it("refuses icount and onTrap, which need the harts on the main thread", async () => {
    await expect(boot("spin", { ...W, icount: true })).rejects.toThrow(/icount is not supported with the vCPU in a worker thread/);
    await expect(boot("spin", { ...W, onTrap: () => {} })).rejects.toThrow(/tracing traps \(onTrap, -d int\) is not supported/);
    const { m } = await boot("spin", W);
    expect(() => (m.onTrap = () => {})).toThrow(/tracing traps \(onTrap, -d int\) is not supported/);
  });

  it("reports the worker's guest stores and device writes in the migration dirty bitmap", async () => {
    const { m } = await boot("reset", W); // its first boot stores to 0x80100000, then asks for a reset
    const mig = m.guestMemory.dirty("migration");
    const ram = m.guestMemory.block("riscv_virt_board.ram");
    mig.sync();
    mig.clear();
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "reset", cause: "guest-reset" });
    mig.sync();
    expect(mig.test(ram, 0x100)).toBe(true);
  });
});
