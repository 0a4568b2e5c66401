/**
 * virtio-rng rate limiting (QEMU's max-bytes and period) as a guest driver sees it, and the
 * quota's migration in the `virtio-rng-device/quota` subsection of the device's own vmsd (new
 * in virt-1.1, x-migrate-quota).
 */
import { describe, expect, it } from "vitest";
import { loadStateFromBytes, saveStateToBytes, vmdescJson, type FieldLayout, type VMStateDescription } from "@ferryvm/vmstate";
import { PhysicalMemory } from "./physical-memory.ts";
import { VIRTIO_F_VERSION_1, VirtioMmio } from "./virtio-mmio.ts";
import { VirtioRng, type VirtioRngOptions } from "./virtio-rng.ts";
import { VirtioState, vmstateVirtioDevice, type VirtioDeviceSectionState } from "./virtio-vmstate.ts";
import { negotiateFeatures } from "./testing/virtio-driver.ts";

const RAM = 0x8000_0000;
const DESC = RAM + 0x1000;
const AVAIL = RAM + 0x2000;
const USED = RAM + 0x3000;
const BUF = RAM + 0x10000;
const N = 8;
const MS = 1_000_000;

/** A guest driver of a virtio-rng on a virtual clock the test moves (`time.ns`). */
function driver(options: VirtioRngOptions, time: { ns: number }, memory = new PhysicalMemory(), ram = new Uint8Array(0x40000)) {
  if (memory.view(BigInt(RAM), 1) === undefined) memory.add({ name: "ram", base: RAM, bytes: ram });
  let filled = 0;
  const rng = new VirtioRng({
    fill: (b) => {
      b.fill(0xa5);
      filled += b.length;
    },
    nowNs: () => time.ns,
    ...options,
  });
  const t = new VirtioMmio({ memory, device: rng });
  const dv = new DataView(ram.buffer);
  const w32 = (off: number, v: number) => t.write(off, 4, v);
  let availIdx = 0;
  return {
    t, rng, ram, memory,
    get filled() {
      return filled;
    },
    init() {
      const features = 1n << BigInt(VIRTIO_F_VERSION_1);
      negotiateFeatures(w32, features);
      w32(0x30, 0);
      w32(0x38, N);
      w32(0x80, DESC);
      w32(0x90, AVAIL);
      w32(0xa0, USED);
      w32(0x44, 1);
      w32(0x70, 15);
    },
    /** Offers a `len`-byte writable buffer as descriptor `i` and notifies. */
    offer(i: number, len: number) {
      const o = DESC - RAM + 16 * i;
      dv.setBigUint64(o, BigInt(BUF + i * 0x1000), true);
      dv.setUint32(o + 8, len, true);
      dv.setUint16(o + 12, 2, true);
      dv.setUint16(AVAIL - RAM + 4 + 2 * (availIdx % N), i, true);
      availIdx = (availIdx + 1) & 0xffff;
      dv.setUint16(AVAIL - RAM + 2, availIdx, true);
      w32(0x50, 0);
    },
    /** The used ring: every element the device returned so far. */
    used(): { id: number; len: number }[] {
      const n = dv.getUint16(USED - RAM + 2, true);
      return Array.from({ length: n }, (_, k) => ({
        id: dv.getUint32(USED - RAM + 4 + 8 * (k % N), true),
        len: dv.getUint32(USED - RAM + 8 + 8 * (k % N), true),
      }));
    },
  };
}

describe("virtio-rng rate limit", () => {
  it("serves at most max-bytes per period: the buffer crossing the quota gets the rest, later ones wait for the next period", () => {
    const time = { ns: 3 * MS };
    const d = driver({ maxBytes: 100n, periodMs: 1000 }, time);
    d.init();
    d.offer(0, 64);
    d.offer(1, 64);
    d.offer(2, 64);
    expect(d.used()).toEqual([{ id: 0, len: 64 }, { id: 1, len: 36 }]);
    expect(d.filled).toBe(100);
    expect(d.ram[BUF + 0x1000 + 35 - RAM]).toBe(0xa5);
    expect(d.ram[BUF + 0x1000 + 36 - RAM]).toBe(0);
    expect(d.rng.quotaRemaining).toBe(0n);
    // The period began with the first request; the idle machine should look again at its end.
    expect(d.t.nextDeadlineNs()).toBe(1003 * MS);
    time.ns = 1003 * MS - 1;
    d.t.poll();
    d.offer(3, 8);
    expect(d.used().length).toBe(2);
    time.ns = 1003 * MS;
    d.t.poll();
    expect(d.used()).toEqual([{ id: 0, len: 64 }, { id: 1, len: 36 }, { id: 2, len: 64 }, { id: 3, len: 8 }]);
    expect(d.rng.quotaRemaining).toBe(28n);
    // The next period started when the waiting buffers were served.
    expect(d.rng.periodStartNs).toBe(1003 * MS);
    expect(d.t.nextDeadlineNs()).toBe(-1);
  });

  it("starts a period at the first request after the last one ended, not at a fixed beat", () => {
    const time = { ns: 0 };
    const d = driver({ maxBytes: 16n, periodMs: 10 }, time);
    d.init();
    time.ns = 25 * MS;
    d.offer(0, 16);
    expect(d.rng.periodStartNs).toBe(25 * MS);
    d.offer(1, 16);
    expect(d.used().length).toBe(1);
    time.ns = 34 * MS;
    d.t.poll();
    expect(d.used().length).toBe(1);
    time.ns = 35 * MS;
    d.t.poll();
    expect(d.used()).toEqual([{ id: 0, len: 16 }, { id: 1, len: 16 }]);
  });

  it("serves every buffer in full and counts nothing without a limit (QEMU's defaults)", () => {
    const d = driver({}, { ns: 0 });
    d.init();
    for (let i = 0; i < 6; i++) d.offer(i, 4096);
    expect(d.used().map((u) => u.len)).toEqual([4096, 4096, 4096, 4096, 4096, 4096]);
    expect(d.rng.limited).toBe(false);
    expect(d.rng.maxBytes).toBe(0x7fff_ffff_ffff_ffffn);
    expect(d.rng.periodMs).toBe(65536);
    expect(d.rng.periodStartNs).toBe(-1);
    expect(d.t.nextDeadlineNs()).toBe(-1);
  });

  it("refuses a negative or too large max-bytes and a period that is not a positive integer", () => {
    expect(() => new VirtioRng({ maxBytes: -1n })).toThrow(/'max-bytes' parameter must be non-negative, and less than 2\^63/);
    expect(() => new VirtioRng({ maxBytes: 1n << 63n })).toThrow(/max-bytes/);
    expect(() => new VirtioRng({ periodMs: 0 })).toThrow(/'period' parameter expects a positive integer/);
    expect(() => new VirtioRng({ periodMs: 2 ** 32 })).toThrow(/period/);
  });
});

/** The section as it was before virtio-rng-device (and its quota subsection) existed. */
function withoutDeviceVmsd(vmsd: VMStateDescription<VirtioDeviceSectionState>): VMStateDescription<VirtioDeviceSectionState> {
  const outer = vmsd.fields[0]!;
  const layout = outer.layout as Extract<FieldLayout, { kind: "struct" }>;
  const inner = layout.vmsd as unknown as VMStateDescription<VirtioState>;
  const fields = inner.fields.filter((f) => f.name !== "virtio-rng-device");
  expect(fields.length).toBe(inner.fields.length - 1);
  const vmsdBefore = { ...inner, fields } as unknown as typeof layout.vmsd;
  return { ...vmsd, fields: [{ ...outer, layout: { ...layout, vmsd: vmsdBefore } }] };
}

interface Vmdesc {
  vmsd_name: string;
  fields: { name: string; struct?: Vmdesc }[];
  subsections?: Vmdesc[];
}

describe("virtio-rng-device/quota on the wire", () => {
  const vmsd = vmstateVirtioDevice("virtio-rng");
  const section = (t: VirtioMmio): VirtioDeviceSectionState => ({ virtio: new VirtioState(t) });
  const has = (bytes: Uint8Array, text: string) => new TextDecoder("latin1").decode(bytes).includes(text);

  /** A source whose guest used up its quota at 5 ms with a buffer still waiting. */
  function exhausted(options: VirtioRngOptions, memory: PhysicalMemory, ram: Uint8Array<ArrayBuffer>) {
    const time = { ns: 5 * MS };
    const a = driver({ maxBytes: 48n, periodMs: 100, ...options }, time, memory, ram);
    a.init();
    a.offer(0, 32);
    a.offer(1, 32);
    a.offer(2, 32);
    expect(a.used().map((u) => u.len)).toEqual([32, 16]);
    return a;
  }

  it("carries the quota and the period's start: a waiting buffer still waits for the source's period to end", async () => {
    const memory = new PhysicalMemory();
    const ram = new Uint8Array(0x40000);
    const a = exhausted({}, memory, ram);
    const bytes = saveStateToBytes(vmsd, section(a.t));
    expect(has(bytes, "virtio-rng-device/quota")).toBe(true);
    // In the vmdesc: the device's vmsd after the device's part, holding the subsection.
    const desc = JSON.parse(vmdescJson(vmsd, section(a.t))) as Vmdesc;
    const virtio = desc.fields[0]!.struct!;
    const own = virtio.fields.at(-1)!;
    expect(own.name).toBe("virtio-rng-device");
    expect(own.struct?.fields).toEqual([]);
    const sub = own.struct?.subsections?.[0];
    expect(sub?.vmsd_name).toBe("virtio-rng-device/quota");
    expect(sub?.fields.map((f) => f.name)).toEqual(["quota_remaining", "period_start"]);
    // On the wire it comes before vmstate_virtio's subsections (virtio/...).
    const text = new TextDecoder("latin1").decode(bytes);
    expect(text.indexOf("virtio-rng-device/quota")).toBeLessThan(text.indexOf("virtio/"));
    const time = { ns: 40 * MS };
    const b = driver({ maxBytes: 48n, periodMs: 100 }, time, memory, ram);
    await loadStateFromBytes(bytes, vmsd, section(b.t));
    expect(b.rng.quotaRemaining).toBe(0n);
    expect(b.rng.periodStartNs).toBe(5 * MS);
    b.t.poll();
    expect(b.used().length).toBe(2);
    expect(b.t.nextDeadlineNs()).toBe(105 * MS);
    time.ns = 105 * MS;
    b.t.poll();
    expect(b.used().map((u) => u.len)).toEqual([32, 16, 32]);
  });

  it("loads a stream without it (x-migrate-quota off on the source) with a full quota and a period starting at load time", async () => {
    const memory = new PhysicalMemory();
    const ram = new Uint8Array(0x40000);
    const a = exhausted({ migrateQuota: false }, memory, ram);
    const bytes = saveStateToBytes(vmsd, section(a.t));
    expect(has(bytes, "virtio-rng-device/quota")).toBe(false);
    const time = { ns: 40 * MS };
    const b = driver({ maxBytes: 48n, periodMs: 100, migrateQuota: true }, time, memory, ram);
    // Something the destination had before the load must not survive it.
    b.rng.quotaRemaining = 7n;
    await loadStateFromBytes(bytes, vmsd, section(b.t));
    expect(b.rng.quotaRemaining).toBe(48n);
    expect(b.rng.periodStartNs).toBe(40 * MS);
    // The waiting buffer is served from the new quota when the machine runs.
    b.t.poll();
    expect(b.used().map((u) => u.len)).toEqual([32, 16, 32]);
    expect(b.rng.quotaRemaining).toBe(16n);
  });

  it("stays out of the stream and the vmdesc when the gate is off or no limit is set: both are byte-identical to before", () => {
    const memory = new PhysicalMemory();
    const ram = new Uint8Array(0x40000);
    const before = withoutDeviceVmsd(vmsd);
    const cases: [string, VirtioRngOptions][] = [
      ["limit, x-migrate-quota off", { maxBytes: 48n, migrateQuota: false }],
      ["no limit, x-migrate-quota on", { migrateQuota: true }],
      ["defaults", {}],
    ];
    for (const [name, options] of cases) {
      const d = driver(options, { ns: 5 * MS }, memory, ram);
      d.init();
      d.offer(0, 16);
      const bytes = saveStateToBytes(vmsd, section(d.t));
      expect(has(bytes, "virtio-rng-device/quota"), name).toBe(false);
      expect(bytes, name).toEqual(saveStateToBytes(before, section(d.t)));
      expect(vmdescJson(vmsd, section(d.t)), name).toBe(vmdescJson(before, section(d.t)));
    }
  });

  it("refuses a negative quota and keeps a period from starting in the future", async () => {
    const memory = new PhysicalMemory();
    const ram = new Uint8Array(0x40000);
    const a = exhausted({}, memory, ram);
    a.rng.quotaRemaining = -5n;
    const negative = saveStateToBytes(vmsd, section(a.t));
    const b = driver({ maxBytes: 48n, periodMs: 100 }, { ns: 40 * MS }, memory, ram);
    await expect(loadStateFromBytes(negative, vmsd, section(b.t))).rejects.toThrow(/virtio-rng-device\/quota: quota_remaining -5 is negative/);
    a.rng.quotaRemaining = 1000n;
    a.rng.periodStartNs = 900 * MS;
    const future = saveStateToBytes(vmsd, section(a.t));
    const c = driver({ maxBytes: 48n, periodMs: 100 }, { ns: 40 * MS }, memory, ram);
    await loadStateFromBytes(future, vmsd, section(c.t));
    expect(c.rng.quotaRemaining).toBe(48n);
    expect(c.rng.periodStartNs).toBe(40 * MS);
  });
});
