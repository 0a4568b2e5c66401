/**
 * A readline HMP monitor: the `(qemu) ` prompt of `-serial mon:stdio` (Ctrl-A c),
 * `-monitor stdio` and `-mon chardev=ID,mode=readline` sockets. Lines end at CR or LF;
 * backspace edits; with `echo` (a terminal) typed characters are echoed back as QEMU's
 * readline does. Commands run one at a time in order; output uses CRLF.
 *
 * @module
 */

import net from "node:net";
import { listenOn, removeSocketFile, type SocketAddress, type SocketChardev } from "./chardev.ts";
import { crlf, executeHmp, monitorBanner, type MonitorContext } from "./hmp.ts";
import { MonitorFds, ReceivedFds, type MonitorFdContext } from "./qmp/fds.ts";
import { fdPassingFor, readConnection } from "./qmp/scm-rights.ts";

export const PROMPT = "(qemu) ";

export class ReadlineMonitor {
  #ctx: MonitorContext;
  #write: (text: string) => void;
  #echo: boolean;
  #line = "";
  #lastCr = false;
  #chain: Promise<void> = Promise.resolve();
  #opened = false;

  constructor(ctx: MonitorContext, write: (text: string) => void, options: { echo?: boolean } = {}) {
    this.#ctx = ctx;
    this.#write = write;
    this.#echo = options.echo ?? false;
  }

  /** Shows the monitor: the banner the first time, then a fresh prompt. */
  focus(): void {
    if (!this.#opened) {
      this.#opened = true;
      this.#write(crlf(monitorBanner(this.#ctx)) + PROMPT);
    } else {
      this.#write("\r\n" + PROMPT);
    }
  }

  /** Feeds typed bytes; resolves when the commands they completed have run. */
  feed(bytes: Uint8Array): Promise<void> {
    for (const b of bytes) {
      const cr = b === 0x0d;
      if (b === 0x0a && this.#lastCr) {
        this.#lastCr = false;
        continue;
      }
      this.#lastCr = cr;
      if (cr || b === 0x0a) {
        const line = this.#line;
        this.#line = "";
        if (this.#echo) this.#write("\r\n");
        this.#chain = this.#chain.then(() => this.#run(line));
      } else if (b === 0x7f || b === 0x08) {
        if (this.#line.length > 0) {
          this.#line = this.#line.slice(0, -1);
          if (this.#echo) this.#write("\b \b");
        }
      } else if (b >= 0x20 && b < 0x7f) {
        this.#line += String.fromCharCode(b);
        if (this.#echo) this.#write(String.fromCharCode(b));
      }
    }
    return this.#chain;
  }

  async #run(line: string): Promise<void> {
    let out: string;
    try {
      out = await executeHmp(line, this.#ctx, 0, { interactive: true });
    } catch (e) {
      out = `Error: ${e instanceof Error ? e.message : String(e)}\n`;
    }
    if (this.#ctx.controller.finished) {
      this.#write(crlf(out));
      return;
    }
    this.#write(crlf(out) + PROMPT);
  }
}

/** An HMP monitor on a listening socket (`-monitor unix:...,server=on` / `-mon mode=readline`). */
export class HmpSocketServer {
  #ctx: MonitorContext;
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  #address: SocketAddress | undefined;
  #firstClient: Promise<void>;
  #gotClient!: () => void;
  /** Descriptors named with getfd (per monitor, as QEMU). */
  #fds = new MonitorFds();

  constructor(ctx: MonitorContext) {
    this.#ctx = ctx;
    this.#firstClient = new Promise((r) => (this.#gotClient = r));
  }

  async listen(chardev: SocketChardev): Promise<string> {
    // As the QMP server: on a unix socket, connections are read with their descriptors (getfd).
    const fdPassing = fdPassingFor(chardev.address);
    const server = net.createServer({ pauseOnConnect: fdPassing === true }, (socket) => {
      this.#sockets.add(socket);
      this.#gotClient();
      const received = new ReceivedFds();
      const fds: MonitorFdContext = {
        named: this.#fds,
        takeReceived: () => received.take(),
        ...(fdPassing === true ? {} : { unavailable: fdPassing }),
      };
      const mon = new ReadlineMonitor({ ...this.#ctx, fds }, (t) => {
        if (!socket.destroyed && socket.writable) socket.write(t);
      });
      mon.focus();
      const stopReading = readConnection(socket, fdPassing === true, (bytes, passed) => {
        received.receive(passed);
        mon.feed(new Uint8Array(bytes)).catch(() => {});
      });
      socket.on("error", () => {});
      socket.on("close", () => {
        stopReading();
        received.closeAll();
        this.#sockets.delete(socket);
      });
    });
    this.#server = server;
    this.#address = chardev.address;
    return listenOn(server, chardev.address);
  }

  waitForClient(): Promise<void> {
    return this.#firstClient;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.end();
    setTimeout(() => {
      for (const s of this.#sockets) s.destroy();
    }, 500).unref();
    if (this.#server !== undefined) await new Promise<void>((r) => this.#server!.close(() => r()));
    this.#fds.closeAll();
    if (this.#address !== undefined) removeSocketFile(this.#address);
  }
}
