/**
 * The HMP side of migration that is text in and text out (QEMU 7.2's monitor/hmp-cmds.c):
 * `migrate_set_parameter`'s string parsing (the string input visitor, with max-bandwidth in
 * MiB) and `info migrate_parameters` (`info migrate` is @ferryvm/migration's formatInfoMigrate).
 *
 * @module
 */

import type { JsonValue } from "./qmp/json.ts";

type ParamKind = "uint8" | "uint32" | "bool" | "str" | "size" | "size-MiB" | "multifd-compression";

/** hmp_migrate_set_parameter's visitor per parameter (QEMU 7.2, plus later QEMU's dirty-limit ones). */
const PARAM_KINDS: Readonly<Record<string, ParamKind>> = {
  "announce-initial": "size",
  "announce-max": "size",
  "announce-rounds": "size",
  "announce-step": "size",
  "compress-level": "uint8",
  "compress-threads": "uint8",
  "compress-wait-thread": "bool",
  "decompress-threads": "uint8",
  "throttle-trigger-threshold": "uint8",
  "cpu-throttle-initial": "uint8",
  "cpu-throttle-increment": "uint8",
  "cpu-throttle-tailslow": "bool",
  "tls-creds": "str",
  "tls-hostname": "str",
  "tls-authz": "str",
  "max-bandwidth": "size-MiB",
  "downtime-limit": "size",
  "x-checkpoint-delay": "uint32",
  "block-incremental": "bool",
  "multifd-channels": "uint8",
  "xbzrle-cache-size": "size",
  "max-postcopy-bandwidth": "size",
  "max-cpu-throttle": "uint8",
  "multifd-compression": "multifd-compression",
  "multifd-zlib-level": "uint8",
  "multifd-zstd-level": "uint8",
  "block-bitmap-mapping": "str",
  "x-vcpu-dirty-limit-period": "size",
  "vcpu-dirty-limit": "size",
};

const SIZE_HINT = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.";

/** qemu_strtou64 with base 0 (0x hex, 0 octal, decimal); a minus wraps as strtoull does. */
function parseU64(text: string): bigint | undefined {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (m === null) return undefined;
  const digits = m[2]!;
  let v = digits.length > 1 && digits[0] === "0" && !/[xX]/.test(digits) ? BigInt("0o" + digits.slice(1)) : BigInt(digits);
  if (v >= 1n << 64n) return undefined;
  if (m[1] === "-" && v !== 0n) v = (1n << 64n) - v;
  return v;
}

/** qemu_strtosz: a decimal number, maybe with a fraction, and a unit suffix (default `unit`). */
function parseSize(text: string, unit: bigint): bigint | "range" | undefined {
  const m = /^\s*([0-9]+(?:\.[0-9]*)?|0[xX][0-9a-fA-F]+)([bBkKmMgGtTpPeE]?)$/.exec(text);
  if (m === null) return undefined;
  const suffixes = "bkmgtpe";
  const mul = m[2] === "" ? unit : 1n << BigInt(10 * suffixes.indexOf(m[2]!.toLowerCase()));
  const num = m[1]!;
  let value: bigint;
  if (num.includes(".")) {
    // A fraction needs a unit above bytes, as QEMU's
    if (mul === 1n) return undefined;
    const [int, frac = ""] = num.split(".");
    const scale = 10n ** BigInt(frac.length);
    value = (BigInt(int!) * scale + BigInt(frac === "" ? "0" : frac)) * mul / scale;
  } else {
    value = BigInt(num) * mul;
  }
  return value >= 1n << 64n ? "range" : value;
}

/**
 * A `migrate_set_parameter PARAM VALUE` value as migrate-set-parameters takes it, or QEMU's
 * error text (what follows "Error: ").
 */
export function parseMigrationParameter(param: string, text: string): { value: JsonValue } | { error: string } {
  const kind = Object.hasOwn(PARAM_KINDS, param) ? PARAM_KINDS[param] : undefined;
  if (kind === undefined) return { error: `invalid parameter value: ${param}` };
  if (param === "block-bitmap-mapping") return { error: "The block-bitmap-mapping parameter can only be set through QMP" };
  switch (kind) {
    case "uint8":
    case "uint32": {
      const v = parseU64(text);
      if (v === undefined) return { error: `Parameter '${param}' expects uint64` };
      if (v > (kind === "uint8" ? 0xffn : 0xffffffffn)) return { error: `Parameter '${param}' expects ${kind}_t` };
      return { value: Number(v) };
    }
    case "bool":
      if (["on", "yes", "true", "y"].includes(text)) return { value: true };
      if (["off", "no", "false", "n"].includes(text)) return { value: false };
      return { error: `Parameter '${param}' expects 'on' or 'off'` };
    case "str":
      return { value: text };
    case "multifd-compression":
      if (["none", "zlib", "zstd"].includes(text)) return { value: text };
      return { error: `Parameter '${param}' does not accept value '${text}'` };
    case "size-MiB": {
      const v = parseSize(text, 1n << 20n);
      if (v === undefined || v === "range" || v > (1n << 63n) - 1n) return { error: `Invalid size ${text}` };
      return { value: Number(v) };
    }
    case "size": {
      const v = parseSize(text, 1n);
      if (v === "range") return { error: `Value '${text}' is out of range for parameter '${param}'` };
      if (v === undefined) return { error: `Parameter '${param}' expects a non-negative number below 2^64\n${SIZE_HINT}` };
      return { value: Number(v) };
    }
  }
}

/** `info migrate_parameters` (hmp_info_migrate_parameters) from query-migrate-parameters. */
export function formatMigrationParameters(p: Readonly<Record<string, unknown>>): string {
  const n = (k: string): string => String(p[k] ?? 0);
  const onOff = (k: string): string => (p[k] === true ? "on" : "off");
  const quoted = (k: string): string => `'${String(p[k] ?? "")}'`;
  return [
    `announce-initial: ${n("announce-initial")} ms`,
    `announce-max: ${n("announce-max")} ms`,
    `announce-rounds: ${n("announce-rounds")}`,
    `announce-step: ${n("announce-step")} ms`,
    `compress-level: ${n("compress-level")}`,
    `compress-threads: ${n("compress-threads")}`,
    `compress-wait-thread: ${onOff("compress-wait-thread")}`,
    `decompress-threads: ${n("decompress-threads")}`,
    `throttle-trigger-threshold: ${n("throttle-trigger-threshold")}`,
    `cpu-throttle-initial: ${n("cpu-throttle-initial")}`,
    `cpu-throttle-increment: ${n("cpu-throttle-increment")}`,
    `cpu-throttle-tailslow: ${onOff("cpu-throttle-tailslow")}`,
    `max-cpu-throttle: ${n("max-cpu-throttle")}`,
    `tls-creds: ${quoted("tls-creds")}`,
    `tls-hostname: ${quoted("tls-hostname")}`,
    `max-bandwidth: ${n("max-bandwidth")} bytes/second`,
    `downtime-limit: ${n("downtime-limit")} ms`,
    `x-checkpoint-delay: ${n("x-checkpoint-delay")} ms`,
    `block-incremental: ${onOff("block-incremental")}`,
    `multifd-channels: ${n("multifd-channels")}`,
    `multifd-compression: ${String(p["multifd-compression"] ?? "none")}`,
    `xbzrle-cache-size: ${n("xbzrle-cache-size")} bytes`,
    `max-postcopy-bandwidth: ${n("max-postcopy-bandwidth")}`,
    `tls-authz: ${quoted("tls-authz")}`,
    "",
  ].join("\n");
}
