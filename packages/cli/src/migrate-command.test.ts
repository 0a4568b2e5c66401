import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { UsageError } from "./args.ts";
import { formatProgress, migrateCommand, parseMigrateArgs, parseQmpAddress, QmpClient, QmpCommandError, summarize, type MigrateIo } from "./migrate-command.ts";
import { scmRightsUnavailable, sendWithFds } from "./qmp/scm-rights.ts";

const bin = fileURLToPath(new URL("../bin/vm-cli.js", import.meta.url));
const built = existsSync(fileURLToPath(new URL("../dist/cli.js", import.meta.url)));
const hello = fileURLToPath(new URL("../../../guests/hello/hello.elf", import.meta.url));
const demoGuest = fileURLToPath(new URL("../demo-guest/demo.elf", import.meta.url));

describe("vm-cli migrate's arguments", () => {
  it("takes the QMP socket, the URI and the tuning options", () => {
    const a = parseMigrateArgs(["--qmp", "unix:/tmp/a.sock", "tcp:127.0.0.1:4444", "--json", "--max-bandwidth", "1G",
      "--downtime-limit", "50", "--xbzrle", "--auto-converge", "--cache-size=64M"]);
    expect(a).toEqual({
      qmp: { path: "/tmp/a.sock" },
      uri: "tcp:127.0.0.1:4444",
      json: true,
      options: { maxBandwidth: 1024 ** 3, downtimeLimit: 50, xbzrle: true, autoConverge: true, cacheSize: 64 * 1024 ** 2 },
    });
    expect(parseQmpAddress("tcp:localhost:4000")).toEqual({ host: "localhost", port: 4000 });
    expect(parseQmpAddress("unix:/x.sock,server=on,wait=off")).toEqual({ path: "/x.sock" });
    expect(parseMigrateArgs(["--help"])).toBeUndefined();
  });

  it("names what is wrong", () => {
    const err = (argv: string[]): string => {
      try {
        parseMigrateArgs(argv);
      } catch (e) {
        if (e instanceof UsageError) return e.message;
        throw e;
      }
      return "";
    };
    expect(err(["tcp:1.2.3.4:5"])).toMatch(/--qmp .* is required/);
    expect(err(["--qmp", "unix:/a"])).toMatch(/URI is missing/);
    expect(err(["--qmp", "unix:/a", "bogus:x"])).toMatch(/'bogus:x' is not a migration URI/);
    expect(err(["--qmp", "tcp:host", "file:/x"])).toMatch(/expected tcp:HOST:PORT/);
    expect(err(["--qmp", "unix:/a", "file:/x", "--downtime-limit", "soon"])).toMatch(/expected milliseconds/);
    expect(err(["--qmp", "unix:/a", "file:/x", "--max-bandwidth", "fast"])).toMatch(/expected a size/);
  });

  it("formats a progress line and a summary from query-migrate answers", () => {
    const line = formatProgress({
      "expected-downtime": 12, status: "active", "total-time": 100,
      ram: { transferred: 3 * 1024 * 1024, remaining: 1024 * 1024, mbps: 250.5, "dirty-pages-rate": 40, "dirty-sync-count": 3 },
    });
    expect(line).toBe("migrate: active  transferred 3.0 MiB  remaining 1.0 MiB  250.5 mbps  dirty 40 pages/s  pass 3  expected downtime 12 ms");
    expect(summarize({ status: "completed", "setup-time": 1, downtime: 5, "total-time": 80, ram: { transferred: 1e6, normal: 7, duplicate: 100, "dirty-sync-count": 2 } }))
      .toEqual({ status: "completed", totalTime: 80, downtime: 5, setupTime: 1, transferred: 1e6, mbps: 100, normalPages: 7, zeroPages: 100, passes: 2 });
    expect(summarize({ status: "failed", "error-desc": "boom" }).errorDesc).toBe("boom");
  });
});

function capture(): MigrateIo & { out: string; err: string } {
  const io = {
    out: "",
    err: "",
    isTTY: false,
    stdout: (t: string) => {
      io.out += t;
    },
    stderr: (t: string) => {
      io.err += t;
    },
  };
  return io;
}

interface Child {
  proc: ChildProcess;
  console: () => string;
  exited: Promise<number | null>;
}

function vmRun(args: string[], guest = hello, env: NodeJS.ProcessEnv = process.env): Child {
  const proc = spawn(process.execPath, [bin, "run", "-M", "virt", "-m", "32M", "-bios", "none", "-kernel", guest, "-nographic", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  let out = "";
  proc.stdout!.on("data", (b: Buffer) => {
    out += b.toString();
  });
  proc.stderr!.resume();
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  return { proc, console: () => out, exited };
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function ticks(text: string): number[] {
  return [...text.matchAll(/^tick (\d+)\b/gm)].map((m) => Number(m[1]));
}


/** A connected unix socket pair (Node has no socketpair): neither end is read here. */
async function socketPair(dir: string): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((r) => server.listen(join(dir, "pair.sock"), r));
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  const client = net.connect(join(dir, "pair.sock"));
  await new Promise((r) => client.once("connect", r));
  client.pause();
  const other = await accepted;
  server.close();
  return [other, client];
}

function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

/** The descriptors a process has open (Linux). */
function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** An HMP socket client: each line's output, up to the next prompt. */
async function hmpClient(path: string): Promise<{ run(line: string, fds?: number[]): Promise<string>; close(): void }> {
  const socket = net.connect(path);
  await new Promise((r) => socket.once("connect", r));
  let text = "";
  socket.on("data", (b: Buffer) => {
    text += b.toString();
  });
  const prompt = async (): Promise<string> => {
    await until(() => text.includes("(qemu) "), 5000);
    const out = text.slice(0, text.indexOf("(qemu) "));
    text = text.slice(text.indexOf("(qemu) ") + 7);
    return out;
  };
  await prompt();
  return {
    async run(line, fds = []) {
      await sendWithFds(socket, line + "\n", fds);
      return (await prompt()).replace(/\r\n/g, "\n");
    },
    close: () => socket.destroy(),
  };
}

async function qmpError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof QmpCommandError) return e.desc;
    throw e;
  }
  throw new Error("the command succeeded");
}


describe.skipIf(!built || !existsSync(hello))("vm-cli migrate against real vm-cli run processes", () => {
  const children: Child[] = [];
  let dir = "";
  afterEach(() => {
    for (const c of children.splice(0)) c.proc.kill("SIGKILL");
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  it("live-migrates a running guest over tcp: --json prints one object, the destination's console goes on", async () => {
    dir = mkdtempSync(join(tmpdir(), "vm-cli-migrate-"));
    const port = await freePort();
    const a = vmRun(["-qmp", `unix:${dir}/a.sock,server=on,wait=off`]);
    const b = vmRun(["-qmp", `unix:${dir}/b.sock,server=on,wait=off`, "-incoming", `tcp:127.0.0.1:${port}`]);
    children.push(a, b);
    await until(() => ticks(a.console()).length >= 1 && existsSync(`${dir}/b.sock`), 10_000);
    const io = capture();
    let status = 1;
    for (let attempt = 0; attempt < 20; attempt++) {
      // The destination's listener can come up just after its QMP socket.
      status = await migrateCommand(["--qmp", `unix:${dir}/a.sock`, `tcp:127.0.0.1:${port}`, "--json"], io);
      if (status === 0 || !/refused/.test(io.out + io.err)) break;
      io.out = io.err = "";
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(io.err).toBe("");
    expect(status).toBe(0);
    const lines = io.out.trim().split("\n");
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as { status: string; ram: { total: number }; summary: { status: string; totalTime: number; transferred: number; zeroPages: number } };
    expect(result.status).toBe("completed");
    // QEMU's ram total counts every migratable block: the 32 MiB of RAM and the 0xf000 mrom
    expect(result.ram.total).toBe(32 * 1024 * 1024 + 0xf000);
    expect(result.summary.status).toBe("completed");
    expect(result.summary.totalTime).toBeGreaterThan(0);
    expect(result.summary.zeroPages).toBeGreaterThan(1000);
    const last = Math.max(...ticks(a.console()));
    // The guest goes on in B from the next tick: no restart, no greeting.
    await until(() => ticks(b.console()).length >= 1, 5000);
    expect(ticks(b.console())[0]).toBe(last + 1);
    expect(b.console()).not.toMatch(/Hello/);
    // The source is postmigrate: a second migration is refused with a clear message.
    const again = capture();
    expect(await migrateCommand(["--qmp", `unix:${dir}/a.sock`, `tcp:127.0.0.1:${port}`], again)).toBe(1);
    expect(again.err).toMatch(/already been migrated away/);
  }, 30_000);

  it("prints progress and a summary, and exits 1 with QEMU's error when the destination is unreachable", async () => {
    dir = mkdtempSync(join(tmpdir(), "vm-cli-migrate-"));
    const a = vmRun(["-qmp", `unix:${dir}/a.sock,server=on,wait=off`]);
    children.push(a);
    await until(() => existsSync(`${dir}/a.sock`), 10_000);
    const io = capture();
    const port = await freePort();
    expect(await migrateCommand(["--qmp", `unix:${dir}/a.sock`, `tcp:127.0.0.1:${port}`], io)).toBe(1);
    expect(io.out).toBe("");
    expect(io.err).toMatch(/refused/i);
    // The source runs on and migrates to a file afterwards, with a summary on stderr.
    const n = ticks(a.console()).length;
    await until(() => ticks(a.console()).length > n, 3000);
    const ok = capture();
    expect(await migrateCommand(["--qmp", `unix:${dir}/a.sock`, `file:${dir}/vm.mig`], ok)).toBe(0);
    expect(ok.err).toMatch(/^migrate: completed in \d+ ms \(setup \d+ ms\), downtime \d+ ms, transferred .* pages: \d+ normal, \d+ zero/m);
  }, 30_000);

  it("on SIGINT cancels the migration, waits for 'cancelled' and exits 130; the source runs on", async () => {
    dir = mkdtempSync(join(tmpdir(), "vm-cli-migrate-"));
    const port = await freePort();
    // The demo guest keeps 8 MiB of RAM non-zero: at 1 MiB/s the migration lasts long enough.
    const a = vmRun(["-qmp", `unix:${dir}/a.sock,server=on,wait=off`], demoGuest);
    const b = vmRun(["-incoming", `tcp:127.0.0.1:${port}`], demoGuest);
    children.push(a, b);
    await until(() => existsSync(`${dir}/a.sock`) && ticks(a.console()).length >= 1, 10_000);
    const m = spawn(process.execPath, [bin, "migrate", "--qmp", `unix:${dir}/a.sock`, `tcp:127.0.0.1:${port}`, "--max-bandwidth", "1M"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    m.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const code = new Promise<number | null>((r) => m.once("exit", (c) => r(c)));
    await until(() => /^migrate: active .*transferred/m.test(err), 10_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${err}`);
    });
    m.kill("SIGINT");
    expect(await code).toBe(130);
    expect(err).toMatch(/interrupted, cancelling the migration/);
    expect(err).toMatch(/^migrate: cancelled$/m);
    // Non-terminal stderr: one progress line per poll, with every figure.
    expect(err).toMatch(/^migrate: active  transferred [\d.]+ \S+  remaining [\d.]+ \S+  [\d.]+ mbps  dirty \d+ pages\/s  pass \d+  expected downtime \d+ ms$/m);
    const n = ticks(a.console()).length;
    await until(() => ticks(a.console()).length > n, 3000);
    expect(a.console()).not.toMatch(/BAD/);
  }, 30_000);

  it("pauses before the switch-over and goes on with migrate-continue; HMP sets and shows the parameters", async () => {
    dir = mkdtempSync(join(tmpdir(), "vm-cli-migrate-"));
    const port = await freePort();
    const a = vmRun(["-qmp", `unix:${dir}/a.sock,server=on,wait=off`, "-monitor", `unix:${dir}/m.sock,server=on,wait=off`]);
    const b = vmRun(["-incoming", `tcp:127.0.0.1:${port}`]);
    children.push(a, b);
    await until(() => ticks(a.console()).length >= 1 && existsSync(`${dir}/a.sock`) && existsSync(`${dir}/m.sock`), 10_000);
    const hmp = await hmpClient(`${dir}/m.sock`);
    expect(await hmp.run("migrate_set_parameter downtime-limit 50")).toBe("");
    // max-bandwidth counts MiB when no unit is given (hmp_migrate_set_parameter)
    expect(await hmp.run("migrate_set_parameter max-bandwidth 1024")).toBe("");
    expect(await hmp.run("migrate_set_parameter xbzrle-cache-size 32M")).toBe("");
    expect(await hmp.run("migrate_set_parameter cpu-throttle-initial 300")).toBe("Error: Parameter 'cpu-throttle-initial' expects uint8_t\n");
    expect(await hmp.run("migrate_set_parameter cpu-throttle-initial 0")).toBe("Error: Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99\n");
    expect(await hmp.run("migrate_set_parameter bogus 1")).toBe("Error: invalid parameter value: bogus\n");
    expect(await hmp.run("migrate_set_capability pause-before-switchover on")).toBe("");
    const shown = await hmp.run("info migrate_parameters");
    expect(shown).toContain("\nmax-bandwidth: 1073741824 bytes/second\ndowntime-limit: 50 ms\n");
    expect(shown).toContain("\nxbzrle-cache-size: 33554432 bytes\n");
    const q = await QmpClient.connect({ path: `${dir}/a.sock` });
    expect(await q.execute("query-migrate-parameters")).toMatchObject({ "downtime-limit": 50, "max-bandwidth": 1073741824, "xbzrle-cache-size": 33554432 });
    expect(await qmpError(q.execute("migrate-continue", { state: "pre-switchover" }))).toBe("Migration not in expected state: none");
    expect(await qmpError(q.execute("migrate-continue", { state: "later" }))).toBe("Parameter 'state' does not accept value 'later'");
    const status = async (): Promise<string> => ((await q.execute("query-migrate")) as { status?: string }).status ?? "none";
    for (let attempt = 0; ; attempt++) {
      expect(await q.execute("migrate", { uri: `tcp:127.0.0.1:${port}` })).toEqual({});
      let s = await status();
      for (let i = 0; i < 200 && s !== "pre-switchover" && s !== "failed"; i++) {
        await new Promise((r) => setTimeout(r, 25));
        s = await status();
      }
      // The destination's listener can come up a little after its process.
      if (s === "failed" && attempt < 20) continue;
      expect(s).toBe("pre-switchover");
      break;
    }
    // Paused before the switch-over: the source guest no longer runs.
    expect(await q.execute("query-status")).toMatchObject({ running: false });
    const last = Math.max(...ticks(a.console()));
    expect(await hmp.run("info migrate")).toContain("\nMigration status: pre-switchover\n");
    expect(await qmpError(q.execute("migrate-continue", { state: "active" }))).toBe("Migration not in expected state: pre-switchover");
    expect(await hmp.run("migrate_continue pre-switchover")).toBe("");
    for (let i = 0; i < 200 && (await status()) !== "completed"; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await status()).toBe("completed");
    await until(() => ticks(b.console()).length >= 1, 5000);
    expect(ticks(b.console())[0]).toBe(last + 1);
    q.close();
    hmp.close();
  }, 30_000);

  it("says so when no VM listens on the QMP socket, or the VM waits for an incoming migration", async () => {
    dir = mkdtempSync(join(tmpdir(), "vm-cli-migrate-"));
    const io = capture();
    expect(await migrateCommand(["--qmp", `unix:${dir}/none.sock`, "tcp:127.0.0.1:1"], io)).toBe(1);
    expect(io.err).toBe(`vm-cli: migrate: cannot connect to QMP at unix:${dir}/none.sock: no such socket (is the VM running with -qmp?)\n`);
    const b = vmRun(["-qmp", `unix:${dir}/b.sock,server=on,wait=off`, "-incoming", "defer"]);
    children.push(b);
    await until(() => existsSync(`${dir}/b.sock`), 10_000);
    const w = capture();
    expect(await migrateCommand(["--qmp", `unix:${dir}/b.sock`, `file:${dir}/x.mig`], w)).toBe(1);
    expect(w.err).toMatch(/waiting for an incoming migration/);
  }, 30_000);

  describe.skipIf(scmRightsUnavailable() !== undefined)("descriptors passed with getfd (SCM_RIGHTS)", () => {
    it("live-migrates over a socket pair passed to both sides with getfd, then fd:NAME (QEMU's migration-test fd case)", async () => {
      dir = mkdtempSync(join(tmpdir(), "vm-cli-getfd-"));
      const a = vmRun(["-qmp", `unix:${dir}/a.sock,server=on,wait=off`]);
      const b = vmRun(["-qmp", `unix:${dir}/b.sock,server=on,wait=off`, "-incoming", "defer"]);
      children.push(a, b);
      await until(() => ticks(a.console()).length >= 1 && existsSync(`${dir}/a.sock`) && existsSync(`${dir}/b.sock`), 10_000);
      const [x, y] = await socketPair(dir);
      const qa = await QmpClient.connect({ path: `${dir}/a.sock` });
      const qb = await QmpClient.connect({ path: `${dir}/b.sock` });
      try {
        expect(await qa.executeWithFds("getfd", { fdname: "fd-mig" }, [fdOf(x)])).toEqual({});
        expect(await qb.executeWithFds("getfd", { fdname: "fd-mig" }, [fdOf(y)])).toEqual({});
      } finally {
        // Only the VMs' copies keep the pair open now.
        x.destroy();
        y.destroy();
      }
      expect(await qb.execute("migrate-incoming", { uri: "fd:fd-mig" })).toEqual({});
      qa.close();
      qb.close();
      const io = capture();
      expect(await migrateCommand(["--qmp", `unix:${dir}/a.sock`, "fd:fd-mig", "--json"], io)).toBe(0);
      expect(io.err).toBe("");
      expect((JSON.parse(io.out) as { status: string }).status).toBe("completed");
      const last = Math.max(...ticks(a.console()));
      await until(() => ticks(b.console()).length >= 1, 5000);
      expect(ticks(b.console())[0]).toBe(last + 1);
      const qb2 = await QmpClient.connect({ path: `${dir}/b.sock` });
      expect(await qb2.execute("query-status")).toMatchObject({ status: "running" });
      // migrate-incoming took the descriptor over: the name is gone.
      expect(await qmpError(qb2.execute("closefd", { fdname: "fd-mig" }))).toBe("File descriptor named 'fd-mig' not found");
      qb2.close();
    }, 30_000);

    it("without the helper (FERRYVM_SCM_RIGHTS=off), reads QMP as before and getfd says why it has nothing; the descriptor is dropped", async () => {
      dir = mkdtempSync(join(tmpdir(), "vm-cli-getfd-"));
      const a = vmRun(["-qmp", `unix:${dir}/a.sock,server=on,wait=off`], hello, { ...process.env, FERRYVM_SCM_RIGHTS: "off" });
      children.push(a);
      await until(() => ticks(a.console()).length >= 1 && existsSync(`${dir}/a.sock`), 10_000);
      const idle = openFds(a.proc.pid!);
      const q = await QmpClient.connect({ path: `${dir}/a.sock` });
      const devNull = openSync("/dev/null", "r");
      try {
        expect(await qmpError(q.executeWithFds("getfd", { fdname: "x" }, [devNull]))).toBe(
          "No file descriptor supplied via SCM_RIGHTS (FerryVM's scm_rights helper is turned off (FERRYVM_SCM_RIGHTS=off); fd:N takes a descriptor the process inherited)",
        );
      } finally {
        closeSync(devNull);
      }
      expect(await q.execute("query-status")).toMatchObject({ running: true });
      q.close();
      await until(() => openFds(a.proc.pid!) <= idle, 5000);
      expect(openFds(a.proc.pid!)).toBe(idle);
    }, 30_000);

    it("answers QEMU's errors, keeps names across connections, leaks nothing, and saves to a regular file passed with getfd (virsh save)", async () => {
      dir = mkdtempSync(join(tmpdir(), "vm-cli-getfd-"));
      const a = vmRun(["-qmp", `unix:${dir}/a.sock,server=on,wait=off`, "-monitor", `unix:${dir}/m.sock,server=on,wait=off`]);
      children.push(a);
      await until(() => ticks(a.console()).length >= 1 && existsSync(`${dir}/a.sock`) && existsSync(`${dir}/m.sock`), 10_000);
      const pid = a.proc.pid!;
      // With no QMP connection; a connection holds descriptors of its own while it lasts.
      const idle = openFds(pid);
      const q = await QmpClient.connect({ path: `${dir}/a.sock` });
      const base = openFds(pid);
      expect(await qmpError(q.execute("getfd", { fdname: "x" }))).toBe("No file descriptor supplied via SCM_RIGHTS");
      const devNull = openSync("/dev/null", "r+");
      try {
        expect(await qmpError(q.executeWithFds("getfd", { fdname: "1x" }, [devNull]))).toBe("Parameter 'fdname' expects a name not starting with a digit");
        // A character device is a descriptor like any other (Node's own IPC would abort on it).
        expect(await q.executeWithFds("getfd", { fdname: "null" }, [devNull])).toEqual({});
        expect(openFds(pid)).toBe(base + 1);
        // Descriptors sent with a command that is not getfd wait, and go when the connection does.
        expect(await q.executeWithFds("query-status", undefined, [devNull, devNull, devNull])).toMatchObject({ running: true });
        expect(openFds(pid)).toBe(base + 4);
      } finally {
        closeSync(devNull);
      }
      q.close();
      // The three go with the connection; the named one stays.
      await until(() => openFds(pid) <= idle + 1, 5000);
      await new Promise((r) => setTimeout(r, 100));
      expect(openFds(pid)).toBe(idle + 1);
      // Names belong to the monitor, not the connection.
      const q2 = await QmpClient.connect({ path: `${dir}/a.sock` });
      expect(openFds(pid)).toBe(base + 1);
      expect(await q2.execute("closefd", { fdname: "null" })).toEqual({});
      expect(openFds(pid)).toBe(base);
      expect(await qmpError(q2.execute("closefd", { fdname: "null" }))).toBe("File descriptor named 'null' not found");
      expect(await qmpError(q2.execute("migrate", { uri: "fd:nope" }))).toBe("File descriptor named 'nope' has not been found");
      // The HMP monitor has getfd and closefd too, with names of its own.
      const hmp = await hmpClient(`${dir}/m.sock`);
      expect(await hmp.run("getfd m")).toBe("Error: No file descriptor supplied via SCM_RIGHTS\n");
      const extra = openSync("/dev/null", "r");
      try {
        expect(await hmp.run("getfd m", [extra])).toBe("");
      } finally {
        closeSync(extra);
      }
      expect(await hmp.run("closefd m")).toBe("");
      expect(await hmp.run("closefd m")).toBe("Error: File descriptor named 'm' not found\n");
      hmp.close();
      // virsh save: a stopped guest saved through a file descriptor, restored with -incoming.
      const saveFd = openSync(`${dir}/save.mig`, "w");
      try {
        expect(await q2.executeWithFds("getfd", { fdname: "save" }, [saveFd])).toEqual({});
      } finally {
        closeSync(saveFd);
      }
      expect(await q2.execute("stop")).toEqual({});
      q2.close();
      const io = capture();
      expect(await migrateCommand(["--qmp", `unix:${dir}/a.sock`, "fd:save"], io)).toBe(0);
      expect(io.err).toMatch(/^migrate: completed/m);
      expect(readFileSync(`${dir}/save.mig`).subarray(0, 8)).toEqual(Buffer.from([0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3]));
      const last = Math.max(...ticks(a.console()));
      const c = vmRun(["-qmp", `unix:${dir}/c.sock,server=on,wait=off`, "-incoming", `file:${dir}/save.mig`]);
      children.push(c);
      await until(() => existsSync(`${dir}/c.sock`), 10_000);
      const qc = await QmpClient.connect({ path: `${dir}/c.sock` });
      let status: unknown;
      for (let i = 0; i < 100; i++) {
        status = await qc.execute("query-status");
        if ((status as { status: string }).status !== "inmigrate") break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toMatchObject({ status: "paused" });
      expect(await qc.execute("cont")).toEqual({});
      await until(() => ticks(c.console()).length >= 1, 5000);
      expect(ticks(c.console())[0]).toBe(last + 1);
      qc.close();
    }, 30_000);
  });
});
