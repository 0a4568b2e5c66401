// Test harness: a one-region machine with a recording MMIO bus and HTIF tohost.
import { Cpu, type MmioBus } from "../cpu.ts";
import { Asm, li, sd, addi, auipc, csrrw, csrrs, csrrc, MRET } from "../rv-asm.ts";
import { CSR_MTVEC, CSR_PMPADDR0, CSR_PMPCFG0, CSR_MSTATUS, CSR_MEPC } from "../layout.ts";

export const RAM_BASE = 0x8000_0000;
export const RAM_SIZE = 0x40_0000;
export const RAM_HOST = 0x40_0000;
export const TOHOST = 0x8000_0ff8n;
/** Where test programs start (code page after the tohost page). */
export const CODE = 0x8000_1000n;

export interface MmioAccess {
  kind: "read" | "write";
  addr: number;
  size: number;
  value?: number | bigint;
}

export interface TestMachine {
  cpu: Cpu;
  mem: DataView;
  accesses: MmioAccess[];
  /** MMIO registers: reads answer from here; missing = nothing mapped. */
  devices: Map<number, bigint>;
  onWrite?: (addr: number, value: number | bigint) => void;
  /** Copies bytes to guest-physical `addr`. */
  write(addr: bigint, bytes: Uint8Array): void;
  /** Assembles at `addr` with the callback and copies the code there. */
  code(addr: bigint, build: (a: Asm) => void): void;
  read64(addr: bigint): bigint;
  write64(addr: bigint, v: bigint): void;
  /** Runs until tohost is written (or the budget is spent) and returns the exit reason. */
  runToHtif(budget?: number): number;
}

export function makeMachine(opts: { harts?: number; dirtyBitmaps?: number[] } = {}): TestMachine {
  const memory = new WebAssembly.Memory({ initial: (RAM_HOST + RAM_SIZE) / 65536, maximum: (RAM_HOST + RAM_SIZE) / 65536, shared: true });
  const accesses: MmioAccess[] = [];
  const devices = new Map<number, bigint>();
  const m: Partial<TestMachine> = { accesses, devices };
  const bus: MmioBus = {
    read(addr, size) {
      accesses.push({ kind: "read", addr, size });
      const v = devices.get(addr);
      return v;
    },
    write(addr, size, value) {
      accesses.push({ kind: "write", addr, size, value });
      if (!devices.has(addr)) return false;
      devices.set(addr, BigInt(value));
      m.onWrite?.(addr, value);
      return true;
    },
  };
  const cpu = Cpu.createSync({ memory, harts: opts.harts ?? 1, mmio: bus, debug: true });
  cpu.setRegions([{ base: RAM_BASE, size: RAM_SIZE, hostOffset: RAM_HOST, dirtyBitmaps: opts.dirtyBitmaps ?? [] }]);
  cpu.setTohost(TOHOST);
  const mem = new DataView(memory.buffer);
  const host = (addr: bigint): number => {
    const off = Number(addr) - RAM_BASE;
    if (off < 0 || off >= RAM_SIZE) throw new RangeError(`0x${addr.toString(16)} is outside test RAM`);
    return RAM_HOST + off;
  };
  Object.assign(m, {
    cpu,
    mem,
    write(addr: bigint, bytes: Uint8Array) {
      new Uint8Array(memory.buffer).set(bytes, host(addr));
    },
    code(addr: bigint, build: (a: Asm) => void) {
      const a = new Asm(addr);
      build(a);
      (m as TestMachine).write(addr, a.bytes());
    },
    read64: (addr: bigint) => mem.getBigUint64(host(addr), true),
    write64: (addr: bigint, v: bigint) => mem.setBigUint64(host(addr), BigInt.asUintN(64, v), true),
    runToHtif(budget = 100_000) {
      return cpu.run(0, budget);
    },
  });
  cpu.reset(0, CODE);
  return m as TestMachine;
}

/**
 * Assembles `body` at CODE followed by "store x0 to tohost", runs it to the HTIF exit and
 * returns the machine. Throws when the program does not reach tohost.
 */
export function runProgram(
  body: (a: Asm) => void,
  setup?: (m: TestMachine) => void,
  budget = 100_000,
): TestMachine {
  const m = makeMachine();
  m.code(CODE, (a) => {
    body(a);
    a.emit(...li(31, TOHOST), sd(0, 31, 0));
  });
  setup?.(m);
  const exit = m.runToHtif(budget);
  if (exit !== 2) throw new Error(`program ended with exit ${exit} at pc 0x${m.cpu.hart(0).pc.toString(16)}`);
  return m;
}

/** Trap handler address used by trapProgram: it ends the run through tohost. */
export const HANDLER = 0x8000_8000n;

/** Sets mtvec = HANDLER (direct) and opens every address to S/U through PMP entry 0. */
export function prologue(a: Asm): void {
  a.emit(...li(5, HANDLER), csrrw(0, CSR_MTVEC, 5));
  a.emit(...li(5, 0x3f_ffff_ffff_ffffn), csrrw(0, CSR_PMPADDR0, 5), addi(5, 0, 0x1f), csrrw(0, CSR_PMPCFG0, 5));
}

/** Switches to privilege `mode` (mret) and continues at the next instruction. */
export function enterMode(a: Asm, mode: 0 | 1 | 3): void {
  a.emit(...li(5, 0x1800n), csrrc(0, CSR_MSTATUS, 5), ...li(5, BigInt(mode) << 11n), csrrs(0, CSR_MSTATUS, 5));
  a.emit(auipc(5, 0), addi(5, 5, 16), csrrw(0, CSR_MEPC, 5), MRET);
}

/** Runs `body` with the prologue; the trap handler (or the end of the body) stops the run. */
export function trapProgram(body: (a: Asm) => void, setup?: (m: TestMachine) => void, budget = 100_000): TestMachine {
  return runProgram((a) => {
    prologue(a);
    body(a);
  }, (m) => {
    m.code(HANDLER, (a) => a.emit(...li(31, TOHOST), sd(0, 31, 0)));
    setup?.(m);
  }, budget);
}
