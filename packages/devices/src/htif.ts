/**
 * HTIF, the Berkeley host-target interface (QEMU hw/char/riscv_htif.c, Spike's fesvr): two
 * u64 words in guest RAM, `tohost` and `fromhost`, found through the ELF symbols of those
 * names. The CPU stops its run slice after a store to `tohost`; {@link Htif.handleTohost}
 * then serves the request, clears `tohost` and answers in `fromhost`.
 *
 * ```
 * tohost = device u8 (63:56) | cmd u8 (55:48) | payload (47:0)
 *   device 0, cmd 0, payload odd   exit with status payload >> 1 (riscv-tests: 1 = pass)
 *   device 0, cmd 0, payload even  syscall proxy: payload = address of magic_mem u64[8] =
 *                                  { which, arg0, arg1, arg2, ... }; which 64 write(fd, buf, len),
 *                                  93 exit(code); result -> magic_mem[0], fromhost = 1
 *   device 1, cmd 0                console read: fromhost = 1<<56 | 0x100 | byte when one arrives
 *   device 1, cmd 1                console write of the payload's low byte; fromhost = 1<<56 | 1<<48 | 0x100 | byte
 * ```
 *
 * @module
 */

import type { PhysicalMemory } from "./physical-memory.ts";

export const HTIF_DEV_SYSCALL = 0;
export const HTIF_DEV_CONSOLE = 1;
export const HTIF_CONSOLE_GETC = 0;
export const HTIF_CONSOLE_PUTC = 1;
export const SYS_WRITE = 64;
export const SYS_EXIT = 93;
const ENOSYS = 38n;
const EFAULT = 14n;
const EBADF = 9n;

export interface HtifOptions {
  memory: PhysicalMemory;
  tohost: bigint;
  /** Address of `fromhost`; without it requests are served but not answered. */
  fromhost?: bigint | null;
  /** Console writes and syscall writes to fd 1. */
  onConsoleOutput: (bytes: Uint8Array) => void;
  /** Syscall writes to fd 2 (defaults to the console). */
  onErrorOutput?: (bytes: Uint8Array) => void;
  /** A request the model does not know (it is answered with an error, as QEMU logs it). */
  onUnknown?: (message: string) => void;
}

export type HtifResult = { kind: "exit"; code: number } | undefined;

export class Htif {
  #mem: PhysicalMemory;
  readonly tohost: bigint;
  readonly fromhost: bigint | null;
  #out: (bytes: Uint8Array) => void;
  #err: (bytes: Uint8Array) => void;
  #unknown: (message: string) => void;
  /** The tohost value of a console read waiting for input, or 0n. */
  pendingRead = 0n;

  constructor(options: HtifOptions) {
    this.#mem = options.memory;
    this.tohost = options.tohost;
    this.fromhost = options.fromhost ?? null;
    this.#out = options.onConsoleOutput;
    this.#err = options.onErrorOutput ?? options.onConsoleOutput;
    this.#unknown = options.onUnknown ?? (() => {});
  }

  reset(): void {
    this.pendingRead = 0n;
  }

  /** Serves the value the guest stored in `tohost`. Returns an exit request, if any. */
  handleTohost(): HtifResult {
    const value = this.#mem.readU64(this.tohost);
    if (value === undefined || value === 0n) return undefined;
    const device = Number(value >> 56n);
    const cmd = Number((value >> 48n) & 0xffn);
    const payload = value & 0xffff_ffff_ffffn;
    let resp = 0n;
    if (device === HTIF_DEV_SYSCALL) {
      if (cmd !== 0) {
        this.#unknown(`HTIF device 0: unknown command ${cmd}`);
      } else if (payload & 1n) {
        this.#mem.writeU64(this.tohost, 0n);
        return { kind: "exit", code: Number(payload >> 1n) };
      } else {
        const r = this.#syscall(payload);
        if (r !== undefined) {
          this.#mem.writeU64(this.tohost, 0n);
          return r;
        }
        resp = 1n;
      }
    } else if (device === HTIF_DEV_CONSOLE) {
      if (cmd === HTIF_CONSOLE_GETC) {
        this.pendingRead = value;
        this.#mem.writeU64(this.tohost, 0n);
        return undefined;
      } else if (cmd === HTIF_CONSOLE_PUTC) {
        const ch = Number(payload & 0xffn);
        this.#out(Uint8Array.of(ch));
        resp = 0x100n | BigInt(ch);
      } else {
        this.#unknown(`HTIF device 1: unknown command ${cmd}`);
      }
    } else {
      this.#unknown(`HTIF unknown device ${device} (command ${cmd})`);
    }
    this.#mem.writeU64(this.tohost, 0n);
    this.#answer(((value >> 48n) << 48n) | resp);
    return undefined;
  }

  /** True while a console read waits for a byte. */
  get wantsInput(): boolean {
    return this.pendingRead !== 0n;
  }

  /** Answers a pending console read with `byte`. */
  receive(byte: number): void {
    if (this.pendingRead === 0n) return;
    this.#answer(((this.pendingRead >> 48n) << 48n) | 0x100n | BigInt(byte & 0xff));
    this.pendingRead = 0n;
  }

  #answer(value: bigint): void {
    if (this.fromhost !== null) this.#mem.writeU64(this.fromhost, value);
  }

  #syscall(addr: bigint): HtifResult {
    const magic = this.#mem.view(addr, 64);
    if (magic === undefined) {
      this.#unknown(`HTIF syscall block at 0x${addr.toString(16)} is outside guest RAM`);
      return undefined;
    }
    const dv = new DataView(magic.buffer, magic.byteOffset, 64);
    const which = dv.getBigUint64(0, true);
    const a0 = dv.getBigUint64(8, true);
    const a1 = dv.getBigUint64(16, true);
    const a2 = dv.getBigUint64(24, true);
    let ret: bigint;
    if (which === BigInt(SYS_EXIT)) {
      return { kind: "exit", code: Number(a0 & 0xffff_ffffn) };
    } else if (which === BigInt(SYS_WRITE)) {
      const buf = a2 === 0n ? new Uint8Array(0) : this.#mem.view(a1, Number(a2 > 0x1000_0000n ? 0x1000_0000n : a2));
      if (buf === undefined) ret = -EFAULT;
      else if (a0 === 1n) { this.#out(buf.slice()); ret = BigInt(buf.length); }
      else if (a0 === 2n) { this.#err(buf.slice()); ret = BigInt(buf.length); }
      else ret = -EBADF;
    } else {
      this.#unknown(`HTIF syscall ${which} is not supported`);
      ret = -ENOSYS;
    }
    this.#mem.writeU64(addr, ret);
    return undefined;
  }
}
