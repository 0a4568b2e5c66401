import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { main, type CliIo } from "../main.ts";

const fixtures = fileURLToPath(new URL("../../../devices/test-fixtures/", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "vm-cli-qmp-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let sockets = 0;
const sockPath = () => join(dir, `q${sockets++}.sock`);

/** A QMP client over node:net: lines (CRLF-terminated) queued as they arrive. */
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

  static async connect(target: string | { port: number; host: string }, tries = 100): Promise<QmpClient> {
    for (let i = 0; ; i++) {
      try {
        const sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = typeof target === "string" ? net.createConnection(target) : net.createConnection(target.port, target.host);
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        });
        return new QmpClient(sock);
      } catch (e) {
        if (i >= tries) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  next(): Promise<string | undefined> {
    if (this.#lines.length > 0) return Promise.resolve(this.#lines.shift());
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((r) => this.#waiters.push(r));
  }

  send(text: string): void {
    this.#sock.write(text + "\n");
  }

  /** Sends one request; returns the lines up to its response (events first). */
  async request(text: string): Promise<string[]> {
    this.send(text);
    const out: string[] = [];
    for (;;) {
      const line = await this.next();
      if (line === undefined) return out;
      out.push(line);
      if (!line.startsWith('{"timestamp"')) return out;
    }
  }

  /** Lines until (and with) the first one matching `re`, or until the connection closes. */
  async until(re: RegExp): Promise<string[]> {
    const out: string[] = [];
    for (let line = await this.next(); line !== undefined; line = await this.next()) {
      out.push(normalize(line));
      if (re.test(line)) break;
    }
    return out;
  }

  async cmd(execute: string, args?: object): Promise<unknown> {
    const lines = await this.request(JSON.stringify(args === undefined ? { execute } : { execute, arguments: args }));
    return JSON.parse(lines[lines.length - 1]!);
  }

  destroy(): void {
    this.#sock.destroy();
  }
}

function io(stdin: PassThrough | null = null) {
  let out = "";
  let err = "";
  const cli: CliIo = {
    stdout: (b) => { out += new TextDecoder().decode(b); },
    stderr: (t) => { err += t; },
    stdin,
    isTTY: false,
    readFile: (p) => readFileSync(p),
  };
  return { cli, out: () => out, err: () => err };
}

const base = (kernel: string) => ["run", "-M", "virt", "-bios", "none", "-kernel", fixtures + kernel, "-nographic"];

/** Timestamps, thread ids and the version differ between runs and between QEMU and us. */
function normalize(line: string): string {
  return line
    .replace(/"seconds": \d+, "microseconds": \d+/g, '"seconds": 0, "microseconds": 0')
    .replace(/"thread-id": \d+/g, '"thread-id": 0')
    .replace(/thread_id=\d+/g, "thread_id=0")
    .replace(/"micro": \d+/g, '"micro": 0')
    .replace(/"package": "[^"]*"/g, '"package": ""')
    // info registers: the hypervisor extension's and FPU registers, which our CPU does not have.
    .replace(/\\r\\n (?:V      = |hstatus|vsstatus|hideleg|hedeleg|vstvec|vsepc|vscause|htval|mtval2)[^\\]*/g, "")
    .replace(/\\r\\n f0\/ft0 .*(?=\\r\\n")/g, "");
}

/** Replays a session QEMU answered (fixtures/record-qemu.mjs) against vm-cli run `argv`. */
async function replay(fixture: string, argv: string[]): Promise<void> {
  const golden = JSON.parse(readFileSync(new URL(`./fixtures/${fixture}`, import.meta.url), "utf8")) as Session;
  const path = sockPath();
  const done = main([...argv, "-qmp", `unix:${path},server=on,wait=off`], io().cli);
  const c = await QmpClient.connect(path);
  expect(normalize((await c.next())!)).toBe(normalize(golden.greeting));
  for (const { send, receive } of golden.session) {
    const got = await c.request(send);
    expect({ send, receive: got.map(normalize) }).toEqual({ send, receive: receive.map(normalize) });
  }
  expect(await c.next()).toBeUndefined();
  expect(await done).toBe(0);
}

interface Session {
  greeting: string;
  session: { send: string; receive: string[] }[];
}

describe("the QMP server", () => {
  it("answers as QEMU 7.2 does, line for line (fixtures/qemu-7.2-session.json)", async () => {
    await replay("qemu-7.2-session.json", [...base("spin.elf"), "-smp", "2", "-S"]);
  });

  it("dumps memory with HMP xp as QEMU 7.2 does (fixtures/qemu-7.2-xp.json)", async () => {
    await replay("qemu-7.2-xp.json", [...base("echo.elf"), "-S"]);
  });

  it("greets with QEMU 7.2's version and FerryVM's in package", async () => {
    const path = sockPath();
    const done = main([...base("spin.elf"), "-S", "-qmp", `unix:${path},server,nowait`], io().cli);
    const c = await QmpClient.connect(path);
    const greeting = JSON.parse((await c.next())!);
    expect(greeting.QMP.version.qemu).toEqual({ micro: 0, minor: 2, major: 7 });
    expect(greeting.QMP.version.package).toMatch(/^FerryVM /);
    expect(await c.cmd("qmp_capabilities")).toEqual({ return: {} });
    expect(await c.cmd("quit")).toEqual({ return: {} });
    expect(await done).toBe(0);
  });

  it("runs pipelined commands in order, several in one write", async () => {
    const path = sockPath();
    const done = main([...base("spin.elf"), "-S", "-qmp", `unix:${path},server=on,wait=off`], io().cli);
    const c = await QmpClient.connect(path);
    await c.next();
    c.send('{"execute":"qmp_capabilities","id":1}{"execute":"cont","id":2} {"execute":"query-status","id":3}\n' +
      '{"execute":"stop","id":4}\n{"execute":"query-status",\n"id":5}');
    const lines: string[] = [];
    for (let i = 0; i < 7; i++) lines.push(normalize((await c.next())!));
    expect(lines).toEqual([
      '{"return": {}, "id": 1}',
      '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "RESUME"}',
      '{"return": {}, "id": 2}',
      '{"return": {"status": "running", "singlestep": false, "running": true}, "id": 3}',
      '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "STOP"}',
      '{"return": {}, "id": 4}',
      '{"return": {"status": "paused", "singlestep": false, "running": false}, "id": 5}',
    ]);
    await c.cmd("quit");
    expect(await done).toBe(0);
  });

  it("survives a client that leaves mid-command, and serves the next one", async () => {
    const path = sockPath();
    const done = main([...base("spin.elf"), "-qmp", `unix:${path},server=on,wait=off`], io().cli);
    const a = await QmpClient.connect(path);
    await a.next();
    a.send('{"execute":"qmp_capabilities"}{"execute":"stop"}{"execute":"query-status"}');
    a.destroy();
    const b = await QmpClient.connect(path);
    await b.next();
    await b.cmd("qmp_capabilities");
    let status: unknown;
    for (let i = 0; i < 50; i++) {
      status = await b.cmd("query-status");
      if ((status as { return: { status: string } }).return.status === "paused") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).toEqual({ return: { status: "paused", singlestep: false, running: false } });
    await b.cmd("quit");
    expect(await done).toBe(0);
  });

  it("listens on tcp port 0, says where, and wait=on holds the start until a client connects", async () => {
    const t = io();
    const done = main([...base("spin.elf"), "-qmp", "tcp:127.0.0.1:0,server=on,wait=on"], t.cli);
    let m: RegExpExecArray | null = null;
    for (let i = 0; i < 200 && m === null; i++) {
      m = /QMP listening on tcp:127\.0\.0\.1:(\d+)/.exec(t.err());
      if (m === null) await new Promise((r) => setTimeout(r, 10));
    }
    expect(t.err()).toMatch(/waiting for connection on: tcp:127\.0\.0\.1:\d+,server=on/);
    const c = await QmpClient.connect({ host: "127.0.0.1", port: Number(m![1]) });
    await c.next();
    await c.cmd("qmp_capabilities");
    expect(await c.cmd("query-status")).toEqual({ return: { status: "running", singlestep: false, running: true } });
    expect(await c.request('{"execute":"quit"}')).toHaveLength(2);
    expect(await done).toBe(0);
  });

  it("reports a guest reset (RESET guest-reset), and a guest poweroff as SHUTDOWN guest-shutdown", async () => {
    const path = sockPath();
    const t = io();
    const done = main([...base("reset.elf"), "-S", "-qmp", `unix:${path},server=on,wait=off`], t.cli);
    const c = await QmpClient.connect(path);
    await c.next();
    await c.cmd("qmp_capabilities");
    c.send('{"execute":"cont"}');
    // The guest may reset before the answer to cont is written.
    const lines = (await c.until(/^$/)).filter((l) => l !== '{"return": {}}');
    expect(lines).toEqual([
      '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "RESUME"}',
      '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "RESET", "data": {"guest": true, "reason": "guest-reset"}}',
      '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}',
    ]);
    expect(await done).toBe(0);
    expect(t.out()).toBe("boot 2\n");
  });

  it("with -no-reboot turns a guest reset into SHUTDOWN guest-reset", async () => {
    const path = sockPath();
    const done = main([...base("reset.elf"), "-S", "-no-reboot", "-qmp", `unix:${path},server=on,wait=off`], io().cli);
    const c = await QmpClient.connect(path);
    await c.next();
    await c.cmd("qmp_capabilities");
    c.send('{"execute":"cont"}');
    expect((await c.until(/^$/)).filter((l) => l !== '{"return": {}}')).toEqual([
      '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "RESUME"}',
      '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}',
    ]);
    expect(await done).toBe(0);
  });

  it("with -no-shutdown holds a powered-off guest in the shutdown state until reset", async () => {
    const path = sockPath();
    const done = main([...base("finisher-fail.elf"), "-S", "-no-shutdown", "-qmp", `unix:${path},server=on,wait=off`], io().cli);
    const c = await QmpClient.connect(path);
    await c.next();
    await c.cmd("qmp_capabilities");
    c.send('{"execute":"cont"}');
    const all = await c.until(/"event": "STOP"|^\{"return"/);
    all.push(...(await c.until(/"event": "STOP"|^\{"return"/)));
    const lines = all.filter((l) => l !== '{"return": {}}');
    expect(lines).toEqual([
      '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "RESUME"}',
      '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}',
      '{"timestamp": {"seconds": 0, "microseconds": 0}, "event": "STOP"}',
    ]);
    expect(await c.cmd("query-status")).toEqual({ return: { status: "shutdown", singlestep: false, running: false } });
    expect(await c.cmd("cont")).toEqual({ error: { class: "GenericError", desc: "Resetting the Virtual Machine is required" } });
    expect(await c.cmd("human-monitor-command", { "command-line": "info status" })).toEqual({ return: "VM status: paused (shutdown)\r\n" });
    await c.request('{"execute":"system_reset"}');
    expect(await c.cmd("query-status")).toEqual({ return: { status: "prelaunch", singlestep: false, running: false } });
    await c.cmd("quit");
    expect(await done).toBe(3);
  });

  it("serves the HMP monitor on Ctrl-A c over a pipe, and back to the guest", async () => {
    const stdin = new PassThrough();
    const t = io(stdin);
    const done = main([...base("echo.elf"), "-S"], t.cli);
    stdin.write("\x01cinfo status\n");
    const waitFor = async (text: string) => {
      for (let i = 0; i < 300 && !t.out().includes(text); i++) await new Promise((r) => setTimeout(r, 10));
      expect(t.out()).toContain(text);
    };
    await waitFor("VM status: paused (prelaunch)\r\n(qemu) ");
    expect(t.out()).toMatch(/^QEMU 7\.2\.0 monitor \(FerryVM [^)]*\) - type 'help' for more information\r\n\(qemu\) /);
    stdin.write("nope\ncont\n\x01cab");
    await waitFor("unknown command: 'nope'\r\n(qemu) ");
    await waitFor("AB");
    stdin.write("\x01cinfo status\r\n");
    await waitFor("VM status: running\r\n");
    stdin.write("quit\n");
    expect(await done).toBe(0);
  });
});

describe("the other monitors", () => {
  it("serves HMP on a -monitor socket with QEMU's banner and prompt", async () => {
    const path = sockPath();
    const done = main([...base("spin.elf"), "-S", "-name", "vm1", "-monitor", `unix:${path},server=on,wait=off`], io().cli);
    const sock = await QmpClient.connect(path);
    expect(await sock.next()).toMatch(/^QEMU 7\.2\.0 monitor \(FerryVM .*\) - type 'help' for more information$/);
    sock.send("info status");
    expect(await sock.next()).toBe("(qemu) VM status: paused (prelaunch)");
    sock.send("info name\nquit");
    expect(await sock.next()).toBe("(qemu) vm1");
    expect(await sock.next()).toBeUndefined();
    expect(await done).toBe(0);
  });

  it("serves HMP on stdio with -monitor stdio, prompt first", async () => {
    const stdin = new PassThrough();
    const t = io(stdin);
    const done = main([...base("spin.elf"), "-S", "-serial", "none", "-monitor", "stdio"], t.cli);
    stdin.write("info status\ncont\ninfo status\n");
    for (let i = 0; i < 300 && !t.out().includes("VM status: running"); i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.out()).toMatch(
      /^QEMU 7\.2\.0 monitor .*\r\n\(qemu\) VM status: paused \(prelaunch\)\r\n\(qemu\) \(qemu\) VM status: running\r\n\(qemu\) $/,
    );
    stdin.write("q\n");
    expect(await done).toBe(0);
  });

  it("writes -qmp-pretty JSON as QEMU does", async () => {
    const path = sockPath();
    const done = main([...base("spin.elf"), "-S", "-qmp-pretty", `unix:${path},server=on,wait=off`], io().cli);
    const c = await QmpClient.connect(path);
    const greeting: string[] = [];
    for (let l = await c.next(); l !== "}"; l = await c.next()) greeting.push(l!);
    expect(greeting.slice(0, 3)).toEqual(["{", '    "QMP": {', '        "version": {']);
    // qemu-system-riscv64 -M virt -nographic -bios none -qmp-pretty unix:S,server=on,wait=off -S
    c.send('{"execute":"qmp_capabilities"}');
    expect([await c.next(), await c.next(), await c.next(), await c.next()]).toEqual(["{", '    "return": {', "    }", "}"]);
    c.send('{"execute":"quit"}');
    expect(await done).toBe(0);
  });
});
