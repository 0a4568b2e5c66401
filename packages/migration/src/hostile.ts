/**
 * Hostile-input helpers shared by the tests and scripts/fuzz.ts: mutations of a valid
 * stream (truncations, bit flips, framing numbers set to 0 / max / -1), and a load that
 * must either succeed or fail with a MigrationError. Not exported from mod.ts.
 *
 * @module
 */

import { MigrationError } from "@ferryvm/vmstate";
import { streamFieldMap, type StreamField } from "./analyze.ts";
import { qemuLoadvmState } from "./loadvm.ts";
import { QemuFileReader } from "./qemu-file.ts";
import { TINY_MACHINE, type TinyMachine } from "./testing.ts";

/** One mutated stream. */
export interface Mutation {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** The values a framing number is set to: 0, all ones (max unsigned, -1 signed), max signed, and its value ± 1. */
export function fieldValues(bytes: Uint8Array, field: StreamField): bigint[] {
  const bits = BigInt(field.size * 8);
  let v = 0n;
  for (let i = 0; i < field.size; i++) v = (v << 8n) | BigInt(bytes[field.offset + i]!);
  const ones = (1n << bits) - 1n;
  return [...new Set([0n, ones, ones >> 1n, (v + 1n) & ones, (v - 1n) & ones])].filter((x) => x !== v);
}

function withValue(bytes: Uint8Array, field: StreamField, value: bigint): Uint8Array {
  const out = bytes.slice();
  for (let i = field.size - 1; i >= 0; i--) {
    out[field.offset + i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

/** Every framing number of `bytes` set to each of `fieldValues`. */
export function* fieldMutations(bytes: Uint8Array, fields: readonly StreamField[] = streamFieldMap(bytes)): Generator<Mutation> {
  for (const field of fields) {
    for (const value of fieldValues(bytes, field)) {
      yield { name: `${field.what} @${field.offset} = 0x${value.toString(16)}`, bytes: withValue(bytes, field, value) };
    }
  }
}

/** Every proper prefix of `bytes` (step 1 by default). */
export function* truncations(bytes: Uint8Array, step = 1): Generator<Mutation> {
  for (let n = 0; n < bytes.length; n += step) yield { name: `truncated to ${n} bytes`, bytes: bytes.subarray(0, n) };
}

/** `bytes` with the given bits flipped. */
export function flipBits(bytes: Uint8Array, bits: readonly number[]): Uint8Array {
  const out = bytes.slice();
  for (const b of bits) out[(b >>> 3) % out.length]! ^= 1 << (b & 7);
  return out;
}

/** What one hostile load did. */
export type HostileOutcome = { ok: true } | { ok: false; error: MigrationError };

/**
 * Loads `bytes` into `machine`. Resolves with the outcome when the load succeeds or fails
 * with a MigrationError; any other exception (TypeError, RangeError...) is rethrown: a bug.
 * The source is split into chunks of `chunk` bytes to exercise the reader's refills.
 */
export async function loadUntrusted(machine: TinyMachine, bytes: Uint8Array, chunk = 0): Promise<HostileOutcome> {
  const source = chunk > 0 ? chunks(bytes, chunk) : bytes;
  try {
    await qemuLoadvmState(new QemuFileReader(source), machine.registry, { machineName: TINY_MACHINE });
    return { ok: true };
  } catch (e) {
    if (e instanceof MigrationError) return { ok: false, error: e };
    throw e;
  }
}

function* chunks(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}
