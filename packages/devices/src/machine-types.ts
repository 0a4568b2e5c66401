/**
 * Versioned machine types and the device classes of the `virt` board.
 *
 * As in QEMU, a machine type fixes everything a guest can see and everything on the wire: a VM
 * started as `virt-1.0` stays a `virt-1.0` machine on every later release, so it can migrate to
 * and from any release that knows `virt-1.0`. `virt` is an alias of the newest type. Each
 * release that changes guest-visible state or the wire adds a type and pins the old behaviour
 * for every older type in a compat list (QEMU's `hw_compat_X_Y`): the list of `virt-X.Y` holds
 * the entries of every later release, newest release's entries first.
 *
 * What `virt-1.1` changed (each one of the techniques of QEMU's migration documentation):
 * - new state in a subsection enabled from the new type: virtio-rng's rate-limit quota
 *   (`virtio-rng-device.x-migrate-quota`, off for 1.0);
 * - a changed default pinned for the old type: `virtio-blk-device.num-queues` is one queue per
 *   hart from 1.1 (auto), one queue for 1.0;
 * - a retired field kept for the old type through a `_TEST` field: `ferryvm/virt`'s
 *   `plic_sources` (`virt-machine.x-plic-sources-field`, on for 1.0);
 * - the CPU's non-misa extensions travel in `cpu/isa_ext` (`riscv-cpu.x-migrate-isa-ext`);
 * - the firmware travels in its own ROM block (`virt-machine.x-firmware-rom`).
 *
 * @module
 */

import { type DeviceClass, type GlobalProperty, type PropertyDefinition } from "./properties.ts";

export interface MachineType {
  /** The versioned name ("virt-1.1"), what the configuration section carries. */
  readonly name: string;
  /** The unversioned alias this type answers to, when it is the newest ("virt"). */
  readonly alias?: string;
  /** What `-M` without a value picks. */
  readonly isDefault: boolean;
  readonly description: string;
  /** The compat list applied to this type's devices, in order (every later release's hw_compat). */
  readonly compat: readonly GlobalProperty[];
}

/** An unknown machine type (QEMU's "unsupported machine type"). */
export class MachineTypeError extends Error {
  override name = "MachineTypeError";
}

/** What virt-1.1 changed, pinned back for virt-1.0 and older (QEMU's hw_compat_X_Y). */
export const HW_COMPAT_1_0: readonly GlobalProperty[] = [
  { driver: "virtio-blk-device", property: "num-queues", value: "1" },
  { driver: "virtio-rng-device", property: "x-migrate-quota", value: "off" },
  { driver: "riscv-cpu", property: "x-migrate-isa-ext", value: "off" },
  { driver: "virt-machine", property: "x-plic-sources-field", value: "on" },
  { driver: "virt-machine", property: "x-firmware-rom", value: "off" },
];

const DESCRIPTION = "RISC-V VirtIO board";

/** Every machine type, newest first (the order `-M help` lists them). */
export const MACHINE_TYPES: readonly MachineType[] = [
  { name: "virt-1.1", alias: "virt", isDefault: true, description: DESCRIPTION, compat: [] },
  { name: "virt-1.0", isDefault: false, description: DESCRIPTION, compat: [...HW_COMPAT_1_0] },
];

/** The newest machine type (what `virt` means). */
export const LATEST_MACHINE_TYPE: MachineType = MACHINE_TYPES[0]!;

/** A machine type by name or alias; throws MachineTypeError (with QEMU's text) when unknown. */
export function findMachineType(name: string): MachineType {
  const t = MACHINE_TYPES.find((m) => m.name === name || m.alias === name);
  if (t === undefined) throw new MachineTypeError(`unsupported machine type '${name}' (known: ${machineTypeNames().join(", ")})`);
  return t;
}

/** Every name `-M` accepts: aliases and versioned names. */
export function machineTypeNames(): string[] {
  const names: string[] = [];
  for (const m of MACHINE_TYPES) {
    if (m.alias !== undefined) names.push(m.alias);
    names.push(m.name);
  }
  return names;
}

/** `-M help`, laid out as QEMU's (alias line first, "(default)" on the default type). */
export function formatMachineHelp(): string {
  const lines = ["Supported machines are:"];
  for (const m of MACHINE_TYPES) {
    if (m.alias !== undefined) lines.push(`${m.alias.padEnd(20)} ${m.description} (alias of ${m.name})`);
    lines.push(`${m.name.padEnd(20)} ${m.description}${m.isDefault ? " (default)" : ""}`);
  }
  return lines.join("\n") + "\n";
}

function bool(name: string, def: boolean, description?: string): PropertyDefinition {
  return { name, type: "bool", default: def, ...(description === undefined ? {} : { description }) };
}

/** A CPU extension this CPU does not implement: accepted only as off (so QEMU command lines that say so work). */
function absent(name: string): PropertyDefinition {
  return { name, type: "bool", default: false, allowed: [false], notAllowedReason: `FerryVM's CPU does not implement '${name}'` };
}

/** The board itself (`-M virt,prop=value`; compat entries name "virt-machine"). */
export const VIRT_MACHINE_CLASS: DeviceClass = {
  driver: "virt-machine",
  parents: ["machine"],
  description: DESCRIPTION,
  properties: [
    bool("x-plic-sources-field", false, "send ferryvm/virt's retired plic_sources field (machine types up to 1.0)"),
    bool("x-firmware-rom", true, "keep the firmware in a ROM block that migrates (machine types from 1.1)"),
  ],
};

/** The CPU model `rv64` (`-cpu rv64,prop=value`; QEMU's rv64-riscv-cpu, parent riscv-cpu). */
export const RV64_CPU_CLASS: DeviceClass = {
  driver: "rv64-riscv-cpu",
  parents: ["riscv-cpu", "cpu"],
  description: "RISC-V 64-bit CPU (RV64IMAC, Zicsr, Zifencei, Sstc)",
  properties: [
    { name: "i", type: "bool", default: true, allowed: [true], notAllowedReason: "I is the base ISA" },
    bool("m", true, "integer multiply and divide"),
    bool("a", true, "atomics"),
    bool("c", true, "compressed instructions"),
    bool("s", true, "supervisor mode"),
    bool("u", true, "user mode"),
    bool("Zicsr", true, "CSR instructions"),
    bool("Zifencei", true, "fence.i"),
    bool("sstc", true, "supervisor timer compare (stimecmp)"),
    bool("mmu", true, "Sv39/Sv48/Sv57 paging"),
    bool("pmp", true, "physical memory protection"),
    ...["e", "g", "f", "d", "v", "h", "Zihintpause", "Zfh", "Zfhmin", "zba", "zbb", "zbc", "zbs", "svinval", "svnapot", "svpbmt"].map(absent),
    bool("x-migrate-isa-ext", true, "send the cpu/isa_ext subsection (machine types from 1.1)"),
  ],
};

/** Names of the CPU's extension properties that a user may switch (in QEMU's order). */
export const CPU_EXTENSION_PROPERTIES: readonly string[] = ["m", "a", "c", "s", "u", "Zicsr", "Zifencei", "sstc", "mmu", "pmp"];

export const VIRTIO_MMIO_CLASS: DeviceClass = {
  driver: "virtio-mmio",
  parents: ["sys-bus-device"],
  properties: [bool("force-legacy", false, "virtio 0.9.5 (version 1) transport; QEMU's default is on")],
};

/** QEMU's VIRTIO_BLK_AUTO_NUM_QUEUES: num-queues' "one per hart". */
export const VIRTIO_BLK_AUTO_NUM_QUEUES = 0xffff;

export const VIRTIO_BLK_CLASS: DeviceClass = {
  driver: "virtio-blk-device",
  parents: ["virtio-device"],
  properties: [
    { name: "drive", type: "string", default: "", description: "the -drive id" },
    { name: "serial", type: "string", default: "", description: "disk serial number (VIRTIO_BLK_T_GET_ID)" },
    { name: "num-queues", type: "uint16", default: VIRTIO_BLK_AUTO_NUM_QUEUES, description: "request queues (65535: one per hart)" },
  ],
};

/** QEMU's virtio-rng max-bytes default (INT64_MAX: no limit). */
export const VIRTIO_RNG_NO_LIMIT = 0x7fff_ffff_ffff_ffffn;

export const VIRTIO_RNG_CLASS: DeviceClass = {
  driver: "virtio-rng-device",
  parents: ["virtio-device"],
  properties: [
    { name: "max-bytes", type: "uint64", default: VIRTIO_RNG_NO_LIMIT, description: "bytes of entropy the guest may take per period" },
    { name: "period", type: "uint32", default: 1 << 16, description: "the rate-limit period in ms" },
    bool("x-migrate-quota", true, "send the rate-limit quota in virtio-rng-device/quota (machine types from 1.1)"),
  ],
};

export const VIRTIO_SERIAL_CLASS: DeviceClass = {
  driver: "virtio-serial-device",
  parents: ["virtio-device"],
  properties: [{ name: "max_ports", type: "uint32", default: 1, allowed: [1], notAllowedReason: "only one console port is supported" }],
};

/** Every device class of the board, by driver name. */
export const VIRT_DEVICE_CLASSES: readonly DeviceClass[] = [
  VIRT_MACHINE_CLASS,
  RV64_CPU_CLASS,
  VIRTIO_MMIO_CLASS,
  VIRTIO_BLK_CLASS,
  VIRTIO_RNG_CLASS,
  VIRTIO_SERIAL_CLASS,
];

/** A class by its driver name (a parent name such as "riscv-cpu" names no class here). */
export function findDeviceClass(driver: string): DeviceClass | undefined {
  return VIRT_DEVICE_CLASSES.find((c) => c.driver === driver);
}

/** Whether some class of the board answers to `driver` (itself or as a parent), for checking `-global`. */
export function isKnownDriver(driver: string): boolean {
  return VIRT_DEVICE_CLASSES.some((c) => c.driver === driver || (c.parents ?? []).includes(driver));
}
