/**
 * Migration transports on Node.js (QEMU's migration/socket.c, exec.c, fd.c, file.c):
 * `tcp:HOST:PORT`, `unix:PATH`, `exec:CMD`, `fd:N`, `file:PATH`. Outgoing: `connectOutgoing`
 * gives an `OutgoingChannel`; incoming: `listenIncoming` listens (or spawns, or opens) and
 * `accept()` gives the first connection as an `IncomingChannel`. Errors read as QEMU's:
 * "Failed to connect to '127.0.0.1:1': Connection refused", "Unable to write to socket: Broken pipe".
 *
 * @module
 */

import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream, createWriteStream, fstatSync, unlinkSync, type ReadStream, type WriteStream } from "node:fs";
import { createServer, Socket, type Server, type SocketConstructorOpts } from "node:net";
import type { Readable, Writable } from "node:stream";
import type { IncomingChannel, OutgoingChannel } from "./channel.ts";
import { QmpError } from "./migration-params.ts";
import type { ByteSink, ByteSource } from "./qemu-file.ts";

/** A parsed migration URI. */
export type MigrationUri =
  | { transport: "tcp"; host: string; port: number }
  | { transport: "unix"; path: string }
  | { transport: "exec"; command: string }
  | { transport: "fd"; fd: number }
  | { transport: "file"; path: string };

/** Bytes a transport buffers before a write waits (one event-loop turn per 64 KiB would starve the stream). */
const HIGH_WATER_MARK = 1 << 20;

/** net.Socket passes its options on to stream.Duplex (the typings omit the buffer size). */
function socketOptions(options: SocketConstructorOpts): SocketConstructorOpts {
  return { ...options, writableHighWaterMark: HIGH_WATER_MARK } as SocketConstructorOpts;
}

/**
 * What `fd:N` refers to (QEMU's qio_channel_new_fd): a socket is two-way; a pipe or FIFO
 * only goes one way and is not read from; a regular file or a device is written or read at
 * its current offset (QIOChannelFile), as `virsh save` passes a file.
 */
type FdChannel = { kind: "socket"; socket: Socket; twoWay: boolean } | { kind: "file"; stream: WriteStream | ReadStream };

function fdChannel(fd: number, direction: "out" | "in"): FdChannel {
  const st = fstatSync(fd);
  if (st.isFile() || st.isCharacterDevice() || st.isBlockDevice()) {
    const stream = direction === "out" ? createWriteStream("", { fd, highWaterMark: HIGH_WATER_MARK }) : createReadStream("", { fd, highWaterMark: HIGH_WATER_MARK });
    return { kind: "file", stream };
  }
  const twoWay = st.isSocket();
  const socket = new Socket(socketOptions({ fd, readable: twoWay || direction === "in", writable: twoWay || direction === "out" }));
  return { kind: "socket", socket, twoWay };
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: "Connection refused",
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  EADDRINUSE: "Address already in use",
  ECONNRESET: "Connection reset by peer",
  EPIPE: "Broken pipe",
  ETIMEDOUT: "Connection timed out",
  EHOSTUNREACH: "No route to host",
  ENETUNREACH: "Network is unreachable",
  ENOSPC: "No space left on device",
  EBADF: "Bad file descriptor",
  ENOTFOUND: "Name or service not known",
  EAI_AGAIN: "Temporary failure in name resolution",
};

/** strerror-like text of a Node system error. */
export function errnoText(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && ERRNO_TEXT[code] !== undefined) return ERRNO_TEXT[code];
  return e instanceof Error ? e.message : String(e);
}

/** Parses a migration URI; throws QEMU's "unknown migration protocol" / "Invalid ..." texts. */
export function parseMigrationUri(uri: string): MigrationUri {
  const colon = uri.indexOf(":");
  const scheme = colon < 0 ? uri : uri.slice(0, colon);
  const rest = colon < 0 ? "" : uri.slice(colon + 1);
  switch (scheme) {
    case "tcp": {
      const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)(?:,.*)?$/.exec(rest);
      if (m === null || Number(m[3]) > 65535) throw new QmpError(`error parsing address '${rest}'`);
      return { transport: "tcp", host: m[1] ?? m[2] ?? "", port: Number(m[3]) };
    }
    case "unix":
      if (rest === "") throw new QmpError(`error parsing address '${rest}'`);
      return { transport: "unix", path: rest };
    case "exec":
      if (rest === "") throw new QmpError("exec: command is empty");
      return { transport: "exec", command: rest };
    case "fd": {
      if (!/^\d+$/.test(rest)) throw new QmpError(`Invalid file descriptor number '${rest}'`);
      return { transport: "fd", fd: Number(rest) };
    }
    case "file":
      if (rest === "") throw new QmpError("file: path is empty");
      return { transport: "file", path: rest };
    default:
      throw new QmpError(`unknown migration protocol: ${uri}`);
  }
}

/**
 * A sink over a Node Writable: waits for 'drain' when the stream's buffer is full. A failed
 * write reads as QEMU's channel says it: "Unable to write to socket: Connection reset by peer"
 * (`what` names the channel: socket, file, command).
 */
export function writableSink(stream: Writable, what: "socket" | "file" | "command" = "socket"): ByteSink {
  let failure: Error | undefined;
  stream.on("error", (e: Error) => {
    failure ??= e;
  });
  const check = (): void => {
    failure ??= stream.errored ?? undefined;
    if (failure !== undefined) throw new Error(`Unable to write to ${what}: ${errnoText(failure)}`, { cause: failure });
    // Destroyed under us (the peer went, or a cancel): a write to a closed pipe.
    if (stream.destroyed) throw new Error(`Unable to write to ${what}: Broken pipe`);
  };
  return {
    write(chunk, release) {
      check();
      // The callback runs once the stream no longer holds the chunk: the writer may reuse it.
      if (stream.write(chunk, release === undefined ? undefined : () => release())) return;
      return new Promise<void>((resolve, reject) => {
        const done = (): void => {
          stream.off("drain", done);
          stream.off("close", done);
          stream.off("error", done);
          try {
            check();
            resolve();
          } catch (e) {
            reject(e as Error);
          }
        };
        stream.on("drain", done);
        stream.on("close", done);
        stream.on("error", done);
      });
    },
    close() {
      check();
      return new Promise<void>((resolve, reject) => {
        stream.end(() => (failure === undefined ? resolve() : reject(new Error(`Unable to write to ${what}: ${errnoText(failure)}`))));
      });
    },
  };
}

function readableSource(stream: Readable): ByteSource {
  return stream as unknown as AsyncIterable<Uint8Array>;
}

function socketChannel(socket: Socket): OutgoingChannel {
  const sink = writableSink(socket);
  return {
    sink,
    returnPath: readableSource(socket),
    close: async () => {
      await sink.close?.();
      socket.destroy();
    },
    abort: () => socket.destroy(),
  };
}

/** Connects; a failure reads as QEMU's inet/unix_connect_saddr: "Failed to connect to 'HOST:PORT': ...". */
function connectSocket(options: { host: string; port: number } | { path: string }): Promise<Socket> {
  const where = "path" in options ? options.path : `${options.host}:${options.port}`;
  return new Promise((resolve, reject) => {
    const socket = new Socket(socketOptions({}));
    const onError = (e: Error): void => {
      socket.destroy();
      reject(new Error(`Failed to connect to '${where}': ${errnoText(e)}`, { cause: e }));
    };
    socket.once("error", onError);
    socket.connect(options as never, () => {
      socket.off("error", onError);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

/** Opens the outgoing end of `uri` (qemu_start_outgoing_migration). */
export async function connectOutgoing(uri: string): Promise<OutgoingChannel> {
  const u = parseMigrationUri(uri);
  switch (u.transport) {
    case "tcp":
      return socketChannel(await connectSocket({ host: u.host, port: u.port }));
    case "unix":
      return socketChannel(await connectSocket({ path: u.path }));
    case "fd": {
      let fd: FdChannel;
      try {
        fd = fdChannel(u.fd, "out");
      } catch (e) {
        throw new Error(`Failed to connect to '${uri}': ${errnoText(e)}`, { cause: e });
      }
      if (fd.kind === "file") {
        const stream = fd.stream as WriteStream;
        const sink = writableSink(stream, "file");
        return { sink, close: async () => sink.close?.(), abort: () => stream.destroy() };
      }
      const channel = socketChannel(fd.socket);
      return fd.twoWay ? channel : { sink: channel.sink, close: channel.close, abort: channel.abort };
    }
    case "exec": {
      const child = spawn("/bin/sh", ["-c", u.command], { stdio: ["pipe", "ignore", "inherit"] });
      const sink = writableSink(child.stdin!, "command");
      const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
      return {
        sink,
        close: async () => {
          await sink.close?.();
          const code = await exited;
          if (code !== 0) throw new Error(`exec: command '${u.command}' exited with status ${code}`);
        },
        abort: () => {
          child.stdin?.destroy();
          child.kill();
        },
      };
    }
    case "file": {
      const stream: WriteStream = createWriteStream(u.path, { highWaterMark: HIGH_WATER_MARK });
      await new Promise<void>((resolve, reject) => {
        stream.once("open", () => resolve());
        stream.once("error", (e) => reject(new Error(`Failed to open file '${u.path}': ${errnoText(e)}`, { cause: e })));
      });
      const sink = writableSink(stream, "file");
      return { sink, close: async () => sink.close?.(), abort: () => stream.destroy() };
    }
  }
}

/** A listening incoming side (`-incoming URI`). */
export interface IncomingListener {
  /** The URI with the port actually bound (tcp:HOST:0 gets one). */
  readonly uri: string;
  /** The first connection (QEMU takes one and stops listening). */
  accept(): Promise<IncomingChannel>;
  /** Stops listening (and kills an exec child). */
  close(): void;
}

function incomingSocket(socket: Socket): IncomingChannel {
  socket.setNoDelay(true);
  return {
    source: readableSource(socket),
    returnSink: writableSink(socket),
    close: () => socket.end(() => socket.destroy()),
  };
}

/** Starts listening on `uri` (qemu_start_incoming_migration). */
export async function listenIncoming(uri: string): Promise<IncomingListener> {
  const u = parseMigrationUri(uri);
  switch (u.transport) {
    case "tcp":
    case "unix": {
      const server: Server = createServer({ pauseOnConnect: false });
      const first = new Promise<Socket>((resolve) => server.once("connection", resolve));
      await new Promise<void>((resolve, reject) => {
        server.once("error", (e) => reject(new Error(`Failed to bind socket for '${uri}': ${errnoText(e)}`, { cause: e })));
        if (u.transport === "tcp") server.listen(u.port, u.host === "" ? undefined : u.host, () => resolve());
        else server.listen(u.path, () => resolve());
      });
      const addr = server.address();
      const bound = u.transport === "tcp" && addr !== null && typeof addr === "object" ? `tcp:${u.host}:${addr.port}` : uri;
      const close = (): void => {
        server.close();
        if (u.transport === "unix") {
          try {
            unlinkSync(u.path);
          } catch {
            // already gone
          }
        }
      };
      return {
        uri: bound,
        accept: async () => {
          const socket = await first;
          close();
          return incomingSocket(socket);
        },
        close,
      };
    }
    case "fd": {
      let fd: FdChannel;
      try {
        fd = fdChannel(u.fd, "in");
      } catch (e) {
        throw new Error(`Failed to open '${uri}': ${errnoText(e)}`, { cause: e });
      }
      if (fd.kind === "file") {
        const stream = fd.stream as ReadStream;
        return { uri, accept: async () => ({ source: readableSource(stream), close: () => stream.destroy() }), close: () => stream.destroy() };
      }
      const { socket, twoWay } = fd;
      const accept = async (): Promise<IncomingChannel> => {
        const channel = incomingSocket(socket);
        return twoWay ? channel : { source: channel.source, close: () => socket.destroy() };
      };
      return { uri, accept, close: () => socket.destroy() };
    }
    case "exec": {
      const child: ChildProcess = spawn("/bin/sh", ["-c", u.command], { stdio: ["ignore", "pipe", "inherit"] });
      return {
        uri,
        accept: async () => ({ source: readableSource(child.stdout!), close: () => child.stdout?.destroy() }),
        close: () => child.kill(),
      };
    }
    case "file": {
      const stream = createReadStream(u.path, { highWaterMark: 1 << 20 });
      await new Promise<void>((resolve, reject) => {
        stream.once("open", () => resolve());
        stream.once("error", (e) => reject(new Error(`Failed to open file '${u.path}': ${errnoText(e)}`, { cause: e })));
      });
      return { uri, accept: async () => ({ source: readableSource(stream), close: () => stream.destroy() }), close: () => stream.destroy() };
    }
  }
}
