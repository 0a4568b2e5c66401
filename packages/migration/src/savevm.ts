/**
 * Saving (QEMU's migration/savevm.c, source side): the header and configuration section,
 * the iterative sections (START at setup, PART per round, END at completion), the
 * non-iterative sections as FULL in stream order, EOF and the vmdesc JSON. Every section
 * body is followed by a footer `0x7E, be32 section_id`.
 *
 * `qemuSavevmState` is the whole non-live save (the VM is stopped); the step functions are
 * what a live migration drives.
 *
 * @module
 */

import { JsonWriter, MigrationError, saveState, vmstateSaveNeeded, type VMStateDescription } from "@ferryvm/vmstate";
import { saveConfiguration, type MachineConfig } from "./config.ts";
import {
  QEMU_VM_EOF,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_FOOTER,
  QEMU_VM_SECTION_FULL,
  QEMU_VM_SECTION_PART,
  QEMU_VM_SECTION_START,
  QEMU_VM_VMDESCRIPTION,
  TARGET_PAGE_SIZE,
} from "./constants.ts";
import { withContext } from "./errors.ts";
import type { PendingBytes, SaveStateEntry, SaveVmIterateContext, SaveVmRegistry } from "./handlers.ts";
import type { QemuFileWriter } from "./qemu-file.ts";

const utf8 = new TextEncoder();

/**
 * Holds the last vmdesc writer on purpose. V8 throws optimized code away at a full GC once
 * no live object has a hidden class the code embeds; with no JsonWriter left between two
 * saves, the switch-over's vmstate code ran unoptimized after the VM had idled for a while
 * (the device state took 1-2.5 ms instead of 0.2).
 */
const kept: { vmdesc?: JsonWriter } = {};

/** Writes a section header (save_section_header). */
export function saveSectionHeader(f: QemuFileWriter, se: SaveStateEntry, type: number): void {
  f.putU8(type);
  f.putBe32(se.section_id);
  if (type === QEMU_VM_SECTION_FULL || type === QEMU_VM_SECTION_START) {
    f.putStr8(se.idstr);
    f.putBe32(se.instance_id);
    f.putBe32(se.version_id);
  }
}

/** Writes a section footer (save_section_footer). */
export function saveSectionFooter(f: QemuFileWriter, se: SaveStateEntry): void {
  f.putU8(QEMU_VM_SECTION_FOOTER);
  f.putBe32(se.section_id);
}

function label(se: SaveStateEntry): string {
  return `savevm: section '${se.idstr}' instance ${se.instance_id} (id ${se.section_id})`;
}

function active(se: SaveStateEntry): boolean {
  return se.ops?.is_active === undefined || se.ops.is_active();
}

/** Magic, version and the configuration section (qemu_savevm_state_header). */
export function qemuSavevmStateHeader(f: QemuFileWriter, config: MachineConfig): void {
  f.putBe32(QEMU_VM_FILE_MAGIC);
  f.putBe32(QEMU_VM_FILE_VERSION);
  saveConfiguration(f, config);
}

/** START sections: each active iterative handler's save_setup (qemu_savevm_state_setup). */
export async function qemuSavevmStateSetup(f: QemuFileWriter, registry: SaveVmRegistry): Promise<void> {
  for (const se of registry.handlers) {
    if (se.ops?.save_setup === undefined || !active(se)) continue;
    saveSectionHeader(f, se, QEMU_VM_SECTION_START);
    try {
      await se.ops.save_setup(f);
    } catch (e) {
      throw withContext(`${label(se)}: save_setup`, e);
    }
    saveSectionFooter(f, se);
  }
}

const UNLIMITED: SaveVmIterateContext = { rateLimited: () => false };

/**
 * One round of PART sections (qemu_savevm_state_iterate). Stops at the first handler that
 * is not done (QEMU serializes the handlers so); returns true when every handler is done.
 */
export async function qemuSavevmStateIterate(
  f: QemuFileWriter,
  registry: SaveVmRegistry,
  ctx: SaveVmIterateContext = UNLIMITED,
): Promise<boolean> {
  for (const se of registry.handlers) {
    const ops = se.ops;
    if (ops?.save_live_iterate === undefined || !active(se)) continue;
    if (ops.is_active_iterate !== undefined && !ops.is_active_iterate()) continue;
    if (ctx.rateLimited()) return false;
    saveSectionHeader(f, se, QEMU_VM_SECTION_PART);
    let done: boolean;
    try {
      done = await ops.save_live_iterate(f, ctx);
    } catch (e) {
      throw withContext(`${label(se)}: save_live_iterate`, e);
    }
    saveSectionFooter(f, se);
    if (!done) return false;
  }
  return true;
}

/** END sections: each active handler's save_live_complete_precopy. */
export async function qemuSavevmStateCompletePrecopyIterable(f: QemuFileWriter, registry: SaveVmRegistry): Promise<void> {
  for (const se of registry.handlers) {
    if (se.ops?.save_live_complete_precopy === undefined || !active(se)) continue;
    saveSectionHeader(f, se, QEMU_VM_SECTION_END);
    try {
      await se.ops.save_live_complete_precopy(f);
    } catch (e) {
      throw withContext(`${label(se)}: save_live_complete_precopy`, e);
    }
    saveSectionFooter(f, se);
  }
}

/** Options of the non-iterable completion. */
export interface CompleteNonIterableOptions {
  /** Postcopy: no EOF (the stream goes on), no vmdesc. */
  inPostcopy?: boolean;
  /** Whether to send the vmdesc (should_send_vmdesc; default true). */
  sendVmdesc?: boolean;
}

/**
 * FULL sections for every non-iterative entry whose `needed` holds, in stream order, then EOF
 * and the vmdesc (qemu_savevm_state_complete_precopy_non_iterable). Returns the vmdesc text.
 */
export function savevmStateCompletePrecopyNonIterable(
  f: QemuFileWriter,
  registry: SaveVmRegistry,
  options: CompleteNonIterableOptions = {},
): string {
  const vmdesc = new JsonWriter();
  kept.vmdesc = vmdesc;
  vmdesc.startObject();
  vmdesc.int("page_size", TARGET_PAGE_SIZE);
  vmdesc.startArray("devices");
  for (const se of registry.handlers) {
    if (se.vmsd === undefined && se.ops?.save_state === undefined) continue;
    if (se.vmsd !== undefined && !vmstateSaveNeeded(se.vmsd as VMStateDescription<unknown>, se.opaque)) continue;
    vmdesc.startObject();
    vmdesc.str("name", se.idstr);
    vmdesc.int("instance_id", se.instance_id);
    saveSectionHeader(f, se, QEMU_VM_SECTION_FULL);
    try {
      if (se.vmsd !== undefined) {
        saveState(f, se.vmsd as VMStateDescription<unknown>, se.opaque, { vmdesc });
      } else {
        const start = f.position;
        se.ops!.save_state!(f);
        const size = f.position - start;
        vmdesc.int("size", size);
        vmdesc.startArray("fields");
        vmdesc.startObject();
        vmdesc.str("name", "data");
        vmdesc.int("size", size);
        vmdesc.str("type", "buffer");
        vmdesc.endObject();
        vmdesc.endArray();
      }
    } catch (e) {
      throw withContext(`${label(se)}: save`, e);
    }
    saveSectionFooter(f, se);
    vmdesc.endObject();
  }
  if (!options.inPostcopy) f.putU8(QEMU_VM_EOF);
  vmdesc.endArray();
  vmdesc.endObject();
  const text = vmdesc.toString();
  if ((options.sendVmdesc ?? true) && !options.inPostcopy) {
    const bytes = utf8.encode(text);
    if (bytes.includes(0)) throw new MigrationError("savevm: vmdesc contains a NUL byte");
    f.putU8(QEMU_VM_VMDESCRIPTION);
    f.putBe32(bytes.length);
    f.putBytes(bytes);
  }
  return text;
}

/** END sections, then FULL sections, EOF and vmdesc (qemu_savevm_state_complete_precopy). */
export async function qemuSavevmStateCompletePrecopy(
  f: QemuFileWriter,
  registry: SaveVmRegistry,
  options: CompleteNonIterableOptions = {},
): Promise<string> {
  await qemuSavevmStateCompletePrecopyIterable(f, registry);
  const vmdesc = savevmStateCompletePrecopyNonIterable(f, registry, options);
  await f.flush();
  return vmdesc;
}

/** Sum of every active handler's pending bytes (qemu_savevm_state_pending_estimate/_exact). */
export function qemuSavevmStatePending(registry: SaveVmRegistry, exact: boolean): PendingBytes {
  const sum: PendingBytes = { must_precopy: 0, can_postcopy: 0 };
  for (const se of registry.handlers) {
    const ops = se.ops;
    if (ops === undefined || !active(se)) continue;
    const hook = exact ? ops.state_pending_exact ?? ops.state_pending_estimate : ops.state_pending_estimate;
    if (hook === undefined) continue;
    const p = hook.call(ops);
    sum.must_precopy += p.must_precopy;
    sum.can_postcopy += p.can_postcopy;
  }
  return sum;
}

/** save_cleanup of every handler (qemu_savevm_state_cleanup). */
export function qemuSavevmStateCleanup(registry: SaveVmRegistry): void {
  for (const se of registry.handlers) se.ops?.save_cleanup?.();
}

/** Options of a whole save. */
export interface SaveVmOptions extends MachineConfig, CompleteNonIterableOptions {}

/**
 * The whole non-live save (qemu_savevm_state): header, configuration, setup (START),
 * iterate until done (PART), complete (END), FULL sections, EOF, vmdesc; flushed, not
 * closed. The VM must be stopped. Returns the vmdesc text.
 */
export async function qemuSavevmState(f: QemuFileWriter, registry: SaveVmRegistry, options: SaveVmOptions): Promise<string> {
  try {
    qemuSavevmStateHeader(f, options);
    await qemuSavevmStateSetup(f, registry);
    await f.flush();
    while (!(await qemuSavevmStateIterate(f, registry))) await f.flush();
    return await qemuSavevmStateCompletePrecopy(f, registry, options);
  } finally {
    qemuSavevmStateCleanup(registry);
  }
}
