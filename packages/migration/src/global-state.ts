/**
 * The `globalstate` section (QEMU's migration/global_state.c), version 1: the source's run
 * state, `be32 size` (strlen + 1) then a 100-byte NUL-padded name. The destination resumes
 * the guest after an incoming migration only if that state is "running".
 *
 * @module
 */

import { vmstateBuffer, vmstateUint32, type VMStateDescription } from "@ferryvm/vmstate";
import { RUN_STATES, type RunState } from "./constants.ts";
import type { SaveStateEntry, SaveVmRegistry } from "./handlers.ts";

const RUNSTATE_SIZE = 100;

/** QEMU's GlobalState. */
export class GlobalState {
  size = 0;
  /** NUL-padded run-state name. */
  runstate = new Uint8Array(RUNSTATE_SIZE);
  /** Only for old machine types (store-global-state=off); then "running"/"paused" are not sent. */
  optional = false;
  /** Set when an incoming stream carried the section. */
  received = false;
  /** The run state loaded (valid when `received`). */
  state: RunState = "running";

  /** `initial`: the run state stored until the next `store` (the machine stores the real one before a save). */
  constructor(initial: RunState = "running") {
    this.store(initial);
  }

  /** Stores the run state to send (global_state_store_running / global_state_store). */
  store(state: RunState): void {
    const bytes = new TextEncoder().encode(state);
    this.runstate.fill(0);
    this.runstate.set(bytes);
  }

  /** The stored name up to its first NUL. */
  get runstateName(): string {
    const end = this.runstate.indexOf(0);
    return new TextDecoder().decode(this.runstate.subarray(0, end < 0 ? RUNSTATE_SIZE : end));
  }
}

/** QEMU's vmstate_globalstate. */
export const vmstateGlobalstate: VMStateDescription<GlobalState> = {
  name: "globalstate",
  version_id: 1,
  minimum_version_id: 1,
  needed: (s) => !s.optional || !["running", "paused"].includes(s.runstateName),
  pre_save: (s) => {
    const end = s.runstate.indexOf(0);
    s.size = (end < 0 ? RUNSTATE_SIZE : end) + 1;
  },
  post_load: (s) => {
    s.received = true;
    s.runstate[RUNSTATE_SIZE - 1] = 0;
    const name = s.runstateName;
    if (!(RUN_STATES as readonly string[]).includes(name)) throw new Error(`invalid run state '${name}'`);
    s.state = name as RunState;
  },
  fields: [vmstateUint32("size"), vmstateBuffer("runstate")],
};

/** Registers the section (QEMU registers it at startup, instance 0). */
export function registerGlobalState(registry: SaveVmRegistry, state: GlobalState): SaveStateEntry {
  return registry.registerVmstate(vmstateGlobalstate, state, { instanceId: 0 });
}

/**
 * The run state a VM enters once an incoming migration has loaded
 * (process_incoming_migration_bh): "running" if the stream had no globalstate or said
 * "running" (and autostart is on, else "paused"); otherwise the state the stream carried.
 */
export function incomingRunState(state: GlobalState, autostart = true): RunState {
  if (!state.received || state.state === "running") return autostart ? "running" : "paused";
  return state.state;
}
