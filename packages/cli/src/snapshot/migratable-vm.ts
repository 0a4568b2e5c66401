/**
 * {@link ControllerVm}: the VM as @ferryvm/migration's live migration sees it
 * (`MigratableVm`), over the CLI's {@link VmController} and its `Machine`. The migration loop
 * runs beside the machine loop on the event loop; stop and resume go through the controller
 * (requests applied between two runs), so the machine is never touched mid-run.
 *
 * Not wired to QMP yet: `migrate` and `-incoming` use the non-live path (migration.ts). The
 * next step is to hand this to `MigrationState` / `MigrationIncoming` (see README).
 *
 * @module
 */

import type { Machine } from "@ferryvm/devices";
import type { MigratableVm, RunState as MigrationRunState, SaveVmRegistry } from "@ferryvm/migration";
import type { RunState, VmController } from "../controller.ts";

export class ControllerVm implements MigratableVm {
  readonly #controller: VmController;
  readonly #machine: Machine;
  readonly uuid: Uint8Array | undefined = undefined;

  constructor(controller: VmController, machine: Machine) {
    this.#controller = controller;
    this.#machine = machine;
  }

  /** The versioned machine type ("virt-1.1"), sent in the configuration section. */
  get machineName(): string {
    return this.#machine.config.machineType.name;
  }

  get memory(): Machine["guestMemory"] {
    return this.#machine.guestMemory;
  }

  get runState(): MigrationRunState {
    return this.#controller.state as MigrationRunState;
  }

  registerDevices(registry: SaveVmRegistry): void {
    this.#machine.registerVmstate(registry);
  }

  stop(state: MigrationRunState): Promise<void> {
    return this.#controller.pauseForMigration(state as RunState);
  }

  resume(): Promise<void> {
    return this.#controller.resumeAfterMigration();
  }

  setRunState(state: MigrationRunState): void {
    this.#controller.setRunState(state as RunState);
  }

  /** Auto-converge: the machine's vCPU throttle (QEMU's cpu_throttle_set). */
  setThrottle(percent: number): void {
    this.#machine.setThrottle(percent);
  }
}
