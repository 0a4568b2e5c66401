/**
 * NS16550A UART (QEMU hw/char/serial.c, `serial_mm` with regshift 0), at 0x1000_0000 on
 * `virt`, irq 10. Transmit is immediate (the byte goes to the sink on the THR write), receive
 * goes through a 16-byte FIFO with the trigger level and character-timeout interrupt.
 *
 * ```
 * +0  RBR (r) / THR (w)        DLAB=1: DLL
 * +1  IER  ERBFI 0x01, ETBEI 0x02, ELSI 0x04, EDSSI 0x08    DLAB=1: DLM
 * +2  IIR (r) / FCR (w)        IIR: 0x01 no int, 0x06 RLS, 0x04 RDA, 0x0c CTI, 0x02 THRE, 0x00 MS; 0xc0 FIFOs on
 * +3  LCR  DLAB 0x80           +4  MCR  LOOP 0x10, OUT2 0x08
 * +5  LSR  DR 0x01, OE 0x02, BI 0x10, THRE 0x20, TEMT 0x40   +6  MSR  +7  SCR
 * ```
 * Any access size is accepted; the low byte is used (as QEMU's serial_mm).
 *
 * @module
 */

import type { AccessSize, MmioDevice } from "./bus.ts";

export const UART_SIZE = 0x100;
/** Baud base QEMU's virt board gives its UART (serial_mm_init(..., 399193, ...)). */
export const UART_BAUDBASE = 399193;
export const UART_FIFO_LENGTH = 16;

export const UART_RBR = 0;
export const UART_THR = 0;
export const UART_IER = 1;
export const UART_IIR = 2;
export const UART_FCR = 2;
export const UART_LCR = 3;
export const UART_MCR = 4;
export const UART_LSR = 5;
export const UART_MSR = 6;
export const UART_SCR = 7;

export const UART_LCR_DLAB = 0x80;
export const UART_IER_RDI = 0x01;
export const UART_IER_THRI = 0x02;
export const UART_IER_RLSI = 0x04;
export const UART_IER_MSI = 0x08;
export const UART_IIR_NO_INT = 0x01;
export const UART_IIR_ID = 0x06;
export const UART_IIR_MSI = 0x00;
export const UART_IIR_THRI = 0x02;
export const UART_IIR_RDI = 0x04;
export const UART_IIR_RLSI = 0x06;
export const UART_IIR_CTI = 0x0c;
export const UART_IIR_FE = 0xc0;
export const UART_FCR_FE = 0x01;
export const UART_FCR_RFR = 0x02;
export const UART_FCR_XFR = 0x04;
export const UART_MCR_LOOP = 0x10;
export const UART_MCR_OUT2 = 0x08;
export const UART_LSR_DR = 0x01;
export const UART_LSR_OE = 0x02;
export const UART_LSR_BI = 0x10;
export const UART_LSR_THRE = 0x20;
export const UART_LSR_TEMT = 0x40;
export const UART_LSR_INT_ANY = 0x1e;
export const UART_MSR_DCD = 0x80;
export const UART_MSR_DSR = 0x20;
export const UART_MSR_CTS = 0x10;
export const UART_MSR_ANY_DELTA = 0x0f;

export interface Uart16550Options {
  /** Receives each transmitted byte. */
  onTransmit: (byte: number) => void;
  /** The interrupt line (to the PLIC). */
  onIrq?: (level: boolean) => void;
  /** Virtual time in nanoseconds, for the receive FIFO's character timeout. */
  nowNs?: () => number;
  /** Called after the guest read RBR: room for more input (QEMU's qemu_chr_fe_accept_input). */
  onAcceptInput?: () => void;
}

export class Uart16550 implements MmioDevice {
  #tx: (byte: number) => void;
  #irq: (level: boolean) => void;
  #now: () => number;
  #accept: () => void;

  rbr = 0;
  ier = 0;
  iir = UART_IIR_NO_INT;
  lcr = 0;
  mcr = UART_MCR_OUT2;
  lsr = UART_LSR_TEMT | UART_LSR_THRE;
  msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
  scr = 0;
  fcr = 0;
  divider = 0x0c;
  thrIpending = 0;
  timeoutIpending = 0;
  #recvItl = 1;
  #fifo: number[] = [];
  /** Virtual time (ns) when the character timeout fires; -1 = not armed. */
  #timeoutAt = -1;
  #charTransmitNs = 0;
  #irqLevel = false;

  constructor(options: Uart16550Options) {
    this.#tx = options.onTransmit;
    this.#irq = options.onIrq ?? (() => {});
    this.#now = options.nowNs ?? (() => 0);
    this.#accept = options.onAcceptInput ?? (() => {});
    this.reset();
  }

  get irqLevel(): boolean {
    return this.#irqLevel;
  }

  reset(): void {
    this.rbr = 0;
    this.ier = 0;
    this.iir = UART_IIR_NO_INT;
    this.lcr = 0;
    this.lsr = UART_LSR_TEMT | UART_LSR_THRE;
    this.msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
    this.divider = 0x0c;
    this.mcr = UART_MCR_OUT2;
    this.scr = 0;
    this.fcr = 0;
    this.thrIpending = 0;
    this.timeoutIpending = 0;
    this.#recvItl = 1;
    this.#fifo = [];
    this.#timeoutAt = -1;
    this.#updateParameters();
    this.#updateIrq();
  }

  /** How many bytes the UART takes now (QEMU's serial_can_receive). */
  canReceive(): number {
    if (this.fcr & UART_FCR_FE) {
      const n = this.#fifo.length;
      if (n >= UART_FIFO_LENGTH) return 0;
      return n <= this.#recvItl ? this.#recvItl - n : 1;
    }
    return this.lsr & UART_LSR_DR ? 0 : 1;
  }

  /** Delivers input bytes from the console (callers respect {@link canReceive}). */
  receive(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.fcr & UART_FCR_FE) {
      for (const b of bytes) this.#fifoPut(b);
      this.lsr |= UART_LSR_DR;
      this.#timeoutAt = this.#now() + this.#charTransmitNs * 4;
    } else {
      if (this.lsr & UART_LSR_DR) this.lsr |= UART_LSR_OE;
      this.rbr = bytes[0]!;
      this.lsr |= UART_LSR_DR;
    }
    this.#updateIrq();
  }

  /** A break condition on the line (QEMU's serial_receive_break; Linux's magic SysRq). */
  receiveBreak(): void {
    this.rbr = 0;
    this.#fifoPut(0);
    this.lsr |= UART_LSR_BI | UART_LSR_DR;
    this.#updateIrq();
  }

  /** Virtual time (ns) of the next timed event, or -1. */
  nextDeadlineNs(): number {
    return this.#timeoutAt;
  }

  /** Fires the character timeout when its time has come. */
  poll(): void {
    if (this.#timeoutAt >= 0 && this.#now() >= this.#timeoutAt) {
      this.#timeoutAt = -1;
      if (this.#fifo.length > 0) {
        this.timeoutIpending = 1;
        this.#updateIrq();
      }
    }
  }

  read(offset: number, _size: AccessSize): number {
    switch (offset & 7) {
      case UART_RBR: {
        if (this.lcr & UART_LCR_DLAB) return this.divider & 0xff;
        let ret: number;
        if (this.fcr & UART_FCR_FE) {
          ret = this.#fifo.length === 0 ? 0 : this.#fifo.shift()!;
          if (this.#fifo.length === 0) {
            this.lsr &= ~(UART_LSR_DR | UART_LSR_BI);
            this.#timeoutAt = -1;
          } else {
            this.#timeoutAt = this.#now() + this.#charTransmitNs * 4;
          }
          this.timeoutIpending = 0;
        } else {
          ret = this.rbr;
          this.lsr &= ~(UART_LSR_DR | UART_LSR_BI);
        }
        this.#updateIrq();
        if (!(this.mcr & UART_MCR_LOOP)) this.#accept();
        return ret;
      }
      case UART_IER:
        return this.lcr & UART_LCR_DLAB ? (this.divider >> 8) & 0xff : this.ier;
      case UART_IIR: {
        const ret = this.iir;
        if ((ret & UART_IIR_ID) === UART_IIR_THRI) {
          this.thrIpending = 0;
          this.#updateIrq();
        }
        return ret;
      }
      case UART_LCR:
        return this.lcr;
      case UART_MCR:
        return this.mcr;
      case UART_LSR: {
        const ret = this.lsr;
        if (this.lsr & (UART_LSR_BI | UART_LSR_OE)) {
          this.lsr &= ~(UART_LSR_BI | UART_LSR_OE);
          this.#updateIrq();
        }
        return ret;
      }
      case UART_MSR: {
        if (this.mcr & UART_MCR_LOOP) {
          return ((this.mcr & 0x0c) << 4) | ((this.mcr & 0x02) << 3) | ((this.mcr & 0x01) << 5);
        }
        const ret = this.msr;
        if (this.msr & UART_MSR_ANY_DELTA) {
          this.msr &= 0xf0;
          this.#updateIrq();
        }
        return ret;
      }
      default:
        return this.scr;
    }
  }

  write(offset: number, _size: AccessSize, value: number | bigint): boolean {
    const val = Number(BigInt(value) & 0xffn);
    switch (offset & 7) {
      case UART_THR:
        if (this.lcr & UART_LCR_DLAB) {
          this.divider = (this.divider & 0xff00) | val;
          this.#updateParameters();
        } else {
          this.#transmit(val);
        }
        break;
      case UART_IER:
        if (this.lcr & UART_LCR_DLAB) {
          this.divider = (this.divider & 0x00ff) | (val << 8);
          this.#updateParameters();
        } else {
          const changed = (this.ier ^ val) & 0x0f;
          this.ier = val & 0x0f;
          if (changed & UART_IER_THRI) {
            this.thrIpending = this.ier & UART_IER_THRI && this.lsr & UART_LSR_THRE ? 1 : 0;
          }
          if (changed) this.#updateIrq();
        }
        break;
      case UART_FCR: {
        let v = val;
        if ((v ^ this.fcr) & UART_FCR_FE) v |= UART_FCR_XFR | UART_FCR_RFR;
        if (v & UART_FCR_RFR) {
          this.lsr &= ~(UART_LSR_DR | UART_LSR_BI);
          this.#timeoutAt = -1;
          this.timeoutIpending = 0;
          this.#fifo = [];
        }
        if (v & UART_FCR_XFR) {
          this.lsr |= UART_LSR_THRE;
          this.thrIpending = 1;
        }
        this.#writeFcr(v & 0xc9);
        this.#updateIrq();
        break;
      }
      case UART_LCR:
        this.lcr = val;
        this.#updateParameters();
        break;
      case UART_MCR:
        this.mcr = val & 0x1f;
        break;
      case UART_LSR:
      case UART_MSR:
        break;
      default:
        this.scr = val;
    }
    return true;
  }

  /** FIFO contents, for saving state. */
  get receiveFifo(): readonly number[] {
    return this.#fifo;
  }

  /** The receive-FIFO timeout deadline in virtual ns (QEMU's fifo_timeout_timer), -1 when not armed. */
  get fifoTimeoutNs(): number {
    return this.#timeoutAt;
  }

  /**
   * Restores what the register file does not hold (serial_post_load): the receive FIFO, the
   * timeout deadline, then the FCR setter's side effects and the line parameters. The IRQ
   * level is recomputed without driving the line: the PLIC's own state came with the stream.
   */
  restoreState(state: { fifo: readonly number[]; fifoTimeoutNs: number }): void {
    if (state.fifo.length > UART_FIFO_LENGTH) {
      throw new RangeError(`serial: receive FIFO of ${state.fifo.length} bytes exceeds ${UART_FIFO_LENGTH}`);
    }
    this.#fifo = [...state.fifo];
    this.#timeoutAt = state.fifoTimeoutNs;
    this.#writeFcr(this.fcr);
    this.#updateParameters();
    const irq = this.#irq;
    this.#irq = () => {};
    try {
      this.#irqLevel = false;
      this.#updateIrq();
    } finally {
      this.#irq = irq;
    }
  }

  #transmit(byte: number): void {
    this.lsr &= ~(UART_LSR_THRE | UART_LSR_TEMT);
    this.thrIpending = 0;
    this.#updateIrq();
    if (this.mcr & UART_MCR_LOOP) {
      if (this.canReceive() > 0) this.receive(Uint8Array.of(byte));
      else this.lsr |= UART_LSR_OE;
    } else {
      this.#tx(byte);
    }
    this.lsr |= UART_LSR_THRE | UART_LSR_TEMT;
    this.thrIpending = 1;
    this.#updateIrq();
  }

  #fifoPut(byte: number): void {
    if (this.#fifo.length < UART_FIFO_LENGTH) this.#fifo.push(byte);
    else this.lsr |= UART_LSR_OE;
  }

  #writeFcr(val: number): void {
    this.fcr = val;
    if (val & UART_FCR_FE) {
      this.iir |= UART_IIR_FE;
      this.#recvItl = [1, 4, 8, 14][val >> 6]!;
    } else {
      this.iir &= ~UART_IIR_FE;
    }
  }

  #updateParameters(): void {
    let frame = 1;
    if (this.lcr & 0x08) frame++;
    frame += (this.lcr & 0x03) + 5;
    frame += this.lcr & 0x04 ? 2 : 1;
    const speed = this.divider === 0 ? 3500 : UART_BAUDBASE / this.divider;
    this.#charTransmitNs = Math.floor((1e9 / speed) * frame);
  }

  #updateIrq(): void {
    let id = UART_IIR_NO_INT;
    if (this.ier & UART_IER_RLSI && this.lsr & UART_LSR_INT_ANY) {
      id = UART_IIR_RLSI;
    } else if (this.ier & UART_IER_RDI && this.timeoutIpending) {
      id = UART_IIR_CTI;
    } else if (
      this.ier & UART_IER_RDI && this.lsr & UART_LSR_DR &&
      (!(this.fcr & UART_FCR_FE) || this.#fifo.length >= this.#recvItl)
    ) {
      id = UART_IIR_RDI;
    } else if (this.ier & UART_IER_THRI && this.thrIpending) {
      id = UART_IIR_THRI;
    } else if (this.ier & UART_IER_MSI && this.msr & UART_MSR_ANY_DELTA) {
      id = UART_IIR_MSI;
    }
    this.iir = id | (this.iir & 0xf0);
    const level = id !== UART_IIR_NO_INT;
    // As QEMU's serial_update_irq: a pending interrupt is raised again on every update (the
    // PLIC latches raises), a lowered line is reported when it changes.
    if (level || level !== this.#irqLevel) {
      this.#irqLevel = level;
      this.#irq(level);
    }
  }
}
