import * as L from "./layout.ts";
import { type CpuIsa, cpuIsa, isaFromOffBits, isaOffBits } from "./isa.ts";

/** Device side of the CPU: called for every access that does not hit a RAM region. */
export interface MmioBus {
  /** The value read (a number below 2^53 or a bigint); undefined = nothing mapped (access fault). */
  read(addr: number, size: 1 | 2 | 4 | 8, hart: number): number | bigint | undefined;
  /** `value` is a number for size <= 4, a bigint for size 8; false = nothing mapped (access fault). */
  write(addr: number, size: 1 | 2 | 4 | 8, value: number | bigint, hart: number): boolean;
}

/** A guest-physical RAM range backed by linear memory at `hostOffset`. */
export interface RamRegion {
  base: number;
  size: number;
  hostOffset: number;
  /** Stores fault (mrom). */
  readonly?: boolean;
  /** Host offsets of up to 4 dirty bitmaps (1 bit per 4 KiB page, u64 words) for this region. */
  dirtyBitmaps?: number[];
}

/** Why run() returned. */
export const ExitReason = { Budget: 0, Wfi: 1, Htif: 2, Stop: 3 } as const;
export type ExitReasonValue = (typeof ExitReason)[keyof typeof ExitReason];

/** One trap taken by a hart, as QEMU's riscv_cpu_do_interrupt logs it (`-d int`). */
export interface TrapEvent {
  /** Hart index (= mhartid). */
  hart: number;
  /** True for an interrupt, false for an exception. */
  async: boolean;
  /** The cause code without the interrupt bit (what QEMU prints). */
  cause: bigint;
  /** The pc the trap was taken at (mepc/sepc). */
  epc: bigint;
  /** The trap value written to mtval/stval. */
  tval: bigint;
}

const EXCEPTION_NAMES = [
  "misaligned_fetch", "fault_fetch", "illegal_instruction", "breakpoint", "misaligned_load", "fault_load",
  "misaligned_store", "fault_store", "user_ecall", "supervisor_ecall", "hypervisor_ecall", "machine_ecall",
  "exec_page_fault", "load_page_fault", "reserved", "store_page_fault", "reserved", "reserved", "reserved",
  "reserved", "guest_exec_page_fault", "guest_load_page_fault", "reserved", "guest_store_page_fault",
] as const;
const INTERRUPT_NAMES = [
  "u_software", "s_software", "vs_software", "m_software", "u_timer", "s_timer", "vs_timer", "m_timer",
  "u_external", "s_external", "vs_external", "m_external", "reserved", "reserved", "reserved", "reserved",
] as const;

/** QEMU 7.2's riscv_cpu_get_trap_name. */
export function trapName(cause: bigint, async: boolean): string {
  const names: readonly string[] = async ? INTERRUPT_NAMES : EXCEPTION_NAMES;
  return cause < BigInt(names.length) ? names[Number(cause)]! : "(unknown)";
}

function hex16(v: bigint): string {
  return BigInt.asUintN(64, v).toString(16).padStart(16, "0");
}

/**
 * The line QEMU 7.2 logs with `-d int` for a trap (target/riscv/cpu_helper.c), without the
 * trailing newline: `riscv_cpu_do_interrupt: hart:0, async:1, cause:0000000000000007,
 * epc:0x0000000080000010, tval:0x0000000000000000, desc=m_timer`.
 */
export function formatTrapQemu(event: TrapEvent): string {
  return (
    `riscv_cpu_do_interrupt: hart:${event.hart}, async:${event.async ? 1 : 0}, cause:${hex16(event.cause)}, ` +
    `epc:0x${hex16(event.epc)}, tval:0x${hex16(event.tval)}, desc=${trapName(event.cause, event.async)}`
  );
}

export interface CpuOptions {
  memory: WebAssembly.Memory;
  harts: number;
  mmio: MmioBus;
  /** Use the debug build (assertions on). */
  debug?: boolean;
  /**
   * Extensions every hart has (QEMU's CPU properties); the rest stay on (DEFAULT_CPU_ISA).
   * Validated: an impossible set throws CpuIsaError naming the property. See also Cpu.setIsa.
   */
  isa?: Partial<CpuIsa>;
}

interface CpuExports {
  configure(machineArea: number, hartArea: number, hartBlockSize: number, harts: number): void;
  resetHart(hart: number, pc: bigint): void;
  run(hart: number, budget: number): number;
  tlbFlush(hart: number): void;
  tlbFlushStores(hart: number): void;
  debugCsrRead(hart: number, csr: number): bigint;
  debugCsrWrite(hart: number, csr: number, value: bigint): void;
  debugCsrIllegal(): number;
  setIsaOff(hart: number, off: number): void;
}

/** CSR names (lower case, as in the spec) to numbers. */
export const CSR_NUMBERS: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries([
    ...Object.entries(L)
      .filter(([k, v]) => k.startsWith("CSR_") && typeof v === "number")
      .map(([k, v]) => [k.slice(4).toLowerCase(), v as number] as const),
    ...Array.from({ length: 16 }, (_, i) => [`pmpaddr${i}`, L.CSR_PMPADDR0 + i] as const),
    ...Array.from({ length: 29 }, (_, i) => [`hpmcounter${i + 3}`, L.CSR_HPMCOUNTER3 + i] as const),
    ...Array.from({ length: 29 }, (_, i) => [`mhpmcounter${i + 3}`, L.CSR_MHPMCOUNTER3 + i] as const),
    ...Array.from({ length: 29 }, (_, i) => [`mhpmevent${i + 3}`, L.CSR_MHPMEVENT3 + i] as const),
  ]),
);

function wasmUrl(debug: boolean): URL {
  return new URL(debug ? "../build/cpu-wasm.debug.wasm" : "../build/cpu-wasm.wasm", import.meta.url);
}

function csrNumber(csr: string | number): number {
  if (typeof csr === "number") return csr;
  const n = CSR_NUMBERS[csr.toLowerCase()];
  if (n === undefined) throw new RangeError(`unknown CSR name ${csr}`);
  return n;
}

/** A live view of one hart's state in linear memory (no copies). */
export class HartView {
  readonly index: number;
  /** x0..x31. */
  readonly x: BigUint64Array;
  readonly #view: DataView;
  readonly #base: number;
  readonly #exports: CpuExports;

  constructor(memory: WebAssembly.Memory, index: number, exports: CpuExports) {
    this.index = index;
    this.#base = L.CPU_HART_AREA_BASE + index * L.CPU_HART_BLOCK_SIZE;
    this.x = new BigUint64Array(memory.buffer, this.#base + L.H_X, 32);
    this.#view = new DataView(memory.buffer, this.#base, L.HART_STATE_SIZE);
    this.#exports = exports;
  }

  /** Offset of this hart's block in linear memory. */
  get base(): number {
    return this.#base;
  }

  get pc(): bigint {
    return this.#view.getBigUint64(L.H_PC, true);
  }
  set pc(v: bigint) {
    this.#view.setBigUint64(L.H_PC, BigInt.asUintN(64, v), true);
  }

  /** Privilege mode: 0 U, 1 S, 3 M. */
  get priv(): number {
    return this.#view.getUint32(L.H_PRIV, true);
  }
  set priv(v: number) {
    this.#view.setUint32(L.H_PRIV, v, true);
    this.#exports.tlbFlush(this.index);
  }

  /** Reads a CSR by name ("mstatus") or number, as M-mode would. */
  csr(csr: string | number): bigint {
    const n = csrNumber(csr);
    const v = this.#exports.debugCsrRead(this.index, n);
    if (this.#exports.debugCsrIllegal()) throw new RangeError(`CSR 0x${n.toString(16)} does not exist`);
    return BigInt.asUintN(64, v);
  }

  /** Writes a CSR by name or number with M-mode rights (WARL rules apply). */
  setCsr(csr: string | number, value: bigint): void {
    const n = csrNumber(csr);
    this.#exports.debugCsrWrite(this.index, n, BigInt.asIntN(64, value));
    if (this.#exports.debugCsrIllegal()) throw new RangeError(`CSR 0x${n.toString(16)} does not exist or is read-only`);
  }

  /** The extensions this hart has (set through Cpu.setIsa). */
  get isa(): CpuIsa {
    return isaFromOffBits(this.#view.getUint32(L.H_ISA_OFF, true));
  }

  /** The CLINT's compare value for this hart. */
  get mtimecmp(): bigint {
    return this.#view.getBigUint64(L.H_MTIMECMP, true);
  }
  set mtimecmp(v: bigint) {
    this.#view.setBigUint64(L.H_MTIMECMP, BigInt.asUintN(64, v), true);
  }

  /**
   * The earliest mtime at which a timer interrupt becomes pending: mtimecmp, or stimecmp while
   * the Sstc supervisor timer is armed (OpenSBI programs stimecmp instead of the CLINT when it
   * finds the CSR). A host that sleeps while every hart waits in WFI must wake by then.
   */
  get timerDeadline(): bigint {
    const m = this.mtimecmp;
    if (this.#view.getUint32(L.H_STIMER_ARMED, true) === 0) return m;
    const s = this.#view.getBigUint64(L.H_STIMECMP, true);
    return s < m ? s : m;
  }

  /** MSIP/MEIP/SEIP lines driven by devices (mip bit positions). */
  get mipExternal(): number {
    return Atomics.load(new Uint32Array(this.#view.buffer, this.#base + L.H_MIP_EXTERNAL, 1), 0);
  }
  set mipExternal(v: number) {
    Atomics.store(new Uint32Array(this.#view.buffer, this.#base + L.H_MIP_EXTERNAL, 1), 0, v >>> 0);
  }

  get instret(): bigint {
    return this.#view.getBigUint64(L.H_MINSTRET, true);
  }
  /** Instructions the last run() call executed. */
  get lastRetired(): bigint {
    return this.#view.getBigUint64(L.H_LAST_RETIRED, true);
  }
  get dirtyPages(): bigint {
    return this.#view.getBigUint64(L.H_DIRTY_PAGES, true);
  }

  /** Set during an MMIO call: run() returns ExitReason.Stop after the current instruction. */
  get stopRequest(): boolean {
    return this.#view.getUint32(L.H_STOP_REQUEST, true) !== 0;
  }
  set stopRequest(v: boolean) {
    Atomics.store(new Uint32Array(this.#view.buffer, this.#base + L.H_STOP_REQUEST, 1), 0, v ? 1 : 0);
  }

  /** Asks the hart (possibly on another thread) to drop its store TLB at its next safe point. */
  requestStoreFlush(): void {
    Atomics.store(new Uint32Array(this.#view.buffer, this.#base + L.H_FLUSH_REQUEST, 1), 0, 1);
  }

  /** True while the hart waits in WFI. */
  get wfi(): boolean {
    return this.#view.getUint32(L.H_WFI, true) !== 0;
  }
  set wfi(v: boolean) {
    this.#view.setUint32(L.H_WFI, v ? 1 : 0, true);
  }
}

/**
 * The RISC-V harts of one VM: an AssemblyScript interpreter instance sharing the VM's linear
 * memory. Harts are run one slice at a time by the caller.
 */
export class Cpu {
  readonly harts: number;
  readonly memory: WebAssembly.Memory;
  readonly #exports: CpuExports;
  readonly #views: HartView[];
  readonly #ma: DataView;
  #onTrap: ((event: TrapEvent) => void) | undefined;

  private constructor(module: WebAssembly.Module, opts: CpuOptions) {
    const { memory, harts, mmio } = opts;
    if (!Number.isInteger(harts) || harts < 1 || harts > L.CPU_MAX_HARTS) {
      throw new RangeError(`hart count ${harts} is out of range 1..${L.CPU_MAX_HARTS}`);
    }
    const isa = cpuIsa(opts.isa);
    const needed = L.CPU_HART_AREA_BASE + harts * L.CPU_HART_BLOCK_SIZE;
    if (memory.buffer.byteLength < needed) {
      throw new RangeError(`linear memory of ${memory.buffer.byteLength} bytes is smaller than the ${needed} the harts need`);
    }
    this.harts = harts;
    this.memory = memory;
    const data = new DataView(memory.buffer);
    const slot = (hart: number): number => L.CPU_HART_AREA_BASE + hart * L.CPU_HART_BLOCK_SIZE + L.H_MMIO_DATA;
    const env = {
      memory,
      mmio_read: (hart: number, lo: number, hi: number, size: number): number => {
        const v = mmio.read((hi >>> 0) * 0x1_0000_0000 + (lo >>> 0), size as 1 | 2 | 4 | 8, hart);
        if (v === undefined) return 1;
        data.setBigUint64(slot(hart), BigInt.asUintN(64, typeof v === "bigint" ? v : BigInt(v)), true);
        return 0;
      },
      mmio_write: (hart: number, lo: number, hi: number, size: number): number => {
        const raw = data.getBigUint64(slot(hart), true);
        const value = size === 8 ? raw : Number(raw & ((1n << BigInt(size * 8)) - 1n));
        return mmio.write((hi >>> 0) * 0x1_0000_0000 + (lo >>> 0), size as 1 | 2 | 4 | 8, value, hart) ? 0 : 1;
      },
      trace_trap: (
        hart: number, isAsync: number, causeLo: number, causeHi: number,
        epcLo: number, epcHi: number, tvalLo: number, tvalHi: number,
      ): void => {
        const u64 = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
        this.#onTrap?.({
          hart,
          async: isAsync !== 0,
          cause: u64(causeLo, causeHi),
          epc: u64(epcLo, epcHi),
          tval: u64(tvalLo, tvalHi),
        });
      },
      abort: (msg: number, file: number, line: number, col: number): never => {
        throw new Error(`cpu-wasm abort at ${line}:${col} (message ${msg}, file ${file})`);
      },
    };
    const instance = new WebAssembly.Instance(module, { env });
    this.#exports = instance.exports as unknown as CpuExports;
    this.#exports.configure(L.CPU_MACHINE_AREA_BASE, L.CPU_HART_AREA_BASE, L.CPU_HART_BLOCK_SIZE, harts);
    this.#ma = new DataView(memory.buffer, L.CPU_MACHINE_AREA_BASE, 0x1000);
    this.#ma.setUint32(L.MA_TRACE_FLAGS, 0, true);
    this.#views = [];
    for (let i = 0; i < harts; i++) {
      this.#views.push(new HartView(memory, i, this.#exports));
      this.#exports.setIsaOff(i, isaOffBits(isa));
      this.#exports.resetHart(i, 0n);
    }
  }

  /** Loads the wasm (fetch in browsers, the file system in Node) and instantiates it. */
  static async create(opts: CpuOptions): Promise<Cpu> {
    const url = wasmUrl(opts.debug ?? false);
    let bytes: ArrayBuffer | Uint8Array;
    if (url.protocol === "file:") {
      const fs = await import("node:fs/promises");
      bytes = await fs.readFile(url);
    } else {
      bytes = await (await fetch(url)).arrayBuffer();
    }
    return new Cpu(await WebAssembly.compile(bytes as BufferSource), opts);
  }

  /** Synchronous variant: uses `opts.wasm` or reads the file (Node only). */
  static createSync(opts: CpuOptions & { wasm?: BufferSource }): Cpu {
    let bytes = opts.wasm;
    if (bytes === undefined) {
      const fs = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
        ?.getBuiltinModule?.("node:fs") as typeof import("node:fs") | undefined;
      if (fs === undefined) throw new Error("Cpu.createSync needs opts.wasm outside Node.js");
      bytes = fs.readFileSync(wasmUrl(opts.debug ?? false)) as unknown as BufferSource;
    }
    return new Cpu(new WebAssembly.Module(bytes), opts);
  }

  /** Replaces the RAM region table; every other guest-physical address is MMIO. */
  setRegions(regions: RamRegion[]): void {
    if (regions.length > L.MA_MAX_REGIONS) {
      throw new RangeError(`${regions.length} RAM regions exceed the limit of ${L.MA_MAX_REGIONS}`);
    }
    regions.forEach((r, i) => {
      const bitmaps = r.dirtyBitmaps ?? [];
      if (bitmaps.length > L.RG_MAX_DIRTY_CLIENTS) {
        throw new RangeError(`RAM region ${i}: ${bitmaps.length} dirty bitmaps exceed the limit of ${L.RG_MAX_DIRTY_CLIENTS}`);
      }
      if (r.base % 4096 !== 0 || r.size % 4096 !== 0 || r.hostOffset % 4096 !== 0) {
        throw new RangeError(`RAM region ${i}: base, size and host offset must be multiples of 4096`);
      }
      if (r.hostOffset + r.size > this.memory.buffer.byteLength) {
        throw new RangeError(`RAM region ${i} ends at host offset ${r.hostOffset + r.size}, beyond the linear memory`);
      }
      const o = L.MA_REGIONS + i * L.MA_REGION_SIZE;
      this.#ma.setBigUint64(o + L.RG_BASE, BigInt(r.base), true);
      this.#ma.setBigUint64(o + L.RG_SIZE, BigInt(r.size), true);
      this.#ma.setUint32(o + L.RG_HOST_OFFSET, r.hostOffset, true);
      this.#ma.setUint32(o + L.RG_FLAGS, r.readonly ? L.RG_FLAG_READONLY : 0, true);
      this.#ma.setUint32(o + L.RG_DIRTY_CLIENTS, bitmaps.length, true);
      bitmaps.forEach((b, c) => this.#ma.setUint32(o + L.RG_BITMAPS + 4 * c, b, true));
    });
    this.#ma.setUint32(L.MA_REGION_COUNT, regions.length, true);
    this.#flushAll();
  }

  /** Sets the HTIF tohost/fromhost addresses (null = none). A store to tohost ends run() with Htif. */
  setTohost(addr: bigint | null, fromhost: bigint | null = null): void {
    this.#ma.setBigUint64(L.MA_TOHOST, addr ?? 0n, true);
    this.#ma.setBigUint64(L.MA_FROMHOST, fromhost ?? 0n, true);
    this.#flushAll();
  }

  get tohost(): bigint | null {
    const v = this.#ma.getBigUint64(L.MA_TOHOST, true);
    return v === 0n ? null : v;
  }

  /** The CLINT's time (10 MHz), read by the `time` CSR and compared against mtimecmp. */
  get mtime(): bigint {
    return this.#ma.getBigUint64(L.MA_MTIME, true);
  }
  set mtime(v: bigint) {
    this.#ma.setBigUint64(L.MA_MTIME, BigInt.asUintN(64, v), true);
  }

  /**
   * Called for every trap any hart takes (QEMU's `-d int`; see {@link formatTrapQemu}), from
   * inside run(), before the trap updates the hart. undefined turns tracing off; the
   * instruction loop never looks at it, only the trap path does.
   */
  get onTrap(): ((event: TrapEvent) => void) | undefined {
    return this.#onTrap;
  }
  set onTrap(fn: ((event: TrapEvent) => void) | undefined) {
    this.#onTrap = fn;
    const flags = this.#ma.getUint32(L.MA_TRACE_FLAGS, true);
    this.#ma.setUint32(L.MA_TRACE_FLAGS, fn === undefined ? flags & ~L.MA_TRACE_TRAP : flags | L.MA_TRACE_TRAP, true);
  }

  hart(i: number): HartView {
    const v = this.#views[i];
    if (v === undefined) throw new RangeError(`hart ${i} is out of range 0..${this.harts - 1}`);
    return v;
  }

  /**
   * Sets the extensions of hart `hart` (QEMU's CPU properties: the rest stay on) and its misa.
   * Call before the hart runs, as QEMU fixes them at realize; reset keeps them. Throws
   * CpuIsaError naming the property for an impossible set.
   */
  setIsa(hart: number, isa: Partial<CpuIsa>): void {
    this.hart(hart);
    const full = cpuIsa({ ...this.isa(hart), ...isa });
    this.#exports.setIsaOff(hart, isaOffBits(full));
  }

  /** The extensions of hart `hart`. */
  isa(hart: number): CpuIsa {
    return this.hart(hart).isa;
  }

  /** Power-on reset of one hart: M-mode, registers and CSRs zero, pc given; keeps its ISA. */
  reset(hart: number, pc: bigint): void {
    this.hart(hart);
    this.#exports.resetHart(hart, BigInt.asIntN(64, pc));
  }

  /** Runs hart `hart` for at most `budget` instructions. */
  run(hart: number, budget: number): ExitReasonValue {
    this.hart(hart);
    return this.#exports.run(hart, budget >>> 0) as ExitReasonValue;
  }

  tlbFlush(hart: number): void {
    this.#exports.tlbFlush(hart);
  }

  tlbFlushStores(hart: number): void {
    this.#exports.tlbFlushStores(hart);
  }

  #flushAll(): void {
    for (let i = 0; i < this.harts; i++) this.#exports.tlbFlush(i);
  }
}
