/**
 * Per device: save → load into a fresh device → the same behaviour (registers, interrupts,
 * FIFO contents, timers firing at the same guest time), plus golden bytes and load errors.
 */
import { describe, expect, it } from "vitest";
import { loadStateFromBytes, saveStateToBytes, vmdescJson } from "@ferryvm/vmstate";
import { VirtualClock } from "./clock.ts";
import { vmstateTimers, TimersState } from "./clock-vmstate.ts";
import { GoldfishRtc, RTC_ALARM_HIGH, RTC_ALARM_LOW, RTC_IRQ_ENABLED, RTC_TIME_HIGH, RTC_TIME_LOW } from "./goldfish-rtc.ts";
import { GoldfishRtcState, vmstateGoldfishRtc } from "./goldfish-rtc-vmstate.ts";
import { MIP_MEIP, MIP_SEIP, Plic } from "./plic.ts";
import { PlicState, vmstateRiscvSifivePlic } from "./plic-vmstate.ts";
import {
  Uart16550,
  UART_FCR, UART_IER, UART_IER_RDI, UART_IER_THRI, UART_IIR, UART_IIR_CTI, UART_IIR_RDI, UART_IIR_THRI, UART_LCR, UART_LSR,
  UART_MCR, UART_RBR, UART_SCR, UART_THR,
} from "./uart16550.ts";
import { SerialState, vmstateSerialMm, type SerialMmState } from "./uart16550-vmstate.ts";

function uart(time: { ns: number }) {
  const out: number[] = [];
  const irqs: boolean[] = [];
  const u = new Uart16550({ onTransmit: (b) => out.push(b), onIrq: (l) => irqs.push(l), nowNs: () => time.ns });
  return { u, out, irqs, state: { serial: new SerialState(u, (b) => out.push(b)) } satisfies SerialMmState };
}

async function copyState<T>(vmsd: Parameters<typeof saveStateToBytes<T>>[0], from: T, to: T): Promise<Uint8Array> {
  const bytes = saveStateToBytes(vmsd, from);
  await loadStateFromBytes(bytes, vmsd, to, { versionId: vmsd.version_id });
  return bytes;
}

/** Every register as the guest reads it, without read side effects (IIR/LSR/RBR last). */
function registers(u: Uart16550): number[] {
  return [u.read(UART_IER, 1), u.read(UART_LCR, 1), u.read(UART_MCR, 1), u.read(UART_SCR, 1), u.read(UART_IIR, 1), u.read(UART_LSR, 1)];
}

describe("serial (QEMU's vmstate_serial_mm)", () => {
  it("writes QEMU 7.2's bytes for a reset 16550: divider 12, IIR 1, MCR OUT2, LSR 0x60, MSR 0xb0", () => {
    const { state } = uart({ ns: 0 });
    expect(Array.from(saveStateToBytes(vmstateSerialMm, state))).toEqual([
      0x00, 0x0c, // divider (v2+)
      0x00, 0x00, 0x01, 0x00, 0x08, 0x60, 0xb0, 0x00, // rbr ier iir lcr mcr lsr msr scr
      0x00, // fcr_vmstate (v3+)
    ]);
  });

  it("keeps the receive FIFO, its timeout and the character-timeout interrupt", async () => {
    const time = { ns: 1_000 };
    const a = uart(time);
    a.u.write(UART_FCR, 1, 0xc1); // FIFO on, trigger level 14
    a.u.write(UART_IER, 1, UART_IER_RDI);
    a.u.write(UART_SCR, 1, 0x5a);
    a.u.receive(Uint8Array.of(0x61, 0x62, 0x63));
    const deadline = a.u.fifoTimeoutNs;
    expect(deadline).toBeGreaterThan(time.ns);
    const b = uart(time);
    const bytes = await copyState(vmstateSerialMm, a.state, b.state);
    // recv_fifo and fifo_timeout_timer subsections are in the stream.
    expect(new TextDecoder().decode(bytes)).toContain("serial/recv_fifo");
    expect(new TextDecoder().decode(bytes)).toContain("serial/fifo_timeout_timer");
    expect(registers(b.u)).toEqual(registers(a.u));
    expect(b.u.fifoTimeoutNs).toBe(deadline);
    expect(b.irqs).toEqual([]); // the load does not drive the line (the PLIC came with the stream)
    for (const m of [a, b]) {
      time.ns = deadline - 1;
      m.u.poll();
      expect(m.u.read(UART_IIR, 1) & 0x0f).toBe(1);
      time.ns = deadline;
      m.u.poll();
      expect(m.u.read(UART_IIR, 1) & 0x0f).toBe(UART_IIR_CTI);
    }
    time.ns = 0;
    expect([b.u.read(UART_RBR, 1), b.u.read(UART_RBR, 1), b.u.read(UART_RBR, 1)]).toEqual([0x61, 0x62, 0x63]);
    expect(b.u.read(UART_LSR, 1) & 1).toBe(0);
  });

  it("keeps a pending THR-empty interrupt and the FIFO trigger level", async () => {
    const time = { ns: 0 };
    const a = uart(time);
    a.u.write(UART_FCR, 1, 0x41); // trigger level 4
    a.u.write(UART_IER, 1, UART_IER_THRI | UART_IER_RDI);
    a.u.write(UART_THR, 1, 0x41);
    expect(a.u.iir & 0x0f).toBe(UART_IIR_THRI); // not read: a read would acknowledge it
    const b = uart(time);
    await copyState(vmstateSerialMm, a.state, b.state);
    for (const m of [a, b]) {
      m.u.receive(Uint8Array.of(1, 2, 3));
      expect(m.u.read(UART_IIR, 1) & 0x0f).toBe(UART_IIR_THRI);
      m.u.receive(Uint8Array.of(4));
      expect(m.u.read(UART_IIR, 1) & 0x0f).toBe(UART_IIR_RDI);
    }
  });

  it("sends the bytes a QEMU stream still had to transmit, and rejects an inconsistent TSR", async () => {
    const a = uart({ ns: 0 });
    a.state.serial.capture();
    const s = a.state.serial;
    s.lsr &= ~0x40; // TEMT clear: a character in the TSR
    s.tsr_retry = 1;
    s.tsr = 0x21;
    s.xmit_fifo.data.set([0x22, 0x23]);
    s.xmit_fifo.num = 2;
    const bytes = saveStateToBytes(vmstateSerialMm, { serial: Object.assign(Object.create(s), { capture() {} }) as SerialState });
    const b = uart({ ns: 0 });
    await loadStateFromBytes(bytes, vmstateSerialMm, b.state, { versionId: 3 });
    expect(b.out).toEqual([0x21, 0x22, 0x23]);
    const bad = bytes.slice();
    bad[7] = 0x60; // lsr with TEMT while tsr_retry = 1
    await expect(loadStateFromBytes(bad, vmstateSerialMm, uart({ ns: 0 }).state, { versionId: 3 })).rejects.toThrow(/tsr empty, tsr_retry=1/);
  });
});

describe("riscv_sifive_plic", () => {
  function plic() {
    const h = [{ mipExternal: 0 }, { mipExternal: 0 }];
    const p = new Plic({ harts: 2, hart: (i) => h[i]!, onGuestError: () => {} });
    return { p, h, state: new PlicState(p) };
  }

  it("keeps priorities, enables, thresholds, pending and claimed sources, and drives MEIP/SEIP after the load", async () => {
    const a = plic();
    a.p.write(4 * 10, 4, 3);
    a.p.write(4 * 11, 4, 5);
    a.p.write(4 * 96, 4, 2); // the register past QEMU's array: our subsection
    a.p.write(0x2000 + 0x80 * 1, 4, (1 << 10) | (1 << 11)); // hart 0 S
    a.p.write(0x2000 + 0x80 * 2, 4, 1 << 10); // hart 1 M
    a.p.write(0x20_0000 + 0x1000 * 2, 4, 4); // hart 1 M threshold 4: 10 (prio 3) masked
    a.p.setIrq(10, true);
    a.p.setIrq(11, true);
    expect(a.p.read(0x20_0004 + 0x1000, 4)).toBe(11); // hart 0 S claims 11
    expect(a.h[0]!.mipExternal).toBe(MIP_SEIP);
    const b = plic();
    const bytes = await copyState(vmstateRiscvSifivePlic, a.state, b.state);
    // 96 + 4 + 3 + 3 + 12 words of QEMU's layout, then our subsection.
    expect(bytes.length).toBe(4 * (96 + 4 + 3 + 3 + 12) + 1 + 1 + "riscv_sifive_plic/ferryvm".length + 4 + 4);
    expect(b.h.map((x) => x.mipExternal)).toEqual([MIP_SEIP, 0]);
    expect(b.p.read(4 * 96, 4)).toBe(2);
    for (const m of [a, b]) {
      m.p.write(0x20_0004 + 0x1000, 4, 11); // complete 11
      expect(m.p.read(0x20_0004 + 0x1000, 4)).toBe(10);
      m.p.write(0x20_0000 + 0x1000 * 2, 4, 0);
      expect(m.h[1]!.mipExternal & MIP_MEIP).toBe(0); // 10 is claimed by hart 0
    }
  });

  it("rejects a priority above 7 with the register's name", async () => {
    const a = plic();
    const bytes = saveStateToBytes(vmstateRiscvSifivePlic, a.state);
    bytes[4 * 5 + 3] = 9;
    await expect(loadStateFromBytes(bytes, vmstateRiscvSifivePlic, plic().state, { versionId: 1 })).rejects.toThrow(
      /source_priority\[5\]: priority 9 exceeds 7/,
    );
  });
});

describe("goldfish_rtc", () => {
  it("keeps the wall clock, the alarm and the interrupt, and fires the alarm at the same time", async () => {
    const host = { ns: 5_000_000_000n };
    const irqs: boolean[][] = [[], []];
    const mk = (i: number) => new GoldfishRtc({ nowNs: () => host.ns, onIrq: (l) => irqs[i]!.push(l) });
    const a = mk(0);
    a.write(RTC_TIME_HIGH, 4, 0x17);
    a.write(RTC_TIME_LOW, 4, 0x1000);
    a.write(RTC_IRQ_ENABLED, 4, 1);
    const now = a.count;
    a.write(RTC_ALARM_HIGH, 4, Number((now + 1000n) >> 32n));
    a.write(RTC_ALARM_LOW, 4, Number((now + 1000n) & 0xffff_ffffn));
    const b = mk(1);
    await copyState(vmstateGoldfishRtc, new GoldfishRtcState(a, () => 0n), new GoldfishRtcState(b, () => 0n));
    expect(b.read(RTC_TIME_LOW, 4)).toBe(a.read(RTC_TIME_LOW, 4));
    expect(b.read(RTC_TIME_HIGH, 4)).toBe(0x17);
    expect(b.nsUntilAlarm()).toBe(1000);
    const seen = irqs[0]!.length;
    host.ns += 999n;
    a.poll();
    b.poll();
    expect([irqs[0]!.length - seen, irqs[1]!.length]).toEqual([0, 0]);
    host.ns += 1n;
    a.poll();
    b.poll();
    expect(irqs[0]!.slice(seen)).toEqual([true]);
    expect(irqs[1]).toEqual([true]);
  });
});

describe("timer (the virtual clock)", () => {
  it("restores virtual time in both clock modes, and the mtime offset through riscv_mtimer's subsection", async () => {
    const host = { ms: 100 };
    const a = new VirtualClock({ hostNowMs: () => host.ms });
    a.start();
    host.ms += 2.5;
    a.stop();
    a.setMtime(1_000_000n);
    const b = new VirtualClock({ hostNowMs: () => host.ms });
    const bytes = await copyState(vmstateTimers, new TimersState(a), new TimersState(b));
    expect(bytes.length).toBe(24);
    expect(b.ns()).toBe(2_500_000);
    b.start();
    host.ms += 1;
    expect(b.ns()).toBe(3_500_000);

    const ia = new VirtualClock({ icountShift: 3 });
    ia.addInstructions(1000);
    const ib = new VirtualClock({ icountShift: 3 });
    const ibytes = await copyState(vmstateTimers, new TimersState(ia), new TimersState(ib));
    expect(new TextDecoder().decode(ibytes)).toContain("timer/icount");
    expect(ib.ns()).toBe(8000);
    expect(vmdescJson(vmstateTimers, new TimersState(ib), { name: "timer" })).toContain('"vmsd_name": "timer/icount"');
  });
});
