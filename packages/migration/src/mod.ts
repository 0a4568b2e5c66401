/**
 * The migration stream. So far: QEMUFile, the buffered big-endian byte stream
 * (`QemuFileWriter` over a `ByteSink`, `QemuFileReader` over a `ByteSource`), which
 * `@ferryvm/vmstate`'s `saveState`/`loadState` read and write.
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
