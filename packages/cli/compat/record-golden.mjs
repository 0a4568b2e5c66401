#!/usr/bin/env node
// Records the golden stream of a machine type: runs the migration workload guest (a-b.elf,
// 256 pages) under `vm-cli run` with the golden configuration, lets it make a few passes,
// migrates it to `file:` through QMP (a live precopy stream, as a user's would be), and
// writes golden/<type>/{stream.bin.gz,meta.json,a-b.elf}.
//
//   node packages/cli/compat/record-golden.mjs virt-1.1 [-M value]
//
// Run it once, from the release that introduces the machine type; never re-record an
// existing type (that is the point of a golden stream). See compat/README.md.
import { spawn, execFileSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const type = process.argv[2];
if (type === undefined || !/^virt-\d+\.\d+$/.test(type)) {
  console.error("usage: record-golden.mjs virt-X.Y [-M machine-option]");
  process.exit(2);
}
const mIndex = process.argv.indexOf("-M");
const machineArg = mIndex > 0 ? process.argv[mIndex + 1] : type;
const out = join(here, "golden", type);
if (existsSync(join(out, "stream.bin.gz"))) {
  console.error(`${out} exists: a golden stream is never re-recorded`);
  process.exit(1);
}
const spec = JSON.parse(readFileSync(join(here, "golden-config.json"), "utf8"));
const tmp = mkdtempSync(join(tmpdir(), "golden-"));
const disk = join(tmp, "disk.raw");
writeFileSync(disk, new Uint8Array(spec.diskBytes));
mkdirSync(out, { recursive: true });

// The guest: a-b.elf with mig_end patched to mig_start + pages × 4 KiB.
const elf = new Uint8Array(readFileSync(join(here, "../../../guests/migration/a-b.elf")));
const { patchElfU64 } = await import("@ferryvm/cpu-wasm");
const patched = patchElfU64(elf, "mig_end", 0x80100000n + BigInt(spec.pages) * 4096n);
writeFileSync(join(out, "a-b.elf"), patched);

const args = spec.args.map((a) =>
  a.replace("${MACHINE}", machineArg).replace("${KERNEL}", join(out, "a-b.elf")).replace("${DISK}", disk),
);
const qmpPath = join(tmp, "qmp.sock");
const cli = join(here, "../bin/vm-cli.js");
const child = spawn(process.execPath, [cli, "run", ...args, "-qmp", `unix:${qmpPath},server=on,wait=off`], {
  stdio: ["ignore", "pipe", "inherit"],
});
let console_ = "";
child.stdout.on("data", (d) => (console_ += d.toString()));

async function qmp() {
  for (let i = 0; ; i++) {
    try {
      const sock = await new Promise((resolve, reject) => {
        const s = net.createConnection(qmpPath);
        s.once("connect", () => resolve(s));
        s.once("error", reject);
      });
      let buf = "";
      const waiters = [];
      const lines = [];
      sock.setEncoding("utf8");
      sock.on("data", (d) => {
        buf += d;
        let j;
        while ((j = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, j).trim();
          buf = buf.slice(j + 1);
          if (line === "") continue;
          const w = waiters.shift();
          if (w) w(JSON.parse(line));
          else lines.push(JSON.parse(line));
        }
      });
      const next = () => (lines.length > 0 ? Promise.resolve(lines.shift()) : new Promise((r) => waiters.push(r)));
      await next();
      const exec = async (execute, args_) => {
        sock.write(JSON.stringify(args_ === undefined ? { execute } : { execute, arguments: args_ }) + "\n");
        for (;;) {
          const m = await next();
          if ("return" in m || "error" in m) return m;
        }
      };
      return { exec, close: () => sock.end() };
    } catch (e) {
      if (i > 200) throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

try {
  const q = await qmp();
  await q.exec("qmp_capabilities");
  while ((console_.match(/B/g) ?? []).length < spec.passesBeforeSave) await new Promise((r) => setTimeout(r, 20));
  const file = join(tmp, "stream.bin");
  const r = await q.exec("migrate", { uri: `file:${file}` });
  if ("error" in r) throw new Error(`migrate: ${r.error.desc}`);
  for (;;) {
    const s = await q.exec("query-migrate");
    const status = s.return.status;
    if (status === "completed") break;
    if (status === "failed" || status === "cancelled") throw new Error(`migration ${status}: ${s.return["error-desc"] ?? ""}`);
    await new Promise((r2) => setTimeout(r2, 20));
  }
  await q.exec("quit");
  q.close();
  const stream = readFileSync(file);
  writeFileSync(join(out, "stream.bin.gz"), gzipSync(stream, { level: 9 }));
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: here, encoding: "utf8" }).trim();
  } catch {}
  const meta = {
    machineType: type,
    recordedWith: { commit, date: new Date().toISOString().slice(0, 10), machineOption: machineArg },
    args: spec.args.map((a) => a.replace("${MACHINE}", type)),
    pages: spec.pages,
    diskBytes: spec.diskBytes,
    streamBytes: stream.length,
    consoleBeforeSave: { passes: (console_.match(/B/g) ?? []).length, errors: (console_.match(/E/g) ?? []).length },
  };
  writeFileSync(join(out, "meta.json"), JSON.stringify(meta, null, 2) + "\n");
  console.log(`recorded ${type}: ${stream.length} bytes after ${meta.consoleBeforeSave.passes} passes`);
} finally {
  child.kill();
  rmSync(tmp, { recursive: true, force: true });
}
