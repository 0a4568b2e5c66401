/**
 * The human monitor (HMP): the commands of QEMU's hmp-commands.hx / hmp-commands-info.hx we
 * have, with QEMU 7.2's output text. Used by `human-monitor-command`, the `mon:stdio` monitor
 * (Ctrl-A c), `-monitor stdio` and `-mon mode=readline` sockets. Output lines end in "\n";
 * the caller turns them into CRLF as QEMU's monitor_puts does.
 *
 * @module
 */

import type { DeviceProperties, MachineConfig } from "@ferryvm/devices";
import { formatInfoMigrate as formatMigrationInfo, formatInfoMigrateCapabilities, type MigrationCapabilityStatus, type MigrationInfo } from "@ferryvm/migration";
import { ControllerError, type VmController } from "./controller.ts";
import { formatMigrationParameters, parseMigrationParameter } from "./hmp-migration.ts";
import { monitorClosefd, monitorGetfd, type MonitorFdContext } from "./qmp/fds.ts";
import { QEMU_VERSION } from "./qmp/version.ts";
import { MIGRATION_STATUS_NAMES, MigrationCommandError, type MigrationManager, type MigrationStatus } from "./snapshot/migration.ts";

export interface MonitorContext {
  controller: VmController;
  harts: number;
  /** `-name`, if given. */
  name: string | undefined;
  /** FerryVM's version, shown beside QEMU's. */
  packageVersion: string;
  /** A hart's registers, for `info registers` (a Machine's `hart(i)`). */
  hart?: (index: number) => HartRegisters;
  /** Guest-physical bytes for `xp`, or undefined outside RAM/ROM (a Machine's `physicalMemory.view`). */
  readPhys?: (addr: bigint, length: number) => Uint8Array | undefined;
  /** Save/restore (QMP migrate, migrate-incoming, query-migrate; HMP migrate, info migrate). */
  migration?: MigrationManager;
  /** The machine type and device properties, for `info qtree` (a Machine's `config`). */
  machineConfig?: MachineConfig;
  /** Descriptors passed to this monitor (QMP getfd, closefd; `fd:NAME` in migrate). */
  fds?: MonitorFdContext;
}

/** `info qtree`, in QEMU's shape as far as this board goes: each device with its properties. */
function formatQtree(config: MachineConfig | undefined): string {
  if (config === undefined) return "";
  const props = (p: DeviceProperties, indent: string): string =>
    p.entries().map((e) => {
      const v = e.value;
      const text = typeof v === "boolean" ? String(v) : typeof v === "string" ? `"${v}"` : `${v} (0x${v.toString(16)})`;
      return `${indent}${e.name} = ${text}${e.origin === "default" ? "" : `   [${e.origin}]`}\n`;
    }).join("");
  let text = `machine: ${config.machineType.name}\n${props(config.machine, "  ")}`;
  text += `bus: main-system-bus\n  type System\n  dev: ${config.cpu.deviceClass.driver}, id ""\n${props(config.cpu, "    ")}`;
  text += `  dev: virtio-mmio, id "" (x8)\n${props(config.virtioMmio, "    ")}`;
  for (const p of config.virtio) {
    if (p === undefined) continue;
    text += `    bus: virtio-bus\n      dev: ${p.deviceClass.driver}, id ""\n${props(p, "        ")}`;
  }
  return text;
}

/** `xp`'s remembered format and size (QEMU's default_fmt_format/size). */
const lastFormat = new WeakMap<MonitorContext, { format: string; size: number }>();

class HmpUsageError extends Error {}

/** QEMU's HMP expressions, the part we need: numbers (C base prefixes) joined by + and -. */
function parseExpr(text: string): bigint {
  const t = text.replace(/\s+/g, "");
  if (t === "") throw new HmpUsageError("unexpected end of expression");
  let value = 0n;
  const re = /([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)/y;
  let at = 0;
  while (at < t.length) {
    re.lastIndex = at;
    const m = re.exec(t);
    if (m === null || (at > 0 && m[1] === "")) throw new HmpUsageError(`invalid char '${t[at]}' in expression`);
    const n = m[2]!.length > 1 && m[2]![0] === "0" && !/[xX]/.test(m[2]!) ? BigInt("0o" + m[2]!.slice(1)) : BigInt(m[2]!);
    value = m[1] === "-" ? value - n : value + n;
    at = re.lastIndex;
  }
  return BigInt.asUintN(64, value);
}

function printc(v: number): string {
  if (v === 0x5c) return "'\\\\'";
  if (v === 0x27) return "'\\''";
  if (v === 0x0a) return "'\\n'";
  if (v === 0x0d) return "'\\r'";
  if (v >= 32 && v <= 126) return `'${String.fromCharCode(v)}'`;
  return `'\\x${v.toString(16).padStart(2, "0")}'`;
}

/** `xp /fmt addr` as QEMU's memory_dump (monitor/misc.c). */
function physicalMemoryDump(ctx: MonitorContext, args: string[]): string {
  let rest = args.join(" ");
  const sticky = lastFormat.get(ctx) ?? { format: "x", size: 4 };
  let count = 1;
  let format = sticky.format;
  let size = sticky.size;
  const fmt = /^\/(\d*)([a-zA-Z]*)/.exec(rest);
  if (fmt !== null) {
    count = fmt[1] === "" ? 1 : Number(fmt[1]);
    let f: string | undefined;
    let sz: number | undefined;
    for (const ch of fmt[2]!) {
      if ("oduxic".includes(ch)) f = ch;
      else if (ch === "b") sz = 1;
      else if (ch === "h") sz = 2;
      else if (ch === "w") sz = 4;
      else if (ch === "g" || ch === "L") sz = 8;
      else throw new HmpUsageError(`invalid char in format: '${ch}'`);
    }
    format = f ?? sticky.format;
    size = sz ?? sticky.size;
    rest = rest.slice(fmt[0].length);
  }
  lastFormat.set(ctx, { format, size });
  let addr = parseExpr(rest);
  if (format === "i") return "Cannot disassemble: FerryVM has no disassembler\n";
  let len = size * count;
  const lineSize = size === 1 ? 8 : 16;
  const digits = format === "o" ? Math.ceil((size * 8) / 3) : format === "x" ? size * 2 : Math.ceil((size * 80) / 33);
  if (format === "c") size = 1;
  let text = "";
  while (len > 0) {
    text += `${hex64(addr)}:`;
    const l = Math.min(len, lineSize);
    const bytes = ctx.readPhys?.(addr, l);
    if (bytes === undefined) return text + " Cannot access memory\n";
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < l; i += size) {
      const v = size === 1 ? BigInt(view.getUint8(i)) : size === 2 ? BigInt(view.getUint16(i, true)) : size === 4 ? BigInt(view.getUint32(i, true)) : view.getBigUint64(i, true);
      text += " ";
      if (format === "o") text += (v === 0n ? "0" : "0" + v.toString(8)).padStart(digits, " ");
      else if (format === "x") text += "0x" + v.toString(16).padStart(digits, "0");
      else if (format === "u") text += v.toString().padStart(digits, " ");
      // QEMU loads the value zero-extended: only 8-byte values print negative.
      else if (format === "d") text += (size === 8 ? BigInt.asIntN(64, v) : v).toString().padStart(digits, " ");
      else text += printc(Number(v));
    }
    text += "\n";
    addr += BigInt(l);
    len -= l;
  }
  return text;
}

/** What `info registers` reads of a hart (a HartView of @ferryvm/cpu-wasm). */
export interface HartRegisters {
  readonly pc: bigint;
  readonly x: ArrayLike<bigint>;
  /** Throws for a CSR the hart does not have. */
  csr(name: string): bigint;
}

/** riscv_cpu_dump_state's CSR list (target/riscv/cpu.c); absent ones are skipped, as QEMU. */
const DUMP_CSRS = [
  "mhartid", "mstatus", "mstatush", "hstatus", "vsstatus", "mip", "mie", "mideleg", "hideleg", "medeleg",
  "hedeleg", "mtvec", "stvec", "vstvec", "mepc", "sepc", "vsepc", "mcause", "scause", "vscause", "mtval",
  "stval", "htval", "mtval2", "mscratch", "sscratch", "satp",
];
const INT_REGNAMES = [
  "x0/zero", "x1/ra", "x2/sp", "x3/gp", "x4/tp", "x5/t0", "x6/t1", "x7/t2", "x8/s0", "x9/s1", "x10/a0", "x11/a1",
  "x12/a2", "x13/a3", "x14/a4", "x15/a5", "x16/a6", "x17/a7", "x18/s2", "x19/s3", "x20/s4", "x21/s5", "x22/s6",
  "x23/s7", "x24/s8", "x25/s9", "x26/s10", "x27/s11", "x28/t3", "x29/t4", "x30/t5", "x31/t6",
];

const hex64 = (v: bigint): string => v.toString(16).padStart(16, "0");

/** `info registers` as QEMU 7.2's riscv_cpu_dump_state (without the FPU and H registers we lack). */
export function formatRegisters(hart: HartRegisters, index: number): string {
  let text = `\nCPU#${index}\n pc       ${hex64(hart.pc)}\n`;
  for (const name of DUMP_CSRS) {
    let v: bigint;
    try {
      v = hart.csr(name);
    } catch {
      continue;
    }
    text += ` ${name.padEnd(8)} ${hex64(v)}\n`;
  }
  for (let i = 0; i < 32; i++) {
    text += ` ${INT_REGNAMES[i]!.padEnd(8)} ${hex64(hart.x[i]!)}`;
    if ((i & 3) === 3) text += "\n";
  }
  return text;
}

interface HmpCommand {
  names: string[];
  params: string;
  help: string;
  run: (ctx: MonitorContext, args: string[], cpu: number) => Promise<string> | string;
  /** Parses its own arguments from the rest of the line (QEMU's quoted strings, -flags). */
  raw?: (ctx: MonitorContext, rest: string, opts: HmpOptions) => Promise<string> | string;
}

/** How a command line reaches the monitor. */
export interface HmpOptions {
  /**
   * An interactive monitor (readline on stdio or a socket) can wait for a migration to end;
   * `human-monitor-command` cannot (QEMU: "terminal does not allow synchronous migration").
   */
  interactive?: boolean;
}

/** QEMU's get_str: a word, or a double-quoted string with \\ \' \" \n \r escapes. */
function takeString(text: string): { value: string; rest: string } | { error: string } | undefined {
  const t = text.replace(/^\s+/, "");
  if (t === "") return undefined;
  if (t[0] !== '"') {
    const m = /^\S+/.exec(t)!;
    return { value: m[0], rest: t.slice(m[0].length) };
  }
  let value = "";
  for (let i = 1; i < t.length; i++) {
    const ch = t[i]!;
    if (ch === '"') return { value, rest: t.slice(i + 1) };
    if (ch === "\\") {
      const e = t[++i];
      if (e === undefined) break;
      const map: Record<string, string> = { "\\": "\\", "'": "'", '"': '"', n: "\n", r: "\r" };
      if (map[e] === undefined) return { error: `unsupported escape code: '\\${e}'` };
      value += map[e];
    } else {
      value += ch;
    }
  }
  return { error: "unterminated string" };
}

function usage(name: string, message: string): string {
  return `${message}\nTry "help ${name}" for more information\n`;
}

/** Reads leading -x flags among `allowed`; the rest of the line follows. */
function takeFlags(name: string, text: string, allowed: string): { flags: Set<string>; rest: string } | { error: string } {
  const flags = new Set<string>();
  let rest = text;
  for (;;) {
    const m = /^\s*-(\S)(?=\s|$)/.exec(rest);
    if (m === null) return { flags, rest };
    if (!allowed.includes(m[1]!)) return { error: usage(name, `${name}: unsupported option -${m[1]}`) };
    flags.add(m[1]!);
    rest = rest.slice(m[0].length);
  }
}

async function migrationCommand(p: () => Promise<void> | void): Promise<string> {
  try {
    await p();
    return "";
  } catch (e) {
    if (e instanceof MigrationCommandError) return `Error: ${e.message}\n`;
    throw e;
  }
}

/** `migrate [-d] uri` (hmp_migrate). */
async function hmpMigrate(ctx: MonitorContext, text: string, opts: HmpOptions): Promise<string> {
  const f = takeFlags("migrate", text, "dbir");
  if ("error" in f) return f.error;
  const s = takeString(f.rest);
  if (s === undefined) return usage("migrate", "migrate: string expected");
  if ("error" in s) return usage("migrate", s.error);
  if (s.rest.trim() !== "") return usage("migrate", "migrate: extraneous characters at the end of line");
  if (ctx.migration === undefined) return "Error: migration is not available on this monitor\n";
  if (f.flags.has("b") || f.flags.has("i")) return "Error: QEMU compiled without old-style (blk/-b, inc/-i) block migration\n";
  if (f.flags.has("r")) return "Error: Cannot resume if there is no paused migration\n";
  const m = ctx.migration;
  const out = await migrationCommand(() => m.migrate(s.value, ctx.fds?.named));
  if (out !== "" || f.flags.has("d")) return out;
  if (!opts.interactive) return "terminal does not allow synchronous migration, continuing detached\n";
  await m.done;
  // hmp_migrate_status_cb: the error of a failed migration is reported.
  return m.status === "failed" && m.error !== undefined ? `${m.error}\n` : "";
}

/** `migrate_incoming uri`. */
async function hmpMigrateIncoming(ctx: MonitorContext, text: string): Promise<string> {
  const s = takeString(text);
  if (s === undefined) return usage("migrate_incoming", "migrate_incoming: string expected");
  if ("error" in s) return usage("migrate_incoming", s.error);
  if (s.rest.trim() !== "") return usage("migrate_incoming", "migrate_incoming: extraneous characters at the end of line");
  if (ctx.migration === undefined) return "Error: migration is not available on this monitor\n";
  const m = ctx.migration;
  return migrationCommand(() => m.incoming(s.value, false, ctx.fds?.named));
}

/** `info migrate` (hmp_info_migrate). */
export function formatInfoMigrate(ctx: MonitorContext): string {
  return formatMigrationInfo((ctx.migration?.queryMigrate() ?? {}) as unknown as MigrationInfo);
}

/** `migrate_set_parameter parameter value` (hmp_migrate_set_parameter). */
function hmpSetParameter(ctx: MonitorContext, args: readonly string[]): Promise<string> | string {
  if (args.length < 2) return usage("migrate_set_parameter", "migrate_set_parameter: string expected");
  if (ctx.migration === undefined) return "Error: migration is not available on this monitor\n";
  const [param, text] = args as [string, string];
  const parsed = parseMigrationParameter(param, text);
  if ("error" in parsed) return `Error: ${parsed.error}\n`;
  const m = ctx.migration;
  return migrationCommand(() => m.setParameters({ [param]: parsed.value } as never));
}

/** `migrate_continue state` (hmp_migrate_continue). */
function hmpMigrateContinue(ctx: MonitorContext, args: readonly string[]): Promise<string> | string {
  if (args.length < 1) return usage("migrate_continue", "migrate_continue: string expected");
  if (ctx.migration === undefined) return "Error: migration is not available on this monitor\n";
  const state = args[0]!;
  if (!(MIGRATION_STATUS_NAMES as readonly string[]).includes(state)) return `Error: invalid parameter value: ${state}\n`;
  const m = ctx.migration;
  return migrationCommand(() => m.continue(state as MigrationStatus));
}

async function act(p: Promise<void>): Promise<string> {
  try {
    await p;
    return "";
  } catch (e) {
    if (e instanceof ControllerError) return `Error: ${e.message}\n`;
    throw e;
  }
}

/** hmp_getfd / hmp_closefd: one name; QEMU's error text after "Error: ". */
function fdCommand(name: string, args: readonly string[], f: (fdname: string) => void): string {
  if (args.length < 1) return usage(name, `${name}: string expected`);
  try {
    f(args[0]!);
    return "";
  } catch (e) {
    return `Error: ${(e as Error).message}\n`;
  }
}

/** `info status` as hmp_info_status. */
export function formatStatus(ctx: MonitorContext): string {
  const c = ctx.controller;
  let text = `VM status: ${c.running ? "running" : "paused"}`;
  if (!c.running && c.state !== "paused") text += ` (${c.state})`;
  return text + "\n";
}

const INFO: HmpCommand[] = [
  {
    names: ["cpus"],
    params: "",
    help: "show infos for each CPU",
    run: (ctx, _args, cpu) => {
      let text = "";
      for (let i = 0; i < ctx.harts; i++) text += `${i === cpu ? "*" : " "} CPU #${i}: thread_id=${process.pid}\n`;
      return text;
    },
  },
  {
    names: ["registers"],
    params: "[-a]",
    help: "show the cpu registers (-a: all CPUs)",
    run: async (ctx, args, cpu) => {
      const hart = ctx.hart;
      if (hart === undefined) return "No CPU available\n";
      const all = args[0] === "-a";
      let text = "";
      const read = async (): Promise<void> => {
        for (let i = 0; i < ctx.harts; i++) if (all || i === cpu) text += formatRegisters(hart(i), i);
      };
      // QEMU's cpu_synchronize_state: a running vCPU (in its worker) leaves its run while its
      // registers are read, so that pc and x1..x31 come from one instant.
      if (ctx.controller.running && !ctx.controller.finished) await ctx.controller.exclusive(read);
      else await read();
      return text;
    },
  },
  { names: ["kvm"], params: "", help: "show KVM information", run: () => "kvm support: not compiled\n" },
  {
    names: ["name"],
    params: "",
    help: "show the current VM name",
    run: (ctx) => (ctx.name === undefined ? "" : `${ctx.name}\n`),
  },
  { names: ["status"], params: "", help: "show the current VM status (running|paused)", run: formatStatus },
  { names: ["migrate"], params: "", help: "show migration status", run: formatInfoMigrate },
  { names: ["qtree"], params: "", help: "show device tree", run: (ctx) => formatQtree(ctx.machineConfig) },
  {
    names: ["migrate_parameters"],
    params: "",
    help: "show current migration parameters",
    run: (ctx) => (ctx.migration === undefined ? "" : formatMigrationParameters(ctx.migration.parameters() as Record<string, unknown>)),
  },
  {
    names: ["migrate_capabilities"],
    params: "",
    help: "show current migration capabilities",
    run: (ctx) => formatInfoMigrateCapabilities((ctx.migration?.capabilities() ?? []) as MigrationCapabilityStatus[]),
  },
  {
    names: ["version"],
    params: "",
    help: "show the version of QEMU",
    run: (ctx) => `${QEMU_VERSION.major}.${QEMU_VERSION.minor}.${QEMU_VERSION.micro} (FerryVM ${ctx.packageVersion})\n`,
  },
];

const COMMANDS: HmpCommand[] = [
  { names: ["cont", "c"], params: "", help: "resume emulation", run: (ctx) => act(ctx.controller.cont()) },
  {
    names: ["help", "?"],
    params: "[cmd]",
    help: "show the help",
    run: () => listHelp(COMMANDS, ""),
  },
  {
    names: ["info"],
    params: "[subcommand]",
    help: "show various information about the system state",
    run: () => listHelp(INFO, "info "),
  },
  {
    names: ["migrate"],
    params: "[-d] [-b] [-i] [-r] uri",
    help: "migrate to URI (using -d to not wait for completion)",
    run: () => "",
    raw: hmpMigrate,
  },
  {
    names: ["migrate_cancel"],
    params: "",
    help: "cancel the current VM migration",
    run: (ctx) => {
      ctx.migration?.cancel();
      return "";
    },
  },
  {
    names: ["migrate_incoming"],
    params: "uri",
    help: "Continue an incoming migration from an -incoming defer",
    run: () => "",
    raw: (ctx, rest) => hmpMigrateIncoming(ctx, rest),
  },
  {
    names: ["migrate_continue"],
    params: "state",
    help: "Continue migration from the given paused state",
    run: (ctx, args) => hmpMigrateContinue(ctx, args),
  },
  {
    names: ["migrate_set_parameter"],
    params: "parameter value",
    help: "Set the parameter for migration",
    run: (ctx, args) => hmpSetParameter(ctx, args),
  },
  {
    names: ["migrate_set_capability"],
    params: "capability state",
    help: "Enable/Disable the usage of a capability for migration",
    run: (ctx, args) => {
      if (args.length < 2) return usage("migrate_set_capability", `migrate_set_capability: ${args.length === 0 ? "string" : "'on' or 'off'"} expected`);
      const [cap, state] = args as [string, string];
      if (state !== "on" && state !== "off") return usage("migrate_set_capability", "migrate_set_capability: 'on' or 'off' expected");
      if (ctx.migration === undefined) return "Error: migration is not available on this monitor\n";
      const caps = ctx.migration.capabilities().map((c) => c.capability as string);
      if (!caps.includes(cap)) return `Error: Parameter 'capability' does not accept value '${cap}'\n`;
      const m = ctx.migration;
      return migrationCommand(() => m.setCapabilities([{ capability: cap as "events", state: state === "on" }]));
    },
  },
  {
    names: ["getfd"],
    params: "getfd name",
    help: "receive a file descriptor via SCM rights and assign it a name",
    run: (ctx, args) => fdCommand("getfd", args, (name) => monitorGetfd(ctx.fds, name)),
  },
  {
    names: ["closefd"],
    params: "closefd name",
    help: "close a file descriptor previously passed via SCM rights",
    run: (ctx, args) => fdCommand("closefd", args, (name) => monitorClosefd(ctx.fds, name)),
  },
  { names: ["quit", "q"], params: "", help: "quit the emulator", run: (ctx) => act(ctx.controller.quit()) },
  { names: ["stop", "s"], params: "", help: "stop emulation", run: (ctx) => act(ctx.controller.stop()) },
  {
    names: ["xp"],
    params: "/fmt addr",
    help: "physical memory dump starting at 'addr'",
    run: (ctx, args) => physicalMemoryDump(ctx, args),
  },
  {
    names: ["system_powerdown"],
    params: "",
    help: "send system power down event",
    run: (ctx) => act(ctx.controller.powerdown()),
  },
  { names: ["system_reset"], params: "", help: "reset the system", run: (ctx) => act(ctx.controller.systemReset()) },
];

function listHelp(cmds: readonly HmpCommand[], prefix: string): string {
  return cmds.map((c) => `${prefix}${c.names.join("|")} ${c.params} -- ${c.help}\n`).join("");
}

function find(cmds: readonly HmpCommand[], name: string): HmpCommand | undefined {
  return cmds.find((c) => c.names.includes(name));
}

/** Runs one HMP command line; returns what QEMU's monitor would print (LF line ends). */
export async function executeHmp(line: string, ctx: MonitorContext, cpu = 0, opts: HmpOptions = {}): Promise<string> {
  const words = line.trim().split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) return "";
  const [name, ...args] = words as [string, ...string[]];
  const cmd = find(COMMANDS, name);
  if (cmd === undefined) return `unknown command: '${name}'\n`;
  if (cmd.raw !== undefined) return await cmd.raw(ctx, line.trim().slice(name.length), opts);
  if (cmd.names[0] === "info" && args.length > 0) {
    const sub = find(INFO, args[0]!);
    if (sub === undefined) return `unknown command: 'info ${args[0]}'\n`;
    return await sub.run(ctx, args.slice(1), cpu);
  }
  if (cmd.names[0] === "help" && args.length > 0) {
    const target = find(COMMANDS, args[0]!);
    if (target === undefined) return `unknown command: '${args[0]}'\n`;
    return listHelp([target], "");
  }
  if (cmd.params === "" && args.length > 0) {
    return `${cmd.names.join("|")}: extraneous characters at the end of line\nTry "help ${cmd.names[0]}" for more information\n`;
  }
  try {
    return await cmd.run(ctx, args, cpu);
  } catch (e) {
    if (!(e instanceof HmpUsageError)) throw e;
    return `${e.message}\nTry "help ${cmd.names[0]}" for more information\n`;
  }
}

/** The banner QEMU prints when a readline monitor opens. */
export function monitorBanner(ctx: MonitorContext): string {
  const v = QEMU_VERSION;
  return `QEMU ${v.major}.${v.minor}.${v.micro} monitor (FerryVM ${ctx.packageVersion}) - type 'help' for more information\n`;
}

/** LF → CRLF, as QEMU's monitor output. */
export function crlf(text: string): string {
  return text.replace(/\r?\n/g, "\r\n");
}
