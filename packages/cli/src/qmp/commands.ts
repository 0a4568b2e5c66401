/**
 * The QMP commands we have, with their argument schemas checked as QEMU's generated
 * visitors do (qapi/qobject-input-visitor.c): unknown argument → "Parameter 'x' is
 * unexpected", missing → "Parameter 'x' is missing", wrong type → "Invalid parameter type
 * for 'x', expected: T". Return shapes and key orders are QEMU 7.2's (see the fixtures in
 * qmp.test.ts).
 *
 * @module
 */

import { MACHINE_TYPES, VIRT_DEVICE_CLASSES } from "@ferryvm/devices";
import { ControllerError } from "../controller.ts";
import { MIGRATION_CAPABILITY_NAMES, MIGRATION_STATUS_NAMES, MigrationCommandError, type MigrationCapability, type MigrationManager, type MigrationStatus } from "../snapshot/migration.ts";
import { executeHmp, type MonitorContext } from "../hmp.ts";
import { monitorClosefd, monitorGetfd } from "./fds.ts";
import type { JsonValue } from "./json.ts";
import { QEMU_VERSION } from "./version.ts";

/** A QMP error: class and description, as `{"error": {"class", "desc"}}`. */
export class QmpError extends Error {
  readonly errorClass: "GenericError" | "CommandNotFound";
  constructor(errorClass: "GenericError" | "CommandNotFound", desc: string) {
    super(desc);
    this.errorClass = errorClass;
  }
}

type ArgType = "str" | "int" | "bool" | "list" | { enumList: readonly string[] };

interface ArgSpec {
  type: ArgType;
  optional?: boolean;
}

export interface QmpCommand {
  args: Record<string, ArgSpec>;
  /** The command checks its own arguments (migrate-set-parameters' many members). */
  anyArgs?: boolean;
  run: (ctx: MonitorContext, args: Record<string, JsonValue>) => Promise<JsonValue> | JsonValue;
}

const TYPE_NAMES = { str: "string", int: "integer", bool: "boolean" } as const;

/** Checks `args` against a command's schema; throws QEMU's GenericError messages. */
export function checkArgs(spec: Record<string, ArgSpec>, args: Record<string, JsonValue>): void {
  for (const key of Object.keys(args)) {
    if (!Object.hasOwn(spec, key)) throw new QmpError("GenericError", `Parameter '${key}' is unexpected`);
  }
  for (const [key, s] of Object.entries(spec)) {
    const v = args[key];
    if (!Object.hasOwn(args, key)) {
      if (s.optional) continue;
      throw new QmpError("GenericError", `Parameter '${key}' is missing`);
    }
    const t = s.type;
    if (t === "list") {
      if (!Array.isArray(v)) throw new QmpError("GenericError", `Invalid parameter type for '${key}', expected: array`);
      continue;
    }
    if (typeof t === "object") {
      if (!Array.isArray(v)) throw new QmpError("GenericError", `Invalid parameter type for '${key}', expected: array`);
      for (const item of v) {
        if (typeof item !== "string") throw new QmpError("GenericError", `Invalid parameter type for 'null', expected: string`);
        // QEMU 7.2 names a list element 'null' in this message.
        if (!t.enumList.includes(item)) throw new QmpError("GenericError", `Parameter 'null' does not accept value '${item}'`);
      }
      continue;
    }
    const ok = t === "str" ? typeof v === "string" : t === "bool" ? typeof v === "boolean" : Number.isInteger(v);
    if (!ok) throw new QmpError("GenericError", `Invalid parameter type for '${key}', expected: ${TYPE_NAMES[t]}`);
  }
}

async function act(p: Promise<void>): Promise<JsonValue> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ControllerError) throw new QmpError("GenericError", e.message);
    throw e;
  }
  return {};
}

function migration(ctx: MonitorContext): MigrationManager {
  if (ctx.migration === undefined) throw new QmpError("GenericError", "migration is not available on this monitor");
  return ctx.migration;
}

async function migrationAct(p: () => Promise<void> | void): Promise<JsonValue> {
  try {
    await p();
  } catch (e) {
    if (e instanceof MigrationCommandError) throw new QmpError("GenericError", e.message);
    throw e;
  }
  return {};
}

/** migrate-set-capabilities' list, checked as QEMU's visitor does. */
function migrationCapabilityList(v: JsonValue): { capability: MigrationCapability; state: boolean }[] {
  const out: { capability: MigrationCapability; state: boolean }[] = [];
  for (const item of v as JsonValue[]) {
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      throw new QmpError("GenericError", "Invalid parameter type for 'capabilities[0]', expected: object");
    }
    for (const key of Object.keys(item)) {
      if (key !== "capability" && key !== "state") throw new QmpError("GenericError", `Parameter '${key}' is unexpected`);
    }
    const cap = item["capability"];
    const state = item["state"];
    if (cap === undefined) throw new QmpError("GenericError", "Parameter 'capability' is missing");
    if (typeof cap !== "string") throw new QmpError("GenericError", "Invalid parameter type for 'capability', expected: string");
    if (!(MIGRATION_CAPABILITY_NAMES as readonly string[]).includes(cap)) {
      throw new QmpError("GenericError", `Parameter 'capability' does not accept value '${cap}'`);
    }
    if (state === undefined) throw new QmpError("GenericError", "Parameter 'state' is missing");
    if (typeof state !== "boolean") throw new QmpError("GenericError", "Invalid parameter type for 'state', expected: boolean");
    out.push({ capability: cap as MigrationCapability, state });
  }
  return out;
}


export function versionInfo(ctx: MonitorContext): JsonValue {
  const v = QEMU_VERSION;
  return { qemu: { micro: v.micro, minor: v.minor, major: v.major }, package: `FerryVM ${ctx.packageVersion}` };
}

export const QMP_COMMANDS: Record<string, QmpCommand> = {
  "qmp_capabilities": { args: { enable: { type: { enumList: ["oob"] }, optional: true } }, run: () => ({}) },
  "query-status": {
    args: {},
    run: (ctx) => ({ status: ctx.controller.state, singlestep: false, running: ctx.controller.running }),
  },
  "stop": { args: {}, run: (ctx) => act(ctx.controller.stop()) },
  "cont": { args: {}, run: (ctx) => act(ctx.controller.cont()) },
  "system_reset": { args: {}, run: (ctx) => act(ctx.controller.systemReset()) },
  "system_powerdown": { args: {}, run: (ctx) => act(ctx.controller.powerdown()) },
  "quit": { args: {}, run: (ctx) => act(ctx.controller.quit()) },
  "query-cpus-fast": {
    args: {},
    run: (ctx) =>
      Array.from({ length: ctx.harts }, (_, i) => ({
        // Every hart runs on the one Node.js thread.
        "thread-id": process.pid,
        props: { "core-id": i },
        "qom-path": `/machine/soc0/harts[${i}]`,
        "cpu-index": i,
        target: "riscv64",
      })),
  },
  "query-commands": { args: {}, run: () => Object.keys(QMP_COMMANDS).map((name) => ({ name })) },
  "query-version": { args: {}, run: versionInfo },
  "query-name": { args: {}, run: (ctx): JsonValue => (ctx.name === undefined ? {} : { name: ctx.name }) },
  "query-kvm": { args: {}, run: () => ({ enabled: false, present: false }) },
  "query-target": { args: {}, run: () => ({ arch: "riscv64" }) },
  // qmp_getfd: names the descriptor the client sent with SCM_RIGHTS on this connection.
  // Their errors are plain Errors: the session answers them as GenericError.
  "getfd": {
    args: { fdname: { type: "str" } },
    run: (ctx, args) => {
      monitorGetfd(ctx.fds, args["fdname"] as string);
      return {};
    },
  },
  "closefd": {
    args: { fdname: { type: "str" } },
    run: (ctx, args) => {
      monitorClosefd(ctx.fds, args["fdname"] as string);
      return {};
    },
  },
  // QEMU's device-list-properties: a device type's properties (defaults as of the newest machine type).
  "device-list-properties": {
    args: { typename: { type: "str" } },
    run: (_ctx, args): JsonValue => {
      const name = args["typename"] as string;
      const cls = VIRT_DEVICE_CLASSES.find((c) => c.driver === name);
      if (cls === undefined) throw new QmpError("GenericError", `Device '${name}' not found`);
      return cls.properties.map((p) => ({
        name: p.name,
        type: p.type,
        ...(p.description === undefined ? {} : { description: p.description }),
        // A uint64 beyond 2^53 would lose digits as a JSON number here: left out, as QEMU leaves out defaults it cannot show.
        ...(typeof p.default !== "bigint" ? { "default-value": p.default } : p.default <= BigInt(Number.MAX_SAFE_INTEGER) ? { "default-value": Number(p.default) } : {}),
      }));
    },
  },
  "query-machines": {
    args: {},
    // One entry per versioned type, the newest carrying its alias and is-default (QEMU's shape).
    run: () =>
      MACHINE_TYPES.map((m) => ({
        "hotpluggable-cpus": false,
        name: m.name,
        ...(m.alias === undefined ? {} : { alias: m.alias }),
        ...(m.isDefault ? { "is-default": true } : {}),
        "numa-mem-supported": true,
        "default-cpu-type": "rv64-riscv-cpu",
        // QEMU's VIRT_CPUS_MAX is 512; our CPU module has room for 32 harts.
        "cpu-max": 32,
        deprecated: false,
        "default-ram-id": "riscv_virt_board.ram",
      })),
  },
  "migrate": {
    args: {
      uri: { type: "str" },
      blk: { type: "bool", optional: true },
      inc: { type: "bool", optional: true },
      detach: { type: "bool", optional: true },
      resume: { type: "bool", optional: true },
    },
    run: (ctx, args) => {
      if (args["blk"] === true || args["inc"] === true) throw new QmpError("GenericError", "QEMU compiled without old-style (blk/-b, inc/-i) block migration");
      if (args["resume"] === true) throw new QmpError("GenericError", "Cannot resume if there is no paused migration");
      return migrationAct(() => migration(ctx).migrate(args["uri"] as string, ctx.fds?.named));
    },
  },
  "migrate-incoming": {
    args: { uri: { type: "str" } },
    run: (ctx, args) => migrationAct(() => migration(ctx).incoming(args["uri"] as string, false, ctx.fds?.named)),
  },
  "query-migrate": { args: {}, run: (ctx) => migration(ctx).queryMigrate() },
  "migrate-continue": {
    args: { state: { type: "str" } },
    run: (ctx, args) => {
      const state = args["state"] as string;
      if (!(MIGRATION_STATUS_NAMES as readonly string[]).includes(state)) throw new QmpError("GenericError", `Parameter 'state' does not accept value '${state}'`);
      return migrationAct(() => migration(ctx).continue(state as MigrationStatus));
    },
  },
  "migrate_cancel": { args: {}, run: (ctx) => migrationAct(() => migration(ctx).cancel()) },
  "migrate-set-capabilities": {
    args: { capabilities: { type: "list" } },
    run: (ctx, args) => {
      const caps = migrationCapabilityList(args["capabilities"]!);
      return migrationAct(() => migration(ctx).setCapabilities(caps));
    },
  },
  "migrate-set-parameters": {
    args: {},
    anyArgs: true,
    run: (ctx, args) => migrationAct(() => migration(ctx).setParameters(args as never)),
  },
  "query-migrate-parameters": { args: {}, run: (ctx) => migration(ctx).parameters() },
  "query-migrate-capabilities": { args: {}, run: (ctx) => migration(ctx).capabilities() },
  "human-monitor-command": {
    args: { "command-line": { type: "str" }, "cpu-index": { type: "int", optional: true } },
    run: async (ctx, args) => {
      const cpu = args["cpu-index"];
      if (typeof cpu === "number" && (cpu < 0 || cpu >= ctx.harts)) {
        throw new QmpError("GenericError", `Parameter 'cpu-index' expects a CPU number`);
      }
      return (await executeHmp(args["command-line"] as string, ctx, typeof cpu === "number" ? cpu : 0)).replace(/\r?\n/g, "\r\n");
    },
  },
};
