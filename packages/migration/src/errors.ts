/**
 * Error helpers: every failure of the stream is a `MigrationError` (a `ShortReadError` when
 * the source ended early) whose message names the section and the field.
 *
 * @module
 */

import { MigrationError, ShortReadError } from "@ferryvm/vmstate";

/**
 * The channel refused a write (the peer went, the disk is full): its text is the failure,
 * as QEMU's error-desc ("Unable to write to socket: Broken pipe"), whichever section was
 * being written when it surfaced.
 */
export class ChannelWriteError extends MigrationError {
  override name = "ChannelWriteError";
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * `e` with `context` put in front of its message, keeping its class: a ShortReadError stays
 * one; anything else becomes a MigrationError with `e` as its cause.
 */
export function withContext(context: string, e: unknown): MigrationError {
  if (e instanceof ChannelWriteError) return e;
  const short = shortReadIn(e);
  if (short !== undefined) {
    const err = new ShortReadError(short.offset, short.needed, short.left);
    err.message = `${context}: ${message(e)}`;
    err.cause = e;
    return err;
  }
  return new MigrationError(`${context}: ${message(e)}`, { cause: e });
}

/** The ShortReadError in `e`'s cause chain (the engine wraps it in a VMStateError), if any. */
export function shortReadIn(e: unknown): ShortReadError | undefined {
  for (let c = e, depth = 0; c instanceof Error && depth < 8; c = c.cause, depth++) {
    if (c instanceof ShortReadError) return c;
  }
  return undefined;
}

/** Hex with a 0x prefix. */
export function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}

/** A name read from the stream, fit for a message: control bytes escaped, cut after 64 characters. */
export function printable(name: string): string {
  const cut = name.length > 64 ? `${name.slice(0, 64)}…(${name.length} chars)` : name;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
