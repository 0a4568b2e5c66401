/**
 * File helpers for Node.js (`@ferryvm/migration/node`): a whole-VM save into a file and a
 * load from one, over the transport-agnostic `qemuSavevmState` / `qemuLoadvmState`. Kept out
 * of mod.ts so that browser bundles never see node:fs.
 *
 * @module
 */

import { createReadStream, createWriteStream } from "node:fs";
import type { MachineConfig } from "./config.ts";
import type { SaveVmRegistry } from "./handlers.ts";
import { qemuLoadvmState, type LoadVmOptions, type LoadVmResult } from "./loadvm.ts";
import { QemuFileReader, QemuFileWriter, type ByteSink } from "./qemu-file.ts";
import { qemuSavevmState } from "./savevm.ts";

/** What the file helpers need of a machine: its sections and its configuration. */
export interface MachineLike {
  readonly registry: SaveVmRegistry;
  readonly config: MachineConfig;
}

/** A sink writing to a file (created or truncated), waiting for the stream's drain. */
export function fileSink(path: string): ByteSink {
  const out = createWriteStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    out.once("open", () => resolve());
    out.once("error", reject);
  });
  return {
    async write(chunk) {
      await opened;
      await new Promise<void>((resolve, reject) => out.write(chunk, (e) => (e ? reject(e) : resolve())));
    },
    async close() {
      await opened;
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    },
  };
}

/**
 * Saves the (stopped) machine into `path` (qemu_savevm_state); returns the bytes written
 * and the vmdesc.
 */
export async function saveVmToFile(machine: MachineLike, path: string): Promise<{ bytes: number; vmdesc: string }> {
  const f = new QemuFileWriter(fileSink(path));
  try {
    const vmdesc = await qemuSavevmState(f, machine.registry, machine.config);
    const bytes = f.position;
    await f.close();
    return { bytes, vmdesc };
  } catch (e) {
    await f.close().catch(() => {});
    throw e;
  }
}

/** Loads `path` into the machine (qemu_loadvm_state). */
export async function loadVmFromFile(
  machine: MachineLike,
  path: string,
  options: Omit<LoadVmOptions, keyof MachineConfig> = {},
): Promise<LoadVmResult> {
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    return await qemuLoadvmState(new QemuFileReader(stream), machine.registry, { ...machine.config, ...options });
  } finally {
    stream.destroy();
  }
}
export * from "./transport-node.ts";
