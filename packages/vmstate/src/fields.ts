/**
 * Field builders, named after QEMU's VMSTATE_* macros: `vmstateUint32("divider")` is
 * `VMSTATE_UINT32(divider, S)`. A field's name is the member of the state object it reads
 * and writes, and QEMU's field name on the wire description (vmdesc).
 *
 * Type checking: inside a `VMStateDescription<S>`, `vmstateUint32("x")` only accepts a
 * member of `S` that is a `number`; 64-bit fields are `bigint`; arrays are plain or typed
 * arrays; buffers are `Uint8Array`.
 *
 * @module
 */

import type {
  AnyVMStateDescription,
  ArrayOf,
  FieldExists,
  FieldLayout,
  KeysOfType,
  VMStateDescription,
  VMStateField,
  VMStateInfo,
} from "./description.ts";
import {
  vmstateInfoBool,
  vmstateInfoInt16,
  vmstateInfoInt32,
  vmstateInfoInt32Equal,
  vmstateInfoInt32Le,
  vmstateInfoInt64,
  vmstateInfoInt8,
  vmstateInfoTimer,
  vmstateInfoUint16,
  vmstateInfoUint16Equal,
  vmstateInfoUint32,
  vmstateInfoUint32Equal,
  vmstateInfoUint64,
  vmstateInfoUint64Equal,
  vmstateInfoUint8,
  vmstateInfoUint8Equal,
  type VMStateTimer,
} from "./info.ts";

/** When a field is in the stream: from stream `version` on, or where `test` holds. */
export interface FieldOptions<T> {
  /** QEMU's field name when it is not the member's (`"env.gpr"` for member `gpr`). */
  name?: string;
  /** `_V`: the field exists in streams of this version and later (default 0). */
  version?: number;
  /** `_TEST`: the field exists where this holds (overrides `version`). */
  test?: FieldExists<T>;
}

function field<T>(
  key: string,
  layout: FieldLayout,
  options: FieldOptions<T> & { errHint?: string } = {},
): VMStateField<T> {
  const name = options.name ?? key;
  const version = options.version ?? 0;
  if (!Number.isInteger(version) || version < 0) throw new RangeError(`vmstate field ${name}: bad version ${version}`);
  return {
    name,
    version_id: version,
    ...(options.test === undefined ? {} : { field_exists: options.test }),
    ...(options.errHint === undefined ? {} : { err_hint: options.errHint }),
    layout,
  };
}

function checkCount(name: string, n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`vmstate field ${name}: bad ${what} ${n}`);
  return n;
}

/** A single value of a custom (or basic) info (`VMSTATE_SINGLE`). */
export function vmstateSingle<T, V>(
  name: KeysOfType<T, V>,
  info: VMStateInfo<V>,
  options?: FieldOptions<T>,
): VMStateField<T> {
  return field(name, { kind: "single", key: name, info: info as VMStateInfo<unknown> }, options);
}

type Single<V> = <T>(name: KeysOfType<T, V>, options?: FieldOptions<T>) => VMStateField<T>;
type SingleV<V> = <T>(name: KeysOfType<T, V>, version: number) => VMStateField<T>;
type SingleTest<V> = <T>(name: KeysOfType<T, V>, test: FieldExists<T>) => VMStateField<T>;

function single<V>(info: VMStateInfo<V>): Single<V> {
  return (name, options) => vmstateSingle(name, info, options);
}
function singleV<V>(info: VMStateInfo<V>): SingleV<V> {
  return (name, version) => vmstateSingle(name, info, { version });
}
function singleTest<V>(info: VMStateInfo<V>): SingleTest<V> {
  return (name, test) => vmstateSingle(name, info, { test });
}

/** bool: one byte, 0 or 1 (any non-zero byte loads as true). */
export const vmstateBool: Single<boolean> = single(vmstateInfoBool);
export const vmstateInt8: Single<number> = single(vmstateInfoInt8);
export const vmstateInt16: Single<number> = single(vmstateInfoInt16);
export const vmstateInt32: Single<number> = single(vmstateInfoInt32);
export const vmstateInt64: Single<bigint> = single(vmstateInfoInt64);
export const vmstateUint8: Single<number> = single(vmstateInfoUint8);
export const vmstateUint16: Single<number> = single(vmstateInfoUint16);
export const vmstateUint32: Single<number> = single(vmstateInfoUint32);
export const vmstateUint64: Single<bigint> = single(vmstateInfoUint64);
/** A QEMUTimer: be64 expiry, -1 when not armed. */
export const vmstateTimer: Single<VMStateTimer> = single(vmstateInfoTimer);

export const vmstateBoolV: SingleV<boolean> = singleV(vmstateInfoBool);
export const vmstateInt8V: SingleV<number> = singleV(vmstateInfoInt8);
export const vmstateInt16V: SingleV<number> = singleV(vmstateInfoInt16);
export const vmstateInt32V: SingleV<number> = singleV(vmstateInfoInt32);
export const vmstateInt64V: SingleV<bigint> = singleV(vmstateInfoInt64);
export const vmstateUint8V: SingleV<number> = singleV(vmstateInfoUint8);
export const vmstateUint16V: SingleV<number> = singleV(vmstateInfoUint16);
export const vmstateUint32V: SingleV<number> = singleV(vmstateInfoUint32);
export const vmstateUint64V: SingleV<bigint> = singleV(vmstateInfoUint64);
export const vmstateTimerV: SingleV<VMStateTimer> = singleV(vmstateInfoTimer);

export const vmstateBoolTest: SingleTest<boolean> = singleTest(vmstateInfoBool);
export const vmstateInt8Test: SingleTest<number> = singleTest(vmstateInfoInt8);
export const vmstateInt16Test: SingleTest<number> = singleTest(vmstateInfoInt16);
export const vmstateInt32Test: SingleTest<number> = singleTest(vmstateInfoInt32);
export const vmstateInt64Test: SingleTest<bigint> = singleTest(vmstateInfoInt64);
export const vmstateUint8Test: SingleTest<number> = singleTest(vmstateInfoUint8);
export const vmstateUint16Test: SingleTest<number> = singleTest(vmstateInfoUint16);
export const vmstateUint32Test: SingleTest<number> = singleTest(vmstateInfoUint32);
export const vmstateUint64Test: SingleTest<bigint> = singleTest(vmstateInfoUint64);
export const vmstateTimerTest: SingleTest<VMStateTimer> = singleTest(vmstateInfoTimer);

/** Options of the `*_EQUAL` fields. */
export interface EqualOptions<T> extends FieldOptions<T> {
  /** Printed after the mismatch (QEMU's `_err_hint`). */
  errHint?: string;
}

type Equal<V> = <T>(name: KeysOfType<T, V>, options?: EqualOptions<T>) => VMStateField<T>;

function equal<V>(info: VMStateInfo<V>): Equal<V> {
  return (name, options) => field(name, { kind: "single", key: name, info: info as VMStateInfo<unknown> }, options);
}

/** `*_EQUAL`: the loaded value must equal the local one (which stays). */
export const vmstateUint8Equal: Equal<number> = equal(vmstateInfoUint8Equal);
export const vmstateUint16Equal: Equal<number> = equal(vmstateInfoUint16Equal);
export const vmstateInt32Equal: Equal<number> = equal(vmstateInfoInt32Equal);
export const vmstateUint32Equal: Equal<number> = equal(vmstateInfoUint32Equal);
export const vmstateUint64Equal: Equal<bigint> = equal(vmstateInfoUint64Equal);

/** `VMSTATE_INT32_POSITIVE_LE` ("int32 le"): 0 ≤ loaded ≤ local; the loaded value is stored. */
export const vmstateInt32Le: Single<number> = single(vmstateInfoInt32Le);

/** Options of a fixed array field. */
export interface ArrayOptions<T> extends FieldOptions<T> {
  /** `_SUB_ARRAY`: the first element's index in the local array. */
  start?: number;
}

/** A fixed array of `num` elements of `info` (`VMSTATE_ARRAY`); 2D arrays are flat. */
export function vmstateArray<T, V>(
  name: KeysOfType<T, ArrayOf<V>>,
  info: VMStateInfo<V>,
  options: ArrayOptions<T> & { num: number },
): VMStateField<T> {
  return field(name, {
    kind: "array",
    key: name,
    info: info as VMStateInfo<unknown>,
    count: { fixed: checkCount(name, options.num, "array length") },
    start: checkCount(name, options.start ?? 0, "start"),
    allocMax: undefined,
  }, options);
}

type ArrayBuilder<V> = <T>(name: KeysOfType<T, ArrayOf<V>>, num: number, options?: ArrayOptions<T>) => VMStateField<T>;

function array<V>(info: VMStateInfo<V>): ArrayBuilder<V> {
  return (name, num, options) => vmstateArray(name, info, { ...options, num });
}

export const vmstateBoolArray: ArrayBuilder<boolean> = array(vmstateInfoBool);
export const vmstateInt8Array: ArrayBuilder<number> = array(vmstateInfoInt8);
export const vmstateInt16Array: ArrayBuilder<number> = array(vmstateInfoInt16);
export const vmstateInt32Array: ArrayBuilder<number> = array(vmstateInfoInt32);
export const vmstateInt64Array: ArrayBuilder<bigint> = array(vmstateInfoInt64);
export const vmstateUint8Array: ArrayBuilder<number> = array(vmstateInfoUint8);
export const vmstateUint16Array: ArrayBuilder<number> = array(vmstateInfoUint16);
export const vmstateUint32Array: ArrayBuilder<number> = array(vmstateInfoUint32);
export const vmstateUint64Array: ArrayBuilder<bigint> = array(vmstateInfoUint64);
export const vmstateTimerArray: ArrayBuilder<VMStateTimer> = array(vmstateInfoTimer);

/** Options of a VARRAY field. */
export interface VarrayOptions<T, V> extends FieldOptions<T> {
  /** Element type; defaults to the count's type (uint32 for `vmstateVarrayUint32`...). */
  info?: VMStateInfo<V>;
  /** `VMSTATE_VARRAY_MULTIPLY`: the count member times this. */
  multiply?: number;
  /**
   * `_ALLOC`: on load, replace the array by a new one of the count's length, which must not
   * exceed `max`. Without it the count must fit the local array.
   */
  alloc?: { max: number };
}

type VarrayBuilder = <T, V = number>(
  name: KeysOfType<T, ArrayOf<V>>,
  numKey: KeysOfType<T, number>,
  options?: VarrayOptions<T, V>,
) => VMStateField<T>;

function varray(defaultInfo: VMStateInfo<number>): VarrayBuilder {
  return (name, numKey, options = {}) =>
    field(name, {
      kind: "array",
      key: name,
      info: (options.info ?? defaultInfo) as VMStateInfo<unknown>,
      count: { key: numKey, multiply: checkCount(name, options.multiply ?? 1, "multiply") },
      start: 0,
      allocMax: options.alloc === undefined ? undefined : checkCount(name, options.alloc.max, "alloc max"),
    }, options);
}

/**
 * VARRAY: as many elements as the member `numKey` says, read from the local object at save
 * and load time (not from the wire, unless an earlier field loaded it). The count is
 * checked against the local array (or `alloc.max`) before anything is read.
 */
export const vmstateVarrayInt32: VarrayBuilder = varray(vmstateInfoInt32);
export const vmstateVarrayUint32: VarrayBuilder = varray(vmstateInfoUint32);
export const vmstateVarrayUint16: VarrayBuilder = varray(vmstateInfoUint16);
export const vmstateVarrayUint8: VarrayBuilder = varray(vmstateInfoUint8);

/** `VMSTATE_STRUCT`: a member described by `vmsd`, loaded with `vmsd`'s own version. */
export function vmstateStruct<T, K extends KeysOfType<T, object>>(
  name: K,
  vmsd: VMStateDescription<T[K]>,
  options?: FieldOptions<T>,
): VMStateField<T> {
  return field(name, {
    kind: "struct",
    key: name,
    vmsd: vmsd as unknown as AnyVMStateDescription,
    count: undefined,
    start: 0,
    structVersion: undefined,
  }, options);
}

/** `VMSTATE_VSTRUCT`: like a struct, but saved and loaded as version `structVersion`. */
export function vmstateVStruct<T, K extends KeysOfType<T, object>>(
  name: K,
  vmsd: VMStateDescription<T[K]>,
  options: FieldOptions<T> & { structVersion: number },
): VMStateField<T> {
  return field(name, {
    kind: "struct",
    key: name,
    vmsd: vmsd as unknown as AnyVMStateDescription,
    count: undefined,
    start: 0,
    structVersion: checkCount(name, options.structVersion, "struct version"),
  }, options);
}

type ElementOf<A> = A extends ArrayOf<infer E> ? E : never;

/** `VMSTATE_STRUCT_ARRAY`: `num` structs (`VMSTATE_STRUCT_SUB_ARRAY` with `start`). */
export function vmstateStructArray<T, K extends KeysOfType<T, ArrayOf<object>>>(
  name: K,
  num: number,
  vmsd: VMStateDescription<ElementOf<T[K]>>,
  options?: ArrayOptions<T>,
): VMStateField<T> {
  return field(name, {
    kind: "struct",
    key: name,
    vmsd: vmsd as unknown as AnyVMStateDescription,
    count: { fixed: checkCount(name, num, "array length") },
    start: checkCount(name, options?.start ?? 0, "start"),
    structVersion: undefined,
  }, options);
}

/** `VMSTATE_STRUCT_VARRAY_*`: as many structs as the member `numKey` says (checked first). */
export function vmstateStructVarray<T, K extends KeysOfType<T, ArrayOf<object>>>(
  name: K,
  numKey: KeysOfType<T, number>,
  vmsd: VMStateDescription<ElementOf<T[K]>>,
  options?: FieldOptions<T>,
): VMStateField<T> {
  return field(name, {
    kind: "struct",
    key: name,
    vmsd: vmsd as unknown as AnyVMStateDescription,
    count: { key: numKey, multiply: 1 },
    start: 0,
    structVersion: undefined,
  }, options);
}

/** Options of a fixed buffer. */
export interface BufferOptions<T> extends FieldOptions<T> {
  /** First byte sent (`VMSTATE_BUFFER_START_MIDDLE`). */
  start?: number;
  /** Bytes sent (`VMSTATE_PARTIAL_BUFFER`); default: the local buffer's length − start. */
  size?: number;
}

/** `VMSTATE_BUFFER`: the raw bytes of a `Uint8Array` member. */
export function vmstateBuffer<T>(name: KeysOfType<T, Uint8Array>, options: BufferOptions<T> = {}): VMStateField<T> {
  return field(name, {
    kind: "buffer",
    key: name,
    size: options.size === undefined ? { local: true } : { fixed: checkCount(name, options.size, "size") },
    start: checkCount(name, options.start ?? 0, "start"),
    allocMax: undefined,
  }, options);
}

/** Options of a VBUFFER. */
export interface VBufferOptions<T> extends FieldOptions<T> {
  /** `VMSTATE_VBUFFER_MULTIPLY`: the size member times this. */
  multiply?: number;
  /** `_ALLOC`: on load a new buffer of the size (at most `max`) replaces the member. */
  alloc?: { max: number };
}

/**
 * `VMSTATE_VBUFFER`: a `Uint8Array` member of as many bytes as the member `sizeKey` says.
 * The size is checked against the local buffer (or `alloc.max`) before anything is read.
 */
export function vmstateVBuffer<T>(
  name: KeysOfType<T, Uint8Array>,
  sizeKey: KeysOfType<T, number>,
  options: VBufferOptions<T> = {},
): VMStateField<T> {
  return field(name, {
    kind: "buffer",
    key: name,
    size: { key: sizeKey, multiply: checkCount(name, options.multiply ?? 1, "multiply") },
    start: 0,
    allocMax: options.alloc === undefined ? undefined : checkCount(name, options.alloc.max, "alloc max"),
  }, options);
}

/** `VMSTATE_UNUSED`: `size` zero bytes on save, skipped on load. */
export function vmstateUnused<T>(size: number, options?: FieldOptions<T>): VMStateField<T> {
  return field("unused", { kind: "unused", size: checkCount("unused", size, "size") }, options);
}

/**
 * `VMSTATE_BITMAP`: `nbitsKey` bits as ceil(n/64) be64 words, bit i in bit i%64 of word
 * i/64. The member is a `BigUint64Array` or a `Uint32Array` (bit i in bit i%32 of element
 * i/32).
 */
export function vmstateBitmap<T>(
  name: KeysOfType<T, BigUint64Array | Uint32Array>,
  nbitsKey: KeysOfType<T, number>,
  options?: FieldOptions<T>,
): VMStateField<T> {
  return field(name, { kind: "bitmap", key: name, nbitsKey }, options);
}

/**
 * `VMSTATE_WITH_TMP`: `create(parent)` makes a temporary object `{ parent, ... }`; `vmsd`'s
 * pre_save fills it from the parent before it is saved, its post_load copies it back after
 * it is loaded. The temporary is loaded as version 0, as QEMU does.
 */
export function vmstateWithTmp<T, Tmp extends { parent: T }>(
  vmsd: VMStateDescription<Tmp>,
  create: (parent: T) => Tmp,
): VMStateField<T> {
  return field("tmp", {
    kind: "tmp",
    vmsd: vmsd as unknown as AnyVMStateDescription,
    create: create as unknown as (parent: never) => never,
  }, {});
}

/** `VMSTATE_VALIDATE`: no data; the load fails unless `test` holds. */
export function vmstateValidate<T>(name: string, test: FieldExists<T>): VMStateField<T> {
  return field(name, { kind: "validate" }, { test });
}
