/**
 * `vm-cli run` arguments, spelled as QEMU's (softmmu/vl.c, qemu-options.hx): `-opt value`,
 * `--opt` the same as `-opt`, QEMU's `key=val,...` option syntax, plus GNU-style
 * `--opt=value` and our `--timeout SECONDS`.
 *
 * @module
 */

import { findMachineType, MACHINE_TYPES, MachineTypeError, RV64_CPU_CLASS, VIRT_MACHINE_CLASS } from "@ferryvm/devices";
import { parseChardev, parseSocketSpec, type SocketChardev, type StdioChardev } from "./chardev.ts";

export const MAX_SMP = 32;
export const MAX_ICOUNT_SHIFT = 10;

/** A command-line error; `main` prints it as `vm-cli: <message>` and exits 1. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * The arguments of a subcommand (`vm-cli migrate`, `vm-cli compat-check`) in order, a
 * `--name=value` split into name and value. `value()` is that inline value, or takes the next
 * argument; a missing one is a UsageError with the text `missing(name)`.
 */
export function* subcommandArgs(
  argv: readonly string[],
  missing: (name: string) => string,
): Generator<{ name: string; value(): string }> {
  for (let i = 0; i < argv.length; i++) {
    let name = argv[i]!;
    let inline: string | undefined;
    const eq = name.startsWith("--") ? name.indexOf("=") : -1;
    if (eq > 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const option = name;
    yield {
      name,
      value: (): string => {
        if (inline !== undefined) return inline;
        const v = argv[++i];
        if (v === undefined) throw new UsageError(missing(option));
        return v;
      },
    };
  }
}

export type SerialBackend = "mon:stdio" | "stdio" | "null" | "none";

export interface RunConfig {
  /** The machine type as given (`virt`, `virt-1.0`); @ferryvm/devices resolves the alias. */
  machine: string;
  /** `-M virt,prop=value`: the board's properties (virt-machine's). */
  machineProperties: Record<string, string>;
  /** `-cpu rv64,prop=value`: the CPU model's properties (extensions on/off). */
  cpuProperties: Record<string, string>;
  /** Bytes. */
  ramSize: number;
  smp: number;
  bios: "none" | "default" | { path: string };
  kernel: string | undefined;
  nographic: boolean;
  serial: SerialBackend | undefined;
  /** Instruction-counting shift (ns per instruction = 2^shift), or undefined for real time. */
  icountShift: number | undefined;
  timeoutSeconds: number | undefined;
  noReboot: boolean;
  cpu: string;
  /** Spike's `+signature=FILE`: dump [begin_signature, end_signature) at exit (riscv-arch-test). */
  signature: string | undefined;
  /** Bytes per signature line (Spike's `+signature-granularity`, default 4). */
  signatureGranularity: number;
  /** `-qmp`, `-monitor`, `-mon`: the monitors, in command-line order. */
  monitors: MonitorConfig[];
  /** `-name [guest=]NAME`: QMP query-name, HMP info name. */
  name: string | undefined;
  /** `-S`: start in the prelaunch state until `cont`. */
  startPaused: boolean;
  /** `-no-shutdown`: a guest poweroff pauses the machine (state `shutdown`) instead of exiting. */
  noShutdown: boolean;
  /** `-d` log items. */
  log: Set<LogItem>;
  /** `-D FILE`: where `-d` logs go (default stderr). */
  logFile: string | undefined;
  /** `-chardev socket,id=...` by id, for `-mon chardev=ID`. */
  chardevs: Map<string, SocketChardev | StdioChardev>;
  /** `-serial chardev:ID`, until parseRunArgs resolves it into `serial`. */
  serialChardev?: string;
  /** `-incoming file:PATH|exec:CMD|defer`: wait in `inmigrate` for a migration stream. */
  incoming: string | undefined;
  /**
   * `-accel tcg,thread=single|multi` (QEMU's MTTCG switch): "single" runs the harts on the main
   * thread, "multi" in a worker thread beside the devices, QMP and migration. Undefined (not
   * given): see {@link tcgThreadOf}.
   */
  tcgThread: "single" | "multi" | undefined;
  /** `-M help`, `-cpu help`, `-help`, `-version`: print and exit. */
  help: "machine" | "cpu" | "usage" | "version" | "log" | undefined;
}

/** A QMP (`control`) or HMP (`readline`) monitor on a socket or on stdio. */
export interface MonitorConfig {
  mode: "control" | "readline";
  /** A listening socket, or "stdio" (`-monitor stdio`). */
  chardev: SocketChardev | "stdio";
  /** `-qmp-pretty` / `pretty=on`: indented JSON. */
  pretty: boolean;
  /** `-mon chardev=ID`: the `-chardev` id, until parseRunArgs resolves it into `chardev`. */
  chardevId?: string;
}

/** QEMU's `-d` items we know. */
export const LOG_ITEMS = {
  guest_errors: "log when the guest OS does something invalid (eg accessing a non-existent register)",
  unimp: "log unimplemented functionality",
  int: "show interrupts/exceptions in short format",
  cpu_reset: "show CPU state before CPU resets",
} as const;
export type LogItem = keyof typeof LOG_ITEMS;

interface OptionDef {
  /** Takes an argument. */
  arg: boolean;
  apply?: (cfg: RunConfig, value: string, opt: string) => void;
  /** Known QEMU option we do not have yet. */
  unsupported?: true;
}

/** Every name `-M` takes (aliases and versioned types), from @ferryvm/devices' MACHINE_TYPES. */
export const MACHINES: readonly { name: string; desc: string }[] = MACHINE_TYPES.flatMap((m) => [
  ...(m.alias === undefined ? [] : [{ name: m.alias, desc: `${m.description} (alias of ${m.name})` }]),
  { name: m.name, desc: m.description + (m.isDefault ? " (default)" : "") },
]);
export const CPUS: readonly string[] = ["rv64"];

/** QEMU's size syntax: a number with an optional B/K/M/G/T suffix; a bare number is MiB. */
export function parseSize(text: string, opt: string): number {
  const m = /^(\d+(?:\.\d+)?)([bBkKmMgGtT]?)$/.exec(text.trim());
  if (m === null) throw new UsageError(`${opt}: invalid size '${text}' (expected e.g. 128M, 1G, 512)`);
  const n = Number(m[1]);
  const unit = (m[2] || "M").toUpperCase();
  const shift = { B: 0, K: 10, M: 20, G: 30, T: 40 }[unit as "B" | "K" | "M" | "G" | "T"];
  const bytes = Math.round(n * 2 ** shift);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`${opt}: invalid size '${text}'`);
  return bytes;
}

/** Splits QEMU's `value,key=val,...`; a leading bare value is returned under `implied`. */
export function parseKeyVals(text: string, implied: string, opt: string): Map<string, string> {
  const out = new Map<string, string>();
  text.split(",").forEach((part, i) => {
    if (part === "") throw new UsageError(`${opt}: empty option in '${text}'`);
    const eq = part.indexOf("=");
    if (eq < 0) {
      if (i !== 0) throw new UsageError(`${opt}: expected key=value, got '${part}'`);
      out.set(implied, part);
    } else {
      const key = part.slice(0, eq);
      if (out.has(key)) throw new UsageError(`${opt}: '${key}' given twice`);
      out.set(key, part.slice(eq + 1));
    }
  });
  return out;
}

function onlyKeys(kv: Map<string, string>, allowed: readonly string[], opt: string, what: string): void {
  for (const k of kv.keys()) {
    if (!allowed.includes(k)) {
      throw new UsageError(`${opt}: ${what} property '${k}' is not supported (supported: ${allowed.join(", ")})`);
    }
  }
}

function parseInt10(text: string, opt: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${opt}: invalid ${what} '${text}'`);
  return Number(text);
}

function applyMachine(cfg: RunConfig, value: string, opt: string): void {
  const kv = parseKeyVals(value, "type", opt);
  const type = kv.get("type");
  if (type === "help" || type === "?") {
    cfg.help = "machine";
    return;
  }
  const boardProps = VIRT_MACHINE_CLASS.properties.map((p) => p.name);
  for (const k of kv.keys()) {
    if (k === "type" || k === "accel" || k === "aia" || k === "aclint") continue;
    if (!boardProps.includes(k)) throw new UsageError(`${opt}: Property '${VIRT_MACHINE_CLASS.driver}.${k}' not found`);
    cfg.machineProperties[k] = kv.get(k)!;
  }
  for (const [key, allowed] of [["accel", "tcg"], ["aia", "none"], ["aclint", "off"]] as const) {
    const v = kv.get(key);
    if (v !== undefined && v !== allowed) throw new UsageError(`${opt}: ${key}=${v} is not supported yet (supported: ${key}=${allowed})`);
  }
  if (type === undefined) return;
  try {
    findMachineType(type);
  } catch (e) {
    if (e instanceof MachineTypeError) {
      throw new UsageError(`${opt}: unsupported machine type '${type}'\nUse -machine help to list supported machines`);
    }
    throw e;
  }
  cfg.machine = type;
}

/** `-cpu MODEL[,prop=value...]` (QEMU's -cpu rv64,c=off). */
function applyCpu(cfg: RunConfig, value: string, opt: string): void {
  const [model, ...props] = value.split(",");
  if (model === "help" || model === "?") {
    cfg.help = "cpu";
    return;
  }
  if (!CPUS.includes(model!)) throw new UsageError(`${opt}: unable to find CPU model '${model}' (use -cpu help to list them)`);
  cfg.cpu = model!;
  for (const p of props) {
    if (p === "") continue;
    // QEMU's legacy +feature / -feature spelling.
    const plus = /^([+-])(.+)$/.exec(p);
    const [k, v] = plus !== null ? [plus[2]!, plus[1] === "+" ? "on" : "off"] : p.includes("=") ? [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)] : [p, "on"];
    if (!RV64_CPU_CLASS.properties.some((d) => d.name === k)) throw new UsageError(`${opt}: Property '${RV64_CPU_CLASS.driver}.${k}' not found`);
    cfg.cpuProperties[k] = v;
  }
}

function applyMemory(cfg: RunConfig, value: string, opt: string): void {
  const kv = parseKeyVals(value, "size", opt);
  onlyKeys(kv, ["size"], opt, "memory");
  const size = kv.get("size");
  if (size === undefined) throw new UsageError(`${opt}: missing 'size'`);
  // QEMU rounds the RAM size up to 8 KiB.
  cfg.ramSize = Math.ceil(parseSize(size, opt) / 8192) * 8192;
}

function applySmp(cfg: RunConfig, value: string, opt: string): void {
  const kv = parseKeyVals(value, "cpus", opt);
  onlyKeys(kv, ["cpus", "maxcpus", "sockets", "dies", "clusters", "cores", "threads"], opt, "smp");
  const num = (k: string) => (kv.has(k) ? parseInt10(kv.get(k)!, opt, k) : undefined);
  const topo = ["sockets", "dies", "clusters", "cores", "threads"].map(num);
  const product = topo.reduce<number>((a, b) => a * (b ?? 1), 1);
  let cpus = num("cpus") ?? (topo.some((t) => t !== undefined) ? product : undefined) ?? num("maxcpus");
  if (cpus === undefined) throw new UsageError(`${opt}: missing cpu count`);
  const maxcpus = num("maxcpus");
  if (maxcpus !== undefined && maxcpus !== cpus) {
    throw new UsageError(`${opt}: maxcpus=${maxcpus} (CPU hotplug) is not supported; use cpus only`);
  }
  if (cpus < 1 || cpus > MAX_SMP) {
    throw new UsageError(`${opt}: ${cpus} CPUs requested; this machine supports 1 to ${MAX_SMP}`);
  }
  cfg.smp = cpus;
}

function applyIcount(cfg: RunConfig, value: string, opt: string): void {
  const kv = parseKeyVals(value, "shift", opt);
  onlyKeys(kv, ["shift", "sleep", "align"], opt, "icount");
  const shift = kv.get("shift") ?? "auto";
  for (const k of ["sleep", "align"]) {
    const v = kv.get(k);
    if (v !== undefined && v !== "on" && v !== "off") throw new UsageError(`${opt}: ${k} must be on or off, got '${v}'`);
  }
  if (shift === "auto") {
    cfg.icountShift = 3;
    return;
  }
  const n = parseInt10(shift, opt, "shift");
  if (n > MAX_ICOUNT_SHIFT) throw new UsageError(`${opt}: shift ${n} is out of range 0..${MAX_ICOUNT_SHIFT}`);
  cfg.icountShift = n;
}

function applySerial(cfg: RunConfig, value: string, opt: string): void {
  if (cfg.serial !== undefined || cfg.serialChardev !== undefined) throw new UsageError(`${opt}: only one serial port is supported`);
  if (value.startsWith("chardev:") && value.length > 8) {
    cfg.serialChardev = value.slice(8);
    return;
  }
  if (value !== "mon:stdio" && value !== "stdio" && value !== "null" && value !== "none") {
    throw new UsageError(`${opt}: serial backend '${value}' is not supported yet (supported: mon:stdio, stdio, null, none, chardev:ID)`);
  }
  cfg.serial = value;
}

/** `-serial chardev:ID` and `-mon chardev=ID` once every `-chardev` is known. */
function resolveChardevs(cfg: RunConfig): void {
  let muxId: string | undefined;
  if (cfg.serialChardev !== undefined) {
    const c = cfg.chardevs.get(cfg.serialChardev);
    if (c === undefined) throw new UsageError(`-serial: chardev "${cfg.serialChardev}" not found`);
    if (!("stdio" in c)) throw new UsageError(`-serial chardev:${cfg.serialChardev}: only stdio chardevs are supported for the serial port yet`);
    // A multiplexed stdio is QEMU's mon:stdio: Ctrl-A prefix, C-a c to a monitor if one is attached.
    cfg.serial = c.mux ? "mon:stdio" : "stdio";
    if (c.mux) muxId = cfg.serialChardev;
    delete cfg.serialChardev;
  }
  const monitors: MonitorConfig[] = [];
  for (const mon of cfg.monitors) {
    if (mon.chardevId === undefined) {
      monitors.push(mon);
      continue;
    }
    const chardev = cfg.chardevs.get(mon.chardevId);
    if (chardev === undefined) throw new UsageError(`-mon: chardev "${mon.chardevId}" not found`);
    if ("stdio" in chardev) {
      if (mon.mode === "control") throw new UsageError(`-mon chardev=${mon.chardevId},mode=control: QMP on stdio is not supported yet`);
      // On the serial port's multiplexer, the monitor is the mux's C-a c side.
      if (mon.chardevId === muxId) continue;
      if (monitors.some((m) => m.chardev === "stdio")) throw new UsageError(`-mon: stdio is already in use`);
      monitors.push({ mode: mon.mode, chardev: "stdio", pretty: mon.pretty });
      continue;
    }
    monitors.push({ mode: mon.mode, chardev, pretty: mon.pretty });
  }
  cfg.monitors = monitors;
}

function applyQmp(cfg: RunConfig, value: string, opt: string, mode: "control" | "readline", pretty = false): void {
  if (value === "none" && mode === "readline") return;
  if (value === "stdio") {
    if (mode === "control") throw new UsageError(`${opt} stdio: not supported yet (use unix:PATH,server=on,wait=off or tcp:HOST:PORT,server=on,wait=off)`);
    if (cfg.monitors.some((m) => m.chardev === "stdio" && m.chardevId === undefined)) throw new UsageError(`${opt}: stdio is already in use`);
    cfg.monitors.push({ mode, chardev: "stdio", pretty });
    return;
  }
  const chardev = parseSocketSpec(value, opt);
  if (chardev === undefined) {
    throw new UsageError(`${opt} ${value}: not supported yet (supported: unix:PATH,server=on,wait=off, tcp:HOST:PORT,server=on,wait=off${mode === "readline" ? ", stdio, none" : ""})`);
  }
  cfg.monitors.push({ mode, chardev, pretty });
}

function applyMon(cfg: RunConfig, value: string, opt: string): void {
  const kv = parseKeyVals(value, "chardev", opt);
  onlyKeys(kv, ["chardev", "mode", "pretty"], opt, "mon");
  const id = kv.get("chardev");
  if (id === undefined) throw new UsageError(`${opt}: Parameter 'chardev' is missing`);
  const mode = kv.get("mode") ?? "readline";
  if (mode !== "control" && mode !== "readline") throw new UsageError(`${opt}: Parameter 'mode' does not accept value '${mode}'`);
  const pretty = kv.get("pretty") === "on";
  // The chardev may come later on the command line: resolved at the end of parseRunArgs.
  cfg.monitors.push({ mode, chardev: "stdio", pretty, chardevId: id });
}

export const LOG_HELP =
  "Log items (comma separated):\n" + Object.entries(LOG_ITEMS).map(([k, v]) => `${k.padEnd(15)} ${v}\n`).join("");

function applyLog(cfg: RunConfig, value: string, opt: string): void {
  for (const item of value.split(",")) {
    if (item === "help" || item === "?") {
      cfg.help = "log";
      return;
    }
    if (!Object.hasOwn(LOG_ITEMS, item)) throw new UsageError(`${opt}: unknown log item '${item}' (use -d help to list them)`);
    cfg.log.add(item as LogItem);
  }
}

function applyTimeout(cfg: RunConfig, value: string, opt: string): void {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${opt}: invalid timeout '${value}' (expected a positive number of seconds)`);
  }
  cfg.timeoutSeconds = n;
}

/**
 * The TCG thread mode a run uses: the one given, else "multi" (as QEMU's riscv64 default)
 * unless something needs the harts on the main thread — -icount (QEMU too falls back to
 * single-threaded TCG then) or -d int (our trap tracing hook).
 */
export function tcgThreadOf(cfg: RunConfig): "single" | "multi" {
  if (cfg.tcgThread !== undefined) return cfg.tcgThread;
  return cfg.icountShift !== undefined || cfg.log.has("int") ? "single" : "multi";
}

/** `-accel tcg[,thread=single|multi]`. */
function applyAccel(cfg: RunConfig, value: string, opt: string): void {
  const kv = parseKeyVals(value, "accel", opt);
  onlyKeys(kv, ["accel", "thread"], opt, "accel");
  const accel = kv.get("accel");
  if (accel !== "tcg") throw new UsageError(`${opt} ${value}: accelerator '${accel}' not supported yet (supported: tcg)`);
  const thread = kv.get("thread");
  if (thread === undefined) return;
  if (thread !== "single" && thread !== "multi") throw new UsageError(`${opt}: Invalid 'thread' setting ${thread}`);
  cfg.tcgThread = thread;
}

function accept(allowed: readonly string[]): (cfg: RunConfig, value: string, opt: string) => void {
  return (_cfg, value, opt) => {
    if (!allowed.includes(value)) {
      throw new UsageError(`${opt} ${value}: not supported yet (supported: ${allowed.join(", ")})`);
    }
  };
}

const UNSUPPORTED: OptionDef = { arg: false, unsupported: true };

const OPTIONS: Record<string, OptionDef> = {
  machine: { arg: true, apply: applyMachine },
  M: { arg: true, apply: applyMachine },
  m: { arg: true, apply: applyMemory },
  smp: { arg: true, apply: applySmp },
  bios: {
    arg: true,
    apply: (cfg, v) => {
      cfg.bios = v === "none" || v === "default" ? v : { path: v };
    },
  },
  kernel: { arg: true, apply: (cfg, v) => { cfg.kernel = v; } },
  nographic: { arg: false, apply: (cfg) => { cfg.nographic = true; } },
  serial: { arg: true, apply: applySerial },
  icount: { arg: true, apply: applyIcount },
  timeout: { arg: true, apply: applyTimeout },
  "no-reboot": { arg: false, apply: (cfg) => { cfg.noReboot = true; } },
  signature: { arg: true, apply: (cfg, v) => { cfg.signature = v; } },
  "signature-granularity": {
    arg: true,
    apply: (cfg, v, opt) => {
      const n = parseInt10(v, opt, "granularity");
      if (n < 1 || n > 64 || (n & (n - 1)) !== 0) throw new UsageError(`${opt}: ${n} is not a power of two in 1..64`);
      cfg.signatureGranularity = n;
    },
  },
  cpu: { arg: true, apply: applyCpu },
  display: { arg: true, apply: accept(["none"]) },
  monitor: { arg: true, apply: (cfg, v, opt) => applyQmp(cfg, v, opt, "readline") },
  qmp: { arg: true, apply: (cfg, v, opt) => applyQmp(cfg, v, opt, "control") },
  "qmp-pretty": { arg: true, apply: (cfg, v, opt) => applyQmp(cfg, v, opt, "control", true) },
  mon: { arg: true, apply: applyMon },
  chardev: {
    arg: true,
    apply: (cfg, v, opt) => {
      const { id, chardev } = parseChardev(v, opt);
      if (cfg.chardevs.has(id)) throw new UsageError(`${opt}: attempt to add duplicate property '${id}' to object (type 'container')`);
      cfg.chardevs.set(id, chardev);
    },
  },
  S: { arg: false, apply: (cfg) => { cfg.startPaused = true; } },
  "no-shutdown": { arg: false, apply: (cfg) => { cfg.noShutdown = true; } },
  d: { arg: true, apply: applyLog },
  D: { arg: true, apply: (cfg, v) => { cfg.logFile = v; } },
  vga: { arg: true, apply: accept(["none"]) },
  nic: { arg: true, apply: accept(["none"]) },
  net: { arg: true, apply: accept(["none"]) },
  accel: { arg: true, apply: applyAccel },
  name: {
    arg: true,
    apply: (cfg, v, opt) => {
      const kv = parseKeyVals(v, "guest", opt);
      onlyKeys(kv, ["guest", "process", "debug-threads"], opt, "name");
      cfg.name = kv.get("guest");
    },
  },
  nodefaults: { arg: false, apply: () => {} },
  incoming: {
    arg: true,
    apply: (cfg, v, opt) => {
      if (v !== "defer" && !/^(file|exec|tcp|unix|fd):./.test(v)) {
        throw new UsageError(/^(vsock|rdma):/.test(v)
          ? `${opt} ${v}: only file:, exec:, tcp:, unix:, fd: and defer are supported yet`
          : `${opt} ${v}: unknown migration protocol: ${v}`);
      }
      cfg.incoming = v;
    },
  },
  help: { arg: false, apply: (cfg) => { cfg.help = "usage"; } },
  h: { arg: false, apply: (cfg) => { cfg.help = "usage"; } },
  version: { arg: false, apply: (cfg) => { cfg.help = "version"; } },
};

for (const name of [
  "s", "gdb", "drive", "device", "netdev", "global",
  "snapshot", "loadvm", "object", "rtc", "uuid", "enable-kvm", "append", "initrd", "dtb", "hda", "hdb",
  "cdrom", "boot", "fsdev", "virtfs", "audiodev", "smbios", "fw_cfg", "pflash", "blockdev", "numa", "overcommit",
  "daemonize", "pidfile", "trace", "plugin", "semihosting", "semihosting-config", "readconfig", "writeconfig",
  "action", "watchdog-action", "k", "usb", "usbdevice", "parallel", "debugcon", "sandbox", "L",
]) {
  OPTIONS[name] = UNSUPPORTED;
}

/** The machine-shaping part of a run configuration, as createMachine takes it (vm-cli run and the golden checks build the same machine from it). */
export function machineShape(cfg: RunConfig): {
  machineType: string;
  machineProperties: Record<string, string>;
  cpuProperties: Record<string, string>;
  ramSize: number;
  harts: number;
} {
  return { machineType: cfg.machine, machineProperties: cfg.machineProperties, cpuProperties: cfg.cpuProperties, ramSize: cfg.ramSize, harts: cfg.smp };
}

export function defaultRunConfig(): RunConfig {
  return {
    machine: "virt",
    machineProperties: {},
    cpuProperties: {},
    ramSize: 128 * 1024 * 1024,
    smp: 1,
    bios: "default",
    kernel: undefined,
    nographic: false,
    serial: undefined,
    icountShift: undefined,
    timeoutSeconds: undefined,
    noReboot: false,
    cpu: "rv64",
    signature: undefined,
    signatureGranularity: 4,
    monitors: [],
    name: undefined,
    startPaused: false,
    noShutdown: false,
    log: new Set(),
    logFile: undefined,
    chardevs: new Map(),
    incoming: undefined,
    tcgThread: undefined,
    help: undefined,
  };
}

/** Parses `vm-cli run` arguments; throws {@link UsageError} naming the offending option. */
export function parseRunArgs(argv: readonly string[]): RunConfig {
  const cfg = defaultRunConfig();
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    if (!raw.startsWith("-") || raw === "-" || raw === "--") {
      throw new UsageError(`${raw}: unexpected argument (disk images are not supported yet; options start with -)`);
    }
    let name = raw.startsWith("--") ? raw.slice(2) : raw.slice(1);
    let inline: string | undefined;
    const eq = name.indexOf("=");
    if (raw.startsWith("--") && eq > 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const opt = `-${name}`;
    const def = Object.hasOwn(OPTIONS, name) ? OPTIONS[name] : undefined;
    if (def === undefined) throw new UsageError(`${raw}: invalid option`);
    if (def.unsupported) throw new UsageError(`${opt}: not supported yet`);
    let value = "";
    if (def.arg) {
      if (inline !== undefined) {
        value = inline;
      } else {
        if (i + 1 >= argv.length) throw new UsageError(`${opt}: requires an argument`);
        value = argv[++i]!;
      }
    } else if (inline !== undefined) {
      throw new UsageError(`${opt}: takes no argument`);
    }
    def.apply!(cfg, value, opt);
    if (cfg.help !== undefined) return cfg;
  }
  resolveChardevs(cfg);
  return cfg;
}
