import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createMachine } from "@ferryvm/devices";
import { MigrationIncoming, MigrationState } from "@ferryvm/migration";
import { connectOutgoing, listenIncoming } from "@ferryvm/migration/node";
import { VmController } from "../controller.ts";
import { main, type CliIo } from "../main.ts";
import { ControllerVm } from "./migratable-vm.ts";

const AB_ELF = fileURLToPath(new URL("../../../../guests/migration/a-b.elf", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "vm-cli-snapshot-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const tmp = (name: string) => join(dir, `${counter++}-${name}`);

/** The file offset of an ELF64 symbol's bytes (through the program headers). */
function elfSymbolOffset(elf: Uint8Array, name: string): number {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const sections = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return {
      type: v.getUint32(at + 4, true),
      offset: Number(v.getBigUint64(at + 0x18, true)),
      size: Number(v.getBigUint64(at + 0x20, true)),
      link: v.getUint32(at + 0x28, true),
    };
  });
  const symtab = sections.find((s) => s.type === 2)!;
  const strtab = sections[symtab.link]!;
  for (let at = symtab.offset; at < symtab.offset + symtab.size; at += 24) {
    const nameOff = strtab.offset + v.getUint32(at, true);
    let end = nameOff;
    while (elf[end] !== 0) end++;
    if (new TextDecoder().decode(elf.subarray(nameOff, end)) !== name) continue;
    const value = v.getBigUint64(at + 8, true);
    const phoff = Number(v.getBigUint64(0x20, true));
    for (let i = 0; i < v.getUint16(0x38, true); i++) {
      const p = phoff + i * v.getUint16(0x36, true);
      const off = v.getBigUint64(p + 8, true);
      const vaddr = v.getBigUint64(p + 0x10, true);
      const filesz = v.getBigUint64(p + 0x20, true);
      if (v.getUint32(p, true) === 1 && value >= vaddr && value < vaddr + filesz) return Number(off + value - vaddr);
    }
  }
  throw new Error(`symbol ${name} not found`);
}

/** a-b.elf with a 64-page range so a pass takes a moment and the stream stays small. */
function smallAb(): string {
  const elf = new Uint8Array(readFileSync(AB_ELF));
  const v = new DataView(elf.buffer);
  const start = v.getBigUint64(elfSymbolOffset(elf, "mig_start"), true);
  v.setBigUint64(elfSymbolOffset(elf, "mig_end"), start + 64n * 4096n, true);
  const path = tmp("a-b-small.elf");
  writeFileSync(path, elf);
  return path;
}
const AB = smallAb();

class QmpClient {
  #sock: net.Socket;
  #buf = "";
  #lines: string[] = [];
  #waiters: ((line: string | undefined) => void)[] = [];
  closed = false;
  constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.#buf += d;
      let i;
      while ((i = this.#buf.indexOf("\r\n")) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 2);
        const w = this.#waiters.shift();
        if (w) w(line);
        else this.#lines.push(line);
      }
    });
    sock.on("error", () => {});
    sock.on("close", () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w(undefined);
    });
  }
  static async connect(path: string): Promise<QmpClient> {
    for (let i = 0; ; i++) {
      try {
        const sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(path);
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        });
        const c = new QmpClient(sock);
        await c.next(); // greeting
        return c;
      } catch (e) {
        if (i >= 200) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
  next(): Promise<string | undefined> {
    if (this.#lines.length > 0) return Promise.resolve(this.#lines.shift());
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((r) => this.#waiters.push(r));
  }
  /** Sends a command; returns its response, events seen on the way go to `events`. */
  async execute(command: string, args?: object, events: string[] = []): Promise<{ return?: unknown; error?: { class: string; desc: string } }> {
    this.#sock.write(JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args }) + "\n");
    for (;;) {
      const line = await this.next();
      if (line === undefined) throw new Error(`connection closed waiting for ${command}`);
      const v = JSON.parse(line) as { event?: string; data?: unknown };
      if (v.event !== undefined) events.push(v.data === undefined ? v.event : `${v.event} ${JSON.stringify(v.data)}`);
      else return v as { return?: unknown };
    }
  }
  /** Waits for an event line matching `re` (events only). */
  async waitEvent(re: RegExp, events: string[] = []): Promise<void> {
    for (;;) {
      const line = await this.next();
      if (line === undefined) throw new Error(`connection closed waiting for ${re}`);
      const v = JSON.parse(line) as { event?: string; data?: unknown };
      if (v.event === undefined) continue;
      const text = v.data === undefined ? v.event : `${v.event} ${JSON.stringify(v.data)}`;
      events.push(text);
      if (re.test(text)) return;
    }
  }
  close(): void {
    this.#sock.end();
  }
}

function io() {
  let out = "";
  let err = "";
  const cli: CliIo = {
    stdout: (b) => { out += new TextDecoder().decode(b); },
    stderr: (t) => { err += t; },
    stdin: null,
    isTTY: false,
    readFile: (p) => readFileSync(p),
  };
  return { cli, out: () => out, err: () => err };
}

const until = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
};

const vmArgs = (...extra: string[]) => ["run", "-M", "virt", "-m", "16M", "-bios", "none", "-kernel", AB, "-nographic", ...extra];

/** Starts a VM with a QMP socket; returns its status promise, output and a negotiated client. */
async function startVm(...extra: string[]) {
  const sock = tmp("qmp.sock");
  const t = io();
  const status = main(vmArgs("-qmp", `unix:${sock},server=on,wait=off`, ...extra), t.cli);
  const qmp = await QmpClient.connect(sock);
  await qmp.execute("qmp_capabilities");
  return { status, qmp, out: t.out, err: t.err };
}

describe("save and restore from the command line", () => {
  it("saves a running a-b guest with migrate file: and restores it with -incoming: it keeps printing B", async () => {
    const src = await startVm();
    await until(() => src.out().split("B").length > 3);
    const events: string[] = [];
    expect(await src.qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "events", state: true }] })).toEqual({ return: {} });
    const file = tmp("running.mig");
    expect(await src.qmp.execute("migrate", { uri: `file:${file}` }, events)).toEqual({ return: {} });
    await src.qmp.waitEvent(/MIGRATION {"status":"(completed|failed)"}/, events);
    // QEMU 7.2's precopy sequence: a pass per dirty-bitmap sync while the guest runs, the
    // stop, the last sync, completed (no `device` without pause-before-switchover)
    expect(events.slice(0, 3)).toEqual(['MIGRATION {"status":"setup"}', 'MIGRATION_PASS {"pass":1}', 'MIGRATION {"status":"active"}']);
    expect(events.slice(-3)).toEqual(["STOP", `MIGRATION_PASS {"pass":${events.length - 4}}`, 'MIGRATION {"status":"completed"}']);
    expect(events.slice(3, -3)).toEqual(events.slice(3, -3).map((_, i) => `MIGRATION_PASS {"pass":${i + 2}}`));
    expect((await src.qmp.execute("query-status")).return).toEqual({ status: "postmigrate", singlestep: false, running: false });
    const info = (await src.qmp.execute("query-migrate")).return as { status: string; ram: { transferred: number; total: number } };
    expect(info.status).toBe("completed");
    // RAM: the 16 MiB block and the mrom; the file holds the RAM records and the devices.
    expect(info.ram.total).toBeGreaterThan(16 * 2 ** 20);
    expect(info.ram.transferred).toBeGreaterThan(64 * 4096);
    expect(info.ram.transferred).toBeLessThan(statSync(file).size);
    await src.qmp.execute("quit");
    expect(await src.status).toBe(0);
    const srcOut = src.out();
    expect(srcOut).not.toContain("E");

    const dst = await startVm("-incoming", `file:${file}`);
    await until(() => dst.out().split("B").length > 3);
    expect((await dst.qmp.execute("query-status")).return).toEqual({ status: "running", singlestep: false, running: true });
    await dst.qmp.execute("quit");
    expect(await dst.status).toBe(0);
    expect(dst.out()).toMatch(/^B+$/);
    expect(dst.err()).toBe("");
  }, 30_000);
});

/** What `info registers` and the first byte of each workload page show (HMP). */
async function probe(qmp: QmpClient): Promise<{ registers: unknown; pages: unknown[] }> {
  const hmp = async (line: string) => (await qmp.execute("human-monitor-command", { "command-line": line })).return;
  const pages: unknown[] = [];
  for (let p = 0; p < 64; p++) pages.push(await hmp(`xp /1bx ${MIG_START + p * 4096}`));
  return { registers: await hmp("info registers"), pages };
}
const MIG_START = (() => {
  const elf = new Uint8Array(readFileSync(AB));
  return Number(new DataView(elf.buffer).getBigUint64(elfSymbolOffset(elf, "mig_start"), true));
})();
/** What the source showed once saved (postmigrate: as in the stream), by stream kind. */
const savedProbe = new Map<"paused" | "running", Awaited<ReturnType<typeof probe>>>();

/** Checks that a destination paused after its load shows what the source saved. */
async function expectSameState(qmp: QmpClient, kind: "paused" | "running"): Promise<void> {
  const after = await probe(qmp);
  expect(after.pages).toEqual(savedProbe.get(kind)!.pages);
  expect(after.registers).toEqual(savedProbe.get(kind)!.registers);
  // a-b's one monotone edge: consecutive pages differ by at most one increment, once
  const values = after.pages.map((t) => Number(/: (0x[0-9a-f]+)/.exec(String(t))![1]));
  const steps = values.slice(1).map((v, i) => (values[i]! - v + 256) % 256);
  expect(steps.every((d) => d === 0 || d === 1)).toBe(true);
  expect(steps.filter((d) => d === 1).length).toBeLessThanOrEqual(1);
}

/** Saves a small a-b guest (running, or stopped first) into a file; returns its path. */
async function savedStream(stopFirst: boolean): Promise<string> {
  const src = await startVm();
  await until(() => src.out().includes("BB"));
  if (stopFirst) await src.qmp.execute("stop");
  const file = tmp(stopFirst ? "paused.mig" : "running.mig");
  expect(await src.qmp.execute("migrate", { uri: `file:${file}` })).toEqual({ return: {} });
  await until(() => false, 0).catch(() => {});
  for (;;) {
    const r = (await src.qmp.execute("query-migrate")).return as { status: string };
    if (r.status === "completed") break;
    expect(r.status).not.toBe("failed");
    await new Promise((res) => setTimeout(res, 10));
  }
  savedProbe.set(stopFirst ? "paused" : "running", await probe(src.qmp));
  await src.qmp.execute("quit");
  await src.status;
  return file;
}

let runningStream: Promise<string> | undefined;
const runningFile = () => (runningStream ??= savedStream(false));

describe("save and restore through exec:", () => {
  it("writes the stream to a command's stdin and reads it back from another's stdout", async () => {
    const src = await startVm();
    await until(() => src.out().includes("BB"));
    const file = tmp("exec.mig");
    expect(await src.qmp.execute("migrate", { uri: `exec:cat > '${file}'` })).toEqual({ return: {} });
    for (;;) {
      const r = (await src.qmp.execute("query-migrate")).return as { status: string };
      if (r.status === "completed") break;
      expect(r.status).not.toBe("failed");
      await new Promise((res) => setTimeout(res, 10));
    }
    await src.qmp.execute("quit");
    expect(await src.status).toBe(0);
    expect(statSync(file).size).toBeGreaterThan(64 * 4096);

    const dst = await startVm("-incoming", `exec:cat '${file}'`);
    await until(() => dst.out().split("B").length > 3);
    await dst.qmp.execute("quit");
    expect(await dst.status).toBe(0);
    expect(dst.out()).toMatch(/^B+$/);
  }, 30_000);

  it("leaves the VM running when the command fails, with QEMU's error in query-migrate", async () => {
    const src = await startVm();
    await until(() => src.out().includes("B"));
    await src.qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "events", state: true }] });
    const events: string[] = [];
    expect(await src.qmp.execute("migrate", { uri: "exec:exit 3" }, events)).toEqual({ return: {} });
    await src.qmp.waitEvent(/MIGRATION {"status":"failed"}/, events);
    // The command fails in setup or the first pass (as the pipe breaks): the guest never stopped.
    expect(events[0]).toBe('MIGRATION {"status":"setup"}');
    expect(events.at(-1)).toBe('MIGRATION {"status":"failed"}');
    expect(events.filter((e) => !e.startsWith("MIGRATION"))).toEqual([]);
    const info = (await src.qmp.execute("query-migrate")).return as { status: string; "error-desc": string };
    expect(info.status).toBe("failed");
    expect(info["error-desc"]).toMatch(/^Unable to write to command: Broken pipe$|^exec command 'exit 3' exited with status 3$/);
    expect((await src.qmp.execute("query-status")).return).toEqual({ status: "running", singlestep: false, running: true });
    const before = src.out().length;
    await until(() => src.out().length > before + 2);
    await src.qmp.execute("quit");
    expect(await src.status).toBe(0);
  }, 30_000);
});

describe("migrate_cancel", () => {
  it("stops a save held up by a slow command; the guest runs on", async () => {
    const src = await startVm();
    await until(() => src.out().includes("B"));
    await src.qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "events", state: true }] });
    const events: string[] = [];
    // The command never reads: the pipe fills and the first pass waits on it, the guest running.
    expect(await src.qmp.execute("migrate", { uri: "exec:sleep 20" }, events)).toEqual({ return: {} });
    await src.qmp.waitEvent(/MIGRATION {"status":"active"}/, events);
    const printed = src.out().length;
    await until(() => src.out().length > printed + 2);
    expect(((await src.qmp.execute("query-migrate", undefined, events)).return as { status: string }).status).toBe("active");
    expect(await src.qmp.execute("migrate_cancel", undefined, events)).toEqual({ return: {} });
    await src.qmp.waitEvent(/MIGRATION {"status":"cancelled"}/, events);
    expect(events).toEqual([
      'MIGRATION {"status":"setup"}', 'MIGRATION_PASS {"pass":1}', 'MIGRATION {"status":"active"}',
      'MIGRATION {"status":"cancelling"}', 'MIGRATION {"status":"cancelled"}',
    ]);
    expect((await src.qmp.execute("query-migrate")).return).toEqual({ status: "cancelled" });
    expect((await src.qmp.execute("query-status")).return).toEqual({ status: "running", singlestep: false, running: true });
    expect(await src.qmp.execute("migrate_cancel")).toEqual({ return: {} });
    await src.qmp.execute("quit");
    expect(await src.status).toBe(0);
  }, 30_000);
});

describe("migrate errors", () => {
  it("refuses an unwritable file and an unknown protocol with QEMU's texts; the guest runs on", async () => {
    const src = await startVm();
    await until(() => src.out().includes("B"));
    expect(await src.qmp.execute("migrate", { uri: `file:${dir}/no/such/dir/x.mig` })).toEqual({
      error: { class: "GenericError", desc: `Unable to open ${dir}/no/such/dir/x.mig: No such file or directory` },
    });
    expect(await src.qmp.execute("migrate", { uri: "bogus:localhost:4444" })).toEqual({
      error: { class: "GenericError", desc: "Parameter 'uri' expects a valid migration protocol" },
    });
    expect(await src.qmp.execute("migrate")).toEqual({ error: { class: "GenericError", desc: "Parameter 'uri' is missing" } });
    expect((await src.qmp.execute("query-migrate")).return).toEqual({ status: "failed" });
    expect((await src.qmp.execute("query-status")).return).toEqual({ status: "running", singlestep: false, running: true });
    expect(await src.qmp.execute("migrate-incoming", { uri: "exec:cat" })).toEqual({
      error: { class: "GenericError", desc: "'-incoming' was not specified on the command line" },
    });
    const before = src.out().length;
    await until(() => src.out().length > before + 2);
    await src.qmp.execute("quit");
    expect(await src.status).toBe(0);
  }, 30_000);

  it("refuses a second migrate from postmigrate until cont, as QEMU 7.2", async () => {
    const src = await startVm();
    await until(() => src.out().includes("B"));
    const hmp = async (line: string) => (await src.qmp.execute("human-monitor-command", { "command-line": line })).return;
    expect(await hmp(`migrate -d "exec:cat > '${tmp("hmp.mig")}'"`)).toBe("");
    await until(() => false, 0).catch(() => {});
    for (;;) {
      if (((await src.qmp.execute("query-migrate")).return as { status: string }).status === "completed") break;
      await new Promise((res) => setTimeout(res, 10));
    }
    expect(await hmp("info status")).toBe("VM status: paused (postmigrate)\r\n");
    expect(await hmp("migrate exec:true")).toBe("Error: Can't migrate the vm that was paused due to previous migration\r\n");
    expect(await hmp("migrate")).toBe('migrate: string expected\r\nTry "help migrate" for more information\r\n');
    expect(await hmp("info migrate")).toMatch(/\r\nMigration status: completed\r\ntotal time: \d+ ms\r\ndowntime: \d+ ms\r\n/);
    expect((await src.qmp.execute("cont")).return).toEqual({});
    expect((await src.qmp.execute("query-status")).return).toEqual({ status: "running", singlestep: false, running: true });
    // human-monitor-command cannot wait: QEMU's text, and the migration goes on detached.
    expect(await hmp(`migrate "exec:cat > '${tmp("hmp2.mig")}'"`)).toBe("terminal does not allow synchronous migration, continuing detached\r\n");
    await src.qmp.execute("quit");
    expect(await src.status).toBe(0);
  }, 30_000);
});

describe("restoring a stopped guest", () => {
  it("stays paused after the load until cont, as QEMU's globalstate rule", async () => {
    const file = await savedStream(true);
    const dst = await startVm("-incoming", `file:${file}`);
    await until(() => false, 0).catch(() => {});
    for (;;) {
      const s = (await dst.qmp.execute("query-status")).return as { status: string };
      if (s.status !== "inmigrate") {
        expect(s).toEqual({ status: "paused", singlestep: false, running: false });
        break;
      }
      await new Promise((res) => setTimeout(res, 10));
    }
    await new Promise((res) => setTimeout(res, 100));
    expect(dst.out()).toBe("");
    // The harts and RAM are as the source left them.
    await expectSameState(dst.qmp, "paused");
    const events: string[] = [];
    expect(await dst.qmp.execute("cont", undefined, events)).toEqual({ return: {} });
    await until(() => dst.out().includes("BB"));
    await dst.qmp.execute("quit", undefined, events);
    expect(events[0]).toBe("RESUME");
    expect(await dst.status).toBe(0);
    expect(dst.out()).toMatch(/^B+$/);
  }, 30_000);

  it("loads with -incoming defer and migrate-incoming; a running stream under -S waits for cont", async () => {
    const file = await runningFile();
    const dst = await startVm("-incoming", "defer", "-S");
    expect((await dst.qmp.execute("query-status")).return).toEqual({ status: "inmigrate", singlestep: false, running: false });
    expect((await dst.qmp.execute("human-monitor-command", { "command-line": "info status" })).return).toBe("VM status: paused (inmigrate)\r\n");
    expect(await dst.qmp.execute("migrate", { uri: "exec:cat > /dev/null" })).toEqual({
      error: { class: "GenericError", desc: "Guest is waiting for an incoming migration" },
    });
    expect(await dst.qmp.execute("migrate-incoming", { uri: "bogus:x" })).toEqual({
      error: { class: "GenericError", desc: "unknown migration protocol: bogus:x" },
    });
    expect(await dst.qmp.execute("migrate-incoming", { uri: `file:${file}` })).toEqual({ return: {} });
    expect(await dst.qmp.execute("migrate-incoming", { uri: `file:${file}` })).toEqual({
      error: { class: "GenericError", desc: "The incoming migration has already been started" },
    });
    await until(() => false, 0).catch(() => {});
    for (;;) {
      if (((await dst.qmp.execute("query-migrate")).return as { status?: string }).status === "completed") break;
      await new Promise((res) => setTimeout(res, 10));
    }
    expect((await dst.qmp.execute("query-status")).return).toEqual({ status: "paused", singlestep: false, running: false });
    await expectSameState(dst.qmp, "running");
    await dst.qmp.execute("cont");
    await until(() => dst.out().includes("BB"));
    await dst.qmp.execute("quit");
    expect(await dst.status).toBe(0);
  }, 30_000);
});

/** Runs a destination without a monitor; returns its status and stderr. */
async function loadFails(...args: string[]): Promise<{ status: number; err: string; out: string }> {
  const t = io();
  const status = await main(["run", "-M", "virt", "-bios", "none", "-kernel", AB, "-nographic", "--timeout", "2", ...args], t.cli);
  return { status, err: t.err(), out: t.out() };
}

describe("a stream from another configuration", () => {
  it("fails with a message naming the RAM size, the hart count or the machine type, and exit status 1", async () => {
    const file = await runningFile();
    const ram = await loadFails("-m", "32M", "-incoming", `file:${file}`);
    expect(ram.status).toBe(1);
    expect(ram.err).toMatch(/^vm-cli: load of migration failed: .*riscv_virt_board\.ram.* 0x1000000 .* 0x2000000/);
    const smp = await loadFails("-m", "16M", "-smp", "2", "-incoming", `file:${file}`);
    expect(smp.status).toBe(1);
    expect(smp.err).toMatch(/^vm-cli: load of migration failed: .*(hart|-smp)/);
    const bytes = new Uint8Array(readFileSync(file));
    // configuration section: 0x07, be32 8, "virt-1.1" (the versioned name of `virt`)
    expect(new TextDecoder().decode(bytes.subarray(13, 21))).toBe("virt-1.1");
    bytes.set(new TextEncoder().encode("virt-9.9"), 13);
    const other = tmp("other-machine.mig");
    writeFileSync(other, bytes);
    const type = await loadFails("-m", "16M", "-incoming", `file:${other}`);
    expect(type.status).toBe(1);
    expect(type.err).toBe(
      "vm-cli: load of migration failed: configuration: Machine type received is 'virt-9.9' and local is 'virt-1.1'" +
        " (a stream loads only into the machine type that saved it: start this side with -M virt-9.9)\n",
    );
    expect(ram.out + smp.out + type.out).toBe("");
  }, 30_000);

  it("fails on a device the loading machine does not have, naming its slot", async () => {
    const src = await startVm("-S", "-device", "virtio-rng-device");
    const file = tmp("rng.mig");
    expect(await src.qmp.execute("migrate", { uri: `file:${file}` })).toEqual({ return: {} });
    for (;;) {
      if (((await src.qmp.execute("query-migrate")).return as { status: string }).status === "completed") break;
      await new Promise((res) => setTimeout(res, 10));
    }
    await src.qmp.execute("quit");
    await src.status;
    const r = await loadFails("-m", "16M", "-incoming", `file:${file}`);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^vm-cli: load of migration failed: .*virtio_ids\[7\]: loaded device id 4 != local 0 \(virtio-mmio bus 7\)\n$/);
  }, 30_000);

  it("fails on a QEMU 7.2 stream of virt, whose flash blocks we do not model", async () => {
    const qemu = fileURLToPath(new URL("../../../migration/testdata/qemu72-virt-hello-paused.mig", import.meta.url));
    const r = await loadFails("-m", "16M", "-incoming", `file:${qemu}`);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^vm-cli: load of migration failed: .*virt\.flash0/);
  });
});

describe("the HMP monitor", () => {
  it("waits for migrate to end on an interactive monitor, then shows postmigrate", async () => {
    const sock = tmp("hmp.sock");
    const t = io();
    const status = main(vmArgs("-monitor", `unix:${sock},server=on,wait=off`), t.cli);
    let text = "";
    let s: net.Socket | undefined;
    for (let i = 0; s === undefined; i++) {
      s = await new Promise<net.Socket | undefined>((resolve) => {
        const c = net.createConnection(sock);
        c.once("connect", () => resolve(c));
        c.once("error", () => resolve(undefined));
      });
      if (s === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    s.setEncoding("utf8");
    s.on("data", (d: string) => (text += d));
    const prompts = (n: number) => until(() => text.split("(qemu) ").length > n);
    await prompts(1);
    await until(() => t.out().includes("BB"));
    const file = tmp("hmp-interactive.mig");
    s.write(`migrate "file:${file}"\r\n`);
    await prompts(2);
    // the prompt came back only once the save was done
    const saved = readFileSync(file);
    expect(saved.length).toBeGreaterThan(64 * 4096);
    expect(saved.at(-1)).toBe(0x7d); // the vmdesc's closing brace: the stream is whole
    s.write("info status\r\n");
    await prompts(3);
    expect(text).toContain("VM status: paused (postmigrate)\r\n");
    s.write("quit\r\n");
    expect(await status).toBe(0);
    s.destroy();
  }, 30_000);
});

describe("a damaged stream", () => {
  it("fails cleanly when truncated, corrupted, empty or missing", async () => {
    const bytes = new Uint8Array(readFileSync(await runningFile()));
    const cases: [string, Uint8Array | undefined, RegExp][] = [
      ["truncated", bytes.subarray(0, Math.floor(bytes.length / 2)), /^vm-cli: load of migration failed: .*(ended|short|end of stream)/i],
      ["bad-magic", Uint8Array.from([0x51, 0x45, 0x56, 0x4e, ...bytes.subarray(4)]), /^vm-cli: load of migration failed: loadvm: not a migration stream/],
      ["empty", new Uint8Array(0), /^vm-cli: load of migration failed: /],
      ["missing", undefined, /^vm-cli: -incoming file:.*missing\.mig: Unable to open .*missing\.mig: No such file or directory\n$/],
    ];
    for (let cut = bytes.length - 1; cut > 0; cut = Math.floor(cut * 0.3)) {
      cases.push([`cut-${cut}`, bytes.subarray(0, cut), /^vm-cli: load of migration failed: /]);
    }
    // The last device section's footer (just before EOF and the vmdesc) damaged.
    let eof = bytes.length - 6;
    while (eof > 0 && !(bytes[eof] === 0 && bytes[eof + 1] === 6 && new DataView(bytes.buffer, bytes.byteOffset + eof + 2, 4).getUint32(0) === bytes.length - eof - 6)) eof--;
    expect(bytes[eof - 5]).toBe(0x7e);
    const flipped = bytes.slice();
    flipped[eof - 5] = 0x7f;
    cases.push(["footer", flipped, /^vm-cli: load of migration failed: loadvm: section '[\w.-]+' instance \d+ \(id \d+\): missing section footer/]);
    for (const [name, data, re] of cases) {
      const file = tmp(`${name}.mig`);
      if (data !== undefined) writeFileSync(file, data);
      const r = await loadFails("-m", "16M", "-incoming", `file:${file}`);
      expect([name, r.status]).toEqual([name, 1]);
      expect(r.err, name).toMatch(re);
    }
  }, 60_000);

  it("lets quit and --timeout end a VM still waiting for a stream that does not come", async () => {
    const dst = await startVm("-incoming", "exec:sleep 30");
    expect((await dst.qmp.execute("query-status")).return).toEqual({ status: "inmigrate", singlestep: false, running: false });
    const t0 = Date.now();
    expect(await dst.qmp.execute("quit")).toEqual({ return: {} });
    expect(await dst.status).toBe(0);
    const r = await loadFails("-m", "16M", "--timeout", "0.3", "-incoming", "exec:sleep 30");
    expect(r.status).toBe(124);
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 30_000);

  it("fails when the exec command fails, naming its status", async () => {
    const r = await loadFails("-m", "16M", "-incoming", "exec:exit 7");
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^vm-cli: load of migration failed: .*\(exec command 'exit 7' exited with status 7\)\n$/);
  });
});

describe("vm-cli analyze", () => {
  const analyze = async (...args: string[]) => {
    const t = io();
    const status = await main(["analyze", ...args], t.cli);
    return { status, out: t.out(), err: t.err() };
  };

  it("prints one of our streams as analyze-migration.py does: RAM sizes, CPU and device sections", async () => {
    const r = await analyze(await runningFile());
    expect(r.status).toBe(0);
    const json = JSON.parse(r.out) as Record<string, Record<string, unknown>>;
    const keys = Object.keys(json);
    expect(keys[0]).toBe("ram (0)");
    expect(json["ram (0)"]!["section sizes"]).toEqual({ "riscv_virt_board.ram": "0x0000000001000000", "riscv_virt_board.mrom": expect.stringMatching(/^0x/) });
    for (const name of ["timer", "cpu_common", "cpu", "riscv_mtimer", "riscv_sifive_plic", "serial", "goldfish_rtc", "globalstate"]) {
      expect(keys.some((k) => k.startsWith(`${name} (`)), name).toBe(true);
    }
    const cpu = json[keys.find((k) => k.startsWith("cpu ("))!]!;
    expect((cpu["env.gpr"] as string[]).length).toBe(32);
    const desc = JSON.parse((await analyze(await runningFile(), "--dump", "desc")).out) as { page_size: number; devices: { name: string }[] };
    expect(desc.page_size).toBe(4096);
    expect(desc.devices.map((d) => d.name)).toContain("riscv_sifive_plic");
  }, 30_000);

  it("prints a QEMU 7.2 stream, with page contents under --memory", async () => {
    const qemu = fileURLToPath(new URL("../../../migration/testdata/qemu72-virt-hello-paused.mig", import.meta.url));
    const r = await analyze(qemu);
    expect(r.status).toBe(0);
    const json = JSON.parse(r.out) as Record<string, Record<string, unknown>>;
    expect(Object.keys(json).slice(0, 3)).toEqual(["ram (2)", "timer (0)", "cpu_common (4)"]);
    expect(Object.keys(json["ram (2)"]!["section sizes"] as object)).toEqual(["virt.flash0", "virt.flash1", "riscv_virt_board.ram", "riscv_virt_board.mrom"]);
    const mem = await analyze("-f", qemu, "-m");
    expect(mem.out.length).toBeGreaterThan(r.out.length);
  });

  const script = "/tmp/qemu-src/qemu-7.2+dfsg/scripts/analyze-migration.py";
  it.skipIf(!existsSync(script) || spawnSync("python3", ["--version"]).status !== 0)(
    "prints what QEMU 7.2's analyze-migration.py prints for a stream vm-cli saved (needs the QEMU source in /tmp/qemu-src)",
    async () => {
      const file = await runningFile();
      for (const extra of [[], ["-d", "desc"]]) {
        const py = spawnSync("python3", [script, "-f", file, ...extra], { encoding: "utf8" });
        expect(py.status, py.stderr).toBe(0);
        const ours = await analyze(file, ...extra);
        expect(ours.out).toBe(py.stdout);
      }
    },
    30_000,
  );

  it("names a bad file and a bad stream with exit status 1", async () => {
    const missing = await analyze(join(dir, "nothing.mig"));
    expect(missing.status).toBe(1);
    expect(missing.err).toMatch(/^vm-cli: analyze: could not read '.*nothing\.mig': No such file or directory\n$/);
    const junk = tmp("junk.mig");
    writeFileSync(junk, "not a stream at all");
    const bad = await analyze(junk);
    expect(bad.status).toBe(1);
    expect(bad.err).toMatch(/^vm-cli: analyze: .*junk\.mig: /);
    expect((await analyze()).err).toMatch(/no stream file given/);
    expect((await analyze("x", "--dump", "all")).err).toMatch(/invalid choice 'all'/);
  });
});

describe("live migration between two vm-cli runs", () => {
  it("moves a running a-b guest over a unix socket: -incoming unix:, QMP migrate unix:", async () => {
    const sock = tmp("mig.sock");
    const dst = await startVm("-incoming", `unix:${sock}`);
    expect((await dst.qmp.execute("query-status")).return).toEqual({ status: "inmigrate", singlestep: false, running: false });
    const src = await startVm();
    await until(() => src.out().includes("BB"));
    await src.qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "events", state: true }] });
    const events: string[] = [];
    expect(await src.qmp.execute("migrate", { uri: `unix:${sock}` }, events)).toEqual({ return: {} });
    await src.qmp.waitEvent(/MIGRATION {"status":"(completed|failed)"}/, events);
    expect(events.filter((e) => e.startsWith("MIGRATION {")).at(-1)).toBe('MIGRATION {"status":"completed"}');
    expect(events).toContain("STOP");
    expect((await src.qmp.execute("query-status")).return).toEqual({ status: "postmigrate", singlestep: false, running: false });
    await until(() => dst.out().split("B").length > 3);
    expect((await dst.qmp.execute("query-status")).return).toEqual({ status: "running", singlestep: false, running: true });
    expect(((await dst.qmp.execute("query-migrate")).return as { status: string }).status).toBe("completed");
    await src.qmp.execute("quit");
    await dst.qmp.execute("quit");
    expect(await src.status).toBe(0);
    expect(await dst.status).toBe(0);
    expect(dst.out()).toMatch(/^B+$/);
  }, 30_000);

  it("lets quit end a VM still listening for its migration", async () => {
    const dst = await startVm("-incoming", `unix:${tmp("idle.sock")}`);
    expect(await dst.qmp.execute("quit")).toEqual({ return: {} });
    expect(await dst.status).toBe(0);
  }, 30_000);
});

describe("ControllerVm (the live migration's view of a CLI VM)", () => {
  it("live-migrates a running a-b guest between two controllers over a unix socket", async () => {
    const kernel = new Uint8Array(readFileSync(AB));
    const vm = async (incoming: boolean) => {
      let out = "";
      const machine = await createMachine({
        ramSize: 16 * 2 ** 20, harts: 1, bios: "none", kernel, onConsoleOutput: (b) => { out += new TextDecoder().decode(b); },
      });
      const controller = new VmController(machine, { incoming });
      const outcome = controller.start();
      return { controller, outcome, vm: new ControllerVm(controller, machine), out: () => out };
    };
    const src = await vm(false);
    const dst = await vm(true);
    await until(() => src.out().includes("BB"));
    const sock = tmp("live.sock");
    const listener = await listenIncoming(`unix:${sock}`);
    const incoming = new MigrationIncoming(dst.vm);
    const loaded = incoming.incoming(() => listener.accept());
    const events: string[] = [];
    const state = new MigrationState(src.vm, { onEvent: (e) => events.push(e.event) });
    expect(await state.migrate(() => connectOutgoing(`unix:${sock}`))).toBe("completed");
    expect(await loaded).toBe("completed");
    expect(src.controller.state).toBe("postmigrate");
    expect(dst.controller.state).toBe("running");
    await until(() => dst.out().split("B").length > 3);
    expect(dst.out()).toMatch(/^B+$/);
    await src.controller.quit();
    await dst.controller.quit();
    await Promise.all([src.outcome, dst.outcome]);
  }, 30_000);
});
