/**
 * Migration states, the VM seam (`MigratableVm`), `query-migrate`'s info object and the
 * MIGRATION / MIGRATION_PASS events, with QEMU 7.2's names (qapi/migration.json).
 *
 * @module
 */

import type { GuestMemory } from "@ferryvm/memory";
import type { RunState } from "./constants.ts";
import type { SaveVmRegistry } from "./handlers.ts";
import type { RamCounters, XbzrleCounters } from "./ram.ts";

/** QEMU 7.2's MigrationStatus names in its enum's order (what migrate-continue's `state` takes). */
export const MIGRATION_STATUSES = [
  "none",
  "setup",
  "cancelling",
  "cancelled",
  "active",
  "postcopy-active",
  "postcopy-paused",
  "postcopy-recover",
  "completed",
  "failed",
  "colo",
  "pre-switchover",
  "device",
  "wait-unplug",
] as const;

/** QEMU 7.2's MigrationStatus. The postcopy, colo and wait-unplug states are reserved. */
export type MigrationStatus = (typeof MIGRATION_STATUSES)[number];

/** migration_is_running: states in which capabilities cannot change and `migrate` is refused. */
export function migrationIsRunning(status: MigrationStatus): boolean {
  switch (status) {
    case "active":
    case "postcopy-active":
    case "postcopy-paused":
    case "postcopy-recover":
    case "setup":
    case "pre-switchover":
    case "device":
    case "wait-unplug":
    case "cancelling":
      return true;
    default:
      return false;
  }
}

/** The transitions this implementation makes (QEMU's migrate_set_state calls for precopy). */
export const MIGRATION_TRANSITIONS: Readonly<Partial<Record<MigrationStatus, readonly MigrationStatus[]>>> = {
  none: ["setup"],
  completed: ["setup"],
  failed: ["setup"],
  cancelled: ["setup"],
  setup: ["active", "cancelling", "failed"],
  active: ["pre-switchover", "device", "completed", "cancelling", "failed"],
  "pre-switchover": ["device", "cancelling", "failed"],
  device: ["completed", "cancelling", "failed"],
  cancelling: ["cancelled", "failed"],
};

/**
 * The VM as a migration sees it. A machine implements this (the CLI wraps its `Machine`).
 *
 * Threading: the vCPU may run on this thread (then `stop()` resolves once the run loop has
 * left its slice) or in a worker on the shared memory (then `stop()` resolves once the worker
 * acknowledged). Dirty bits are taken through `memory.dirty(...)`; a worker-run vCPU must
 * have installed `memory.setSyncBarrier` so a sync sees every store.
 */
export interface MigratableVm {
  /** The address space (RAM blocks and dirty bitmaps). */
  readonly memory: GuestMemory;
  /** The machine type sent in the configuration section ("virt"). */
  readonly machineName: string;
  /** The VM's UUID (sent and checked with validate-uuid). */
  readonly uuid?: Uint8Array;
  /** The current run state (QEMU's RunState). */
  readonly runState: RunState;
  /** Registers the device sections (not RAM, not globalstate: the migration adds those). */
  registerDevices(registry: SaveVmRegistry): void;
  /** Stops the vCPUs; resolves when none runs any more; the run state becomes `state`. */
  stop(state: RunState): Promise<void>;
  /** Runs the vCPUs again; the run state becomes "running". */
  resume(): Promise<void>;
  /** Sets the run state without running or stopping (postmigrate, inmigrate, paused). */
  setRunState(state: RunState): void;
  /** Auto-converge: the vCPU sleeps `percent`% of the time (0 = off). */
  setThrottle(percent: number): void;
}

/** query-migrate's `ram` member. */
export interface MigrationRamInfo extends Omit<RamCounters, "remaining"> {
  remaining?: number;
  mbps: number;
  "dirty-pages-rate"?: number;
  "pages-per-second": number;
}

/** query-migrate's answer (QEMU's MigrationInfo, the members this implementation fills). */
export interface MigrationInfo {
  status?: MigrationStatus;
  "total-time"?: number;
  "expected-downtime"?: number;
  downtime?: number;
  "setup-time"?: number;
  ram?: MigrationRamInfo;
  "xbzrle-cache"?: XbzrleCounters;
  "cpu-throttle-percentage"?: number;
  "error-desc"?: string;
}

/** A QMP event the migration emits (only with the `events` capability, as QEMU). */
export type MigrationEvent =
  | { event: "MIGRATION"; data: { status: MigrationStatus } }
  | { event: "MIGRATION_PASS"; data: { pass: number } };
