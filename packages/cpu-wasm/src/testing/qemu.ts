// Differential testing against the installed QEMU (qemu-system-riscv64, the 7.2 reference):
// runs a raw image on QEMU's virt board with -bios none, one instruction per TB, and reads back
// the register state QEMU logs before every instruction.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cpu } from "../cpu.ts";
import type { CpuIsa } from "../isa.ts";

export const QEMU = "qemu-system-riscv64";
export const IMAGE_BASE = 0x8000_0000n;
/** The sifive_test finisher: a 32-bit store of 0x5555 makes QEMU exit. */
export const FINISHER = 0x10_0000n;

export function hasQemu(): boolean {
  return spawnSync(QEMU, ["--version"], { stdio: "ignore" }).status === 0;
}

export interface QemuStep {
  pc: bigint;
  /** x0..x31 before the instruction at pc. */
  x: bigint[];
}

/** Runs `image` (loaded at 0x8000_0000) on QEMU and returns its per-instruction trace from the image's first instruction on. */
export function qemuTrace(image: Uint8Array, cpuProps = ""): QemuStep[] {
  const dir = mkdtempSync(join(tmpdir(), "ferryvm-qemu-"));
  try {
    writeFileSync(join(dir, "image.bin"), image);
    spawnSync(QEMU, [
      "-M", "virt", "-bios", "none", "-nographic", "-cpu", `rv64,h=false,f=false,d=false${cpuProps ? "," + cpuProps : ""}`,
      "-kernel", join(dir, "image.bin"), "-d", "cpu,nochain", "-D", join(dir, "trace.log"), "-singlestep",
    ], { stdio: "ignore", timeout: 20_000 });
    const log = readFileSync(join(dir, "trace.log"), "utf8");
    const steps: QemuStep[] = [];
    for (const part of log.split(/^(?= pc  )/m)) {
      const pc = / pc\s+([0-9a-f]{16})/.exec(part);
      const x: bigint[] = [];
      for (const m of part.matchAll(/x(\d+)\/\w+\s+([0-9a-f]{16})/g)) x[Number(m[1])] = BigInt("0x" + m[2]);
      if (pc && x.length === 32) steps.push({ pc: BigInt("0x" + pc[1]), x });
    }
    const first = steps.findIndex((s) => s.pc === IMAGE_BASE);
    return first < 0 ? [] : steps.slice(first);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A one-hart CPU with 4 MiB of RAM at 0x8000_0000 holding `image`, registers as QEMU's first step. */
export function cpuFor(image: Uint8Array, first: QemuStep, isa: Partial<CpuIsa> = {}): Cpu {
  const memory = new WebAssembly.Memory({ initial: 0x80, maximum: 0x80, shared: true });
  // Nothing but the finisher is mapped outside RAM, as in the holes of QEMU's virt board.
  const mmio = { read: () => undefined, write: (addr: number) => addr === Number(FINISHER) };
  const cpu = Cpu.createSync({ memory, harts: 1, mmio, debug: true, isa });
  cpu.setRegions([{ base: Number(IMAGE_BASE), size: 0x40_0000, hostOffset: 0x40_0000 }]);
  new Uint8Array(memory.buffer, 0x40_0000).set(image);
  cpu.reset(0, IMAGE_BASE);
  for (let i = 1; i < 32; i++) cpu.hart(0).x[i] = first.x[i]!;
  return cpu;
}

/**
 * Steps the CPU through QEMU's trace; returns "" when every step starts with the same pc and
 * registers, else a description of the first difference.
 */
export function lockstep(image: Uint8Array, trace: QemuStep[], isa: Partial<CpuIsa> = {}): string {
  if (trace.length === 0) return "QEMU produced no trace";
  const cpu = cpuFor(image, trace[0]!, isa);
  const h = cpu.hart(0);
  const word = new DataView(cpu.memory.buffer, 0x40_0000);
  let prev = 0n;
  for (const step of trace) {
    // A fetch fault is raised by QEMU while translating the next block: it logs no step at
    // the faulting pc, where our interpreter takes one.
    if (step.pc !== h.pc) {
      cpu.run(0, 1);
      const cause = h.csr("mcause");
      if (step.pc !== h.pc || (cause !== 1n && cause !== 12n)) {
        return `after pc ${prev.toString(16)}: pc QEMU ${step.pc.toString(16)}, ours ${h.pc.toString(16)} (mcause ${cause})`;
      }
    }
    if (step.pc !== h.pc) {
      const insn = word.getUint32(Number(prev - IMAGE_BASE), true).toString(16);
      return `after ${insn} at ${prev.toString(16)}: pc QEMU ${step.pc.toString(16)}, ours ${h.pc.toString(16)}`;
    }
    for (let i = 1; i < 32; i++) {
      if (step.x[i] !== h.x[i]) {
        const insn = word.getUint32(Number(prev - IMAGE_BASE), true).toString(16);
        const epc = h.csr("mepc");
        const trapped = epc >= IMAGE_BASE && epc < IMAGE_BASE + 0x40_0000n
          ? ` (mepc ${epc.toString(16)}: ${word.getUint32(Number(epc - IMAGE_BASE), true).toString(16)})` : "";
        return `after ${insn} at ${prev.toString(16)}: x${i} QEMU ${step.x[i]!.toString(16)}, ours ${h.x[i]!.toString(16)}${trapped}`;
      }
    }
    prev = h.pc;
    cpu.run(0, 1);
  }
  return "";
}
