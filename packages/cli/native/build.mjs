// Builds native/scm_rights.c into build/scm_rights.node (Node-API, so one build serves every
// Node.js version). Only QMP getfd needs it; without a C compiler the build goes on and
// getfd answers QEMU's "No file descriptor supplied via SCM_RIGHTS".
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "build", "scm_rights.node");

if (process.platform === "win32") {
  console.log("scm_rights: not built on Windows (no SCM_RIGHTS); QMP getfd is unavailable");
  process.exit(0);
}
const cc = process.env["CC"] ?? "cc";
if (spawnSync(cc, ["--version"], { stdio: "ignore" }).status !== 0) {
  console.log(`scm_rights: no C compiler ('${cc}'), not built; QMP getfd will answer that no descriptor was supplied`);
  process.exit(0);
}
// node-api-headers (a devDependency), else the headers an official Node.js install ships.
let include = join(dirname(process.execPath), "..", "include", "node");
try {
  include = join(dirname(createRequire(import.meta.url).resolve("node-api-headers/package.json")), "include");
} catch {
  if (!existsSync(join(include, "node_api.h"))) {
    console.log("scm_rights: no Node-API headers (node-api-headers or <node>/include/node), not built; QMP getfd is unavailable");
    process.exit(0);
  }
}
mkdirSync(dirname(out), { recursive: true });
const args = ["-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-pthread", "-I", include];
// Node-API symbols come from the node binary that loads the module.
if (process.platform === "darwin") args.push("-undefined", "dynamic_lookup");
args.push("-o", out, join(root, "native", "scm_rights.c"));
const r = spawnSync(cc, args, { stdio: "inherit" });
if (r.status !== 0) {
  console.error(`scm_rights: ${cc} failed (exit ${r.status ?? r.signal})`);
  process.exit(1);
}
