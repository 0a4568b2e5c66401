/**
 * The VMStateInfo of each basic type (QEMU's migration/vmstate-types.c and the timer of
 * migration/savevm.c). All integers are big-endian; 64-bit values are `bigint`.
 *
 * @module
 */

import type { VMStateInfo } from "./description.ts";
import type { VMStateInput, VMStateOutput } from "./stream.ts";

/**
 * A timer as the state sees it (QEMU's QEMUTimer): on the wire, be64 absolute expiry in ns on
 * the timer's clock, -1 (all ones) when it is not armed.
 */
export interface VMStateTimer {
  /** Expiry in ns, or -1n when not armed (`timer_expire_time_ns`). */
  expireTime(): bigint;
  /** Arms the timer to expire at `ns` (`timer_mod_ns`). */
  modNs(ns: bigint): void;
  /** Disarms the timer (`timer_del`). */
  del(): void;
}

function checkInt(value: number, min: number, max: number, type: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`value ${String(value)} does not fit ${type}`);
  }
  return value;
}

function checkBigInt(value: bigint, signed: boolean, type: string): bigint {
  if (typeof value !== "bigint" || (signed ? BigInt.asIntN(64, value) : BigInt.asUintN(64, value)) !== value) {
    throw new RangeError(`value ${String(value)} does not fit ${type}`);
  }
  return value;
}

function intInfo(name: string, size: 1 | 2 | 4, signed: boolean): VMStateInfo<number> {
  const bits = size * 8;
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const shift = 32 - bits;
  const put = size === 1
    ? (out: VMStateOutput, v: number) => out.putU8(checkInt(v, min, max, name) & 0xff)
    : size === 2
    ? (out: VMStateOutput, v: number) => out.putBe16(checkInt(v, min, max, name) & 0xffff)
    : (out: VMStateOutput, v: number) => out.putBe32(checkInt(v, min, max, name) >>> 0);
  const raw = size === 1
    ? (input: VMStateInput) => input.getU8()
    : size === 2
    ? (input: VMStateInput) => input.getBe16()
    : (input: VMStateInput) => input.getBe32();
  const get = signed ? (input: VMStateInput) => (raw(input) << shift) >> shift : raw;
  return { name, size, put, get };
}

function equalInfo<V extends number | bigint>(name: string, base: VMStateInfo<V>): VMStateInfo<V> {
  return {
    name,
    size: base.size,
    put: base.put,
    get(input, current) {
      const loaded = base.get(input, current);
      if (loaded !== current) {
        throw new Error(`loaded value ${loaded} != local value ${current} (${name})`);
      }
      return current;
    },
  };
}

export const vmstateInfoBool: VMStateInfo<boolean> = {
  name: "bool",
  size: 1,
  put(out, v) {
    if (typeof v !== "boolean") throw new TypeError(`value ${String(v)} is not a bool`);
    out.putU8(v ? 1 : 0);
  },
  get: (input) => input.getU8() !== 0,
};

export const vmstateInfoInt8: VMStateInfo<number> = intInfo("int8", 1, true);
export const vmstateInfoInt16: VMStateInfo<number> = intInfo("int16", 2, true);
export const vmstateInfoInt32: VMStateInfo<number> = intInfo("int32", 4, true);
export const vmstateInfoUint8: VMStateInfo<number> = intInfo("uint8", 1, false);
export const vmstateInfoUint16: VMStateInfo<number> = intInfo("uint16", 2, false);
export const vmstateInfoUint32: VMStateInfo<number> = intInfo("uint32", 4, false);

export const vmstateInfoInt64: VMStateInfo<bigint> = {
  name: "int64",
  size: 8,
  put: (out, v) => out.putBe64(checkBigInt(v, true, "int64")),
  get: (input) => BigInt.asIntN(64, input.getBe64()),
};

export const vmstateInfoUint64: VMStateInfo<bigint> = {
  name: "uint64",
  size: 8,
  put: (out, v) => out.putBe64(checkBigInt(v, false, "uint64")),
  get: (input) => input.getBe64(),
};

export const vmstateInfoUint8Equal: VMStateInfo<number> = equalInfo("uint8 equal", vmstateInfoUint8);
export const vmstateInfoUint16Equal: VMStateInfo<number> = equalInfo("uint16 equal", vmstateInfoUint16);
export const vmstateInfoInt32Equal: VMStateInfo<number> = equalInfo("int32 equal", vmstateInfoInt32);
export const vmstateInfoUint32Equal: VMStateInfo<number> = equalInfo("uint32 equal", vmstateInfoUint32);
/** QEMU names the uint64 check "int64 equal" (vmstate_info_uint64_equal). */
export const vmstateInfoUint64Equal: VMStateInfo<bigint> = equalInfo("int64 equal", vmstateInfoUint64);

/** be32 with 0 ≤ loaded ≤ local; the loaded value is stored (VMSTATE_INT32_POSITIVE_LE). */
export const vmstateInfoInt32Le: VMStateInfo<number> = {
  name: "int32 le",
  size: 4,
  put: vmstateInfoInt32.put,
  get(input, current) {
    const loaded = input.getBe32() | 0;
    if (loaded < 0 || loaded > current) {
      throw new Error(`invalid value ${loaded}, expecting 0 <= value <= ${current} (int32 le)`);
    }
    return loaded;
  },
};

export const vmstateInfoTimer: VMStateInfo<VMStateTimer> = {
  name: "timer",
  size: 8,
  put: (out, timer) => out.putBe64(BigInt.asUintN(64, checkBigInt(timer.expireTime(), true, "timer"))),
  get(input, timer) {
    const expire = BigInt.asIntN(64, input.getBe64());
    if (expire === -1n) timer.del();
    else timer.modNs(expire);
    return timer;
  },
};
