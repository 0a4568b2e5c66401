#!/usr/bin/env node
// `pnpm bench [group ...] [--json]` runs this bin, not a package script, so pnpm prints no
// "> script" header and stdout holds only the figures (or only the JSON). It builds the
// workspace first (turbo caches, so this is quick when nothing changed), logging to stderr.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const build = spawnSync("pnpm", ["exec", "turbo", "run", "build", "--output-logs=errors-only"], {
  cwd: root,
  stdio: ["ignore", 2, 2],
});
if (build.status !== 0) {
  process.stderr.write(`bench: the build failed (status ${build.status ?? build.signal})\n`);
  process.exit(1);
}
await import("../dist/main.js");
