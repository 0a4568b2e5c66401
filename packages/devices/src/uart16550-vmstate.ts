/**
 * QEMU's `serial` as the memory-mapped 16550 of `virt` saves it (hw/char/serial.c): the
 * outer `serial` (v3, minimum 2) of SerialMM holds one struct, QEMU's vmstate_serial, with
 * its subsections sent as QEMU decides: serial/thr_ipending, serial/tsr, serial/recv_fifo
 * (a Fifo8), serial/xmit_fifo, serial/fifo_timeout_timer (QEMU_CLOCK_VIRTUAL ns),
 * serial/timeout_ipending, serial/poll. Our transmitter hands each byte to the host at once,
 * so the transmit FIFO and TSR are always empty (their subsections are never needed, and a
 * QEMU stream holding bytes there sends them on load).
 *
 * @module
 */

import {
  vmstateInt32,
  vmstateStruct,
  vmstateTimer,
  vmstateUint16,
  vmstateUint32,
  vmstateUint8,
  vmstateVBuffer,
  type VMStateDescription,
  type VMStateTimer,
} from "@ferryvm/vmstate";
import { UART_FIFO_LENGTH, UART_IER_THRI, UART_IIR_ID, UART_IIR_THRI, UART_LSR_TEMT, type Uart16550 } from "./uart16550.ts";

/** QEMU's Fifo8 (util/fifo8.c): a ring of `capacity` bytes. */
export interface Fifo8State {
  data: Uint8Array;
  capacity: number;
  head: number;
  num: number;
}

export const vmstateFifo8: VMStateDescription<Fifo8State> = {
  name: "Fifo8",
  version_id: 1,
  minimum_version_id: 1,
  fields: [vmstateVBuffer("data", "capacity", { version: 1 }), vmstateUint32("head"), vmstateUint32("num")],
};

function fifoBytes(f: Fifo8State, what: string): number[] {
  if (f.head >= f.capacity || f.num > f.capacity) {
    throw new RangeError(`serial/${what}: head ${f.head} / num ${f.num} do not fit a FIFO of ${f.capacity}`);
  }
  const out: number[] = [];
  for (let i = 0; i < f.num; i++) out.push(f.data[(f.head + i) % f.capacity]!);
  return out;
}

function emptyFifo(): Fifo8State {
  return { data: new Uint8Array(UART_FIFO_LENGTH), capacity: UART_FIFO_LENGTH, head: 0, num: 0 };
}

/** The object vmstate_serial describes (QEMU's SerialState) over a Uart16550. */
export class SerialState {
  readonly uart: Uart16550;
  divider = 0;
  rbr = 0;
  ier = 0;
  iir = 0;
  lcr = 0;
  mcr = 0;
  lsr = 0;
  msr = 0;
  scr = 0;
  fcr_vmstate = 0;
  thr_ipending = 0;
  tsr_retry = 0;
  thr = 0;
  tsr = 0;
  recv_fifo: Fifo8State = emptyFifo();
  xmit_fifo: Fifo8State = emptyFifo();
  timeout_ipending = 0;
  poll_msl = -1;
  #timeoutNs = -1;
  readonly fifo_timeout_timer: VMStateTimer;
  readonly modem_status_poll: VMStateTimer = { expireTime: () => -1n, modNs: () => {}, del: () => {} };
  readonly #transmit: (byte: number) => void;

  constructor(uart: Uart16550, transmit: (byte: number) => void = () => {}) {
    this.uart = uart;
    this.#transmit = transmit;
    this.fifo_timeout_timer = {
      expireTime: () => BigInt(this.#timeoutNs),
      modNs: (ns) => {
        if (ns < 0n || ns > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`serial: timer expiry ${ns} out of range`);
        this.#timeoutNs = Number(ns);
      },
      del: () => {
        this.#timeoutNs = -1;
      },
    };
  }

  capture(): void {
    const u = this.uart;
    this.divider = u.divider;
    this.rbr = u.rbr;
    this.ier = u.ier;
    this.iir = u.iir;
    this.lcr = u.lcr;
    this.mcr = u.mcr;
    this.lsr = u.lsr;
    this.msr = u.msr;
    this.scr = u.scr;
    this.fcr_vmstate = u.fcr;
    this.thr_ipending = u.thrIpending;
    this.timeout_ipending = u.timeoutIpending;
    this.tsr_retry = 0;
    this.recv_fifo = emptyFifo();
    const fifo = u.receiveFifo;
    this.recv_fifo.data.set(fifo);
    this.recv_fifo.num = fifo.length;
    this.xmit_fifo = emptyFifo();
    this.#timeoutNs = u.fifoTimeoutNs;
    this.poll_msl = -1;
  }

  restore(versionId: number): void {
    const u = this.uart;
    if (versionId < 3) this.fcr_vmstate = 0;
    if (this.thr_ipending === -1) this.thr_ipending = (this.iir & UART_IIR_ID) === UART_IIR_THRI ? 1 : 0;
    if (this.tsr_retry > 0 && this.lsr & UART_LSR_TEMT) {
      throw new RangeError(`serial/tsr: inconsistent state (tsr empty, tsr_retry=${this.tsr_retry})`);
    }
    if (this.tsr_retry === 0 && !(this.lsr & UART_LSR_TEMT)) {
      throw new RangeError("serial/tsr: inconsistent state (tsr not empty, tsr_retry=0)");
    }
    const recv = fifoBytes(this.recv_fifo, "recv_fifo");
    const xmit = fifoBytes(this.xmit_fifo, "xmit_fifo");
    u.divider = this.divider;
    u.rbr = this.rbr;
    u.ier = this.ier & 0x0f;
    u.iir = this.iir;
    u.lcr = this.lcr;
    u.mcr = this.mcr & 0x1f;
    u.lsr = this.lsr;
    u.msr = this.msr;
    u.scr = this.scr;
    u.fcr = this.fcr_vmstate;
    u.thrIpending = this.thr_ipending ? 1 : 0;
    u.timeoutIpending = this.timeout_ipending ? 1 : 0;
    u.restoreState({ fifo: recv, fifoTimeoutNs: this.#timeoutNs });
    // A QEMU stream may hold bytes still to send (its TSR, then its transmit FIFO).
    if (this.tsr_retry > 0) this.#transmit(this.tsr);
    for (const b of xmit) this.#transmit(b);
  }
}

const sub = (
  name: string,
  needed: (s: SerialState) => boolean,
  fields: VMStateDescription<SerialState>["fields"],
): VMStateDescription<SerialState> => ({ name: `serial/${name}`, version_id: 1, minimum_version_id: 1, needed, fields });

/** QEMU's vmstate_serial (the SerialState part). */
export const vmstateSerialState: VMStateDescription<SerialState> = {
  name: "serial",
  version_id: 3,
  minimum_version_id: 2,
  pre_save: (s) => s.capture(),
  pre_load: (s) => {
    s.thr_ipending = -1;
    s.poll_msl = -1;
    s.tsr_retry = 0;
    s.timeout_ipending = 0;
    s.recv_fifo = emptyFifo();
    s.xmit_fifo = emptyFifo();
    s.fifo_timeout_timer.del();
  },
  post_load: (s, versionId) => s.restore(versionId),
  fields: [
    vmstateUint16("divider", { version: 2 }),
    vmstateUint8("rbr"),
    vmstateUint8("ier"),
    vmstateUint8("iir"),
    vmstateUint8("lcr"),
    vmstateUint8("mcr"),
    vmstateUint8("lsr"),
    vmstateUint8("msr"),
    vmstateUint8("scr"),
    vmstateUint8("fcr_vmstate", { version: 3 }),
  ],
  subsections: [
    sub("thr_ipending", (s) => (s.ier & UART_IER_THRI) !== 0 && s.thr_ipending !== ((s.iir & UART_IIR_ID) === UART_IIR_THRI ? 1 : 0), [
      vmstateInt32("thr_ipending"),
    ]),
    sub("tsr", (s) => s.tsr_retry !== 0, [vmstateUint32("tsr_retry"), vmstateUint8("thr"), vmstateUint8("tsr")]),
    sub("recv_fifo", (s) => s.recv_fifo.num !== 0, [vmstateStruct("recv_fifo", vmstateFifo8, { version: 1 })]),
    sub("xmit_fifo", (s) => s.xmit_fifo.num !== 0, [vmstateStruct("xmit_fifo", vmstateFifo8, { version: 1 })]),
    sub("fifo_timeout_timer", (s) => s.fifo_timeout_timer.expireTime() >= 0n, [vmstateTimer("fifo_timeout_timer")]),
    sub("timeout_ipending", (s) => s.timeout_ipending !== 0, [vmstateInt32("timeout_ipending")]),
    sub("poll", (s) => s.poll_msl >= 0, [vmstateInt32("poll_msl"), vmstateTimer("modem_status_poll")]),
  ],
};

/** The `serial` section of a memory-mapped 16550 (QEMU's vmstate_serial_mm). */
export interface SerialMmState {
  serial: SerialState;
}

export const vmstateSerialMm: VMStateDescription<SerialMmState> = {
  name: "serial",
  version_id: 3,
  minimum_version_id: 2,
  fields: [vmstateStruct("serial", vmstateSerialState)],
};
