/**
 * Reading a QMP unix connection with the descriptors its client passes (SCM_RIGHTS). Node.js
 * reads sockets with read(2), which drops them, and its IPC pipes abort the process when one
 * is a regular file or a tty; so native/scm_rights.c (Node-API, built by `pnpm build` when a
 * C compiler is there) reads the connection with recvmsg on a thread of its own, and writes
 * keep going through the net.Socket. Without the helper, connections are read as before and
 * getfd says why it has nothing.
 *
 * @module
 */

import { createRequire } from "node:module";
import type net from "node:net";
import { fileURLToPath } from "node:url";
import { closeFd } from "./fds.ts";

interface ScmRightsAddon {
  open(fd: number, onChunk: (data: Buffer | null, fds: number[], errno: number) => void): object;
  close(receiver: object): void;
  send(fd: number, bytes: Buffer, fds: number[]): number;
}

const ADDON_PATH = fileURLToPath(new URL("../../build/scm_rights.node", import.meta.url));

let addon: ScmRightsAddon | null | undefined;
let addonProblem = "";

function loadAddon(): ScmRightsAddon | undefined {
  if (addon === undefined && process.env["FERRYVM_SCM_RIGHTS"] === "off") {
    addon = null;
    addonProblem = "FerryVM's scm_rights helper is turned off (FERRYVM_SCM_RIGHTS=off)";
  }
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON_PATH) as ScmRightsAddon;
    } catch (e) {
      addon = null;
      addonProblem = `FerryVM's scm_rights helper is not built (${(e as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND" ? ADDON_PATH + " is missing; build with a C compiler installed" : (e as Error).message})`;
    }
  }
  return addon ?? undefined;
}

/** net.Socket keeps its descriptor on the libuv handle; there is no public accessor. */
function socketFd(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}

/** Why descriptors cannot be received on this platform/build, or undefined when they can. */
export function scmRightsUnavailable(): string | undefined {
  return loadAddon() === undefined ? addonProblem : undefined;
}

export interface FdReaderHandlers {
  /** Bytes, with the descriptors that came with them (now ours to close). */
  data(bytes: Buffer, fds: number[]): void;
  /** The peer closed its side (error undefined) or the read failed. */
  end(error?: Error): void;
}

export interface FdReader {
  /** Stops reading (joins the helper's thread); what was already read may still arrive and is dropped. */
  close(): void;
}

/**
 * Reads `socket` (accepted with pauseOnConnect, never read by Node) with its descriptors.
 * Undefined when the helper is missing or the socket has no descriptor of its own.
 */
export function readWithFds(socket: net.Socket, handlers: FdReaderHandlers): FdReader | undefined {
  const native = loadAddon();
  const fd = socketFd(socket);
  if (native === undefined || fd === undefined) return undefined;
  let closed = false;
  const receiver = native.open(fd, (data, fds, errno) => {
    if (closed) {
      for (const f of fds) closeFd(f);
      return;
    }
    if (data !== null) {
      handlers.data(data, fds);
      return;
    }
    for (const f of fds) closeFd(f);
    closed = true;
    native.close(receiver);
    handlers.end(errno === 0 ? undefined : Object.assign(new Error(`recvmsg failed (errno ${errno})`), { errno }));
  });
  return {
    close() {
      if (closed) return;
      closed = true;
      native.close(receiver);
    },
  };
}

/**
 * Whether a monitor listening on `address` reads its connections with their descriptors
 * (true), else why not. Such a server must accept with pauseOnConnect (see readConnection).
 */
export function fdPassingFor(address: { transport: string }): true | string {
  return address.transport === "unix" ? scmRightsUnavailable() ?? true : "descriptors pass only over a unix socket";
}

/**
 * Reads an accepted monitor connection: with its descriptors when `withFds` (accepted with
 * pauseOnConnect), else as Node reads sockets (no descriptors). When the client closes its
 * side, what is queued goes out and the connection closes (as allowHalfOpen=false). Returns
 * what to call on the socket's 'close'.
 */
export function readConnection(socket: net.Socket, withFds: boolean, data: (bytes: Buffer, fds: number[]) => void): () => void {
  const reader = withFds
    ? readWithFds(socket, { data, end: (error) => (error === undefined ? socket.end(() => socket.destroy()) : socket.destroy()) })
    : undefined;
  if (reader === undefined) {
    socket.on("data", (bytes: Buffer) => data(bytes, []));
    if (withFds) socket.resume();
  }
  return () => reader?.close();
}

/**
 * Sends `text` on a unix socket with `fds` attached (SCM_RIGHTS), as a QMP client passes a
 * descriptor before `getfd` (QEMU's python qmp `send_fd_scm`). The descriptors stay open here.
 * Rejects when the helper is missing or the send fails.
 */
export async function sendWithFds(socket: net.Socket, text: string, fds: readonly number[]): Promise<void> {
  const native = loadAddon();
  if (native === undefined) throw new Error(`cannot pass descriptors: ${addonProblem}`);
  const fd = socketFd(socket);
  if (fd === undefined) throw new Error("cannot pass descriptors: the socket is not connected");
  let bytes = Buffer.from(text, "utf8");
  let pass = [...fds];
  // The socket is non-blocking: a full send buffer waits a little; the descriptors go with the first part.
  for (let waited = 0; bytes.length > 0; ) {
    try {
      const n = native.send(fd, bytes, pass);
      bytes = bytes.subarray(n);
      pass = [];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN" || waited >= 5000) throw e;
      await new Promise((r) => setTimeout(r, 5));
      waited += 5;
    }
  }
}
