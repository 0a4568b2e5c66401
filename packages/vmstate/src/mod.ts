/**
 * The VMState engine: QEMU's way of describing device state as a table, and of turning it
 * into migration-stream bytes (big-endian, positional, no tags), vmdesc JSON, and back.
 *
 * A device declares one `VMStateDescription` of its state object; `saveState` writes it,
 * `loadState` reads a stream of any version from `minimum_version_id` to `version_id` into
 * it, `vmdescJson` gives the JSON QEMU's scripts/analyze-migration.py reads.
 *
 * @example
 * ```ts
 * import {
 *   loadStateFromBytes, saveStateToBytes, vmdescJson, vmstateUint8Array, vmstateUint16,
 *   vmstateUint32V, type VMStateDescription,
 * } from "@ferryvm/vmstate";
 *
 * interface Uart { divider: number; fifo: Uint8Array; count: number }
 * const vmstateUart: VMStateDescription<Uart> = {
 *   name: "uart",
 *   version_id: 2,
 *   minimum_version_id: 1,
 *   fields: [
 *     vmstateUint16("divider"),
 *     vmstateUint8Array("fifo", 4),
 *     vmstateUint32V("count", 2), // only in version 2 streams
 *   ],
 * };
 *
 * const uart: Uart = { divider: 12, fifo: new Uint8Array([1, 2, 3, 4]), count: 7 };
 * const bytes = saveStateToBytes(vmstateUart, uart);
 * // 00 0c | 01 02 03 04 | 00 00 00 07
 * const copy: Uart = { divider: 0, fifo: new Uint8Array(4), count: 0 };
 * await loadStateFromBytes(bytes, vmstateUart, copy);
 * console.log(copy.divider, vmdescJson(vmstateUart, uart));
 * // 12 {"vmsd_name": "uart", "version": 2, "fields": [{"name": "divider", "type": "uint16", "size": 2}, ...]}
 * ```
 *
 * @module
 */

export * from "./description.ts";
export * from "./dump.ts";
export * from "./errors.ts";
export * from "./fields.ts";
export * from "./info.ts";
export * from "./json-writer.ts";
export * from "./stream.ts";
export * from "./vmstate.ts";
