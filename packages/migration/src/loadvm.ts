/**
 * Loading (QEMU's migration/savevm.c, destination side): header checks, the configuration
 * section, then the section loop — START/FULL (header with idstr, instance, version),
 * PART/END (section id only), COMMAND, EOF — each section checked against the registry and
 * followed by its footer; the vmdesc at the end is skipped.
 *
 * The stream is untrusted: every number is checked before use, nothing is allocated from
 * an unchecked length, and every failure is a `MigrationError` naming section and field
 * (a `ShortReadError` when the stream ends early).
 *
 * @module
 */

import { loadState, MigrationError, ShortReadError, type VMStateDescription } from "@ferryvm/vmstate";
import { loadConfiguration, type MachineConfig, type ReceivedConfig } from "./config.ts";
import {
  MIG_CMD_ARGS,
  MigCmd,
  QEMU_VM_COMMAND,
  QEMU_VM_EOF,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  QEMU_VM_FILE_VERSION_COMPAT,
  QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_FOOTER,
  QEMU_VM_SECTION_FULL,
  QEMU_VM_SECTION_PART,
  QEMU_VM_SECTION_START,
  QEMU_VM_SUBSECTION,
  QEMU_VM_VMDESCRIPTION,
  SECTION_TYPE_NAMES,
} from "./constants.ts";
import { hex, printable, withContext } from "./errors.ts";
import type { LoadedSection, SaveStateEntry, SaveVmRegistry } from "./handlers.ts";
import type { QemuFileReader } from "./qemu-file.ts";

/** Options of a load. */
export interface LoadVmOptions extends MachineConfig {
  /** MIG_CMD_OPEN_RETURN_PATH: the source wants a return path. Without it the command is accepted and ignored. */
  onOpenReturnPath?(): void | Promise<void>;
  /** MIG_CMD_PING: answer with a PONG on the return path. */
  onPing?(value: number): void | Promise<void>;
}

/** What a load saw. */
export interface LoadVmResult {
  readonly configuration: ReceivedConfig;
  /** Sections loaded (the last header seen for each section id), in stream order. */
  readonly sections: readonly LoadedSection[];
  /** Length of the vmdesc skipped at the end, or undefined when the stream had none. */
  readonly vmdescLength: number | undefined;
}

/** Magic and version (qemu_loadvm_state_header, first half). */
export async function loadvmHeader(f: QemuFileReader): Promise<void> {
  const magic = await f.readU32("header: magic");
  if (magic !== QEMU_VM_FILE_MAGIC) {
    throw new MigrationError(`loadvm: not a migration stream (magic ${hex(magic)}, expected ${hex(QEMU_VM_FILE_MAGIC)})`);
  }
  const version = await f.readU32("header: version");
  if (version === QEMU_VM_FILE_VERSION_COMPAT) {
    throw new MigrationError("loadvm: SaveVM v2 format is obsolete and no longer supported (stream version 2, need 3)");
  }
  if (version !== QEMU_VM_FILE_VERSION) {
    throw new MigrationError(`loadvm: unsupported migration stream version ${version} (need ${QEMU_VM_FILE_VERSION})`);
  }
}

function label(se: SaveStateEntry, sectionId: number): string {
  return `loadvm: section '${se.idstr}' instance ${se.instance_id} (id ${sectionId})`;
}

async function checkSectionFooter(f: QemuFileReader, se: SaveStateEntry, sectionId: number): Promise<void> {
  const mark = await f.readU8(`${label(se, sectionId)}: footer`);
  if (mark !== QEMU_VM_SECTION_FOOTER) {
    if (mark === QEMU_VM_SUBSECTION) {
      // the engine leaves a subsection it cannot read whole: a stream cut inside its header
      const head = await f.peek(1);
      const need = head.length === 0 ? 1 : 1 + head[0]! + 4;
      const got = (await f.peek(need)).length;
      if (got < need) {
        throw new ShortReadError(f.position, need, got, `${label(se, sectionId)}: subsection header`);
      }
      throw new MigrationError(`${label(se, sectionId)}: subsection '${new TextDecoder().decode((await f.peek(need)).subarray(1, need - 4))}' not understood here (offset ${f.position - 1})`);
    }
    throw new MigrationError(`${label(se, sectionId)}: missing section footer (byte ${hex(mark)} at offset ${f.position - 1})`);
  }
  const id = await f.readU32(`${label(se, sectionId)}: footer section id`);
  if (id !== sectionId) {
    throw new MigrationError(`${label(se, sectionId)}: mismatched section id in footer: read ${hex(id)}, expected ${hex(sectionId)}`);
  }
}

async function vmstateLoad(f: QemuFileReader, se: SaveStateEntry, sectionId: number, versionId: number): Promise<void> {
  try {
    if (se.vmsd !== undefined) {
      await loadState(f, se.vmsd as VMStateDescription<unknown>, se.opaque, versionId);
    } else if (se.ops?.load_state !== undefined) {
      await se.ops.load_state(f, versionId);
    } else {
      throw new MigrationError("no load_state handler");
    }
  } catch (e) {
    throw withContext(label(se, sectionId), e);
  }
}

async function processCommand(f: QemuFileReader, options: LoadVmOptions): Promise<void> {
  const cmd = await f.readU16("command: cmd");
  const len = await f.readU16("command: len");
  const args = MIG_CMD_ARGS[cmd];
  if (cmd === MigCmd.INVALID || args === undefined) {
    throw new MigrationError(`loadvm: command ${hex(cmd)} unknown (len ${hex(len)})`);
  }
  if (args.len !== -1 && args.len !== len) {
    throw new MigrationError(`loadvm: command ${args.name} received with bad length - expecting ${args.len}, got ${len}`);
  }
  switch (cmd) {
    case MigCmd.OPEN_RETURN_PATH:
      await options.onOpenReturnPath?.();
      return;
    case MigCmd.PING: {
      const value = await f.readU32("command PING: value");
      await options.onPing?.(value);
      return;
    }
    default:
      throw new MigrationError(`loadvm: command ${args.name} (len ${len}) is not supported yet`);
  }
}

/**
 * The section loop (qemu_loadvm_state_main) up to and including EOF. `loaded` maps the
 * stream's section ids to entries (QEMU's se->load_section_id).
 */
export async function qemuLoadvmStateMain(
  f: QemuFileReader,
  registry: SaveVmRegistry,
  options: LoadVmOptions,
  loaded: Map<number, LoadedSection> = new Map(),
): Promise<LoadedSection[]> {
  const order: LoadedSection[] = [];
  for (;;) {
    const typeOffset = f.position;
    const type = await f.readU8("section type");
    switch (type) {
      case QEMU_VM_SECTION_START:
      case QEMU_VM_SECTION_FULL: {
        const what = SECTION_TYPE_NAMES[type]!;
        const sectionId = await f.readU32(`${what} section header: section_id`);
        const idstr = await f.readStr8(`${what} section ${sectionId} header: idstr`);
        const instanceId = await f.readU32(`${what} section '${idstr}': instance_id`);
        const versionId = await f.readU32(`${what} section '${idstr}': version_id`);
        const se = registry.find(idstr, instanceId);
        if (se === undefined) {
          throw new MigrationError(
            `loadvm: unknown section '${printable(idstr)}' instance ${instanceId} (section id ${sectionId}, ${what} at offset ${typeOffset}): ` +
              "the saved VM's configuration does not match this one",
          );
        }
        if (versionId > se.version_id) {
          // QEMU's "...too new" text; a newer version means a newer release changed this device's
          // state in a way older releases cannot read (versions break backward migration).
          throw new MigrationError(
            `loadvm: version ${versionId} too new for '${idstr}' (local ${se.version_id}): ` +
              "the stream comes from a newer release whose state for this device this release cannot read",
          );
        }
        if (se.vmsd !== undefined && versionId < se.vmsd.minimum_version_id) {
          throw new MigrationError(
            `loadvm: version ${versionId} too old for '${idstr}' (local minimum ${se.vmsd.minimum_version_id})`,
          );
        }
        if (type === QEMU_VM_SECTION_START && se.ops?.load_state === undefined) {
          throw new MigrationError(`loadvm: START section for non-iterative section '${idstr}' (id ${sectionId})`);
        }
        const prev = loaded.get(sectionId);
        if (prev !== undefined && prev.entry !== se) {
          throw new MigrationError(`loadvm: section id ${sectionId} used by both '${prev.entry.idstr}' and '${idstr}'`);
        }
        const section: LoadedSection = { entry: se, section_id: sectionId, version_id: versionId };
        loaded.set(sectionId, section);
        if (prev === undefined) order.push(section);
        await vmstateLoad(f, se, sectionId, versionId);
        await checkSectionFooter(f, se, sectionId);
        break;
      }
      case QEMU_VM_SECTION_PART:
      case QEMU_VM_SECTION_END: {
        const what = SECTION_TYPE_NAMES[type]!;
        const sectionId = await f.readU32(`${what} section header: section_id`);
        const section = loaded.get(sectionId);
        if (section === undefined) {
          throw new MigrationError(`loadvm: unknown section id ${sectionId} in ${what} section at offset ${typeOffset}`);
        }
        if (section.entry.ops?.load_state === undefined) {
          throw new MigrationError(`loadvm: ${what} section for non-iterative section '${section.entry.idstr}' (id ${sectionId})`);
        }
        await vmstateLoad(f, section.entry, sectionId, section.version_id);
        await checkSectionFooter(f, section.entry, sectionId);
        break;
      }
      case QEMU_VM_COMMAND:
        await processCommand(f, options);
        break;
      case QEMU_VM_EOF:
        return order;
      default:
        throw new MigrationError(`loadvm: unknown section type ${hex(type)} at offset ${typeOffset}`);
    }
  }
}

const VMDESC_CHUNK = 0x1000;

/**
 * The whole load (qemu_loadvm_state): header, configuration, load_setup of the handlers,
 * sections until EOF, then the vmdesc is skipped (a missing vmdesc is not an error, as in
 * QEMU). load_cleanup runs in every case.
 */
export async function qemuLoadvmState(f: QemuFileReader, registry: SaveVmRegistry, options: LoadVmOptions): Promise<LoadVmResult> {
  await loadvmHeader(f);
  const configuration = await loadConfiguration(f, options);
  try {
    for (const se of registry.handlers) {
      const ops = se.ops;
      if (ops?.load_setup === undefined) continue;
      if (ops.is_active !== undefined && !ops.is_active()) continue;
      try {
        await ops.load_setup();
      } catch (e) {
        throw withContext(`loadvm: section '${se.idstr}': load_setup`, e);
      }
    }
    const sections = await qemuLoadvmStateMain(f, registry, options);
    let vmdescLength: number | undefined;
    if (!(await f.atEnd())) {
      const type = await f.readU8("vmdesc section type");
      if (type !== QEMU_VM_VMDESCRIPTION) {
        throw new MigrationError(`loadvm: expected the vmdesc section after EOF, got section type ${hex(type)}`);
      }
      vmdescLength = await f.readU32("vmdesc: length");
      for (let left = vmdescLength; left > 0; left -= Math.min(left, VMDESC_CHUNK)) {
        await f.skip(Math.min(left, VMDESC_CHUNK), "vmdesc");
      }
    }
    return { configuration, sections, vmdescLength };
  } finally {
    for (const se of registry.handlers) se.ops?.load_cleanup?.();
  }
}
