/**
 * The savevm registry (QEMU's `savevm_state.handlers`): every piece of VM state that goes
 * into a stream is a `SaveStateEntry`, either a VMState description with its object (a
 * device) or a set of `SaveVmHandlers` (an iterative section such as RAM, or an old-style
 * `save_state`/`load_state` pair).
 *
 * Entries keep QEMU's order: descending priority, ties in registration order
 * (savevm_state_handler_insert). The section id is the registration index.
 *
 * @module
 */

import { MigrationError, MigrationPriority, type VMStateDescription } from "@ferryvm/vmstate";
import type { QemuFileReader, QemuFileWriter } from "./qemu-file.ts";

/** What a section still has to send, in bytes (QEMU ≥ 8.0's state_pending_* split). */
export interface PendingBytes {
  /** Must be sent before the switchover. */
  must_precopy: number;
  /** May be sent in postcopy. */
  can_postcopy: number;
}

/** What the save loop offers an iterating handler. */
export interface SaveVmIterateContext {
  /** True when the rate limiter says to stop sending for now (qemu_file_rate_limit). */
  rateLimited(): boolean;
}

/**
 * QEMU's `SaveVMHandlers`. Hooks may be async; a throw fails the save or load. Names are
 * QEMU's (snake_case) so they read next to migration/savevm.c.
 */
export interface SaveVmHandlers {
  /** Old-style non-iterative save (the section is sent as FULL; vmdesc shows one buffer). */
  save_state?(f: QemuFileWriter): void;
  /** First part of an iterative section (sent in a START section). */
  save_setup?(f: QemuFileWriter): void | Promise<void>;
  /** One round (a PART section); returns true when nothing is left to send for now. */
  save_live_iterate?(f: QemuFileWriter, ctx: SaveVmIterateContext): boolean | Promise<boolean>;
  /** The rest, with the VM stopped (the END section). */
  save_live_complete_precopy?(f: QemuFileWriter): void | Promise<void>;
  /** A cheap estimate of what is left. */
  state_pending_estimate?(): PendingBytes;
  /** An exact figure (may sync dirty bitmaps). */
  state_pending_exact?(): PendingBytes;
  save_cleanup?(): void;
  load_setup?(): void | Promise<void>;
  /** Reads one START/PART/END/FULL section body of stream version `versionId`. */
  load_state?(f: QemuFileReader, versionId: number): Promise<void>;
  load_cleanup?(): void;
  /** An inactive section is skipped by every save step. */
  is_active?(): boolean;
  /** An active section may still skip the iterate step. */
  is_active_iterate?(): boolean;
}

/** One registered section (QEMU's SaveStateEntry). */
export interface SaveStateEntry {
  readonly idstr: string;
  readonly instance_id: number;
  /** The registration index; sent in section headers and footers. */
  readonly section_id: number;
  readonly version_id: number;
  readonly priority: number;
  readonly vmsd?: VMStateDescription<never>;
  readonly opaque?: unknown;
  readonly ops?: SaveVmHandlers;
  /** Whether the section is iterative (has save_setup). */
  readonly is_ram: boolean;
}

/** Instance id "pick the next free one" (VMSTATE_INSTANCE_ID_ANY). */
export const VMSTATE_INSTANCE_ID_ANY = -1;

/** Per-load bookkeeping of an entry (QEMU's se->load_version_id / load_section_id). */
export interface LoadedSection {
  readonly entry: SaveStateEntry;
  readonly section_id: number;
  readonly version_id: number;
}

/** The set of sections a VM saves and loads (QEMU's global savevm_state, one per VM here). */
export class SaveVmRegistry {
  readonly #entries: SaveStateEntry[] = [];
  #nextSectionId = 0;

  /** Entries in stream order: descending priority, ties in registration order. */
  get handlers(): readonly SaveStateEntry[] {
    return this.#entries;
  }

  #instanceId(idstr: string, instanceId: number): number {
    if (instanceId === VMSTATE_INSTANCE_ID_ANY) {
      let id = 0;
      for (const se of this.#entries) if (se.idstr === idstr && id <= se.instance_id) id = se.instance_id + 1;
      return id;
    }
    if (!Number.isInteger(instanceId) || instanceId < 0 || instanceId > 0xffffffff) {
      throw new RangeError(`savevm: instance id ${instanceId} of '${idstr}' is not a u32`);
    }
    if (this.find(idstr, instanceId) !== undefined) {
      throw new MigrationError(`savevm: '${idstr}' instance ${instanceId} is already registered`);
    }
    return instanceId;
  }

  #insert(entry: Omit<SaveStateEntry, "section_id" | "instance_id">, instanceId: number): SaveStateEntry {
    const bytes = new TextEncoder().encode(entry.idstr);
    if (bytes.length === 0 || bytes.length > 255) throw new RangeError(`savevm: idstr '${entry.idstr}' must be 1..255 bytes`);
    if (!Number.isInteger(entry.version_id) || entry.version_id < 0 || entry.version_id > 0xffffffff) {
      throw new RangeError(`savevm: version ${entry.version_id} of '${entry.idstr}' is not a u32`);
    }
    const se: SaveStateEntry = {
      ...entry,
      instance_id: this.#instanceId(entry.idstr, instanceId),
      section_id: this.#nextSectionId++,
    };
    const at = this.#entries.findIndex((e) => e.priority < se.priority);
    if (at < 0) this.#entries.push(se);
    else this.#entries.splice(at, 0, se);
    return se;
  }

  /**
   * Registers a device's state (vmstate_register / vmstate_register_any with
   * `instanceId` omitted). The idstr defaults to the description's name.
   */
  registerVmstate<T>(
    vmsd: VMStateDescription<T>,
    opaque: T,
    options: { idstr?: string; instanceId?: number } = {},
  ): SaveStateEntry {
    return this.#insert(
      {
        idstr: options.idstr ?? vmsd.name,
        version_id: vmsd.version_id,
        priority: vmsd.priority ?? MigrationPriority.DEFAULT,
        vmsd: vmsd as unknown as VMStateDescription<never>,
        opaque,
        is_ram: false,
      },
      options.instanceId ?? VMSTATE_INSTANCE_ID_ANY,
    );
  }

  /** Registers a set of handlers (register_savevm_live). */
  registerSaveVmLive(idstr: string, instanceId: number, versionId: number, ops: SaveVmHandlers): SaveStateEntry {
    return this.#insert(
      { idstr, version_id: versionId, priority: MigrationPriority.DEFAULT, ops, is_ram: ops.save_setup !== undefined },
      instanceId,
    );
  }

  /** Removes an entry (unregister_savevm / vmstate_unregister). */
  unregister(se: SaveStateEntry): void {
    const at = this.#entries.indexOf(se);
    if (at >= 0) this.#entries.splice(at, 1);
  }

  /** The entry for a section header's idstr and instance (find_se). */
  find(idstr: string, instanceId: number): SaveStateEntry | undefined {
    return this.#entries.find((se) => se.idstr === idstr && se.instance_id === instanceId);
  }
}
