/**
 * Error helpers: every failure of the stream is a `MigrationError` (a `ShortReadError` when
 * the source ended early) whose message names the section and the field.
 *
 * @module
 */

import { MigrationError, ShortReadError } from "@ferryvm/vmstate";

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * `e` with `context` put in front of its message, keeping its class: a ShortReadError stays
 * one; anything else becomes a MigrationError with `e` as its cause.
 */
export function withContext(context: string, e: unknown): MigrationError {
  if (e instanceof ShortReadError) {
    const err = new ShortReadError(e.offset, e.needed, e.left);
    err.message = `${context}: ${e.message}`;
    err.cause = e;
    return err;
  }
  return new MigrationError(`${context}: ${message(e)}`, { cause: e });
}

/** Hex with a 0x prefix. */
export function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}
