import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, expect } from "vitest";
import { formatTrapQemu, trapName, type TrapEvent } from "./mod.ts";
import { QEMU, IMAGE_BASE, FINISHER, hasQemu, cpuFor } from "./testing/qemu.ts";
import * as A from "./rv-asm.ts";

const HANDLER = IMAGE_BASE + 0x1000n;

/** ecall, an illegal instruction, a load from an unmapped address, ebreak, then a timer interrupt. */
function trapImage(): Uint8Array {
  const img = new Uint8Array(0x2000);
  const a = new A.Asm(IMAGE_BASE);
  a.emit(...A.li(5, HANDLER), A.csrrw(0, 0x305, 5));
  a.emit(A.ECALL, 0xffff_ffff, A.ld(7, 0, 0x18), A.EBREAK);
  // mtimecmp resets to 0: MTIP is pending, so enabling it takes m_timer at once.
  a.emit(A.addi(5, 0, 0x80), A.csrrs(0, 0x304, 5), A.csrrsi(0, 0x300, 8), A.addi(0, 0, 0));
  a.emit(A.lui(29, Number(FINISHER)), ...A.li(28, 0x5555n), A.sw(28, 29, 0), A.jal(0, 0));
  img.set(a.bytes(), 0);
  const h = new A.Asm(HANDLER);
  h.emit(A.csrrs(28, 0x342, 0), A.blt(28, 0, 20), A.csrrs(29, 0x341, 0), A.addi(29, 29, 4), A.csrrw(0, 0x341, 29), A.MRET);
  h.emit(A.csrrw(0, 0x304, 0), A.MRET);
  img.set(h.bytes(), Number(HANDLER - IMAGE_BASE));
  return img;
}

function traceOurs(image: Uint8Array): TrapEvent[] {
  const cpu = cpuFor(image, { pc: IMAGE_BASE, x: new Array<bigint>(32).fill(0n) });
  const events: TrapEvent[] = [];
  cpu.onTrap = (e) => events.push(e);
  cpu.run(0, 200);
  return events;
}

describe("trap trace", () => {
  it("reports every trap with its cause, epc and tval and stops once the hook is removed", () => {
    const events = traceOurs(trapImage());
    expect(events.map((e) => [e.async, e.cause, trapName(e.cause, e.async)])).toEqual([
      [false, 11n, "machine_ecall"],
      [false, 2n, "illegal_instruction"],
      [false, 5n, "fault_load"],
      [false, 3n, "breakpoint"],
      [true, 7n, "m_timer"],
    ]);
    const word = new DataView(trapImage().buffer);
    expect(word.getUint32(Number(events[0]!.epc - IMAGE_BASE), true)).toBe(A.ECALL);
    expect(events.slice(1, 4).map((e) => e.epc - events[0]!.epc)).toEqual([4n, 8n, 12n]);
    expect(events[1]!.tval).toBe(0xffff_ffffn);
    expect(events[2]!.tval).toBe(0x18n);
    const cpu = cpuFor(trapImage(), { pc: IMAGE_BASE, x: new Array<bigint>(32).fill(0n) });
    let n = 0;
    cpu.onTrap = () => n++;
    cpu.onTrap = undefined;
    cpu.run(0, 200);
    expect(cpu.hart(0).csr("mcause")).toBe((1n << 63n) | 7n);
    expect(n).toBe(0);
  });

  it("formats lines as QEMU 7.2's riscv_cpu_do_interrupt", () => {
    expect(formatTrapQemu({ hart: 1, async: true, cause: 7n, epc: 0x8000_0010n, tval: 0n })).toBe(
      "riscv_cpu_do_interrupt: hart:1, async:1, cause:0000000000000007, epc:0x0000000080000010, " +
        "tval:0x0000000000000000, desc=m_timer",
    );
    expect(trapName(99n, false)).toBe("(unknown)");
  });

  it.skipIf(!hasQemu())("prints the same -d int lines as QEMU 7.2", () => {
    const image = trapImage();
    const dir = mkdtempSync(join(tmpdir(), "ferryvm-int-"));
    let log: string;
    try {
      writeFileSync(join(dir, "image.bin"), image);
      spawnSync(QEMU, [
        "-M", "virt", "-bios", "none", "-nographic", "-cpu", "rv64,h=false,f=false,d=false",
        "-kernel", join(dir, "image.bin"), "-d", "int", "-D", join(dir, "int.log"),
      ], { stdio: "ignore", timeout: 20_000 });
      log = readFileSync(join(dir, "int.log"), "utf8");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const qemuLines = log.split("\n").filter((l) => l.startsWith("riscv_cpu_do_interrupt"));
    expect(qemuLines.length).toBe(5);
    expect(traceOurs(image).map(formatTrapQemu)).toEqual(qemuLines);
  });
});
