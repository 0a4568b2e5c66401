import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createMachine, type MachineOptions } from "./machine.ts";

function fixture(name: string): Uint8Array {
  return readFileSync(new URL(`../test-fixtures/${name}.elf`, import.meta.url));
}

async function boot(name: string, options: MachineOptions = {}) {
  const out: number[] = [];
  const m = await createMachine({ bios: "none", kernel: fixture(name), onConsoleOutput: (b) => out.push(...b), ...options });
  return { m, text: () => new TextDecoder().decode(Uint8Array.from(out)) };
}

describe("Machine", () => {
  it("starts every hart in the ROM with a0 = hartid, a1 = FDT, a2 = fw_dynamic_info", async () => {
    const { m } = await boot("regs");
    expect(m.fdtAddr).toBe(0x87e0_0000n);
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
  });

  it("prints UART output and ends with the finisher's pass", async () => {
    const { m, text } = await boot("uart-hello");
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    expect(text()).toBe("hello from uart\n");
  });

  it("returns the finisher's failure code", async () => {
    const { m } = await boot("finisher-fail");
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 3, cause: "guest-shutdown" });
  });

  it("ends with HTIF tohost = 1 as pass and (n << 1) | 1 as failure n", async () => {
    expect(await (await boot("htif-pass")).m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    expect(await (await boot("htif-fail")).m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 5, cause: "guest-shutdown" });
  });

  it("sees an HTIF exit written from S-mode through a virtual alias of tohost", async () => {
    expect(await (await boot("htif-virtual")).m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 6, cause: "guest-shutdown" });
  });

  it("prints HTIF console output and answers through fromhost", async () => {
    const { m, text } = await boot("htif-console");
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    expect(text()).toBe("htif says hi\n");
  });

  it("serves the riscv-tests syscall proxy: write then exit(7)", async () => {
    const { m, text } = await boot("htif-syscall");
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 7, cause: "guest-shutdown" });
    expect(text()).toBe("syscall out\n");
  });

  it("times out a guest that never ends", async () => {
    const { m } = await boot("spin");
    const t0 = performance.now();
    expect(await m.run({ timeoutMs: 300 })).toEqual({ kind: "timeout" });
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it("sleeps instead of spinning while every hart waits in WFI", async () => {
    const { m } = await boot("wfi-idle");
    const cpu0 = process.cpuUsage();
    expect(await m.run({ timeoutMs: 400 })).toEqual({ kind: "timeout" });
    const used = process.cpuUsage(cpu0);
    expect((used.user + used.system) / 1000).toBeLessThan(150);
  });

  it("gives the CLINT mtime register and the time CSR one clock", async () => {
    // zicsr-style check: m0 = mtime (MMIO), t = time (CSR), m1 = mtime; passes when m0 <= t <= m1.
    const { m } = await boot("time-csr");
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
  });

  it("wakes a WFI hart at its timer deadline", async () => {
    const { m, text } = await boot("timer");
    const t0 = performance.now();
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    expect(text()).toBe("tick\n");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(15);
  });

  it("wakes a WFI hart at its Sstc stimecmp deadline", async () => {
    const { m, text } = await boot("stimecmp-wfi");
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    expect(text()).toBe("stip\n");
  });

  it("jumps icount time to the timer deadline when all harts wait", async () => {
    const { m, text } = await boot("timer", { icount: { shift: 0 } });
    const t0 = performance.now();
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    expect(text()).toBe("tick\n");
    expect(m.clock.ns()).toBeGreaterThanOrEqual(20_000_000);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it("runs the same icount guest to the same instruction count twice", async () => {
    const a = await boot("timer", { icount: { shift: 2 } });
    const b = await boot("timer", { icount: { shift: 2 } });
    await a.m.run({ timeoutMs: 5000 });
    await b.m.run({ timeoutMs: 5000 });
    expect(a.m.instructions).toBe(b.m.instructions);
    expect(a.m.clock.ns()).toBe(b.m.clock.ns());
  });

  it("delivers console input to the UART while the guest runs", async () => {
    const { m, text } = await boot("echo");
    const done = m.run({ timeoutMs: 5000 });
    m.sendConsoleInput(new TextEncoder().encode("abc"));
    setTimeout(() => m.sendConsoleInput(new TextEncoder().encode("Zq")), 20);
    expect(await done).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    expect(text()).toBe("> ABCZ");
  });

  it("runs several harts round-robin (-smp 4)", async () => {
    const { m, text } = await boot("smp", { harts: 4 });
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    expect(text()).toBe("all 4 harts\n");
  });

  it("reports a finisher reset and boots again after reset()", async () => {
    const { m, text } = await boot("reset");
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "reset", cause: "guest-reset" });
    m.reset();
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    expect(text()).toBe("boot 2\n");
  });

  it("stops a running guest on stop()", async () => {
    const { m } = await boot("spin");
    setTimeout(() => m.stop(), 30);
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "stopped" });
  });

  it("rejects a kernel outside RAM with a clear error", async () => {
    // uart-hello's .data lies at 0x80001000, past 4 KiB of RAM.
    await expect(createMachine({ bios: "none", kernel: fixture("uart-hello"), ramSize: 4096 })).rejects.toThrow(
      /segment at 0x80001000 .* is outside guest RAM/,
    );
  });

  it("refuses more RAM than a wasm32 memory holds, naming the limit", async () => {
    await expect(createMachine({ ramSize: 4 * 2 ** 30 })).rejects.toThrow(/RAM size 4096 MiB exceeds the maximum of 3583 MiB/);
  });

  it("reports guest stores and device writes in the migration dirty bitmap", async () => {
    const { m } = await boot("reset"); // its first boot stores to 0x80100000, then asks for a reset
    const ram = m.guestMemory.block("riscv_virt_board.ram");
    const dirty = m.guestMemory.dirty("migration");
    dirty.sync();
    dirty.clear();
    expect(await m.run({ timeoutMs: 5000 })).toEqual({ kind: "reset", cause: "guest-reset" });
    dirty.sync();
    expect(dirty.test(ram, 0x100)).toBe(true);
    expect(dirty.test(ram, 0x200)).toBe(false);
    m.physicalMemory.writeU64(0x8020_0008, 1n);
    dirty.sync();
    expect(dirty.test(ram, 0x200)).toBe(true);
  });

  it("places a raw image at the start of RAM with -bios none", async () => {
    const raw = Uint8Array.of(0x6f, 0x00, 0x00, 0x00); // j .
    const m = await createMachine({ bios: "none", kernel: raw });
    expect(m.startAddr).toBe(0x8000_0000n);
    expect(await m.run({ timeoutMs: 100 })).toEqual({ kind: "timeout" });
    expect(m.hart(0).pc).toBe(0x8000_0000n);
  });
});
