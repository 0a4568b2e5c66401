/**
 * The `virt` board's part of `vm-cli run`'s command line, spelled as QEMU's: `-append`,
 * `-initrd`, `-drive`, `-device virtio-*-device`, `-global virtio-mmio.force-legacy=`,
 * `-M virt,dumpdtb=FILE`, and `-bios default` meaning the OpenSBI shipped in
 * `@ferryvm/devices`.
 *
 * {@link splitVirtOptions} takes these options out of the argument list (the rest goes to
 * `parseRunArgs`); {@link createVirtMachine} opens the disks and files and creates the
 * machine; {@link dumpDtb} is `dumpdtb=`'s "write and exit".
 *
 * ```
 * -drive file=PATH,format=raw,if=virtio[,readonly=on][,id=ID][,cache=...][,media=disk][,serial=S]
 * -drive file=PATH,if=none,format=raw,id=ID   -device virtio-blk-device,drive=ID[,bus=virtio-mmio-bus.N][,serial=S]
 * -device virtio-rng-device[,bus=...]   -device virtio-serial-device[,bus=...] [-device virtconsole[,chardev=...]]
 * -global virtio-mmio.force-legacy=on|off|true|false
 * ```
 * QEMU's `if=virtio` makes a PCI device on `virt`; this machine has no PCI, so it becomes a
 * virtio-blk-device on a virtio-mmio slot (placed after the `-device`s, as QEMU creates them).
 *
 * @module
 */

import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  createMachine,
  DEFAULT_FIRMWARE_URL,
  openFileBlockBackend,
  type Machine,
  type MachineOptions,
  type VirtioDeviceSpec,
} from "@ferryvm/devices";
import {
  findDeviceClass,
  formatDeviceHelp,
  globalApplies,
  parseGlobalProperty,
  parsePropertyValue,
  PropertyError,
  VIRT_DEVICE_CLASSES,
  type DeviceClass,
  type GlobalProperty,
} from "@ferryvm/devices";
import { parseKeyVals, UsageError } from "./args.ts";

export interface DriveOption {
  file: string;
  id: string | undefined;
  interface: "virtio" | "none";
  readOnly: boolean;
  serial: string | undefined;
}

export type DeviceOption =
  | { driver: "virtio-blk-device"; drive: string; bus: number | undefined; serial: string | undefined; properties: Record<string, string> }
  | { driver: "virtio-rng-device"; bus: number | undefined; properties: Record<string, string> }
  | { driver: "virtio-serial-device"; bus: number | undefined; properties: Record<string, string> };

export interface VirtCliOptions {
  /** What is left for `parseRunArgs` (with `-bios default` pointing at the shipped OpenSBI). */
  argv: string[];
  append: string | undefined;
  initrd: string | undefined;
  drives: DriveOption[];
  devices: DeviceOption[];
  /** `-global DRIVER.PROP=VALUE`, in order (checked when the machine is created). */
  globals: GlobalProperty[];
  /** `-device DRIVER,help` / `-device help`: print and exit. */
  help: string | undefined;
  /** `-M virt,dumpdtb=FILE`. */
  dumpdtb: string | undefined;
}

/** The shipped OpenSBI fw_dynamic (what `-bios default` loads). */
export const SHIPPED_FIRMWARE_PATH: string = fileURLToPath(DEFAULT_FIRMWARE_URL);

const TAKES_ARG = new Set(["append", "initrd", "drive", "device", "global"]);

function onOff(value: string, opt: string, key: string): boolean {
  if (value === "on" || value === "true" || value === "yes") return true;
  if (value === "off" || value === "false" || value === "no") return false;
  throw new UsageError(`${opt}: ${key} must be on or off, got '${value}'`);
}

function onlyKeys(kv: Map<string, string>, allowed: readonly string[], opt: string, what: string): void {
  for (const k of kv.keys()) {
    if (!allowed.includes(k)) throw new UsageError(`${opt}: ${what} property '${k}' is not supported (supported: ${allowed.join(", ")})`);
  }
}

function parseBus(value: string | undefined, opt: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^virtio-mmio-bus\.(\d+)$/.exec(value);
  if (m === null || Number(m[1]) > 7) throw new UsageError(`${opt}: Bus '${value}' not found (virtio-mmio-bus.0 .. virtio-mmio-bus.7)`);
  return Number(m[1]);
}

function parseDrive(value: string, opt: string): DriveOption {
  const kv = parseKeyVals(value, "file", opt);
  onlyKeys(kv, ["file", "format", "if", "id", "readonly", "cache", "media", "serial", "discard", "aio", "werror", "rerror"], opt, "drive");
  const file = kv.get("file");
  if (file === undefined || file === "") throw new UsageError(`${opt}: a file= is required`);
  const format = kv.get("format");
  if (format !== undefined && format !== "raw") throw new UsageError(`${opt}: format=${format} is not supported (only raw)`);
  const iface = kv.get("if") ?? "virtio";
  if (iface !== "virtio" && iface !== "none") {
    throw new UsageError(`${opt}: if=${iface} is not supported (use if=virtio, or if=none with -device virtio-blk-device)`);
  }
  const media = kv.get("media");
  if (media !== undefined && media !== "disk") throw new UsageError(`${opt}: media=${media} is not supported`);
  const id = kv.get("id");
  if (iface === "none" && id === undefined) throw new UsageError(`${opt}: if=none needs an id= for -device ...,drive=ID`);
  return {
    file,
    id,
    interface: iface,
    readOnly: kv.has("readonly") ? onOff(kv.get("readonly")!, opt, "readonly") : false,
    serial: kv.get("serial"),
  };
}

/** The device's own properties from `-device` (everything but driver/bus/id and `extra`), checked against its class. */
function deviceProperties(kv: Map<string, string>, cls: DeviceClass, opt: string, extra: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of kv) {
    if (k === "driver" || k === "bus" || k === "id" || extra.includes(k)) continue;
    if (!cls.properties.some((p) => p.name === k)) throw new UsageError(`${opt}: Property '${cls.driver}.${k}' not found`);
    out[k] = v;
  }
  return out;
}

const DEVICE_DRIVERS = ["virtio-blk-device", "virtio-rng-device", "virtio-serial-device", "virtconsole"];

function parseDevice(value: string, opt: string): DeviceOption | "virtconsole" | { help: string } {
  if (value === "help" || value === "?") {
    return { help: `Devices this machine takes:\n${DEVICE_DRIVERS.map((d) => `name "${d}", bus virtio-bus\n`).join("")}` };
  }
  const comma = value.indexOf(",");
  const head = comma < 0 ? value : value.slice(0, comma);
  if (value.slice(comma + 1) === "help" || value.slice(comma + 1) === "?") {
    const cls = findDeviceClass(head);
    if (cls === undefined) throw new UsageError(`${opt}: '${head}' is not a valid device model name`);
    return { help: formatDeviceHelp(cls) };
  }
  const kv = parseKeyVals(value, "driver", opt);
  const driver = kv.get("driver");
  switch (driver) {
    case "virtio-blk-device": {
      const properties = deviceProperties(kv, findDeviceClass(driver)!, opt);
      const drive = kv.get("drive");
      if (drive === undefined) throw new UsageError(`${opt}: virtio-blk-device: drive property not set`);
      delete properties["drive"];
      const serial = properties["serial"];
      delete properties["serial"];
      return { driver, drive, bus: parseBus(kv.get("bus"), opt), serial, properties };
    }
    case "virtio-rng-device":
      return { driver, bus: parseBus(kv.get("bus"), opt), properties: deviceProperties(kv, findDeviceClass(driver)!, opt, ["rng"]) };
    case "virtio-serial-device":
      return { driver, bus: parseBus(kv.get("bus"), opt), properties: deviceProperties(kv, findDeviceClass(driver)!, opt) };
    case "virtconsole":
      onlyKeys(kv, ["driver", "chardev", "id", "name", "nr"], opt, "virtconsole");
      return "virtconsole";
    default:
      throw new UsageError(
        `${opt}: device '${driver}' is not supported (supported: virtio-blk-device, virtio-rng-device, virtio-serial-device, virtconsole)`,
      );
  }
}

function parseGlobal(value: string, opt: string, out: VirtCliOptions): void {
  try {
    const g = parseGlobalProperty(value);
    // Checked here so a typo fails before anything starts (QEMU checks globals at device creation).
    const classes = VIRT_DEVICE_CLASSES.filter((c) => globalApplies(c, g.driver));
    if (classes.length === 0) throw new PropertyError(`no device type '${g.driver}' on this machine`);
    const defs = classes.flatMap((c) => c.properties.filter((p) => p.name === g.property).map((p) => ({ c, p })));
    if (defs.length === 0) throw new PropertyError(`Property '${g.driver}.${g.property}' not found`);
    for (const { c, p } of defs) parsePropertyValue(c.driver, p, g.value);
    out.globals.push(g);
  } catch (e) {
    if (e instanceof PropertyError) throw new UsageError(`${opt}: ${e.message}`);
    throw e;
  }
}

/** Takes the `virt` board's options out of `argv` (QEMU spelling, `-opt`, `--opt`, `--opt=value`). */
export function splitVirtOptions(argv: readonly string[]): VirtCliOptions {
  const out: VirtCliOptions = {
    argv: [], append: undefined, initrd: undefined, drives: [], devices: [], globals: [], help: undefined, dumpdtb: undefined,
  };
  let bios: string | undefined;
  let virtconsoles = 0;
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    let name = raw.startsWith("--") ? raw.slice(2) : raw.startsWith("-") ? raw.slice(1) : "";
    let inline: string | undefined;
    const eq = name.indexOf("=");
    if (raw.startsWith("--") && eq > 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const take = (): string => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new UsageError(`-${name}: requires an argument`);
      return argv[++i]!;
    };
    if (TAKES_ARG.has(name)) {
      const opt = `-${name}`;
      const value = take();
      if (name === "append") out.append = value;
      else if (name === "initrd") out.initrd = value;
      else if (name === "drive") out.drives.push(parseDrive(value, opt));
      else if (name === "global") parseGlobal(value, opt, out);
      else {
        const d = parseDevice(value, opt);
        if (d === "virtconsole") virtconsoles++;
        else if ("help" in d) out.help = d.help;
        else out.devices.push(d);
      }
      continue;
    }
    if (name === "M" || name === "machine") {
      // dumpdtb= is ours; the rest of -M goes on to parseRunArgs.
      const value = take();
      const parts = value.split(",");
      const kept = parts.filter((p) => !p.startsWith("dumpdtb="));
      for (const p of parts) if (p.startsWith("dumpdtb=")) out.dumpdtb = p.slice("dumpdtb=".length);
      if (out.dumpdtb === "") throw new UsageError(`-${name}: dumpdtb needs a file name`);
      if (kept.length > 0 && kept.join(",") !== "") out.argv.push(`-${name}`, kept.join(","));
      continue;
    }
    if (name === "bios") {
      bios = take();
      out.argv.push("-bios", bios === "default" ? SHIPPED_FIRMWARE_PATH : bios);
      continue;
    }
    out.argv.push(raw);
  }
  if (bios === undefined) out.argv.push("-bios", SHIPPED_FIRMWARE_PATH);
  if (virtconsoles > 0 && !out.devices.some((d) => d.driver === "virtio-serial-device")) {
    throw new UsageError("-device virtconsole: no virtio-serial-device to plug it into (add -device virtio-serial-device)");
  }
  if (virtconsoles > 1) throw new UsageError("-device virtconsole: only one console port is supported");
  return out;
}

/** Machine options for the board's devices, with the drives opened and the initrd read. */
export async function virtMachineOptions(
  virt: VirtCliOptions,
  readFile: (path: string) => Uint8Array,
): Promise<Partial<MachineOptions>> {
  const byId = new Map<string, DriveOption>();
  for (const d of virt.drives) {
    if (d.id === undefined) continue;
    if (byId.has(d.id)) throw new UsageError(`-drive: duplicate ID '${d.id}'`);
    byId.set(d.id, d);
  }
  const open = async (d: DriveOption) => {
    try {
      return await openFileBlockBackend(d.file, { readOnly: d.readOnly });
    } catch (e) {
      const code = e instanceof Error && "code" in e ? String((e as NodeJS.ErrnoException).code) : String(e);
      throw new UsageError(`-drive file=${d.file}: could not open disk image: ${code}`);
    }
  };
  const specs: VirtioDeviceSpec[] = [];
  const usedDrives = new Set<string>();
  for (const dev of virt.devices) {
    if (dev.driver === "virtio-blk-device") {
      const d = byId.get(dev.drive);
      if (d === undefined) throw new UsageError(`-device virtio-blk-device: Property 'virtio-blk-device.drive' can't find value '${dev.drive}'`);
      if (usedDrives.has(dev.drive)) throw new UsageError(`-device virtio-blk-device: drive '${dev.drive}' is already in use`);
      usedDrives.add(dev.drive);
      const serial = dev.serial ?? d.serial;
      specs.push({
        type: "virtio-blk-device",
        backend: await open(d),
        ...(dev.bus === undefined ? {} : { bus: dev.bus }),
        ...(serial === undefined ? {} : { serial }),
        properties: dev.properties,
      });
    } else {
      specs.push({ type: dev.driver, ...(dev.bus === undefined ? {} : { bus: dev.bus }), properties: dev.properties });
    }
  }
  for (const d of virt.drives) {
    if (d.interface !== "virtio") continue;
    specs.push({ type: "virtio-blk-device", backend: await open(d), ...(d.serial === undefined ? {} : { serial: d.serial }) });
  }
  const opts: Partial<MachineOptions> = { virtio: specs, globals: virt.globals };
  if (virt.append !== undefined) opts.bootargs = virt.append;
  if (virt.initrd !== undefined) {
    try {
      opts.initrd = readFile(virt.initrd);
    } catch (e) {
      const code = e instanceof Error && "code" in e ? String((e as NodeJS.ErrnoException).code) : String(e);
      throw new UsageError(`could not load ramdisk '${virt.initrd}': ${code}`);
    }
  }
  return opts;
}

/** createMachine with the board's options from the command line added. */
export async function createVirtMachine(
  options: MachineOptions,
  virt: VirtCliOptions | undefined,
  readFile: (path: string) => Uint8Array,
): Promise<Machine> {
  if (virt === undefined) return createMachine(options);
  if (virt.append !== undefined && options.kernel === undefined) throw new UsageError("-append only allowed with -kernel option");
  if (virt.initrd !== undefined && options.kernel === undefined) throw new UsageError("-initrd only allowed with -kernel option");
  return createMachine({ ...options, ...(await virtMachineOptions(virt, readFile)) });
}

/** `-M virt,dumpdtb=FILE`: writes the machine's device tree and returns the exit status (0). */
export function dumpDtb(machine: Machine, file: string, stderr: (text: string) => void): number {
  try {
    writeFileSync(file, machine.buildFdt());
  } catch (e) {
    throw new UsageError(`Failed to dump dtb to ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  stderr(`vm-cli: info: dtb dumped to ${file}. Exiting.\n`);
  return 0;
}
