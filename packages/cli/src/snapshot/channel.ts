/**
 * Migration URIs for the non-live case and their byte channels: `file:PATH` (QEMU ≥ 8.2's
 * file migration, opened O_WRONLY|O_CREAT|O_TRUNC mode 0600 / O_RDONLY) and `exec:CMD`
 * (`/bin/sh -c CMD`; outgoing: the stream goes to its stdin; incoming: read from its stdout),
 * with QEMU's error texts ("Unable to open PATH: No such file or directory", "Unable to write
 * to command: Broken pipe").
 *
 * @module
 */

import { spawn, type ChildProcess } from "node:child_process";
import { open, type FileHandle } from "node:fs/promises";
import type { ByteSink } from "@ferryvm/migration";

/** A parsed migration URI. */
export type MigrationUri = { kind: "file"; path: string } | { kind: "exec"; command: string };

/** `file:PATH` or `exec:CMD`; undefined for any other protocol (QEMU's "a valid migration protocol"). */
export function parseMigrationUri(uri: string): MigrationUri | undefined {
  if (uri.startsWith("file:") && uri.length > 5) return { kind: "file", path: uri.slice(5) };
  if (uri.startsWith("exec:") && uri.length > 5) return { kind: "exec", command: uri.slice(5) };
  return undefined;
}

/** strerror() texts for the errno codes a path can give. */
const STRERROR: Record<string, string> = {
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  EISDIR: "Is a directory",
  ENOTDIR: "Not a directory",
  EROFS: "Read-only file system",
  ENOSPC: "No space left on device",
  EPIPE: "Broken pipe",
  EEXIST: "File exists",
  ELOOP: "Too many levels of symbolic links",
  ENAMETOOLONG: "File name too long",
  EIO: "Input/output error",
  // Node's names for a write to a pipe already closed by an EPIPE
  ERR_STREAM_DESTROYED: "Broken pipe",
  ERR_STREAM_WRITE_AFTER_END: "Broken pipe",
};

/** An errno error as strerror() would name it. */
export function strerror(e: unknown): string {
  const code = e instanceof Error && "code" in e ? String((e as NodeJS.ErrnoException).code) : undefined;
  if (code !== undefined) return STRERROR[code] ?? code;
  return e instanceof Error ? e.message : String(e);
}

/** A migration channel failure with QEMU's text. */
export class ChannelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChannelError";
  }
}

/** An open outgoing channel: the sink, and `abort` to drop it after a failure. */
export interface OutgoingChannel {
  readonly sink: ByteSink;
  /** Closes without waiting (after a failed save): kills an exec command, closes a file. */
  abort(): void;
}

/** Opens the destination of `migrate`; a file that cannot be opened fails here, as QEMU. */
export async function openOutgoing(uri: MigrationUri): Promise<OutgoingChannel> {
  if (uri.kind === "file") {
    let fh: FileHandle;
    try {
      fh = await open(uri.path, "w", 0o600);
    } catch (e) {
      throw new ChannelError(`Unable to open ${uri.path}: ${strerror(e)}`);
    }
    let closed = false;
    return {
      sink: {
        async write(chunk) {
          try {
            await fh.write(chunk);
          } catch (e) {
            throw new ChannelError(`Unable to write to file: ${strerror(e)}`);
          }
        },
        async close() {
          closed = true;
          await fh.close();
        },
      },
      abort() {
        if (!closed) void fh.close().catch(() => {});
        closed = true;
      },
    };
  }
  return execOutgoing(uri.command);
}

/**
 * `/bin/sh -c CMD` in its own process group, so that ending it also ends what the shell
 * started (`sh -c "sleep 9"` forks): a stuck command does not outlive the migration.
 */
function spawnCommand(command: string, stdio: ["pipe" | "ignore", "pipe" | "ignore", "inherit"]): ChildProcess {
  return spawn("/bin/sh", ["-c", command], { stdio, detached: true });
}

/** SIGTERM to the command's process group (if it still runs). */
function terminate(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    child.kill("SIGTERM");
  }
}

/** Waits for a child's exit; resolves with its status (signal → 128 + number as a shell). */
function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once("close", (code, signal) => resolve({ code, signal }));
  });
}

function describeExit(command: string, r: { code: number | null; signal: NodeJS.Signals | null }): string {
  return r.signal !== null ? `exec command '${command}' was killed by ${r.signal}` : `exec command '${command}' exited with status ${r.code}`;
}

function execOutgoing(command: string): OutgoingChannel {
  // QEMU's qio_channel_command_new_spawn: /bin/sh -c CMD; its stderr is ours. Its stdout is
  // not read for a one-way migration: /dev/null, so the command cannot fill a pipe and stall.
  const child = spawnCommand(command, ["pipe", "ignore", "inherit"]);
  let failure: Error | undefined;
  child.on("error", (e) => (failure ??= new ChannelError(`Unable to run command '${command}': ${strerror(e)}`)));
  child.stdin!.on("error", (e) => (failure ??= new ChannelError(`Unable to write to command: ${strerror(e)}`)));
  const exited = exitOf(child);
  return {
    sink: {
      async write(chunk) {
        if (failure !== undefined) throw failure;
        // The writer reuses its buffer: hand the pipe a copy.
        const copy = chunk.slice();
        await new Promise<void>((resolve, reject) => {
          child.stdin!.write(copy, (e) => {
            if (e) reject((failure ??= new ChannelError(`Unable to write to command: ${strerror(e)}`)));
            else resolve();
          });
        });
      },
      async close() {
        if (failure !== undefined) throw failure;
        await new Promise<void>((resolve) => child.stdin!.end(() => resolve()));
        const r = await exited;
        if (failure !== undefined) throw failure;
        // QEMU does not look at the command's status; we do, so a failing command is a failed save.
        if (r.code !== 0) throw new ChannelError(describeExit(command, r));
      },
    },
    abort() {
      child.stdin!.destroy();
      terminate(child);
    },
  };
}

/** An open incoming channel: the bytes, and what to say about the source after a failed load. */
export interface IncomingChannel {
  readonly source: AsyncIterable<Uint8Array>;
  /** After a failure: the exec command's exit status, if it failed ("" otherwise). */
  diagnose(): Promise<string>;
  close(): void;
}

/** Opens the source of `-incoming` / `migrate-incoming`. */
export async function openIncoming(uri: MigrationUri): Promise<IncomingChannel> {
  if (uri.kind === "file") {
    let fh: FileHandle;
    try {
      fh = await open(uri.path, "r");
    } catch (e) {
      throw new ChannelError(`Unable to open ${uri.path}: ${strerror(e)}`);
    }
    const stream = fh.createReadStream({ highWaterMark: 1 << 20 });
    return {
      source: stream,
      diagnose: () => Promise.resolve(""),
      close: () => stream.destroy(),
    };
  }
  const command = uri.command;
  const child = spawnCommand(command, ["ignore", "pipe", "inherit"]);
  let spawnError: Error | undefined;
  child.on("error", (e) => (spawnError = e));
  const exited = exitOf(child);
  return {
    source: child.stdout!,
    async diagnose() {
      if (spawnError !== undefined) return `Unable to run command '${command}': ${strerror(spawnError)}`;
      const r = await Promise.race([exited, new Promise<undefined>((res) => setTimeout(() => res(undefined), 200))]);
      return r === undefined || r.code === 0 ? "" : describeExit(command, r);
    },
    close() {
      child.stdout!.destroy();
      terminate(child);
    },
  };
}
