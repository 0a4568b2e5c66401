/**
 * Descriptors passed to the monitor (QEMU's monitor/misc.c getfd, closefd, monitor_get_fd and
 * chardev/char-socket.c's read_msgfds): a QMP client sends a descriptor with SCM_RIGHTS on the
 * monitor's unix socket, names it with `getfd`, and uses it as `fd:NAME` in `migrate` or
 * `migrate-incoming`, which take it over; `closefd` closes one by name.
 *
 * @module
 */

import { closeSync } from "node:fs";

/** Closes a descriptor we own, ignoring one that is already gone. */
export function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // EBADF: nothing to release
  }
}

/** A monitor's named descriptors (QEMU's Monitor.fds): they outlive the connection that sent them. */
export class MonitorFds {
  readonly #named = new Map<string, number>();

  /** getfd's list update: a name in use has its old descriptor closed and replaced. */
  add(name: string, fd: number): void {
    const old = this.#named.get(name);
    this.#named.set(name, fd);
    if (old !== undefined) closeFd(old);
  }

  /** closefd: false when no descriptor has that name. */
  close(name: string): boolean {
    const fd = this.#named.get(name);
    if (fd === undefined) return false;
    this.#named.delete(name);
    closeFd(fd);
    return true;
  }

  /** monitor_get_fd: the caller takes the descriptor over (it leaves the list). */
  take(name: string): number | undefined {
    const fd = this.#named.get(name);
    this.#named.delete(name);
    return fd;
  }

  get size(): number {
    return this.#named.size;
  }

  /** The monitor goes away: every named descriptor is closed. */
  closeAll(): void {
    for (const fd of this.#named.values()) closeFd(fd);
    this.#named.clear();
  }
}

/**
 * What a monitor command sees of descriptor passing: the monitor's named descriptors and the
 * ones that arrived with the connection's latest message that carried any.
 */
export interface MonitorFdContext {
  readonly named: MonitorFds;
  /**
   * qemu_chr_fe_get_msgfd: the first descriptor of the latest message that carried any (the
   * others are closed, as tcp_get_msgfds does), or undefined when none is waiting.
   */
  takeReceived(): number | undefined;
  /** Why none can arrive on this connection, when that is known (no helper, not a unix socket). */
  readonly unavailable?: string;
}

/**
 * qmp_getfd: names the first descriptor received with the connection's latest message that
 * brought any. Throws QEMU's texts (GenericError in QMP, "Error: ..." in HMP).
 */
export function monitorGetfd(fds: MonitorFdContext | undefined, name: string): void {
  const fd = fds?.takeReceived();
  if (fds === undefined || fd === undefined) {
    const why = fds?.unavailable;
    throw new Error(`No file descriptor supplied via SCM_RIGHTS${why === undefined ? "" : ` (${why}; fd:N takes a descriptor the process inherited)`}`);
  }
  if (/^[0-9]/.test(name)) {
    closeFd(fd);
    throw new Error("Parameter 'fdname' expects a name not starting with a digit");
  }
  fds.named.add(name, fd);
}

/** qmp_closefd. */
export function monitorClosefd(fds: MonitorFdContext | undefined, name: string): void {
  if (fds?.named.close(name) !== true) throw new Error(`File descriptor named '${name}' not found`);
}

/** A connection's received descriptors (char-socket.c's read_msgfds). */
export class ReceivedFds {
  #fds: number[] = [];

  /** A message brought descriptors: they replace (and close) any not taken yet. */
  receive(fds: readonly number[]): void {
    if (fds.length === 0) return;
    for (const fd of this.#fds) closeFd(fd);
    this.#fds = [...fds];
  }

  take(): number | undefined {
    const [first, ...rest] = this.#fds;
    this.#fds = [];
    for (const fd of rest) closeFd(fd);
    return first;
  }

  /** The connection closed. */
  closeAll(): void {
    for (const fd of this.#fds) closeFd(fd);
    this.#fds = [];
  }
}

/** `fd:NAME` with a name (not a number): QEMU looks the name up in the monitor's list. */
export function namedFdOf(uri: string): string | undefined {
  const m = /^fd:(.*)$/s.exec(uri);
  if (m === null || /^\d+$/.test(m[1]!)) return undefined;
  return m[1];
}

/**
 * Resolves `fd:NAME` to `fd:N` by taking NAME's descriptor from the monitor (QEMU's
 * monitor_fd_param); other URIs come back unchanged. Throws QEMU's text when NAME is unknown.
 */
export function resolveNamedFd(uri: string, named: MonitorFds | undefined): string {
  const name = namedFdOf(uri);
  if (name === undefined) return uri;
  const fd = named?.take(name);
  if (fd === undefined) throw new Error(`File descriptor named '${name}' has not been found`);
  return `fd:${fd}`;
}
