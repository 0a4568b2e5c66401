/**
 * `vm-cli`: FerryVM's command line, with QEMU's flag spellings.
 *
 * ```ts
 * import { main } from "@ferryvm/cli";
 * const status = await main(["run", "-M", "virt", "-bios", "none", "-kernel", "prog.elf", "-nographic"]);
 * ```
 *
 * @module
 */

export * from "./args.ts";
export * from "./chardev.ts";
export * from "./console.ts";
export * from "./controller.ts";
export * from "./hmp.ts";
export * from "./main.ts";
export * from "./monitor.ts";
export { formatJson, JsonStreamer, parseJson, type JsonItem, type JsonValue } from "./qmp/json.ts";
export { QMP_COMMANDS, QmpError, type QmpCommand } from "./qmp/commands.ts";
export { QmpServer, QmpSession, timestamp, type QmpServerOptions, type QmpSessionFds } from "./qmp/server.ts";
export { MonitorFds, type MonitorFdContext } from "./qmp/fds.ts";
export { scmRightsUnavailable, sendWithFds } from "./qmp/scm-rights.ts";
export { parseQmpAddress, QmpClient, QmpCommandError, runMigration, type QmpAddress } from "./migrate-command.ts";
export { QEMU_VERSION } from "./qmp/version.ts";
export * from "./snapshot/migration.ts";
export { ChannelError, openIncoming, openOutgoing, parseMigrationUri, strerror, type IncomingChannel, type MigrationUri, type OutgoingChannel } from "./snapshot/channel.ts";
export { buildRegistry, loadMachine, saveMachine, MACHINE_TYPE, type SnapshotMachine, type VmRegistry, type VmstateEntryLike } from "./snapshot/vm-state.ts";
export { ANALYZE_USAGE, analyzeFile, parseAnalyzeArgs, type AnalyzeArgs } from "./snapshot/analyze.ts";
