import { describe, expect, it } from "vitest";
import {
  Uart16550,
  UART_FCR, UART_IER, UART_IER_RDI, UART_IER_RLSI, UART_IER_THRI, UART_IIR, UART_IIR_CTI, UART_IIR_NO_INT,
  UART_IIR_RDI, UART_IIR_RLSI, UART_IIR_THRI, UART_LCR, UART_LSR, UART_LSR_BI, UART_LSR_DR, UART_LSR_OE, UART_LSR_TEMT,
  UART_LSR_THRE, UART_MCR, UART_MSR, UART_RBR, UART_SCR, UART_THR,
} from "./uart16550.ts";

function setup(): { uart: Uart16550; out: number[]; irqs: boolean[]; time: { ns: number } } {
  const out: number[] = [];
  const irqs: boolean[] = [];
  const time = { ns: 0 };
  const uart = new Uart16550({ onTransmit: (b) => out.push(b), onIrq: (l) => irqs.push(l), nowNs: () => time.ns });
  return { uart, out, irqs, time };
}

describe("Uart16550", () => {
  it("has the 16550 reset values", () => {
    const { uart } = setup();
    expect(uart.read(UART_IIR, 1)).toBe(UART_IIR_NO_INT);
    expect(uart.read(UART_LSR, 1)).toBe(UART_LSR_TEMT | UART_LSR_THRE);
    expect(uart.read(UART_MCR, 1)).toBe(0x08);
    expect(uart.read(UART_MSR, 1)).toBe(0xb0);
    expect(uart.read(UART_IER, 1)).toBe(0);
  });

  it("transmits a THR write immediately to the sink", () => {
    const { uart, out } = setup();
    for (const c of "hi\n") uart.write(UART_THR, 1, c.charCodeAt(0));
    expect(String.fromCharCode(...out)).toBe("hi\n");
    expect(uart.read(UART_LSR, 1) & (UART_LSR_THRE | UART_LSR_TEMT)).toBe(UART_LSR_THRE | UART_LSR_TEMT);
  });

  it("uses only the low byte of wider accesses", () => {
    const { uart, out } = setup();
    uart.write(UART_THR, 4, 0x1234_5641);
    uart.write(UART_THR, 8, 0x42n);
    expect(out).toEqual([0x41, 0x42]);
  });

  it("latches the divisor while DLAB is set instead of transmitting", () => {
    const { uart, out } = setup();
    uart.write(UART_LCR, 1, 0x83);
    uart.write(0, 1, 0x02);
    uart.write(1, 1, 0x01);
    expect(uart.read(0, 1)).toBe(0x02);
    expect(uart.read(1, 1)).toBe(0x01);
    expect(uart.divider).toBe(0x102);
    uart.write(UART_LCR, 1, 0x03);
    expect(out).toEqual([]);
    expect(uart.read(UART_IER, 1)).toBe(0);
    expect(uart.read(UART_LCR, 1)).toBe(0x03);
  });

  it("keeps the scratch register", () => {
    const { uart } = setup();
    uart.write(UART_SCR, 1, 0x5a);
    expect(uart.read(UART_SCR, 1)).toBe(0x5a);
  });

  it("raises THRE when IER.THRI is enabled and clears it when IIR is read", () => {
    const { uart, irqs } = setup();
    uart.write(UART_IER, 1, UART_IER_THRI);
    expect(uart.irqLevel).toBe(true);
    expect(uart.read(UART_IIR, 1)).toBe(UART_IIR_THRI);
    expect(uart.irqLevel).toBe(false);
    expect(uart.read(UART_IIR, 1)).toBe(UART_IIR_NO_INT);
    uart.write(UART_THR, 1, 0x41);
    expect(uart.irqLevel).toBe(true);
    expect(irqs).toEqual([true, false, true]);
  });

  it("receives a byte without FIFO: DR, RDI interrupt, then clears on read", () => {
    const { uart } = setup();
    uart.write(UART_IER, 1, UART_IER_RDI);
    expect(uart.canReceive()).toBe(1);
    uart.receive(Uint8Array.of(0x61));
    expect(uart.read(UART_LSR, 1) & UART_LSR_DR).toBe(UART_LSR_DR);
    expect(uart.read(UART_IIR, 1)).toBe(UART_IIR_RDI);
    expect(uart.canReceive()).toBe(0);
    expect(uart.read(UART_RBR, 1)).toBe(0x61);
    expect(uart.read(UART_LSR, 1) & UART_LSR_DR).toBe(0);
    expect(uart.irqLevel).toBe(false);
  });

  it("asks for more input after each RBR read, except in loopback", () => {
    let asked = 0;
    const uart = new Uart16550({ onTransmit: () => {}, onAcceptInput: () => asked++ });
    uart.receive(Uint8Array.of(1));
    uart.read(UART_RBR, 1);
    expect(asked).toBe(1);
    uart.write(UART_MCR, 1, 0x10);
    uart.read(UART_RBR, 1);
    expect(asked).toBe(1);
  });

  it("reports an overrun without FIFO and clears it when LSR is read", () => {
    const { uart } = setup();
    uart.write(UART_IER, 1, UART_IER_RLSI);
    uart.receive(Uint8Array.of(1));
    uart.receive(Uint8Array.of(2));
    expect(uart.read(UART_IIR, 1)).toBe(UART_IIR_RLSI);
    expect(uart.read(UART_LSR, 1) & UART_LSR_OE).toBe(UART_LSR_OE);
    expect(uart.read(UART_LSR, 1) & UART_LSR_OE).toBe(0);
    expect(uart.read(UART_RBR, 1)).toBe(2);
  });

  it("queues input in the FIFO and interrupts at the trigger level", () => {
    const { uart } = setup();
    uart.write(UART_FCR, 1, 0x81); // FIFO on, trigger level 8
    expect(uart.read(UART_IIR, 1) & 0xc0).toBe(0xc0);
    uart.write(UART_IER, 1, UART_IER_RDI);
    expect(uart.canReceive()).toBe(8);
    uart.receive(Uint8Array.from([1, 2, 3]));
    expect(uart.irqLevel).toBe(false);
    uart.receive(Uint8Array.from([4, 5, 6, 7, 8]));
    expect(uart.read(UART_IIR, 1) & 0x0f).toBe(UART_IIR_RDI);
    const got: number[] = [];
    while (uart.read(UART_LSR, 1) & UART_LSR_DR) got.push(uart.read(UART_RBR, 1));
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(uart.irqLevel).toBe(false);
  });

  it("raises the character timeout after four character times below the trigger level", () => {
    const { uart, time } = setup();
    uart.write(UART_FCR, 1, 0x81);
    uart.write(UART_IER, 1, UART_IER_RDI);
    uart.receive(Uint8Array.of(0x71));
    expect(uart.irqLevel).toBe(false);
    const deadline = uart.nextDeadlineNs();
    expect(deadline).toBeGreaterThan(0);
    time.ns = deadline - 1;
    uart.poll();
    expect(uart.irqLevel).toBe(false);
    time.ns = deadline;
    uart.poll();
    expect(uart.read(UART_IIR, 1) & 0x0f).toBe(UART_IIR_CTI);
    expect(uart.read(UART_RBR, 1)).toBe(0x71);
    expect(uart.irqLevel).toBe(false);
    expect(uart.nextDeadlineNs()).toBe(-1);
  });

  it("signals a received break as BI with a zero byte and a line-status interrupt", () => {
    const { uart } = setup();
    uart.write(UART_IER, 1, UART_IER_RLSI);
    uart.receiveBreak();
    expect(uart.read(UART_IIR, 1)).toBe(UART_IIR_RLSI);
    expect(uart.read(UART_LSR, 1) & (UART_LSR_BI | UART_LSR_DR)).toBe(UART_LSR_BI | UART_LSR_DR);
    expect(uart.read(UART_RBR, 1)).toBe(0);
    expect(uart.irqLevel).toBe(false);
  });

  it("flushes the receive FIFO on FCR.RFR", () => {
    const { uart } = setup();
    uart.write(UART_FCR, 1, 0x01);
    uart.receive(Uint8Array.from([1, 2]));
    uart.write(UART_FCR, 1, 0x03);
    expect(uart.read(UART_LSR, 1) & UART_LSR_DR).toBe(0);
    expect(uart.receiveFifo).toEqual([]);
  });

  it("loops transmitted bytes back to the receiver in loopback mode", () => {
    const { uart, out } = setup();
    uart.write(UART_MCR, 1, 0x10);
    uart.write(UART_THR, 1, 0x55);
    expect(out).toEqual([]);
    expect(uart.read(UART_RBR, 1)).toBe(0x55);
    uart.write(UART_MCR, 1, 0x10 | 0x01 | 0x02);
    expect(uart.read(UART_MSR, 1)).toBe(0x20 | 0x10);
  });
});
