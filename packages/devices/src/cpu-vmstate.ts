/**
 * The state of one hart as QEMU 7.2 saves a RISC-V CPU: the `cpu_common` section
 * (cpu.c: halted, interrupt_request) and the `cpu` section (target/riscv/machine.c, v5, with
 * the subsections QEMU sends for a hart like ours: cpu/pmp and cpu/envcfg; cpu/hyper,
 * cpu/debug, cpu/vector, ... describe hardware we do not have and are never needed).
 *
 * The hart lives in linear memory (packages/cpu-wasm's hart layout). `HartState` is the
 * object the descriptions read: `pre_save` copies the hart into it, `post_load` copies it back
 * (QEMU's fields are members of `CPURISCVState`; ours are offsets in a hart block). What we
 * hold that QEMU does not (the raw mip bits software wrote, the retired-instruction and cycle
 * counters, the armed Sstc timer) travels in the `cpu/ferryvm` subsection.
 *
 * CPU features (packages/cpu-wasm's CpuIsa): misa (`env.misa_ext`) and QEMU's `env.features`
 * (MMU, PMP) must match the destination's hart exactly; the `cpu/isa_ext` subsection lists the
 * other guest-visible extensions that are on (zicsr, zifencei, sstc, mmu, pmp) by name, so a
 * stream from a CPU with a feature the destination lacks fails naming it. Both directions fail:
 * see HartState.validate.
 *
 * @module
 */

import {
  H_F,
  H_LR_ADDR,
  H_LR_VALID,
  H_LR_VALUE,
  H_MCAUSE,
  H_MCOUNTEREN,
  H_MCOUNTINHIBIT,
  H_MCYCLE,
  H_MEDELEG,
  H_MENVCFG,
  H_MEPC,
  H_MHARTID,
  H_MHPMCOUNTER,
  H_MHPMEVENT,
  H_MIDELEG,
  H_MIE,
  H_MINSTRET,
  H_MIP,
  H_MISA,
  H_MSCRATCH,
  H_MSTATUS,
  H_MTIMECMP,
  H_MTVAL,
  H_MTVEC,
  H_PC,
  H_PMPADDR,
  H_PMPCFG0,
  H_PMPCFG2,
  H_PRIV,
  H_SATP,
  H_SCAUSE,
  H_SCOUNTEREN,
  H_SENVCFG,
  H_SEPC,
  H_SSCRATCH,
  H_STIMECMP,
  H_STIMER_ARMED,
  H_STVAL,
  H_STVEC,
  H_WFI,
  H_X,
  HPM_COUNTERS,
  CPU_ISA_EXT_NAMES,
  CPU_ISA_PROPERTIES,
  type Cpu,
  type CpuIsa,
} from "@ferryvm/cpu-wasm";
import {
  MigrationError,
  type VMStateDescription,
  type VMStateField,
  vmstateBool,
  vmstateInt32,
  vmstateStructArray,
  vmstateUint32,
  vmstateUint64,
  vmstateUint64Array,
  vmstateUint8,
  vmstateUint8Array,
  vmstateUint16,
  vmstateVBuffer,
} from "@ferryvm/vmstate";

/** mip bits driven by devices: MSIP (CLINT), MTIP (mtimecmp), SEIP/MEIP (PLIC). */
const MIP_MSIP = 1n << 3n;
const MIP_MTIP = 1n << 7n;
const MIP_SEIP = 1n << 9n;
const MIP_MEIP = 1n << 11n;
/** QEMU's MXL_RV64. */
const MXL_RV64 = 2;
/** QEMU 7.2's PRIV_VERSION_1_12_0 (enum: 1.10, 1.11, 1.12). */
const PRIV_VERSION_1_12_0 = 2n;
/** QEMU's RISCV_FEATURE_MMU and RISCV_FEATURE_PMP bits of env.features (no DEBUG: no triggers here). */
const FEATURE_MMU = 1 << 0;
const FEATURE_PMP = 1 << 1;
const FEATURES = FEATURE_MMU | FEATURE_PMP;
/** misa letters, bit i = letter 'a' + i. */
const MISA_LETTERS = 0x3ff_ffff;
/** Upper bound of the `cpu/isa_ext` name list accepted from a stream. */
const ISA_EXT_MAX_BYTES = 1024;
/** QEMU's DEFAULT_RSTVEC (the mrom). */
const RESETVEC = 0x1000n;
/** env.miclaim of QEMU 7.2's virt hart (MIP_SGEIP). */
const MICLAIM = 0x1000n;
/**
 * env.miprio / env.siprio as QEMU 7.2 resets them (riscv_cpu_reset's default AIA interrupt
 * priorities; read from the cpu section of a stream QEMU 7.2 saved from `virt`).
 */
const QEMU_MIPRIO = hex(
  "ff141811ff151912ff13170016ffffff24211e1b0e0b0805ffffffffffffffff252322201f1d1c1a0f0d0c0a09070604ffffffffffffffffffffffffffffffff",
);
const QEMU_SIPRIO = hex(
  "ff141811ff151912ff00171016ffffff24211e1b0e0b0805ffffffffffffffff252322201f1d1c1a0f0d0c0a09070604ffffffffffffffffffffffffffffffff",
);
const NO_RESERVATION = 0xffff_ffff_ffff_ffffn;

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
}

/** Options of a HartState (set by the machine from its machine type). */
export interface HartStateOptions {
  /**
   * Send the `cpu/isa_ext` subsection (default true). Machine type virt-1.0 must pass false:
   * the releases that introduced it fail on a subsection they do not know.
   */
  migrateIsaExt?: boolean;
}

function str8List(names: readonly string[]): Uint8Array {
  const enc = new TextEncoder();
  const parts = names.map((n) => enc.encode(n));
  const out = new Uint8Array(parts.reduce((n, p) => n + 1 + p.length, 0));
  let o = 0;
  for (const p of parts) {
    if (p.length > 255) throw new RangeError(`extension name of ${p.length} bytes does not fit a str8`);
    out[o++] = p.length;
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function parseStr8List(bytes: Uint8Array, count: number, hart: number): string[] {
  const dec = new TextDecoder("utf-8", { fatal: false });
  const names: string[] = [];
  let o = 0;
  while (o < bytes.length) {
    const n = bytes[o++]!;
    if (o + n > bytes.length) throw new MigrationError(`vmstate: cpu/isa_ext: hart ${hart}: a name runs past the list`);
    names.push(dec.decode(bytes.subarray(o, o + n)));
    o += n;
  }
  if (names.length !== count) {
    throw new MigrationError(`vmstate: cpu/isa_ext: hart ${hart}: ${names.length} names where the count says ${count}`);
  }
  return names;
}

/** One entry of QEMU's env.pmu_ctrs (PMUCTRState). */
export interface PmuCounterState {
  mhpmcounter_val: bigint;
  mhpmcounterh_val: bigint;
  mhpmcounter_prev: bigint;
  mhpmcounterh_prev: bigint;
  started: boolean;
}

/** One entry of QEMU's env.pmp_state.pmp (pmp_entry_t). */
export interface PmpEntryState {
  addr_reg: bigint;
  cfg_reg: number;
}

const U64_FIELDS = [
  "env.pc",
  "env.load_res",
  "env.load_val",
  "env.frm",
  "env.badaddr",
  "env.guest_phys_fault_addr",
  "env.priv_ver",
  "env.vext_ver",
] as const;
const U32_FIELDS = ["env.misa_mxl", "env.misa_ext", "env.misa_mxl_max", "env.misa_ext_mask", "env.features"] as const;
const CSR_FIELDS = [
  "env.priv",
  "env.virt",
  "env.resetvec",
  "env.mhartid",
  "env.mstatus",
  "env.mip",
  "env.miclaim",
  "env.mie",
  "env.mideleg",
  "env.satp",
  "env.stval",
  "env.medeleg",
  "env.stvec",
  "env.sepc",
  "env.scause",
  "env.mtvec",
  "env.mepc",
  "env.mcause",
  "env.mtval",
  "env.miselect",
  "env.siselect",
  "env.scounteren",
  "env.mcounteren",
  "env.mcountinhibit",
] as const;
const TAIL_FIELDS = ["env.sscratch", "env.mscratch", "env.mfromhost", "env.mtohost", "env.stimecmp"] as const;

type U64Key = (typeof U64_FIELDS)[number] | (typeof CSR_FIELDS)[number] | (typeof TAIL_FIELDS)[number] | "env.menvcfg" | "env.senvcfg" | "env.henvcfg";
type U32Key = (typeof U32_FIELDS)[number];

/** Where each hart-block offset goes in QEMU's env (CSRs that map one to one). */
const CSR_OFFSETS: Partial<Record<U64Key, number>> = {
  "env.mhartid": H_MHARTID,
  "env.mstatus": H_MSTATUS,
  "env.mie": H_MIE,
  "env.mideleg": H_MIDELEG,
  "env.satp": H_SATP,
  "env.stval": H_STVAL,
  "env.medeleg": H_MEDELEG,
  "env.stvec": H_STVEC,
  "env.sepc": H_SEPC,
  "env.scause": H_SCAUSE,
  "env.mtvec": H_MTVEC,
  "env.mepc": H_MEPC,
  "env.mcause": H_MCAUSE,
  "env.mtval": H_MTVAL,
  "env.scounteren": H_SCOUNTEREN,
  "env.mcounteren": H_MCOUNTEREN,
  "env.mcountinhibit": H_MCOUNTINHIBIT,
  "env.sscratch": H_SSCRATCH,
  "env.mscratch": H_MSCRATCH,
  "env.stimecmp": H_STIMECMP,
  "env.menvcfg": H_MENVCFG,
  "env.senvcfg": H_SENVCFG,
};

/**
 * One hart's migratable state, as the `cpu_common` and `cpu` descriptions see it. Members are
 * named as QEMU's fields ("env.gpr"); `capture()` fills them from the hart block, `restore()`
 * writes them back.
 */
export class HartState {
  readonly index: number;
  // cpu_common
  halted = 0;
  interrupt_request = 0;
  exception_index = -1;
  crash_occurred = false;
  // cpu
  "env.gpr": BigUint64Array = new BigUint64Array(32);
  "env.fpr": BigUint64Array = new BigUint64Array(32);
  "env.miprio": Uint8Array = QEMU_MIPRIO.slice();
  "env.siprio": Uint8Array = QEMU_SIPRIO.slice();
  "env.pc" = 0n;
  "env.load_res" = NO_RESERVATION;
  "env.load_val" = 0n;
  "env.frm" = 0n;
  "env.badaddr" = 0n;
  "env.guest_phys_fault_addr" = 0n;
  "env.priv_ver" = PRIV_VERSION_1_12_0;
  "env.vext_ver" = 0n;
  "env.misa_mxl" = MXL_RV64;
  "env.misa_ext" = 0;
  "env.misa_mxl_max" = MXL_RV64;
  "env.misa_ext_mask" = 0;
  "env.features" = FEATURES;
  "env.priv" = 3n;
  "env.virt" = 0n;
  "env.resetvec" = RESETVEC;
  "env.mhartid" = 0n;
  "env.mstatus" = 0n;
  "env.mip" = 0n;
  "env.miclaim" = MICLAIM;
  "env.mie" = 0n;
  "env.mideleg" = 0n;
  "env.satp" = 0n;
  "env.stval" = 0n;
  "env.medeleg" = 0n;
  "env.stvec" = 0n;
  "env.sepc" = 0n;
  "env.scause" = 0n;
  "env.mtvec" = 0n;
  "env.mepc" = 0n;
  "env.mcause" = 0n;
  "env.mtval" = 0n;
  "env.miselect" = 0n;
  "env.siselect" = 0n;
  "env.scounteren" = 0n;
  "env.mcounteren" = 0n;
  "env.mcountinhibit" = 0n;
  "env.pmu_ctrs": PmuCounterState[] = Array.from({ length: 32 }, () => ({
    mhpmcounter_val: 0n,
    mhpmcounterh_val: 0n,
    mhpmcounter_prev: 0n,
    mhpmcounterh_prev: 0n,
    started: false,
  }));
  "env.mhpmevent_val": BigUint64Array = new BigUint64Array(32);
  "env.mhpmeventh_val": BigUint64Array = new BigUint64Array(32);
  "env.sscratch" = 0n;
  "env.mscratch" = 0n;
  "env.mfromhost" = 0n;
  "env.mtohost" = 0n;
  "env.stimecmp" = 0n;
  // cpu/pmp
  "env.pmp_state.pmp": PmpEntryState[] = Array.from({ length: 16 }, () => ({ addr_reg: 0n, cfg_reg: 0 }));
  // cpu/envcfg
  "env.menvcfg" = 0n;
  "env.senvcfg" = 0n;
  "env.henvcfg" = 0n;
  // cpu/ferryvm
  mip_sw = 0n;
  mcycle = 0n;
  minstret = 0n;
  stimer_armed = 0;
  /** Set while loading when the stream carried `cpu/ferryvm`. */
  ferryvmLoaded = false;
  // cpu/isa_ext: the non-misa extensions that are on, as a str8 list
  isa_ext_count = 0;
  isa_ext_len = 0;
  isa_ext_names: Uint8Array = new Uint8Array(0);
  /** Set while loading when the stream carried `cpu/isa_ext`. */
  isaExtLoaded = false;
  /** Whether `cpu/isa_ext` is sent (HartStateOptions.migrateIsaExt). */
  readonly migrateIsaExt: boolean;

  readonly #cpu: Cpu;

  constructor(cpu: Cpu, index: number, options: HartStateOptions = {}) {
    this.#cpu = cpu;
    this.index = index;
    this.migrateIsaExt = options.migrateIsaExt ?? true;
  }

  /** The local hart's extensions. */
  get isa(): CpuIsa {
    return this.#cpu.isa(this.index);
  }

  #view(): DataView {
    const h = this.#cpu.hart(this.index);
    return new DataView(this.#cpu.memory.buffer, h.base, 0x1000);
  }

  /** The hart's effective mip (stored bits, device lines, MTIP from mtimecmp), without side effects. */
  #effectiveMip(v: DataView): bigint {
    let mip = v.getBigUint64(H_MIP, true) | BigInt(this.#cpu.hart(this.index).mipExternal);
    if (this.#cpu.mtime >= v.getBigUint64(H_MTIMECMP, true)) mip |= MIP_MTIP;
    return mip;
  }

  /** Copies the hart block into the members (the `cpu_common` section's pre_save). */
  capture(): void {
    const v = this.#view();
    for (let i = 0; i < 32; i++) {
      this["env.gpr"][i] = v.getBigUint64(H_X + 8 * i, true);
      this["env.fpr"][i] = v.getBigUint64(H_F + 8 * i, true);
    }
    this["env.pc"] = v.getBigUint64(H_PC, true);
    this["env.priv"] = BigInt(v.getUint32(H_PRIV, true));
    const valid = v.getUint32(H_LR_VALID, true) !== 0;
    this["env.load_res"] = valid ? v.getBigUint64(H_LR_ADDR, true) : NO_RESERVATION;
    this["env.load_val"] = valid ? v.getBigUint64(H_LR_VALUE, true) : 0n;
    const misa = v.getBigUint64(H_MISA, true);
    this["env.misa_ext"] = Number(misa & 0x3ff_ffffn);
    this["env.misa_ext_mask"] = this["env.misa_ext"];
    const isa = this.isa;
    this["env.features"] = (isa.mmu ? FEATURE_MMU : 0) | (isa.pmp ? FEATURE_PMP : 0);
    const ext = CPU_ISA_EXT_NAMES.filter((n) => isa[n]);
    this.isa_ext_names = str8List(ext);
    this.isa_ext_count = ext.length;
    this.isa_ext_len = this.isa_ext_names.length;
    for (const [key, off] of Object.entries(CSR_OFFSETS) as [U64Key, number][]) this[key] = v.getBigUint64(off, true);
    const mip = this.#effectiveMip(v);
    this["env.mip"] = mip;
    for (let i = 0; i < 32; i++) {
      const c = this["env.pmu_ctrs"][i]!;
      c.mhpmcounter_val = i >= 3 && i < 3 + HPM_COUNTERS ? v.getBigUint64(H_MHPMCOUNTER + 8 * (i - 3), true) : 0n;
      this["env.mhpmevent_val"][i] = i >= 3 ? v.getBigUint64(H_MHPMEVENT + 8 * (i - 3), true) : 0n;
    }
    const cfg0 = v.getBigUint64(H_PMPCFG0, true);
    const cfg2 = v.getBigUint64(H_PMPCFG2, true);
    for (let i = 0; i < 16; i++) {
      const e = this["env.pmp_state.pmp"][i]!;
      e.addr_reg = v.getBigUint64(H_PMPADDR + 8 * i, true);
      e.cfg_reg = Number(((i < 8 ? cfg0 : cfg2) >> BigInt(8 * (i & 7))) & 0xffn);
    }
    this.halted = v.getUint32(H_WFI, true);
    // CPU_INTERRUPT_HARD while any interrupt is pending in mip (QEMU's riscv_cpu_update_mip).
    this.interrupt_request = mip !== 0n ? 2 : 0;
    this.mip_sw = v.getBigUint64(H_MIP, true);
    this.mcycle = v.getBigUint64(H_MCYCLE, true);
    this.minstret = v.getBigUint64(H_MINSTRET, true);
    this.stimer_armed = v.getUint32(H_STIMER_ARMED, true);
  }

  /** Checks what this hart cannot take (another ISA), naming the field. */
  validate(): void {
    const v = this.#view();
    const misa = Number(v.getBigUint64(H_MISA, true) & 0x3ff_ffffn);
    const check = (name: string, got: number | bigint, want: number | bigint): void => {
      if (got !== want) {
        throw new MigrationError(
          `vmstate: cpu/${name}: loaded value 0x${got.toString(16)} != local value 0x${want.toString(16)} (hart ${this.index})`,
        );
      }
    };
    check("env.misa_mxl", this["env.misa_mxl"], MXL_RV64);
    this.#checkFeatures(misa);
    check("env.mhartid", this["env.mhartid"], BigInt(this.index));
    const priv = this["env.priv"];
    if (priv !== 0n && priv !== 1n && priv !== 3n) check("env.priv", priv, 3n);
    check("env.virt", this["env.virt"], 0n);
  }

  /**
   * The stream's CPU must have exactly this hart's extensions: misa letters, QEMU's MMU/PMP
   * feature bits and, when `cpu/isa_ext` arrived, its names. A feature the destination lacks
   * fails, naming it. So does one the stream lacks: the guest has probed misa and the device
   * tree's ISA string and runs code chosen for the smaller set; giving it more would change
   * what traps (a mul no longer emulated, an alignment fault no longer raised) and what misa
   * reads behind its back, and the next hop back would carry the larger set. QEMU would
   * accept that direction; two hosts agree instead by starting both with the intersection.
   */
  #checkFeatures(misa: number): void {
    const hart = `cpu: hart ${this.index}`;
    const known = (name: string): boolean => (CPU_ISA_PROPERTIES as readonly string[]).includes(name);
    const has = (name: string): string =>
      known(name)
        ? `${hart}: the stream's CPU has extension '${name}', which this CPU lacks (it runs with ${name}=off)`
        : `${hart}: the stream's CPU has extension '${name}', which this CPU does not implement`;
    const lacks = (name: string): string =>
      `${hart}: the stream's CPU lacks extension '${name}', which this CPU has (start it with ${name}=off)`;
    const streamMisa = this["env.misa_ext"] & MISA_LETTERS;
    for (let bit = 0; bit < 26; bit++) {
      const name = String.fromCharCode(97 + bit);
      const s = (streamMisa >> bit) & 1;
      const l = (misa >> bit) & 1;
      if (s && !l) throw new MigrationError(has(name));
      if (!s && l) throw new MigrationError(lacks(name));
    }
    const features = this["env.features"];
    for (const [name, bit] of [["mmu", FEATURE_MMU], ["pmp", FEATURE_PMP]] as const) {
      const s = (features & bit) !== 0;
      const l = this.isa[name];
      if (s && !l) throw new MigrationError(has(name));
      if (!s && l) throw new MigrationError(lacks(name));
    }
    // Without the subsection (virt-1.0, an older release) only misa and env.features are known.
    if (!this.isaExtLoaded) return;
    const names = parseStr8List(this.isa_ext_names.subarray(0, this.isa_ext_len), this.isa_ext_count, this.index);
    const isa = this.isa;
    for (const name of names) {
      if (!(CPU_ISA_EXT_NAMES as readonly string[]).includes(name) || !isa[name as keyof CpuIsa]) {
        throw new MigrationError(has(name));
      }
    }
    for (const name of CPU_ISA_EXT_NAMES) {
      if (isa[name] && !names.includes(name)) throw new MigrationError(lacks(name));
    }
  }

  /**
   * Writes the members into the hart block (the `cpu` section's post_load): architectural
   * state, the raw mip bits, MSIP (the CLINT keeps it in mip, as QEMU), then drops the TLBs.
   * The PLIC's post_load recomputes MEIP/SEIP and the mtimer's mtimecmp.
   */
  restore(ferryvm: boolean): void {
    this.validate();
    const v = this.#view();
    for (let i = 0; i < 32; i++) {
      v.setBigUint64(H_X + 8 * i, i === 0 ? 0n : this["env.gpr"][i]!, true);
      v.setBigUint64(H_F + 8 * i, this["env.fpr"][i]!, true);
    }
    v.setBigUint64(H_PC, this["env.pc"], true);
    v.setUint32(H_PRIV, Number(this["env.priv"]), true);
    const res = this["env.load_res"];
    v.setUint32(H_LR_VALID, res === NO_RESERVATION ? 0 : 1, true);
    v.setBigUint64(H_LR_ADDR, res === NO_RESERVATION ? 0n : res, true);
    v.setBigUint64(H_LR_VALUE, res === NO_RESERVATION ? 0n : this["env.load_val"], true);
    for (const [key, off] of Object.entries(CSR_OFFSETS) as [U64Key, number][]) v.setBigUint64(off, this[key], true);
    for (let i = 3; i < 32; i++) {
      if (i < 3 + HPM_COUNTERS) v.setBigUint64(H_MHPMCOUNTER + 8 * (i - 3), this["env.pmu_ctrs"][i]!.mhpmcounter_val, true);
      v.setBigUint64(H_MHPMEVENT + 8 * (i - 3), this["env.mhpmevent_val"][i]!, true);
    }
    let cfg0 = 0n;
    let cfg2 = 0n;
    for (let i = 0; i < 16; i++) {
      const e = this["env.pmp_state.pmp"][i]!;
      v.setBigUint64(H_PMPADDR + 8 * i, e.addr_reg, true);
      const b = BigInt(e.cfg_reg & 0xff) << BigInt(8 * (i & 7));
      if (i < 8) cfg0 |= b;
      else cfg2 |= b;
    }
    v.setBigUint64(H_PMPCFG0, cfg0, true);
    v.setBigUint64(H_PMPCFG2, cfg2, true);
    const mip = this["env.mip"];
    // Without our subsection (a QEMU stream), software-visible bits are what mip held less the device lines.
    v.setBigUint64(H_MIP, ferryvm ? this.mip_sw : mip & ~(MIP_MSIP | MIP_MTIP | MIP_MEIP | MIP_SEIP), true);
    if (ferryvm) {
      v.setBigUint64(H_MCYCLE, this.mcycle, true);
      v.setBigUint64(H_MINSTRET, this.minstret, true);
      v.setUint32(H_STIMER_ARMED, this.stimer_armed, true);
    } else {
      // QEMU 7.2 does not migrate its stimer: an stimecmp still ahead re-arms it (Sstc semantics).
      v.setUint32(H_STIMER_ARMED, this.isa.sstc && this["env.stimecmp"] > this.#cpu.mtime ? 1 : 0, true);
    }
    const hart = this.#cpu.hart(this.index);
    hart.mipExternal = (hart.mipExternal & ~Number(MIP_MSIP)) | Number(mip & MIP_MSIP);
    hart.wfi = this.halted !== 0;
    hart.stopRequest = false;
    this.#cpu.tlbFlush(this.index);
  }
}

const u64 = (k: U64Key): VMStateField<HartState> => vmstateUint64<HartState>(k);
const u32 = (k: U32Key): VMStateField<HartState> => vmstateUint32<HartState>(k);

const vmstateCpuCommonExceptionIndex: VMStateDescription<HartState> = {
  name: "cpu_common/exception_index",
  version_id: 1,
  minimum_version_id: 1,
  needed: (s) => s.exception_index !== -1,
  fields: [vmstateInt32("exception_index")],
};

const vmstateCpuCommonCrashOccurred: VMStateDescription<HartState> = {
  name: "cpu_common/crash_occurred",
  version_id: 1,
  minimum_version_id: 1,
  needed: (s) => s.crash_occurred,
  fields: [vmstateBool("crash_occurred")],
};

/** QEMU's `cpu_common` (v1): halted (our WFI flag) and interrupt_request. Saved before `cpu`. */
export const vmstateCpuCommon: VMStateDescription<HartState> = {
  name: "cpu_common",
  version_id: 1,
  minimum_version_id: 1,
  pre_save: (s) => s.capture(),
  pre_load: (s) => {
    s.exception_index = -1;
    s.crash_occurred = false;
  },
  fields: [vmstateUint32("halted"), vmstateUint32("interrupt_request")],
  subsections: [vmstateCpuCommonExceptionIndex, vmstateCpuCommonCrashOccurred],
};

const vmstatePmuCounter: VMStateDescription<PmuCounterState> = {
  name: "cpu/pmu",
  version_id: 1,
  minimum_version_id: 1,
  fields: [
    vmstateUint64("mhpmcounter_val"),
    vmstateUint64("mhpmcounterh_val"),
    vmstateUint64("mhpmcounter_prev"),
    vmstateUint64("mhpmcounterh_prev"),
    vmstateBool("started"),
  ],
};

const vmstatePmpEntry: VMStateDescription<PmpEntryState> = {
  name: "cpu/pmp/entry",
  version_id: 1,
  minimum_version_id: 1,
  fields: [vmstateUint64("addr_reg"), vmstateUint8("cfg_reg")],
};

const vmstatePmp: VMStateDescription<HartState> = {
  name: "cpu/pmp",
  version_id: 1,
  minimum_version_id: 1,
  // riscv_feature(env, RISCV_FEATURE_PMP): every hart here has PMP.
  needed: (s) => (s["env.features"] & 2) !== 0,
  fields: [vmstateStructArray<HartState, "env.pmp_state.pmp">("env.pmp_state.pmp", 16, vmstatePmpEntry)],
};

const vmstateEnvcfg: VMStateDescription<HartState> = {
  name: "cpu/envcfg",
  version_id: 1,
  minimum_version_id: 1,
  needed: (s) => s["env.priv_ver"] >= PRIV_VERSION_1_12_0,
  fields: [u64("env.menvcfg"), u64("env.senvcfg"), u64("env.henvcfg")],
};

/**
 * FerryVM's own hart state: software-written mip bits (QEMU's env.mip mixes them with device
 * lines), mcycle/minstret (QEMU derives them from its clocks), the armed Sstc timer (QEMU 7.2
 * does not migrate its stimer). A QEMU stream lacks it; a restore then derives these.
 */
const vmstateCpuFerryvm: VMStateDescription<HartState> = {
  name: "cpu/ferryvm",
  version_id: 1,
  minimum_version_id: 1,
  needed: (s) => s.minstret !== 0n || s.mcycle !== 0n || s.stimer_armed !== 0 || s.mip_sw !== 0n,
  fields: [vmstateUint64("mip_sw"), vmstateUint64("mcycle"), vmstateUint64("minstret"), vmstateUint32("stimer_armed")],
};

/**
 * FerryVM's list of the hart's guest-visible extensions that misa does not show (zicsr,
 * zifencei, sstc, mmu, pmp), by name: a count and `isa_ext_len` bytes of str8 names, so a
 * later release can add names and an older one reject them by name. Sent while the machine
 * type allows it (HartStateOptions.migrateIsaExt; not virt-1.0), whatever the set, so a
 * destination always learns it; a stream without it is checked on misa and env.features only.
 */
const vmstateCpuIsaExt: VMStateDescription<HartState> = {
  name: "cpu/isa_ext",
  version_id: 1,
  minimum_version_id: 1,
  needed: (s) => s.migrateIsaExt,
  fields: [
    vmstateUint8("isa_ext_count"),
    vmstateUint16("isa_ext_len"),
    vmstateVBuffer<HartState>("isa_ext_names", "isa_ext_len", { alloc: { max: ISA_EXT_MAX_BYTES } }),
  ],
};

/** QEMU 7.2's riscv `cpu` (v5) with the subsections a hart like ours needs. */
export const vmstateRiscvCpu: VMStateDescription<HartState> = {
  name: "cpu",
  version_id: 5,
  minimum_version_id: 5,
  pre_save: (s) => s.capture(),
  pre_load: (s) => {
    s.ferryvmLoaded = false;
    s.mip_sw = 0n;
    s.mcycle = 0n;
    s.minstret = 0n;
    s.stimer_armed = 0;
    s.isaExtLoaded = false;
  },
  post_load: (s) => s.restore(s.ferryvmLoaded),
  fields: [
    vmstateUint64Array<HartState>("env.gpr", 32),
    vmstateUint64Array<HartState>("env.fpr", 32),
    vmstateUint8Array<HartState>("env.miprio", 64),
    vmstateUint8Array<HartState>("env.siprio", 64),
    ...U64_FIELDS.map(u64),
    ...U32_FIELDS.map(u32),
    ...CSR_FIELDS.map(u64),
    vmstateStructArray<HartState, "env.pmu_ctrs">("env.pmu_ctrs", 32, vmstatePmuCounter),
    vmstateUint64Array<HartState>("env.mhpmevent_val", 32),
    vmstateUint64Array<HartState>("env.mhpmeventh_val", 32),
    ...TAIL_FIELDS.map(u64),
  ],
  subsections: [
    vmstatePmp,
    vmstateEnvcfg,
    {
      ...vmstateCpuFerryvm,
      post_load: (s) => {
        s.ferryvmLoaded = true;
      },
    },
    {
      ...vmstateCpuIsaExt,
      post_load: (s) => {
        s.isaExtLoaded = true;
      },
    },
  ],
};
