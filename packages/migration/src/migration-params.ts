/**
 * Migration capabilities and parameters with QEMU 7.2's names, defaults, validation and
 * error texts (migration/migration.c: migrate_caps_check, migrate_params_check,
 * qmp_query_migrate_parameters / _capabilities), plus `dirty-limit` and its parameters from
 * later QEMU.
 *
 * @module
 */

import { MIGRATION_CAPABILITIES } from "./config.ts";
import { TARGET_PAGE_SIZE } from "./constants.ts";

/** A capability name of `migrate-set-capabilities` (QEMU 7.2's list plus `dirty-limit`). */
export type MigrationCapability = (typeof MIGRATION_CAPABILITIES)[number] | "dirty-limit";

/** Every capability in QAPI order (what query-migrate-capabilities lists). */
export const ALL_MIGRATION_CAPABILITIES: readonly MigrationCapability[] = [...MIGRATION_CAPABILITIES, "dirty-limit"];

/** Capabilities this implementation runs; enabling another one fails. */
export const SUPPORTED_CAPABILITIES: ReadonlySet<MigrationCapability> = new Set<MigrationCapability>([
  "xbzrle",
  "auto-converge",
  "events",
  "return-path",
  "pause-before-switchover",
  "validate-uuid",
  "x-ignore-shared",
  "zero-blocks",
  "late-block-activate",
]);

/** One entry of query-migrate-capabilities / migrate-set-capabilities. */
export interface MigrationCapabilityStatus {
  capability: MigrationCapability;
  state: boolean;
}

/** query-migrate-parameters (QEMU 7.2's MigrationParameters, all members present). */
export interface MigrationParameters {
  "announce-initial": number;
  "announce-max": number;
  "announce-rounds": number;
  "announce-step": number;
  "compress-level": number;
  "compress-threads": number;
  "compress-wait-thread": boolean;
  "decompress-threads": number;
  "throttle-trigger-threshold": number;
  "cpu-throttle-initial": number;
  "cpu-throttle-increment": number;
  "cpu-throttle-tailslow": boolean;
  "tls-creds": string;
  "tls-hostname": string;
  "tls-authz": string;
  "max-bandwidth": number;
  "downtime-limit": number;
  "x-checkpoint-delay": number;
  "block-incremental": boolean;
  "multifd-channels": number;
  "xbzrle-cache-size": number;
  "max-postcopy-bandwidth": number;
  "max-cpu-throttle": number;
  "multifd-compression": "none" | "zlib" | "zstd";
  "multifd-zlib-level": number;
  "multifd-zstd-level": number;
  "block-bitmap-mapping": unknown[];
  /** Later QEMU (dirty-limit). */
  "x-vcpu-dirty-limit-period": number;
  /** Later QEMU (dirty-limit), MB/s. */
  "vcpu-dirty-limit": number;
}

/** migrate-set-parameters arguments: any subset. */
export type MigrateSetParameters = Partial<MigrationParameters>;

/** QEMU 7.2's defaults (DESIGN.md §8). */
export function defaultMigrationParameters(): MigrationParameters {
  return {
    "announce-initial": 50,
    "announce-max": 550,
    "announce-rounds": 5,
    "announce-step": 100,
    "compress-level": 1,
    "compress-threads": 8,
    "compress-wait-thread": true,
    "decompress-threads": 2,
    "throttle-trigger-threshold": 50,
    "cpu-throttle-initial": 20,
    "cpu-throttle-increment": 10,
    "cpu-throttle-tailslow": false,
    "tls-creds": "",
    "tls-hostname": "",
    "tls-authz": "",
    "max-bandwidth": 134217728,
    "downtime-limit": 300,
    "x-checkpoint-delay": 20000,
    "block-incremental": false,
    "multifd-channels": 2,
    "xbzrle-cache-size": 67108864,
    "max-postcopy-bandwidth": 0,
    "max-cpu-throttle": 99,
    "multifd-compression": "none",
    "multifd-zlib-level": 1,
    "multifd-zstd-level": 1,
    "block-bitmap-mapping": [],
    "x-vcpu-dirty-limit-period": 1000,
    "vcpu-dirty-limit": 1,
  };
}

/** A QMP error: `class` is QEMU's ErrorClass ("GenericError" for everything migration raises). */
export class QmpError extends Error {
  readonly class: "GenericError" | "DeviceNotFound" | "CommandNotFound";
  constructor(message: string, errorClass: QmpError["class"] = "GenericError") {
    super(message);
    this.name = "QmpError";
    this.class = errorClass;
  }
}

/** QERR_INVALID_PARAMETER_VALUE. */
function invalid(name: string, expects: string): QmpError {
  return new QmpError(`Parameter '${name}' expects ${expects}`);
}

/** QERR_MIGRATION_ACTIVE. */
export const MIGRATION_ACTIVE_MESSAGE = "There's a migration process in progress";

const MAX_MIGRATE_DOWNTIME = 2000 * 1000;
const INTEGER_PARAMS = new Set<keyof MigrationParameters>([
  "announce-initial", "announce-max", "announce-rounds", "announce-step", "compress-level", "compress-threads",
  "decompress-threads", "throttle-trigger-threshold", "cpu-throttle-initial", "cpu-throttle-increment",
  "max-bandwidth", "downtime-limit", "x-checkpoint-delay", "multifd-channels", "xbzrle-cache-size",
  "max-postcopy-bandwidth", "max-cpu-throttle", "multifd-zlib-level", "multifd-zstd-level",
  "x-vcpu-dirty-limit-period", "vcpu-dirty-limit",
]);
const BOOL_PARAMS = new Set<keyof MigrationParameters>(["compress-wait-thread", "cpu-throttle-tailslow", "block-incremental"]);
const STRING_PARAMS = new Set<keyof MigrationParameters>(["tls-creds", "tls-hostname", "tls-authz"]);

function isPowerOf2(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n));
}

/**
 * Applies `update` over `current` and checks the result (migrate_params_test_apply +
 * migrate_params_check); returns the new parameters or throws a QmpError with QEMU's text.
 */
export function applyMigrationParameters(current: MigrationParameters, update: MigrateSetParameters): MigrationParameters {
  const defaults = defaultMigrationParameters();
  for (const [key, value] of Object.entries(update)) {
    const k = key as keyof MigrationParameters;
    if (!(key in defaults)) throw new QmpError(`Parameter '${key}' is unexpected`);
    if (INTEGER_PARAMS.has(k) && (typeof value !== "number" || !Number.isInteger(value) || value < 0)) {
      throw new QmpError(`Parameter '${key}' expects ${k === "max-bandwidth" || k === "xbzrle-cache-size" || k === "max-postcopy-bandwidth" ? "size" : "uint64"}`);
    }
    if (BOOL_PARAMS.has(k) && typeof value !== "boolean") throw new QmpError(`Invalid parameter type for '${key}', expected: boolean`);
    if (STRING_PARAMS.has(k) && typeof value !== "string") throw new QmpError(`Invalid parameter type for '${key}', expected: string`);
    if (k === "multifd-compression" && !["none", "zlib", "zstd"].includes(value as string)) {
      throw new QmpError(`Parameter '${key}' does not accept value '${String(value)}'`);
    }
  }
  const p: MigrationParameters = { ...current, ...update };
  const has = (k: keyof MigrationParameters): boolean => update[k] !== undefined;
  if (has("compress-level") && p["compress-level"] > 9) throw invalid("compress_level", "a value between 0 and 9");
  if (has("compress-threads") && (p["compress-threads"] < 1 || p["compress-threads"] > 255)) {
    throw invalid("compress_threads", "a value between 1 and 255");
  }
  if (has("decompress-threads") && (p["decompress-threads"] < 1 || p["decompress-threads"] > 255)) {
    throw invalid("decompress_threads", "a value between 1 and 255");
  }
  if (has("throttle-trigger-threshold") && (p["throttle-trigger-threshold"] < 1 || p["throttle-trigger-threshold"] > 100)) {
    throw invalid("throttle_trigger_threshold", "an integer in the range of 1 to 100");
  }
  if (has("cpu-throttle-initial") && (p["cpu-throttle-initial"] < 1 || p["cpu-throttle-initial"] > 99)) {
    throw invalid("cpu_throttle_initial", "an integer in the range of 1 to 99");
  }
  if (has("cpu-throttle-increment") && (p["cpu-throttle-increment"] < 1 || p["cpu-throttle-increment"] > 99)) {
    throw invalid("cpu_throttle_increment", "an integer in the range of 1 to 99");
  }
  if (has("max-bandwidth") && p["max-bandwidth"] > Number.MAX_SAFE_INTEGER) {
    throw invalid("max_bandwidth", "an integer in the range of 0 to (18446744073709551615UL) bytes/second");
  }
  if (has("downtime-limit") && p["downtime-limit"] > MAX_MIGRATE_DOWNTIME) {
    throw invalid("downtime_limit", "an integer in the range of 0 to (2000 * 1000) ms");
  }
  if (has("multifd-channels") && (p["multifd-channels"] < 1 || p["multifd-channels"] > 255)) {
    throw invalid("multifd_channels", "a value between 1 and 255");
  }
  if (has("multifd-zlib-level") && p["multifd-zlib-level"] > 9) throw invalid("multifd_zlib_level", "a value between 0 and 9");
  if (has("multifd-zstd-level") && p["multifd-zstd-level"] > 20) throw invalid("multifd_zstd_level", "a value between 0 and 20");
  if (has("xbzrle-cache-size") && (p["xbzrle-cache-size"] < TARGET_PAGE_SIZE || !isPowerOf2(p["xbzrle-cache-size"]))) {
    throw invalid("xbzrle_cache_size", "a power of two no less than the target page size");
  }
  if (has("max-cpu-throttle") && (p["max-cpu-throttle"] < p["cpu-throttle-initial"] || p["max-cpu-throttle"] > 99)) {
    throw invalid("max_cpu_throttle", "an integer in the range of cpu_throttle_initial to 99");
  }
  if (has("announce-initial") && p["announce-initial"] > 100000) throw invalid("announce_initial", "a value between 0 and 100000");
  if (has("announce-max") && p["announce-max"] > 100000) throw invalid("announce_max", "a value between 0 and 100000");
  if (has("announce-rounds") && p["announce-rounds"] > 1000) throw invalid("announce_rounds", "a value between 0 and 1000");
  if (has("announce-step") && (p["announce-step"] < 1 || p["announce-step"] > 10000)) {
    throw invalid("announce_step", "a value between 0 and 10000");
  }
  if (has("x-vcpu-dirty-limit-period") && (p["x-vcpu-dirty-limit-period"] < 1 || p["x-vcpu-dirty-limit-period"] > 1000)) {
    throw invalid("x-vcpu-dirty-limit-period", "a value between 1 and 1000");
  }
  if (has("vcpu-dirty-limit") && p["vcpu-dirty-limit"] < 1) throw invalid("vcpu_dirty_limit", "is invalid, it must greater then 1 MB/s");
  if ((p["tls-creds"] !== "") && has("tls-creds")) throw new QmpError("TLS is not supported by this build");
  return p;
}

/** The capability set of one MigrationState. */
export type MigrationCapabilities = Record<MigrationCapability, boolean>;

export function defaultMigrationCapabilities(): MigrationCapabilities {
  return Object.fromEntries(ALL_MIGRATION_CAPABILITIES.map((c) => [c, false])) as MigrationCapabilities;
}

/**
 * Applies a capability list (migrate_caps_check): unknown names, unsupported features and
 * QEMU's incompatibilities fail with its texts. Returns the new set.
 */
export function applyMigrationCapabilities(
  current: MigrationCapabilities,
  list: readonly MigrationCapabilityStatus[],
): MigrationCapabilities {
  const next = { ...current };
  for (const entry of list) {
    if (typeof entry !== "object" || entry === null) throw new QmpError("Invalid parameter type for 'capabilities', expected: object");
    const name = entry.capability as string;
    if (!(ALL_MIGRATION_CAPABILITIES as readonly string[]).includes(name)) {
      throw new QmpError(`Parameter 'capability' does not accept value '${name}'`);
    }
    if (typeof entry.state !== "boolean") throw new QmpError("Invalid parameter type for 'state', expected: boolean");
    next[entry.capability] = entry.state;
  }
  for (const c of ALL_MIGRATION_CAPABILITIES) {
    if (!next[c] || current[c] || SUPPORTED_CAPABILITIES.has(c)) continue;
    if (c === "postcopy-ram") throw new QmpError("Postcopy is not supported");
    if (c === "background-snapshot") throw new QmpError("Background-snapshot is not supported by host kernel");
    if (c === "postcopy-preempt") throw new QmpError("Postcopy preempt requires postcopy-ram");
    throw new QmpError(`Capability '${c}' is not supported by FerryVM yet`);
  }
  return next;
}

/** query-migrate-capabilities: every capability with its state, in QAPI order. */
export function queryMigrateCapabilities(caps: MigrationCapabilities): MigrationCapabilityStatus[] {
  return ALL_MIGRATION_CAPABILITIES.map((capability) => ({ capability, state: caps[capability] }));
}
