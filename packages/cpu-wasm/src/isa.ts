/**
 * The CPU model's extension properties (QEMU's `-cpu rv64,c=off,m=off,...`): which parts of
 * RV64IMAC + Zicsr + Zifencei + Sstc + MMU + PMP a hart has. A hart without an extension
 * behaves as QEMU 7.2 does with the property off; misa says so.
 *
 * @module
 */

import {
  ISA_OFF_A,
  ISA_OFF_C,
  ISA_OFF_M,
  ISA_OFF_MMU,
  ISA_OFF_PMP,
  ISA_OFF_S,
  ISA_OFF_SSTC,
  ISA_OFF_U,
  ISA_OFF_ZICSR,
  ISA_OFF_ZIFENCEI,
} from "./layout.ts";

/** The extensions of one hart; `true` = present. QEMU's property of the same name. */
export interface CpuIsa {
  /** Integer multiply and divide (misa.M). */
  m: boolean;
  /** Atomics: LR/SC and AMOs (misa.A). */
  a: boolean;
  /** Compressed instructions (misa.C); off: IALIGN = 32. */
  c: boolean;
  /** Supervisor mode (misa.S). Only `true` is supported. */
  s: boolean;
  /** User mode (misa.U). Only `true` is supported (S needs it). */
  u: boolean;
  /** fence.i. */
  zifencei: boolean;
  /** The CSR instructions. */
  zicsr: boolean;
  /** Supervisor timer compare (stimecmp). */
  sstc: boolean;
  /** Address translation (satp; QEMU's `mmu`). Off: satp reads 0 and ignores writes. */
  mmu: boolean;
  /** Physical memory protection (pmpcfg/pmpaddr; QEMU's `pmp`). */
  pmp: boolean;
}

export type CpuIsaProperty = keyof CpuIsa;

/** Every property, in the order QEMU 7.2's riscv_cpu_properties lists them. */
export const CPU_ISA_PROPERTIES: readonly CpuIsaProperty[] = Object.freeze([
  "m", "a", "c", "s", "u", "zifencei", "zicsr", "mmu", "pmp", "sstc",
] as const);

/** The properties that are misa letters. */
export const CPU_ISA_MISA_LETTERS: readonly ("m" | "a" | "c" | "s" | "u")[] = Object.freeze(["m", "a", "c", "s", "u"] as const);

/**
 * The properties a guest can observe that misa does not show (CSR and instruction sets,
 * satp's modes, the PMP CSRs): what the migration stream's `cpu/isa_ext` subsection lists.
 */
export const CPU_ISA_EXT_NAMES: readonly ("zicsr" | "zifencei" | "sstc" | "mmu" | "pmp")[] = Object.freeze([
  "zicsr", "zifencei", "sstc", "mmu", "pmp",
] as const);

/** Today's full CPU (every property on), the default of every hart. */
export const DEFAULT_CPU_ISA: Readonly<CpuIsa> = Object.freeze({
  m: true, a: true, c: true, s: true, u: true, zifencei: true, zicsr: true, sstc: true, mmu: true, pmp: true,
});

const OFF_BITS: Readonly<Record<CpuIsaProperty, number>> = {
  m: ISA_OFF_M,
  a: ISA_OFF_A,
  c: ISA_OFF_C,
  s: ISA_OFF_S,
  u: ISA_OFF_U,
  zifencei: ISA_OFF_ZIFENCEI,
  zicsr: ISA_OFF_ZICSR,
  sstc: ISA_OFF_SSTC,
  mmu: ISA_OFF_MMU,
  pmp: ISA_OFF_PMP,
};

const MISA_BITS: Readonly<Record<"m" | "a" | "c" | "s" | "u", bigint>> = {
  m: 1n << 12n,
  a: 1n << 0n,
  c: 1n << 2n,
  s: 1n << 18n,
  u: 1n << 20n,
};
const MISA_MXL_64 = 2n << 62n;
const MISA_I = 1n << 8n;

/** The error of an impossible configuration; the message names the property. */
export class CpuIsaError extends RangeError {
  override name = "CpuIsaError";
}

/**
 * Checks a configuration as QEMU 7.2's realize does, plus what this interpreter does not
 * support; throws CpuIsaError naming the property.
 *
 * - `s=on` needs `u=on` (QEMU: "Setting S extension without U extension is illegal").
 * - `s=off` is not supported (nor, therefore, `u=off`): an M-only hart would need mstatus.MPP,
 *   medeleg/mideleg and the S CSRs legalised as QEMU does; not done.
 * - `zicsr=off` needs `sstc=off`, `pmp=off` and `mmu=off`: those are reached only through CSRs
 *   (stimecmp, pmpcfg/pmpaddr, satp), so keeping them on would claim what the guest can never
 *   use. (QEMU 7.2 checks only F against Zicsr; it has no F here.)
 */
export function validateCpuIsa(isa: CpuIsa): void {
  for (const p of CPU_ISA_PROPERTIES) {
    if (typeof isa[p] !== "boolean") throw new CpuIsaError(`cpu: property '${p}' must be on or off`);
  }
  if (isa.s && !isa.u) throw new CpuIsaError("cpu: Setting S extension without U extension is illegal (s=on needs u=on)");
  if (!isa.s) throw new CpuIsaError("cpu: s=off is not supported");
  if (!isa.zicsr) {
    for (const p of ["sstc", "pmp", "mmu"] as const) {
      if (isa[p]) throw new CpuIsaError(`cpu: ${p}=on requires zicsr=on (turn ${p} off too)`);
    }
  }
}

/** DEFAULT_CPU_ISA with `changes` applied, validated. */
export function cpuIsa(changes: Partial<CpuIsa> = {}): CpuIsa {
  for (const k of Object.keys(changes)) {
    if (!(CPU_ISA_PROPERTIES as readonly string[]).includes(k)) throw new CpuIsaError(`cpu: unknown property '${k}'`);
  }
  const isa: CpuIsa = { ...DEFAULT_CPU_ISA, ...changes };
  validateCpuIsa(isa);
  return isa;
}

/**
 * Applies QEMU-style property settings (`"c=off,m=off"`, or the list split already) to
 * `base`. Names are case-insensitive (QEMU 7.2 spells `Zicsr`, `Zifencei`); values are
 * on/off/true/false/yes/no. The result is validated.
 */
export function parseCpuIsaProperties(props: string | readonly string[], base: CpuIsa = DEFAULT_CPU_ISA): CpuIsa {
  const list = typeof props === "string" ? props.split(",").filter((s) => s !== "") : props;
  const isa: CpuIsa = { ...base };
  for (const item of list) {
    const eq = item.indexOf("=");
    const name = (eq < 0 ? item : item.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? "on" : item.slice(eq + 1).toLowerCase();
    if (!(CPU_ISA_PROPERTIES as readonly string[]).includes(name)) throw new CpuIsaError(`cpu: unknown property '${name}'`);
    let on: boolean;
    if (value === "on" || value === "true" || value === "yes") on = true;
    else if (value === "off" || value === "false" || value === "no") on = false;
    else throw new CpuIsaError(`cpu: property '${name}' must be on or off, not '${value}'`);
    isa[name as CpuIsaProperty] = on;
  }
  validateCpuIsa(isa);
  return isa;
}

/** The hart layout's H_ISA_OFF bits for `isa` (0 = everything on). */
export function isaOffBits(isa: CpuIsa): number {
  let off = 0;
  for (const p of CPU_ISA_PROPERTIES) if (!isa[p]) off |= OFF_BITS[p];
  return off;
}

/** The configuration H_ISA_OFF bits describe. */
export function isaFromOffBits(off: number): CpuIsa {
  const isa = { ...DEFAULT_CPU_ISA };
  for (const p of CPU_ISA_PROPERTIES) isa[p] = (off & OFF_BITS[p]) === 0;
  return isa;
}

/** misa of a hart with `isa`: MXL = 64, I, and M A C S U as enabled. */
export function misaForIsa(isa: CpuIsa): bigint {
  let misa = MISA_MXL_64 | MISA_I;
  for (const l of CPU_ISA_MISA_LETTERS) if (isa[l]) misa |= MISA_BITS[l];
  return misa;
}

/**
 * The ISA string QEMU 7.2's riscv_isa_string builds (the device tree's `riscv,isa`): `rv64`,
 * the single letters in "IEMAFDQCPVH" order (S and U are not listed), then `_name` for each
 * multi-letter extension in isa_edata_arr order: zicsr, zifencei, zihintpause (always: pause
 * is a fence hint every hart executes), sstc. `mmu` and `pmp` are not ISA extensions.
 */
export function isaString(isa: CpuIsa): string {
  let s = "rv64i";
  if (isa.m) s += "m";
  if (isa.a) s += "a";
  if (isa.c) s += "c";
  if (isa.zicsr) s += "_zicsr";
  if (isa.zifencei) s += "_zifencei";
  s += "_zihintpause";
  if (isa.sstc) s += "_sstc";
  return s;
}

/** `c=off,m=off` for the properties of `isa` that differ from the default ("" when none). */
export function formatCpuIsaProperties(isa: CpuIsa): string {
  return CPU_ISA_PROPERTIES.filter((p) => isa[p] !== DEFAULT_CPU_ISA[p])
    .map((p) => `${p}=${isa[p] ? "on" : "off"}`)
    .join(",");
}
