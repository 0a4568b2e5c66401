/**
 * HMP text of `info migrate` and `info migrate_capabilities` as QEMU 7.2 prints them
 * (monitor/hmp-cmds.c hmp_info_migrate, migration_global_dump), from query-migrate's and
 * query-migrate-capabilities' answers.
 *
 * @module
 */

import type { MigrationCapabilityStatus } from "./migration-params.ts";
import type { MigrationInfo } from "./migration-state.ts";

const kb = (n: number | undefined): number => Math.floor((n ?? 0) / 1024);

/** `info migrate`. */
export function formatInfoMigrate(info: MigrationInfo): string {
  const out: string[] = [
    "globals:",
    "store-global-state: on",
    "only-migratable: off",
    "send-configuration: on",
    "send-section-footer: on",
    "decompress-error-check: on",
    "clear-bitmap-shift: 18",
  ];
  if (info.status !== undefined) {
    out.push(`Migration status: ${info.status}${info.status === "failed" && info["error-desc"] !== undefined ? ` (${info["error-desc"]})` : ""}`);
    out.push(`total time: ${info["total-time"] ?? 0} ms`);
    if (info["expected-downtime"] !== undefined) out.push(`expected downtime: ${info["expected-downtime"]} ms`);
    if (info.downtime !== undefined) out.push(`downtime: ${info.downtime} ms`);
    if (info["setup-time"] !== undefined) out.push(`setup: ${info["setup-time"]} ms`);
  }
  const ram = info.ram;
  if (ram !== undefined) {
    out.push(
      `transferred ram: ${kb(ram.transferred)} kbytes`,
      `throughput: ${ram.mbps.toFixed(2)} mbps`,
      `remaining ram: ${kb(ram.remaining)} kbytes`,
      `total ram: ${kb(ram.total)} kbytes`,
      `duplicate: ${ram.duplicate} pages`,
      `skipped: ${ram.skipped} pages`,
      `normal: ${ram.normal} pages`,
      `normal bytes: ${kb(ram["normal-bytes"])} kbytes`,
      `dirty sync count: ${ram["dirty-sync-count"]}`,
      `page size: ${kb(ram["page-size"])} kbytes`,
      `multifd bytes: ${kb(ram["multifd-bytes"])} kbytes`,
      `pages-per-second: ${ram["pages-per-second"]}`,
    );
    if (ram["dirty-pages-rate"]) out.push(`dirty pages rate: ${ram["dirty-pages-rate"]} pages`);
    if (ram["postcopy-requests"]) out.push(`postcopy request count: ${ram["postcopy-requests"]}`);
    if (ram["precopy-bytes"]) out.push(`precopy ram: ${kb(ram["precopy-bytes"])} kbytes`);
    if (ram["downtime-bytes"]) out.push(`downtime ram: ${kb(ram["downtime-bytes"])} kbytes`);
    if (ram["postcopy-bytes"]) out.push(`postcopy ram: ${kb(ram["postcopy-bytes"])} kbytes`);
  }
  const x = info["xbzrle-cache"];
  if (x !== undefined) {
    out.push(
      `cache size: ${x["cache-size"]} bytes`,
      `xbzrle transferred: ${kb(x.bytes)} kbytes`,
      `xbzrle pages: ${x.pages} pages`,
      `xbzrle cache miss: ${x["cache-miss"]} pages`,
      `xbzrle cache miss rate: ${x["cache-miss-rate"].toFixed(2)}`,
      `xbzrle encoding rate: ${x["encoding-rate"].toFixed(2)}`,
      `xbzrle overflow: ${x.overflow}`,
    );
  }
  if (info["cpu-throttle-percentage"] !== undefined) out.push(`cpu throttle percentage: ${info["cpu-throttle-percentage"]}`);
  return out.join("\n") + "\n";
}

/** `info migrate_capabilities`. */
export function formatInfoMigrateCapabilities(caps: readonly MigrationCapabilityStatus[]): string {
  return caps.map((c) => `${c.capability}: ${c.state ? "on" : "off"}\n`).join("");
}
