/**
 * A machine's savevm registry (QEMU's savevm_state for one VM), built fresh for each save and
 * load: the RAM section (iterative, first), every device and hart section the machine lists
 * (`machine.vmstateEntries()` of @ferryvm/devices, in QEMU's registration order), then
 * `globalstate`. Glue that belongs with the machine or the migration package (see
 * README): nothing here knows a device.
 *
 * @module
 */

import type { Machine } from "@ferryvm/devices";
import {
  GlobalState,
  QemuFileReader,
  QemuFileWriter,
  RamMigration,
  SaveVmRegistry,
  qemuLoadvmState,
  qemuSavevmState,
  registerGlobalState,
  type ByteSink,
  type LoadVmResult,
  type MachineConfig,
  type RamCounters,
  type RunState as MigrationRunState,
  type SaveStateEntry,
} from "@ferryvm/migration";

/** A VMState description of some object type (the entry's opaque). */
type VmstateDescription = NonNullable<SaveStateEntry["vmsd"]>;

/** One device section: what `SaveVmRegistry.registerVmstate` takes. */
export interface VmstateEntryLike {
  readonly idstr: string;
  readonly instanceId: number;
  readonly vmsd: VmstateDescription;
  readonly opaque: unknown;
}

/** What a snapshot needs of a machine: its RAM and its device sections. */
export interface SnapshotMachine {
  readonly guestMemory: Machine["guestMemory"];
  /** Every device and hart section, in QEMU's registration order (@ferryvm/devices' Machine). */
  vmstateEntries(): readonly VmstateEntryLike[];
  /** Its machine type (@ferryvm/devices' Machine has it); the configuration section carries the name. */
  readonly config?: { readonly machineType: { readonly name: string } };
}

/** The machine type sent for a machine that does not say (the unversioned alias of the newest type). */
export const MACHINE_TYPE = "virt";

/** A registry with the machine's sections, and the objects a save or load reports from. */
export interface VmRegistry {
  readonly registry: SaveVmRegistry;
  readonly ram: RamMigration;
  readonly globalState: GlobalState;
  readonly config: MachineConfig;
}

/** Registers RAM, the machine's sections and globalstate, in that order. */
export function buildRegistry(machine: SnapshotMachine): VmRegistry {
  const registry = new SaveVmRegistry();
  const ram = new RamMigration(machine.guestMemory);
  ram.register(registry);
  for (const e of machine.vmstateEntries()) {
    registry.registerVmstate<never>(e.vmsd, e.opaque as never, { idstr: e.idstr, instanceId: e.instanceId });
  }
  const globalState = new GlobalState();
  registerGlobalState(registry, globalState);
  return { registry, ram, globalState, config: { machineName: machine.config?.machineType.name ?? MACHINE_TYPE } };
}

/** Saves the stopped machine into `sink` with `runState` in globalstate; returns the RAM counters and bytes. */
export async function saveMachine(
  machine: SnapshotMachine,
  sink: ByteSink,
  runState: MigrationRunState,
): Promise<{ bytes: number; ram: RamCounters }> {
  const vm = buildRegistry(machine);
  vm.globalState.store(runState);
  const f = new QemuFileWriter(sink);
  await qemuSavevmState(f, vm.registry, vm.config);
  const bytes = f.position;
  await f.close();
  return { bytes, ram: vm.ram.counters() };
}

/** Loads a stream into the machine (not running); returns what was loaded and the stream's globalstate. */
export async function loadMachine(
  machine: SnapshotMachine,
  source: AsyncIterable<Uint8Array> | Uint8Array,
): Promise<{ result: LoadVmResult; globalState: GlobalState }> {
  const vm = buildRegistry(machine);
  const result = await qemuLoadvmState(new QemuFileReader(source), vm.registry, vm.config);
  return { result, globalState: vm.globalState };
}
