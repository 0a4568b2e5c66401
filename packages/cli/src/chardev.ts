/**
 * The socket character devices the monitors listen on, spelled as QEMU's (chardev/char.c
 * `qemu_chr_parse_compat`, chardev/char-socket.c): `unix:PATH[,server=on][,wait=off]`,
 * `tcp:[HOST]:PORT[,server=on][,wait=off]`, the old `server`/`nowait` flags, and
 * `-chardev socket,id=ID,path=PATH|host=HOST,port=PORT,server=on,wait=off`.
 *
 * @module
 */

import { unlinkSync } from "node:fs";
import type { Server } from "node:net";
import { UsageError } from "./args.ts";

export type SocketAddress =
  | { transport: "unix"; path: string }
  | { transport: "tcp"; host: string; port: number };

/** A listening socket; `wait` holds the start of the machine until a client connects (QEMU's default). */
export interface SocketChardev {
  address: SocketAddress;
  wait: boolean;
}

/** QEMU's on/off booleans (also yes/no, true/false). */
export function parseBool(value: string, opt: string, key: string): boolean {
  if (value === "on" || value === "yes" || value === "true") return true;
  if (value === "off" || value === "no" || value === "false") return false;
  throw new UsageError(`${opt}: Parameter '${key}' expects 'on' or 'off'`);
}

function flags(parts: readonly string[], opt: string): { server: boolean; wait: boolean } {
  let server = false;
  let wait = true;
  for (const part of parts) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "on" : part.slice(eq + 1);
    if (key === "server") server = parseBool(value, opt, key);
    else if (key === "wait") wait = parseBool(value, opt, key);
    else if (key === "nowait" && eq < 0) wait = false;
    else if (key === "nodelay" || key === "telnet" || key === "reconnect") {
      if (key === "telnet" && parseBool(value, opt, key)) throw new UsageError(`${opt}: telnet is not supported`);
    } else {
      throw new UsageError(`${opt}: Invalid parameter '${key}'`);
    }
  }
  if (!server) {
    throw new UsageError(`${opt}: only listening sockets are supported (add server=on,wait=off)`);
  }
  return { server, wait };
}

function parsePort(text: string, opt: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new UsageError(`${opt}: invalid port '${text}'`);
  return Number(text);
}

/**
 * Parses QEMU's short form `unix:PATH,...` or `tcp:HOST:PORT,...`; returns undefined for other
 * backends (`stdio`, `none`, `chardev:ID`...) so the caller can handle them.
 */
export function parseSocketSpec(spec: string, opt: string): SocketChardev | undefined {
  if (spec.startsWith("unix:")) {
    const [path = "", ...rest] = spec.slice(5).split(",");
    if (path === "") throw new UsageError(`${opt}: unix socket path missing in '${spec}'`);
    return { address: { transport: "unix", path }, wait: flags(rest, opt).wait };
  }
  if (spec.startsWith("tcp:")) {
    const [hostPort = "", ...rest] = spec.slice(4).split(",");
    const colon = hostPort.lastIndexOf(":");
    if (colon < 0) throw new UsageError(`${opt}: expected tcp:HOST:PORT, got '${spec}'`);
    let host = hostPort.slice(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
    return { address: { transport: "tcp", host, port: parsePort(hostPort.slice(colon + 1), opt) }, wait: flags(rest, opt).wait };
  }
  return undefined;
}

/** The host's stdio as a chardev; `mux` (QEMU's `mux=on`) shares it between the serial port and a monitor. */
export interface StdioChardev {
  stdio: true;
  mux: boolean;
}

/**
 * `-chardev socket,id=ID,...` or `-chardev stdio,id=ID[,mux=on][,signal=on|off]`: the id and
 * its chardev; other backends are refused.
 */
export function parseChardev(text: string, opt: string): { id: string; chardev: SocketChardev | StdioChardev } {
  const [backend = "", ...rest] = text.split(",");
  if (backend === "stdio") {
    let id: string | undefined;
    let mux = false;
    for (const part of rest) {
      const eq = part.indexOf("=");
      const key = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? "on" : part.slice(eq + 1);
      if (key === "id") id = value;
      else if (key === "mux") mux = parseBool(value, opt, key);
      else if (key === "signal" || key === "logappend") parseBool(value, opt, key);
      else if (key !== "logfile") throw new UsageError(`${opt}: Invalid parameter '${key}'`);
    }
    if (id === undefined || id === "") throw new UsageError(`${opt}: Parameter 'id' is missing`);
    return { id, chardev: { stdio: true, mux } };
  }
  if (backend !== "socket") throw new UsageError(`${opt}: chardev backend '${backend}' is not supported yet (supported: socket, stdio)`);
  let id: string | undefined;
  let path: string | undefined;
  let host: string | undefined;
  let port: number | undefined;
  const other: string[] = [];
  for (const part of rest) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (key === "id" && eq > 0) id = value;
    else if (key === "path" && eq > 0) path = value;
    else if (key === "host" && eq > 0) host = value;
    else if (key === "port" && eq > 0) port = parsePort(value, opt);
    else other.push(part);
  }
  if (id === undefined || id === "") throw new UsageError(`${opt}: Parameter 'id' is missing`);
  const { wait } = flags(other, opt);
  if (path !== undefined) return { id, chardev: { address: { transport: "unix", path }, wait } };
  if (port !== undefined) return { id, chardev: { address: { transport: "tcp", host: host ?? "", port }, wait } };
  throw new UsageError(`${opt}: chardev: socket: no address (path=PATH or host=HOST,port=PORT)`);
}

/** How an address reads in messages: QEMU's `unix:PATH,server=on` / `tcp:HOST:PORT,server=on`. */
export function formatAddress(a: SocketAddress): string {
  return a.transport === "unix" ? `unix:${a.path}` : `tcp:${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
}

/**
 * Binds `server` to a listening chardev's address, removing a stale unix socket file first as
 * QEMU does; resolves with the bound address (a tcp port 0 resolved to the real port).
 */
export async function listenOn(server: Server, a: SocketAddress): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (a.transport === "unix") {
      removeSocketFile(a);
      server.listen(a.path, () => resolve());
    } else {
      server.listen(a.port, a.host === "" ? undefined : a.host, () => resolve());
    }
  });
  server.on("error", () => {});
  const bound = server.address();
  if (a.transport === "tcp" && bound !== null && typeof bound === "object") {
    return formatAddress({ transport: "tcp", host: bound.address, port: bound.port });
  }
  return formatAddress(a);
}

/** Removes the socket file of a unix address (nothing to do for tcp, or when it is gone). */
export function removeSocketFile(a: SocketAddress): void {
  if (a.transport !== "unix") return;
  try {
    unlinkSync(a.path);
  } catch {
    // none there
  }
}
