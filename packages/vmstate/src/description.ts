/**
 * The shape of a VMState description: QEMU's `VMStateDescription` and `VMStateField`
 * (include/migration/vmstate.h) as typed TypeScript tables. A description's fields read and
 * write members of a plain state object; builders in `fields.ts` create the fields.
 *
 * @module
 */

import type { VMStateInput, VMStateOutput } from "./stream.ts";

/**
 * How one value of a fixed wire size is put and got (QEMU's `VMStateInfo`). `name` is the
 * type QEMU writes into the vmdesc (`"uint32"`, `"int32 equal"`, `"timer"`...).
 */
export interface VMStateInfo<V> {
  readonly name: string;
  /** Bytes on the wire. */
  readonly size: number;
  /** Writes `value`; throws if it does not fit the type. */
  put(out: VMStateOutput, value: V): void;
  /**
   * Reads a value once `size` bytes are buffered and returns what to store; `current` is
   * the local value (for `*_EQUAL` and `int32 le` checks). Throws to reject it.
   */
  get(input: VMStateInput, current: V): V;
}

/** `field_exists`: whether a field is in a stream of version `versionId`. */
export type FieldExists<T> = (obj: T, versionId: number) => boolean;

/** Names of the members of `T` whose type is `V`. */
export type KeysOfType<T, V> = { [K in keyof T]-?: T[K] extends V ? K : never }[keyof T] & string;

/** An indexable sequence of `V`: a plain array or a typed array. */
export interface ArrayOf<V> {
  readonly length: number;
  [index: number]: V;
}

/** Element count of an array field: fixed, or read from a member (VARRAY). */
export type FieldCount =
  | { readonly fixed: number }
  | { readonly key: string; readonly multiply: number };

/** Byte size of a buffer field: the local buffer's, fixed, or read from a member (VBUFFER). */
export type BufferSize =
  | { readonly local: true }
  | { readonly fixed: number }
  | { readonly key: string; readonly multiply: number };

/** Any description, whatever its state type (`never` accepts every `VMStateDescription<T>`). */
export type AnyVMStateDescription = VMStateDescription<never>;

/**
 * How a field is laid out: what the engine walks. Created by the builders in `fields.ts`;
 * not meant to be written by hand.
 */
export type FieldLayout =
  | { readonly kind: "single"; readonly key: string; readonly info: VMStateInfo<unknown> }
  | {
    readonly kind: "array";
    readonly key: string;
    readonly info: VMStateInfo<unknown>;
    readonly count: FieldCount;
    readonly start: number;
    /** VMS_ALLOC: the array is replaced by a new one of the loaded count, at most this. */
    readonly allocMax: number | undefined;
  }
  | {
    readonly kind: "struct";
    readonly key: string;
    readonly vmsd: AnyVMStateDescription;
    /** undefined: one struct at `obj[key]`; otherwise an array of structs. */
    readonly count: FieldCount | undefined;
    readonly start: number;
    /** VSTRUCT: the struct version on the wire; STRUCT uses the struct's own version. */
    readonly structVersion: number | undefined;
  }
  | {
    readonly kind: "buffer";
    readonly key: string;
    readonly size: BufferSize;
    readonly start: number;
    readonly allocMax: number | undefined;
  }
  | { readonly kind: "unused"; readonly size: number }
  | { readonly kind: "bitmap"; readonly key: string; readonly nbitsKey: string }
  | {
    readonly kind: "tmp";
    readonly vmsd: AnyVMStateDescription;
    readonly create: (parent: never) => never;
  }
  | { readonly kind: "validate" };

/** One entry of a description's field table (QEMU's `VMStateField`). */
export interface VMStateField<T> {
  /** QEMU's field name: it appears in the vmdesc and in errors. */
  readonly name: string;
  /** The field exists in streams of this version and later (`_V` macros). */
  readonly version_id: number;
  /** Overrides `version_id`: the field exists where this holds (`_TEST` macros). */
  readonly field_exists?: FieldExists<T>;
  /** Appended to a `*_EQUAL` mismatch error. */
  readonly err_hint?: string;
  readonly layout: FieldLayout;
}

/** QEMU's `MigrationPriority`: higher priorities are saved (and loaded) first. */
export const MigrationPriority = {
  DEFAULT: 0,
  IOMMU: 1,
  PCI_BUS: 2,
  VIRTIO_MEM: 3,
  GICV3_ITS: 4,
  GICV3: 5,
  MAX: 6,
} as const;

/**
 * A device's (or a struct's, or a subsection's) state description. Subsections describe the
 * same state object as their parent; their names start with the parent's (`serial/thr`).
 * Hooks throw to fail the save or load. Order: load runs pre_load, fields, subsections,
 * post_load; save runs pre_save, fields, subsections, post_save.
 */
export interface VMStateDescription<T> {
  readonly name: string;
  readonly version_id: number;
  readonly minimum_version_id: number;
  readonly priority?: number;
  readonly fields: readonly VMStateField<T>[];
  readonly subsections?: readonly VMStateDescription<T>[];
  /** A subsection (or a section) is sent only when this holds. */
  readonly needed?: (obj: T) => boolean;
  readonly pre_save?: (obj: T) => void;
  readonly post_save?: (obj: T) => void;
  readonly pre_load?: (obj: T) => void;
  readonly post_load?: (obj: T, versionId: number) => void;
}
