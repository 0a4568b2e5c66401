import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { main, type CliIo } from "../main.ts";

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
    expect(events).toEqual(['MIGRATION {"status":"setup"}', 'MIGRATION {"status":"active"}', "STOP", 'MIGRATION {"status":"completed"}']);
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
