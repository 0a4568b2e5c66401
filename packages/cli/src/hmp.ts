/**
 * The human monitor (HMP): the commands of QEMU's hmp-commands.hx / hmp-commands-info.hx we
 * have, with QEMU 7.2's output text. Used by `human-monitor-command`, the `mon:stdio` monitor
 * (Ctrl-A c), `-monitor stdio` and `-mon mode=readline` sockets. Output lines end in "\n";
 * the caller turns them into CRLF as QEMU's monitor_puts does.
 *
 * @module
 */

import { ControllerError, type VmController } from "./controller.ts";
import { QEMU_VERSION } from "./qmp/version.ts";

export interface MonitorContext {
  controller: VmController;
  harts: number;
  /** `-name`, if given. */
  name: string | undefined;
  /** FerryVM's version, shown beside QEMU's. */
  packageVersion: string;
}

interface HmpCommand {
  names: string[];
  params: string;
  help: string;
  run: (ctx: MonitorContext, args: string[]) => Promise<string> | string;
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
    run: (ctx) => {
      let text = "";
      for (let i = 0; i < ctx.harts; i++) text += `${i === 0 ? "*" : " "} CPU #${i}: thread_id=${process.pid}\n`;
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
  { names: ["quit", "q"], params: "", help: "quit the emulator", run: (ctx) => act(ctx.controller.quit()) },
  { names: ["stop", "s"], params: "", help: "stop emulation", run: (ctx) => act(ctx.controller.stop()) },
  {
    names: ["system_powerdown"],
    params: "",
    help: "send system power down event",
    run: (ctx) => act(ctx.controller.powerdown()),
  },
  { names: ["system_reset"], params: "", help: "reset the system", run: (ctx) => act(ctx.controller.systemReset()) },
];

function listHelp(cmds: readonly HmpCommand[], prefix: string): string {
  return cmds.map((c) => `${prefix}${c.names.join("|")}${c.params ? " " + c.params : ""}  -- ${c.help}\n`).join("");
}

function find(cmds: readonly HmpCommand[], name: string): HmpCommand | undefined {
  return cmds.find((c) => c.names.includes(name));
}

/** Runs one HMP command line; returns what QEMU's monitor would print (LF line ends). */
export async function executeHmp(line: string, ctx: MonitorContext): Promise<string> {
  const words = line.trim().split(/\s+/).filter((w) => w !== "");
  if (words.length === 0) return "";
  const [name, ...args] = words as [string, ...string[]];
  const cmd = find(COMMANDS, name);
  if (cmd === undefined) return `unknown command: '${name}'\n`;
  if (cmd.names[0] === "info" && args.length > 0) {
    const sub = find(INFO, args[0]!);
    if (sub === undefined) return `unknown command: 'info ${args[0]}'\n`;
    return await sub.run(ctx, args.slice(1));
  }
  if (cmd.names[0] === "help" && args.length > 0) {
    const target = find(COMMANDS, args[0]!);
    if (target === undefined) return `unknown command: '${args[0]}'\n`;
    return listHelp([target], "");
  }
  if (cmd.params === "" && args.length > 0) return `${name}: extraneous characters at the end of line\n`;
  return await cmd.run(ctx, args);
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
