/**
 * The configuration section (QEMU's vmstate_configuration in migration/savevm.c): right
 * after the header, `0x07, be32 len, machine name`, then optional subsections
 * `configuration/capabilities` (be32 n, n × str8) and `configuration/uuid` (16 bytes). No
 * section id, no footer, not in the vmdesc.
 *
 * @module
 */

import { MigrationError } from "@ferryvm/vmstate";
import { QEMU_VM_CONFIGURATION, QEMU_VM_SUBSECTION } from "./constants.ts";
import { hex, withContext } from "./errors.ts";
import type { QemuFileReader, QemuFileWriter } from "./qemu-file.ts";

/** QEMU 7.2's MigrationCapability names (qapi/migration.json). */
export const MIGRATION_CAPABILITIES = [
  "xbzrle",
  "rdma-pin-all",
  "auto-converge",
  "zero-blocks",
  "compress",
  "events",
  "postcopy-ram",
  "x-colo",
  "release-ram",
  "block",
  "return-path",
  "pause-before-switchover",
  "multifd",
  "dirty-bitmaps",
  "postcopy-blocktime",
  "late-block-activate",
  "x-ignore-shared",
  "validate-uuid",
  "background-snapshot",
  "zero-copy-send",
  "postcopy-preempt",
] as const;

/** Capabilities whose state must match on both sides, so they go into the stream (check_caps_background... `check_caps`). */
export const CONFIG_CHECKED_CAPABILITIES: readonly string[] = ["x-ignore-shared"];

/** The machine side of the configuration section. */
export interface MachineConfig {
  /** The machine type ("virt"); the loader accepts a received name that is a prefix of it, as QEMU. */
  readonly machineName: string;
  /** Enabled migration capabilities; only the checked ones (x-ignore-shared) are sent. */
  readonly capabilities?: readonly string[];
  /** The VM's UUID; sent (and checked on load) when the validate-uuid capability is on. */
  readonly uuid?: Uint8Array;
}

const MAX_MACHINE_NAME = 256;
const MAX_CAPABILITIES = 64;

/** Writes the configuration section (without subsections unless a capability needs them). */
export function saveConfiguration(f: QemuFileWriter, config: MachineConfig): void {
  const name = new TextEncoder().encode(config.machineName);
  if (name.length === 0 || name.length > MAX_MACHINE_NAME) throw new RangeError(`configuration: machine name of ${name.length} bytes`);
  f.putU8(QEMU_VM_CONFIGURATION);
  f.putBe32(name.length);
  f.putBytes(name);
  const caps = (config.capabilities ?? []).filter((c) => CONFIG_CHECKED_CAPABILITIES.includes(c));
  if (caps.length !== 0) {
    f.putU8(QEMU_VM_SUBSECTION);
    f.putStr8("configuration/capabilities");
    f.putBe32(1);
    f.putBe32(caps.length);
    for (const c of caps) f.putStr8(c);
  }
  if (config.capabilities?.includes("validate-uuid")) {
    if (config.uuid === undefined || config.uuid.length !== 16) throw new RangeError("configuration: validate-uuid needs a 16-byte uuid");
    f.putU8(QEMU_VM_SUBSECTION);
    f.putStr8("configuration/uuid");
    f.putBe32(1);
    f.putBytes(config.uuid);
  }
}

/** What a configuration section held. */
export interface ReceivedConfig {
  machineName: string;
  capabilities?: string[];
  uuid?: Uint8Array;
}

function uuidText(u: Uint8Array): string {
  return Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads the body of a configuration section (after the 0x07) and its subsections. */
export async function readConfiguration(f: QemuFileReader): Promise<ReceivedConfig> {
  const len = await f.readU32("configuration: len");
  if (len > MAX_MACHINE_NAME) throw new MigrationError(`configuration: machine name length ${len} exceeds ${MAX_MACHINE_NAME}`);
  const name = new TextDecoder().decode(await f.readBytes(len, MAX_MACHINE_NAME, "configuration: name"));
  const received: ReceivedConfig = { machineName: name };
  for (;;) {
    const head = await f.peek(2);
    if (head.length < 2 || head[0] !== QEMU_VM_SUBSECTION) break;
    const nameLen = head[1]!;
    const bytes = await f.peek(2 + nameLen);
    const sub = new TextDecoder().decode(bytes.subarray(2));
    if (bytes.length < 2 + nameLen || !sub.startsWith("configuration")) break;
    await f.skip(2 + nameLen);
    const version = await f.readU32(`${sub}: version`);
    if (sub === "configuration/capabilities") {
      if (version !== 1) throw new MigrationError(`configuration/capabilities: version ${version} not supported (local 1)`);
      const n = await f.readU32("configuration/capabilities: caps_count");
      if (n > MAX_CAPABILITIES) throw new MigrationError(`configuration/capabilities: caps_count ${n} exceeds ${MAX_CAPABILITIES}`);
      const caps: string[] = [];
      for (let i = 0; i < n; i++) {
        const c = await f.readStr8(`configuration/capabilities: capabilities[${i}]`);
        if (!(MIGRATION_CAPABILITIES as readonly string[]).includes(c)) {
          throw new MigrationError(`configuration/capabilities: received unknown capability '${c}'`);
        }
        caps.push(c);
      }
      received.capabilities = caps;
    } else if (sub === "configuration/uuid") {
      if (version !== 1) throw new MigrationError(`configuration/uuid: version ${version} not supported (local 1)`);
      received.uuid = await f.readBytes(16, 16, "configuration/uuid: uuid");
    } else {
      throw new MigrationError(`configuration: unknown subsection '${sub}'`);
    }
  }
  return received;
}

/** Checks what was received against the local machine (configuration_post_load). */
export function checkConfiguration(received: ReceivedConfig, local: MachineConfig): void {
  if (!local.machineName.startsWith(received.machineName) || received.machineName.length === 0) {
    // QEMU's configuration_post_load text, plus what to do about it.
    throw new MigrationError(
      `configuration: Machine type received is '${received.machineName}' and local is '${local.machineName}'` +
        ` (a stream loads only into the machine type that saved it: start this side with -M ${received.machineName})`,
    );
  }
  const localCaps = local.capabilities ?? [];
  for (const cap of CONFIG_CHECKED_CAPABILITIES) {
    const source = received.capabilities?.includes(cap) ?? false;
    const target = localCaps.includes(cap);
    if (source !== target) {
      throw new MigrationError(`configuration: capability ${cap} is ${target ? "on" : "off"} here, but the stream has it ${source ? "on" : "off"}`);
    }
  }
  if (localCaps.includes("validate-uuid") && local.uuid !== undefined && received.uuid !== undefined) {
    if (uuidText(local.uuid) !== uuidText(received.uuid)) {
      throw new MigrationError(`configuration: UUID received is ${uuidText(received.uuid)} and local is ${uuidText(local.uuid)}`);
    }
  }
}

/** Reads and checks the configuration section, whose type byte must come next. */
export async function loadConfiguration(f: QemuFileReader, local: MachineConfig): Promise<ReceivedConfig> {
  const type = await f.readU8("configuration section");
  if (type !== QEMU_VM_CONFIGURATION) throw new MigrationError(`configuration section missing (section type ${hex(type)} at offset ${f.position - 1})`);
  let received: ReceivedConfig;
  try {
    received = await readConfiguration(f);
  } catch (e) {
    throw e instanceof MigrationError && e.message.startsWith("configuration") ? e : withContext("configuration", e);
  }
  checkConfiguration(received, local);
  return received;
}
