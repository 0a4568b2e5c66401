#!/usr/bin/env node
// Runs scripts/fuzz.ts (bundled with esbuild, workspace sources resolved through the
// `ferryvm-source` condition). Not part of the test run.
//   node packages/migration/scripts/fuzz.mjs [--seconds 120] [--seed 1]
import { build } from "esbuild";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const dir = mkdtempSync(join(tmpdir(), "ferry-fuzz-"));
const outfile = join(dir, "fuzz.mjs");
try {
  await build({
    entryPoints: [fileURLToPath(new URL("./fuzz.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["ferryvm-source"],
    outfile,
    logLevel: "warning",
  });
  const { main } = await import(pathToFileURL(outfile).href);
  await main(process.argv.slice(2), fileURLToPath(new URL("../../memory/build/memory.wasm", import.meta.url)));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
