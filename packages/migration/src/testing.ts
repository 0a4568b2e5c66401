/**
 * A tiny machine for tests, the fuzz script and examples: a GuestMemory with two RAM blocks,
 * the RAM section, a serial-like device, globalstate and an old-style section. Not exported
 * from mod.ts.
 *
 * @module
 */

import { GuestMemory } from "@ferryvm/memory";
import { vmstateInt32, vmstateUint16, vmstateUint32, vmstateUint8Array, type VMStateDescription } from "@ferryvm/vmstate";
import { GlobalState, registerGlobalState } from "./global-state.ts";
import { SaveVmRegistry } from "./handlers.ts";
import { MemorySink, QemuFileReader, QemuFileWriter } from "./qemu-file.ts";
import { RamMigration, type RamMigrationOptions } from "./ram.ts";
import {
  qemuSavevmState,
  qemuSavevmStateCleanup,
  qemuSavevmStateCompletePrecopy,
  qemuSavevmStateHeader,
  qemuSavevmStateIterate,
  qemuSavevmStatePending,
  qemuSavevmStateSetup,
} from "./savevm.ts";

export interface TinySerial {
  divider: number;
  fifo: Uint8Array;
  count: number;
  thr_ipending: number;
}

export const vmstateTinySerial: VMStateDescription<TinySerial> = {
  name: "serial",
  version_id: 4,
  minimum_version_id: 2,
  fields: [vmstateUint16("divider"), vmstateUint8Array("fifo", 4), vmstateUint32("count")],
  subsections: [
    {
      name: "serial/thr_ipending",
      version_id: 1,
      minimum_version_id: 1,
      needed: (s) => s.thr_ipending !== 0,
      fields: [vmstateInt32("thr_ipending")],
    },
  ],
};

export interface TinyMachine {
  memory: GuestMemory;
  registry: SaveVmRegistry;
  ram: RamMigration;
  serial: TinySerial;
  globalState: GlobalState;
  /** The old-style section's 3 bytes. */
  legacy: Uint8Array;
}

export const TINY_MACHINE = "virt";

/** RAM: "riscv_virt_board.mrom" (2 pages) created first, then "riscv_virt_board.ram" (`ramPages`). */
export function createTinyMachine(
  options: { ramPages?: number; ram?: RamMigrationOptions; kernelsWasm?: BufferSource; dirtyClients?: readonly string[] } = {},
): TinyMachine {
  const memory = GuestMemory.createSync({
    ...(options.dirtyClients === undefined ? {} : { dirtyClients: options.dirtyClients }),
    ...(options.kernelsWasm === undefined ? {} : { kernelsWasm: options.kernelsWasm }),
    ram: [
      { idstr: "riscv_virt_board.mrom", size: 2 * 4096, base: 0x1000 },
      { idstr: "riscv_virt_board.ram", size: (options.ramPages ?? 4) * 4096, base: 0x8000_0000 },
    ],
  });
  const registry = new SaveVmRegistry();
  const ram = new RamMigration(memory, options.ram);
  ram.register(registry);
  const serial: TinySerial = { divider: 0, fifo: new Uint8Array(4), count: 0, thr_ipending: 0 };
  registry.registerVmstate(vmstateTinySerial, serial);
  const globalState = new GlobalState();
  registerGlobalState(registry, globalState);
  const legacy = new Uint8Array(3);
  registry.registerSaveVmLive("legacy", 0, 1, {
    save_state: (f) => f.putBytes(legacy),
    load_state: async (f) => {
      await f.readInto(legacy, "legacy: data");
    },
  });
  return { memory, registry, ram, serial, globalState, legacy };
}

/** Fills the tiny machine with recognisable state (some RAM pages zero, some not). */
export function populateTinyMachine(m: TinyMachine): void {
  const ram = m.memory.block("riscv_virt_board.ram");
  ram.page(1).fill(0xab);
  ram.page(ram.pages - 1).set([1, 2, 3, 4], 100);
  m.memory.block("riscv_virt_board.mrom").page(0).set([0x97, 0x02, 0x00, 0x00]);
  Object.assign(m.serial, { divider: 12, count: 7, thr_ipending: 1 });
  m.serial.fifo.set([1, 2, 3, 4]);
  m.globalState.store("running");
  m.legacy.set([9, 8, 7]);
}

/** Saves a machine to bytes with qemuSavevmState. */
export async function saveTinyMachine(m: TinyMachine): Promise<Uint8Array> {
  const sink = new MemorySink();
  const f = new QemuFileWriter(sink);
  await qemuSavevmState(f, m.registry, { machineName: TINY_MACHINE });
  await f.close();
  return sink.bytes();
}

/**
 * A precopy by hand: setup, then `rounds` times (iterate until done, `dirty(round)`, exact
 * pending = bitmap sync), then completion. What a live migration's thread does, minus time.
 */
export async function saveTinyMachineLive(m: TinyMachine, rounds: number, dirty: (round: number) => void): Promise<Uint8Array> {
  const sink = new MemorySink();
  const f = new QemuFileWriter(sink);
  try {
    qemuSavevmStateHeader(f, { machineName: TINY_MACHINE });
    await qemuSavevmStateSetup(f, m.registry);
    for (let r = 0; r < rounds; r++) {
      while (!(await qemuSavevmStateIterate(f, m.registry))) await f.flush();
      dirty(r);
      qemuSavevmStatePending(m.registry, true);
    }
    await qemuSavevmStateCompletePrecopy(f, m.registry);
  } finally {
    qemuSavevmStateCleanup(m.registry);
  }
  await f.close();
  return sink.bytes();
}

/** A stream of the tiny machine with at least one XBZRLE page (ram page 1 changed over 3 rounds). */
export async function tinyStreamWithXbzrle(kernelsWasm?: BufferSource): Promise<{ machine: TinyMachine; bytes: Uint8Array }> {
  const machine = createTinyMachine({
    ramPages: 4,
    ram: { xbzrle: true, xbzrleCacheSize: 16 * 4096 },
    ...(kernelsWasm === undefined ? {} : { kernelsWasm }),
  });
  populateTinyMachine(machine);
  const base = machine.memory.block("riscv_virt_board.ram").base!;
  const bytes = await saveTinyMachineLive(machine, 3, (r) => {
    machine.memory.write(base + 4096 + 10 * r, new Uint8Array([r + 1, r + 2, r + 3]));
  });
  return { machine, bytes };
}

export { QemuFileReader };
