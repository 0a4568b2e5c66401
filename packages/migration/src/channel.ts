/**
 * Byte channels of a live migration (browser-safe; the Node transports are in
 * transport-node.ts) and the return path framing (migration.c's rp messages):
 * `be16 type, be16 len, data`, len ≤ 512 — SHUT (be32, 0 = ok), PONG (be32).
 *
 * @module
 */

import { MigrationError } from "@ferryvm/vmstate";
import { QemuFileReader, type ByteSink, type ByteSource } from "./qemu-file.ts";

/** The source's end of a migration connection. */
export interface OutgoingChannel {
  /** Bytes to the destination. A write waits while the peer is slow (backpressure). */
  readonly sink: ByteSink;
  /** Bytes from the destination (the return path), when the transport is two-way. */
  readonly returnPath?: ByteSource;
  /** Ends the stream normally (after the last byte, waits until written). */
  close(): Promise<void>;
  /** Tears the connection down at once (cancel, failure): pending writes reject. */
  abort(): void;
}

/** The destination's end of a migration connection. */
export interface IncomingChannel {
  /** The migration stream. */
  readonly source: ByteSource;
  /** Bytes back to the source (the return path), when the transport is two-way. */
  readonly returnSink?: ByteSink;
  /** Closes the connection. */
  close(): void;
}

/** Return path message types (enum mig_rp_message_type). */
export const MigRpMsg = {
  INVALID: 0,
  SHUT: 1,
  PONG: 2,
  REQ_PAGES_ID: 3,
  REQ_PAGES: 4,
  RECV_BITMAP: 5,
  RESUME_ACK: 6,
} as const;

/** rp_cmd_args: expected lengths (-1 = variable). */
const RP_LENGTHS: readonly number[] = [-1, 4, 4, -1, 12, -1, 4];
const RP_NAMES: readonly string[] = ["INVALID", "SHUT", "PONG", "REQ_PAGES_ID", "REQ_PAGES", "RECV_BITMAP", "RESUME_ACK"];
const MAX_RP_LEN = 512;

/** One return-path message with a be32 payload (SHUT, PONG) as the destination writes it. */
export function encodeRpMessage(type: number, value: number): Uint8Array {
  const out = new Uint8Array(8);
  const v = new DataView(out.buffer);
  v.setUint16(0, type);
  v.setUint16(2, 4);
  v.setUint32(4, value >>> 0);
  return out;
}

/** What the source's return-path reader saw. */
export interface ReturnPathResult {
  /** The SHUT value (0 = the destination loaded everything), or undefined when the path broke first. */
  shut: number | undefined;
  pongs: number[];
  /** Why the path ended without SHUT (EOF, bad message). */
  error?: MigrationError;
}

/**
 * The source's return-path thread (source_return_path_thread): reads messages until SHUT,
 * EOF or a bad message. `onPong` sees each PONG as it comes.
 */
export async function readReturnPath(source: ByteSource, onPong?: (value: number) => void): Promise<ReturnPathResult> {
  const f = new QemuFileReader(source, { bufferSize: 4096 });
  const pongs: number[] = [];
  try {
    for (;;) {
      if (await f.atEnd()) return { shut: undefined, pongs, error: new MigrationError("RP: the return path closed before SHUT") };
      const type = await f.readU16("RP: message type");
      const len = await f.readU16("RP: message length");
      if (type >= RP_LENGTHS.length || type === MigRpMsg.INVALID) {
        throw new MigrationError(`RP: Received invalid message 0x${type.toString(16).padStart(4, "0")} length 0x${len.toString(16).padStart(4, "0")}`);
      }
      const want = RP_LENGTHS[type]!;
      if ((want !== -1 && len !== want) || len > MAX_RP_LEN) {
        throw new MigrationError(`RP: Received '${RP_NAMES[type]}' message (0x${type.toString(16).padStart(4, "0")}) with bad length ${len} expecting ${want}`);
      }
      const data = await f.readBytes(len, MAX_RP_LEN, "RP: message data");
      const value = len >= 4 ? new DataView(data.buffer, data.byteOffset, 4).getUint32(0) : 0;
      if (type === MigRpMsg.SHUT) return { shut: value, pongs };
      if (type === MigRpMsg.PONG) {
        pongs.push(value);
        onPong?.(value);
        continue;
      }
      throw new MigrationError(`RP: '${RP_NAMES[type]}' is a postcopy message and postcopy is off`);
    }
  } catch (e) {
    const error = e instanceof MigrationError ? e : new MigrationError(`RP: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    return { shut: undefined, pongs, error };
  }
}
