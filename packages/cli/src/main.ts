/**
 * `vm-cli` commands. {@link main} takes the arguments after the program name and returns the
 * exit status; all I/O goes through a {@link CliIo} so tests can drive it.
 *
 * @module
 */

import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { formatTrapQemu } from "@ferryvm/cpu-wasm";
import { CPU_EXTENSION_PROPERTIES, type Machine } from "@ferryvm/devices";
import { CPUS, LOG_HELP, MACHINES, machineShape, parseRunArgs, tcgThreadOf, UsageError, type RunConfig } from "./args.ts";
import { createVirtMachine, dumpDtb, splitVirtOptions, type VirtCliOptions } from "./virt-options.ts";
import { formatAddress } from "./chardev.ts";
import { ConsoleEscape, MUX_HELP } from "./console.ts";
import { VmController } from "./controller.ts";
import type { MonitorContext } from "./hmp.ts";
import { HmpSocketServer, ReadlineMonitor } from "./monitor.ts";
import { QmpServer } from "./qmp/server.ts";
import { ANALYZE_USAGE, analyzeFile, parseAnalyzeArgs } from "./snapshot/analyze.ts";
import { MigrationCommandError, MigrationManager } from "./snapshot/migration.ts";
import { migrateCommand } from "./migrate-command.ts";
import { compatCheckCommand } from "./compat-check.ts";
import { checkGoldens } from "./compat/goldens.ts";
import { demoCommand } from "./demo.ts";

export interface CliIo {
  /** Guest console output. */
  stdout: (bytes: Uint8Array) => void;
  /** Messages. */
  stderr: (text: string) => void;
  /** Console input; null = none. */
  stdin: NodeJS.ReadableStream | null;
  /** Whether stdin is a terminal (raw mode and the Ctrl-A prefix). */
  isTTY: boolean;
  setRawMode?: (raw: boolean) => void;
  readFile: (path: string) => Uint8Array;
  writeFile?: (path: string, text: string) => void;
  /** Handle SIGINT/SIGTERM/SIGHUP: stop the guest, restore the terminal, exit 128 + signal. */
  handleSignals?: boolean;
}

/** Exit status when `--timeout` ends the run (as timeout(1)). */
export const EXIT_TIMEOUT = 124;
/** Where Debian's `opensbi` package puts the firmware QEMU's `-bios default` loads. */
export const DEFAULT_BIOS_PATHS = [
  "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin",
  "/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin",
];

export function processIo(): CliIo {
  const stdin = process.stdin;
  return {
    stdout: (b) => process.stdout.write(b),
    stderr: (t) => process.stderr.write(t),
    stdin,
    isTTY: stdin.isTTY === true,
    setRawMode: stdin.isTTY ? (raw) => stdin.setRawMode(raw) : undefined,
    readFile: (p) => readFileSync(p),
    writeFile: (p, t) => writeFileSync(p, t),
    handleSignals: true,
  };
}

export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

export const USAGE = `usage: vm-cli <command> [options]

Commands:
  run [options]     boot a machine, QEMU-style options (see vm-cli run -help)
  analyze FILE      print a migration stream as JSON (QEMU's analyze-migration.py)
  migrate --qmp SOCKET URI   live-migrate a running VM through its QMP socket (migrate --help)
  compat-check -s SRC -d DEST   can DEST's release load SRC's stream? (vmdescs, QEMU's vmstate-static-checker)
  compat-check --goldens     every committed golden stream against this release (pnpm check:compat)
  demo              live-migrate the bundled guest between two local processes and back
  --help, -h        this help
  --version         print the version

Examples:
  vm-cli run -M virt -m 128M -bios none -kernel prog.elf -nographic
  vm-cli run -M virt -bios none -kernel rv64ui-p-add -nographic --timeout 10
  vm-cli run -M virt -bios none -kernel prog.elf -nographic -incoming file:vm.mig
  vm-cli analyze vm.mig --dump desc
`;

export const RUN_USAGE = `usage: vm-cli run [options]   (QEMU's spelling; --opt is the same as -opt)

  -M, -machine TYPE     machine type (virt); -M help lists them
  -m [size=]SIZE        guest RAM, e.g. 128M, 1G; a bare number is MiB (default 128M)
  -smp [cpus=]N         number of harts (1..32)
  -cpu MODEL            CPU model (rv64); -cpu help lists them
  -bios none|default|FILE  firmware: none jumps straight to the kernel; default is OpenSBI
  -kernel FILE          ELF (loaded at its physical addresses) or raw image
  -nographic            no display; serial console multiplexed on stdio (Ctrl-A h for help)
  -serial mon:stdio|stdio|null|none
  -icount [shift=]N|auto   deterministic time: 2^N ns per instruction
  -no-reboot            exit instead of rebooting when the guest resets
  -no-shutdown          at guest poweroff, pause in state 'shutdown' instead of exiting
  -S                    start paused (state 'prelaunch') until QMP/HMP cont
  -qmp unix:PATH,server=on,wait=off   QMP monitor on a socket (also tcp:HOST:PORT,...; repeatable)
  -qmp-pretty SOCKET    the same with indented JSON
  -monitor stdio|none|SOCKET   HMP monitor ('(qemu) ' prompt); on mon:stdio, Ctrl-A c toggles it
  -chardev socket,id=ID,path=PATH|host=H,port=P,server=on,wait=off  with -mon chardev=ID[,mode=control]
  -name [guest=]NAME    VM name (query-name, info name)
  -incoming file:PATH|exec:CMD|defer   start from a saved stream (defer: QMP migrate-incoming)
  -d ITEM[,...]         logs: guest_errors, unimp, int, cpu_reset; -d help
  -D FILE               write -d logs to FILE instead of stderr
  --timeout SECONDS     stop a guest still running after SECONDS (exit status ${EXIT_TIMEOUT})
  --signature FILE      at exit, write [begin_signature, end_signature) as Spike does (riscv-arch-test)
  --signature-granularity N   bytes per signature line (default 4)
  -accel tcg[,thread=single|multi]   multi (the default, as QEMU's): the vCPU runs in a worker
                        thread, devices, QMP and migration on the main thread; single: one thread
                        (the default with -icount or -d int, which multi does not support)
  -display none, -nic none: accepted

The guest's exit status becomes vm-cli's: the sifive_test finisher at 0x100000 or HTIF
tohost (riscv-tests: 1 = pass, (n << 1) | 1 = test n failed; exit status n).
`;

/** Maps a guest status to a process exit status: a non-zero status never becomes 0. */
export function exitStatus(code: number): number {
  if (code === 0) return 0;
  return code & 0xff || 0xff;
}

export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === "help" || cmd === "-h" || cmd === "-help" || cmd === "--help") {
      if (cmd === undefined) {
        io.stderr(USAGE);
        return 1;
      }
      io.stdout(new TextEncoder().encode(USAGE));
      return 0;
    }
    if (cmd === "--version" || cmd === "-version" || cmd === "version") {
      io.stdout(new TextEncoder().encode(`vm-cli (FerryVM) ${version()}\n`));
      return 0;
    }
    if (cmd === "analyze") {
      const args = parseAnalyzeArgs(rest);
      io.stdout(new TextEncoder().encode(args === undefined ? ANALYZE_USAGE : analyzeFile(args, io.readFile)));
      return 0;
    }
    if (cmd === "migrate") return await migrateCommand(rest);
    if (cmd === "compat-check") {
      // --goldens [DIR]: every committed golden stream against this release (pnpm check:compat).
      if (rest[0] === "--goldens") return await checkGoldens(rest[1], (l) => io.stdout(new TextEncoder().encode(l + "\n")));
      return await compatCheckCommand(rest);
    }
    if (cmd === "demo") return await demoCommand(rest, { stdout: (t) => io.stdout(new TextEncoder().encode(t)), stderr: io.stderr, handleSignals: io.handleSignals });
    const runArgv = cmd === "run" ? rest : cmd.startsWith("-") ? argv : undefined;
    if (runArgv !== undefined) {
      // The virt board's options (-drive, -device, -append, -initrd, -global, dumpdtb, -bios default).
      const virt = splitVirtOptions(runArgv);
      if (virt.help !== undefined) {
        io.stdout(new TextEncoder().encode(virt.help));
        return 0;
      }
      return await run(parseRunArgs(virt.argv), io, virt);
    }
    throw new UsageError(`${cmd}: unknown command (try vm-cli --help)`);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`vm-cli: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

function readImage(io: CliIo, path: string, what: string): Uint8Array {
  try {
    return io.readFile(path);
  } catch (e) {
    const reason = e instanceof Error && "code" in e ? String((e as NodeJS.ErrnoException).code) : String(e);
    throw new UsageError(`could not load ${what} '${path}': ${reason}`);
  }
}

function resolveBios(cfg: RunConfig, io: CliIo): "none" | Uint8Array {
  if (cfg.bios === "none") return "none";
  if (cfg.bios === "default") {
    for (const p of DEFAULT_BIOS_PATHS) {
      try {
        return io.readFile(p);
      } catch {
        // try the next location
      }
    }
    throw new UsageError(
      `-bios default: no OpenSBI firmware found (looked in ${DEFAULT_BIOS_PATHS.join(", ")}); use -bios none for bare programs`,
    );
  }
  return readImage(io, cfg.bios.path, "firmware");
}

async function run(cfg: RunConfig, io: CliIo, virt?: VirtCliOptions): Promise<number> {
  const enc = new TextEncoder();
  if (cfg.help === "usage") {
    io.stdout(enc.encode(RUN_USAGE));
    return 0;
  }
  if (cfg.help === "version") {
    io.stdout(enc.encode(`vm-cli (FerryVM) ${version()}\n`));
    return 0;
  }
  if (cfg.help === "machine") {
    io.stdout(enc.encode("Supported machines are:\n" + MACHINES.map((m) => `${m.name.padEnd(20)} ${m.desc}\n`).join("")));
    return 0;
  }
  if (cfg.help === "log") {
    io.stdout(enc.encode(LOG_HELP));
    return 0;
  }
  if (cfg.help === "cpu") {
    const ext = CPU_EXTENSION_PROPERTIES.join(", ");
    io.stdout(enc.encode("Available CPUs:\n" + CPUS.map((c) => `  ${c}\n`).join("") + `\nrv64 properties (-cpu rv64,PROP=on|off): ${ext}\n`));
    return 0;
  }
  const bios = resolveBios(cfg, io);
  const kernel = cfg.kernel === undefined ? undefined : readImage(io, cfg.kernel, "kernel");
  if (bios === "none" && kernel === undefined) {
    io.stderr("vm-cli: warning: -bios none without -kernel: the harts start in empty RAM\n");
  }
  const serial = cfg.serial ?? (cfg.nographic ? "mon:stdio" : "stdio");
  const consoleOn = serial === "mon:stdio" || serial === "stdio";
  let machine: Machine;
  // Opened before the machine so -d cpu_reset sees the power-on resets, as QEMU's.
  const log = openLog(cfg, io);
  try {
    machine = await createVirtMachine({
      ...machineShape(cfg),
      bios,
      kernel,
      onConsoleOutput: consoleOn ? io.stdout : undefined,
      onErrorOutput: (b) => io.stderr(new TextDecoder().decode(b)),
      // QEMU logs guest errors only with -d guest_errors (see openLog).
      onGuestError: log.guestErrors ? (m) => log.write(`${m}\n`) : undefined,
      onTrap: cfg.log.has("int") ? (e) => log.write(`${formatTrapQemu(e)}\n`) : undefined,
      onCpuReset: cfg.log.has("cpu_reset") ? (e) => log.write(`${e.line}\n`) : undefined,
      icount: cfg.icountShift === undefined ? undefined : { shift: cfg.icountShift },
      vcpuThread: tcgThreadOf(cfg) === "multi" ? "worker" : "main",
    }, virt, io.readFile);
  } catch (e) {
    log.close();
    if (e instanceof RangeError || (e instanceof Error && (e.name === "ElfError" || e.name === "PropertyError" || e.name === "MachineTypeError" || e.name === "CpuIsaError"))) {
      throw new UsageError(e.message);
    }
    throw e;
  }
  if (virt?.dumpdtb !== undefined) {
    log.close();
    return dumpDtb(machine, virt.dumpdtb, io.stderr);
  }

  const controller = new VmController(machine, {
    startPaused: cfg.startPaused,
    noReboot: cfg.noReboot,
    noShutdown: cfg.noShutdown,
    keepOnError: cfg.monitors.length > 0,
    onError: (e) => io.stderr(`vm-cli: internal error: ${e instanceof Error ? e.message : String(e)}\n`),
    incoming: cfg.incoming !== undefined,
    holdWhilePaused: true,
  });
  const migration = new MigrationManager(controller, machine);
  const ctx: MonitorContext = {
    controller,
    harts: cfg.smp,
    name: cfg.name,
    packageVersion: version(),
    hart: (i) => machine.hart(i),
    readPhys: (addr, length) => machine.physicalMemory.view(addr, length),
    migration,
    machineConfig: machine.config,
  };

  const servers: { close(): Promise<void>; waitForClient(): Promise<void>; wait: boolean; address: string }[] = [];
  let stdioMonitor = false;
  try {
    for (const mon of cfg.monitors) {
      if (mon.chardev === "stdio") {
        stdioMonitor = true;
        continue;
      }
      const server = mon.mode === "control" ? new QmpServer(ctx, { pretty: mon.pretty }) : new HmpSocketServer(ctx);
      let address: string;
      try {
        address = await server.listen(mon.chardev);
      } catch (e) {
        throw new UsageError(`${mon.mode === "control" ? "-qmp" : "-monitor"} ${formatAddress(mon.chardev.address)}: Failed to listen: ${e instanceof Error ? e.message : String(e)}`);
      }
      servers.push({ close: () => server.close(), waitForClient: () => server.waitForClient(), wait: mon.chardev.wait, address });
      if (mon.chardev.address.transport === "tcp" && mon.chardev.address.port === 0) {
        io.stderr(`vm-cli: ${mon.mode === "control" ? "QMP" : "monitor"} listening on ${address}\n`);
      }
    }
    for (const s of servers) {
      if (!s.wait) continue;
      io.stderr(`vm-cli: waiting for connection on: ${s.address},server=on\n`);
      const sig = await waitOrSignal(s.waitForClient(), io.handleSignals === true);
      if (sig !== undefined) {
        await Promise.all(servers.map((x) => x.close()));
        log.close();
        io.stderr(`vm-cli: terminating on signal ${sig}\n`);
        return 128 + (SIGNAL_NUMBERS[sig] ?? 0);
      }
    }
  } catch (e) {
    await Promise.all(servers.map((s) => s.close()));
    log.close();
    throw e;
  }

  const detach = consoleOn || stdioMonitor ? attachConsole(machine, controller, ctx, io, serial === "mon:stdio", stdioMonitor) : () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (cfg.timeoutSeconds !== undefined) timer = setTimeout(() => void controller.timeout(), cfg.timeoutSeconds * 1000);
  const onSignal = (sig: NodeJS.Signals): void => {
    void controller.signal(sig);
  };
  const signals: NodeJS.Signals[] = io.handleSignals ? ["SIGINT", "SIGTERM", "SIGHUP"] : [];
  for (const s of signals) process.on(s, onSignal);
  // With a monitor this VM may be migrated: compile the switch-over's device save meanwhile.
  const stopWarmUp = cfg.monitors.length > 0 ? migration.warmUp() : () => {};
  try {
    if (cfg.incoming !== undefined && cfg.incoming !== "defer") {
      try {
        await migration.incoming(cfg.incoming, true);
      } catch (e) {
        if (!(e instanceof MigrationCommandError)) throw e;
        io.stderr(`vm-cli: -incoming ${cfg.incoming}: ${e.message}\n`);
        return 1;
      }
    }
    const outcome = await controller.start();
    if (outcome.kind === "error") {
      io.stderr(`vm-cli: load of migration failed: ${outcome.message}\n`);
      return 1;
    }
    if (outcome.kind === "timeout") {
      io.stderr(`vm-cli: timeout: the guest was still running after ${cfg.timeoutSeconds} s\n`);
      return EXIT_TIMEOUT;
    }
    if (outcome.kind === "signal") {
      io.stderr(`vm-cli: terminating on signal ${outcome.signal}\n`);
      return 128 + (SIGNAL_NUMBERS[outcome.signal] ?? 0);
    }
    if (outcome.kind === "quit") {
      if (outcome.cause === "host-ui") io.stderr("vm-cli: terminated\n");
      return exitStatus(outcome.code);
    }
    if (cfg.signature !== undefined) writeSignature(machine, cfg, io);
    return exitStatus(outcome.code);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    for (const s of signals) process.off(s, onSignal);
    detach();
    stopWarmUp();
    migration.close();
    // Let responses already queued (quit's {"return": {}}) reach the sockets first.
    await new Promise((r) => setImmediate(r));
    await Promise.all(servers.map((s) => s.close()));
    log.close();
  }
}

/** Waits for `p`, or for SIGINT/SIGTERM/SIGHUP (returned) when `signals`. */
async function waitOrSignal(p: Promise<void>, signals: boolean): Promise<NodeJS.Signals | undefined> {
  if (!signals) {
    await p;
    return undefined;
  }
  const names: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  let handler: ((sig: NodeJS.Signals) => void) | undefined;
  const got = new Promise<NodeJS.Signals>((resolve) => {
    handler = resolve;
    for (const n of names) process.on(n, handler);
  });
  try {
    return await Promise.race([p.then(() => undefined), got]);
  } finally {
    for (const n of names) process.off(n, handler!);
  }
}

interface LogSink {
  guestErrors: boolean;
  write: (line: string) => void;
  close: () => void;
}

/** `-d` items to stderr or to the `-D` file. */
function openLog(cfg: RunConfig, io: CliIo): LogSink {
  const enabled = cfg.log.has("guest_errors") || cfg.log.has("unimp");
  if (cfg.logFile === undefined) return { guestErrors: enabled, write: (l) => io.stderr(l), close: () => {} };
  let fd: number;
  try {
    fd = openSync(cfg.logFile, "w");
  } catch (e) {
    throw new UsageError(`-D ${cfg.logFile}: ${e instanceof Error && "code" in e ? String((e as NodeJS.ErrnoException).code) : String(e)}`);
  }
  return {
    guestErrors: enabled,
    write: (l) => writeSync(fd, l),
    close: () => closeSync(fd),
  };
}

/**
 * Spike's signature dump: the bytes of [begin_signature, end_signature), `granularity` bytes per
 * line, each line the hex of a little-endian number (highest byte first), zero-padded at the end.
 */
export function formatSignature(bytes: Uint8Array, granularity: number): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += granularity) {
    for (let j = granularity; j > 0; j--) text += (i + j <= bytes.length ? bytes[i + j - 1]! : 0).toString(16).padStart(2, "0");
    text += "\n";
  }
  return text;
}

function writeSignature(machine: Machine, cfg: RunConfig, io: CliIo): void {
  const elf = machine.kernelImage?.elf;
  const begin = elf?.symbol("begin_signature")?.value;
  const end = elf?.symbol("end_signature")?.value;
  if (begin === undefined || end === undefined || end < begin) {
    throw new UsageError("--signature: the kernel has no begin_signature/end_signature symbols");
  }
  const bytes = machine.physicalMemory.view(begin, Number(end - begin));
  if (bytes === undefined) throw new UsageError("--signature: the signature region is outside guest RAM");
  const write = io.writeFile ?? ((p: string, t: string) => writeFileSync(p, t));
  write(cfg.signature!, formatSignature(bytes, cfg.signatureGranularity));
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/**
 * Wires stdin to the guest and the monitor; returns the function that undoes it. With the
 * `mon:stdio` multiplexer Ctrl-A is a prefix whether stdin is a terminal or a pipe (as QEMU's
 * char-mux); `C-a c` switches between the guest console and the HMP monitor.
 */
function attachConsole(
  machine: Machine,
  controller: VmController,
  ctx: MonitorContext,
  io: CliIo,
  mux: boolean,
  monitorFirst: boolean,
): () => void {
  const stdin = io.stdin;
  if (stdin === null) return () => {};
  const raw = io.isTTY && io.setRawMode !== undefined;
  if (raw) io.setRawMode!(true);
  const escape = mux || raw ? new ConsoleEscape(mux || monitorFirst) : undefined;
  const monitor = new ReadlineMonitor(ctx, (t) => io.stdout(new TextEncoder().encode(t)), { echo: io.isTTY });
  let inMonitor = monitorFirst;
  if (inMonitor) monitor.focus();
  const toGuestOrMonitor = (bytes: Uint8Array): void => {
    if (bytes.length === 0) return;
    if (inMonitor) void monitor.feed(bytes);
    else machine.sendConsoleInput(bytes);
  };
  const onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : new Uint8Array(chunk);
    if (escape === undefined) {
      toGuestOrMonitor(bytes);
      return;
    }
    // Actions apply at their place in the input: split the chunk at each escape.
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      const { forward, actions } = escape.process(bytes.subarray(i, i + 1));
      if (actions.length === 0 && forward.length === 1 && forward[0] === bytes[i]) continue;
      toGuestOrMonitor(bytes.subarray(start, i));
      start = i + 1;
      if (forward.length > 0) toGuestOrMonitor(forward);
      for (const a of actions) {
        if (a === "quit") void controller.quit("host-ui");
        else if (a === "help") io.stderr(MUX_HELP);
        else if (a === "break") machine.sendBreak();
        else if (a === "monitor" && mux) {
          inMonitor = !inMonitor;
          if (inMonitor) monitor.focus();
        }
      }
    }
    toGuestOrMonitor(bytes.subarray(start));
  };
  stdin.on("data", onData);
  stdin.resume();
  return () => {
    stdin.off("data", onData);
    stdin.pause();
    if (raw) io.setRawMode!(false);
  };
}
