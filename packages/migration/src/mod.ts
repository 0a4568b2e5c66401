/**
 * The migration stream, QEMU 7.2's format: QEMUFile (`QemuFileWriter` over a `ByteSink`,
 * `QemuFileReader` over a `ByteSource`), the savevm registry (`SaveVmRegistry`,
 * `SaveVmHandlers`), saving (`qemuSavevmState` and its steps) and loading
 * (`qemuLoadvmState`), the RAM section (`RamMigration`), the globalstate section, and
 * `analyzeMigration` (QEMU's scripts/analyze-migration.py).
 *
 * @example
 * ```ts
 * import { MemorySink, QemuFileReader, QemuFileWriter } from "@ferryvm/migration";
 * import { loadState, saveState, vmstateUint32, type VMStateDescription } from "@ferryvm/vmstate";
 *
 * const vmsd: VMStateDescription<{ n: number }> = {
 *   name: "dev", version_id: 1, minimum_version_id: 1, fields: [vmstateUint32("n")],
 * };
 * const sink = new MemorySink();
 * const out = new QemuFileWriter(sink);
 * out.putStr8("dev");
 * saveState(out, vmsd, { n: 42 });
 * await out.close();
 *
 * const input = new QemuFileReader(sink.bytes());
 * const idstr = await input.readStr8("idstr"); // "dev"
 * const dev = { n: 0 };
 * await loadState(input, vmsd, dev, 1); // dev.n === 42
 * ```
 *
 * @module
 */

export { MigrationError, ShortReadError } from "@ferryvm/vmstate";
export * from "./qemu-file.ts";
export * from "./constants.ts";
export * from "./handlers.ts";
export * from "./config.ts";
export * from "./savevm.ts";
export * from "./loadvm.ts";
export * from "./ram.ts";
export * from "./global-state.ts";
export * from "./analyze.ts";
export * from "./migration-params.ts";
export * from "./migration-state.ts";
export * from "./channel.ts";
export * from "./outgoing.ts";
export * from "./incoming.ts";
export * from "./migration-hmp.ts";
export * from "./vmdesc-compat.ts";
