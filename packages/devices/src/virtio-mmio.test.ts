import { describe, expect, it } from "vitest";
import { PhysicalMemory } from "./physical-memory.ts";
import { MemoryBlockBackend, VirtioBlk } from "./virtio-blk.ts";
import { VirtioConsole } from "./virtio-console.ts";
import { VIRTIO_CONFIG_S_NEEDS_RESET, VirtioMmio, type VirtioDevice } from "./virtio-mmio.ts";
import { VirtioRng } from "./virtio-rng.ts";
import { negotiateFeatures } from "./testing/virtio-driver.ts";

const RAM = 0x8000_0000;
const DESC = RAM + 0x1000;
const AVAIL = RAM + 0x2000;
const USED = RAM + 0x3000;
const BUF = RAM + 0x10000;
const N = 8;

/** A guest driver's view: RAM, the transport, helpers to build descriptor chains. */
function setup(device: VirtioDevice | undefined, opts: { legacy?: boolean } = {}) {
  const ram = new Uint8Array(0x100000);
  const dirty: [number, number][] = [];
  const mem = new PhysicalMemory();
  mem.add({ name: "ram", base: RAM, bytes: ram, markDirty: (o, l) => dirty.push([o, l]) });
  const irqs: boolean[] = [];
  const errors: string[] = [];
  const t = new VirtioMmio({ memory: mem, ...(device ? { device } : {}), legacy: opts.legacy ?? false, onIrq: (l) => irqs.push(l), onGuestError: (e) => errors.push(e) });
  const dv = new DataView(ram.buffer);
  const w32 = (off: number, v: number) => t.write(off, 4, v);
  const r32 = (off: number) => t.read(off, 4) as number;
  let availIdx = 0;
  let usedSeen = 0;
  return {
    t, ram, dv, irqs, errors, dirty, w32, r32,
    init(features: bigint = 1n << 32n, queue = 0) {
      negotiateFeatures(w32, features);
      w32(0x30, queue);
      w32(0x38, N);
      w32(0x80, DESC);
      w32(0x84, 0);
      w32(0x90, AVAIL);
      w32(0x94, 0);
      w32(0xa0, USED);
      w32(0xa4, 0);
      w32(0x44, 1);
      w32(0x70, 15);
    },
    desc(i: number, addr: number, len: number, flags: number, next = 0, table = DESC) {
      const o = table - RAM + 16 * i;
      dv.setBigUint64(o, BigInt(addr), true);
      dv.setUint32(o + 8, len, true);
      dv.setUint16(o + 12, flags, true);
      dv.setUint16(o + 14, next, true);
    },
    /** Makes `head` available and notifies; returns the used element or undefined. */
    submit(head: number, queue = 0): { id: number; len: number } | undefined {
      dv.setUint16(AVAIL - RAM + 4 + 2 * (availIdx % N), head, true);
      availIdx = (availIdx + 1) & 0xffff;
      dv.setUint16(AVAIL - RAM + 2, availIdx, true);
      w32(0x50, queue);
      const used = dv.getUint16(USED - RAM + 2, true);
      if (used === usedSeen) return undefined;
      const slot = USED - RAM + 4 + 8 * (usedSeen % N);
      usedSeen = (usedSeen + 1) & 0xffff;
      return { id: dv.getUint32(slot, true), len: dv.getUint32(slot + 4, true) };
    },
    setAvailIdx(v: number) {
      availIdx = v;
    },
  };
}

function blkRequest(s: ReturnType<typeof setup>, type: number, sector: number, dataLen: number, write = false) {
  const hdr = BUF;
  s.dv.setUint32(hdr - RAM, type, true);
  s.dv.setBigUint64(hdr - RAM + 8, BigInt(sector), true);
  s.desc(0, hdr, 16, 1, 1);
  s.desc(1, BUF + 0x100, dataLen, write ? 1 : 3, 2);
  s.ram[BUF + 0x100 + dataLen + 0x100 - RAM] = 0xff;
  s.desc(2, BUF + 0x100 + dataLen + 0x100, 1, 2);
  const used = s.submit(0);
  return { used, status: s.ram[BUF + 0x100 + dataLen + 0x100 - RAM] };
}

describe("VirtioMmio", () => {
  it("answers magic, version and vendor in an empty slot, zero elsewhere, and ignores writes", () => {
    const { r32, w32 } = setup(undefined);
    expect(r32(0x000)).toBe(0x74726976);
    expect(r32(0x004)).toBe(2);
    expect(r32(0x008)).toBe(0);
    expect(r32(0x00c)).toBe(0x554d4551);
    expect(w32(0x070, 1)).toBe(true);
    expect(r32(0x070)).toBe(0);
  });

  it("offers VERSION_1 and QEMU's common ring features; legacy mode says version 1 without VERSION_1", () => {
    const s = setup(new VirtioRng());
    s.w32(0x14, 1);
    expect(s.r32(0x10)).toBe(1);
    s.w32(0x14, 0);
    expect(s.r32(0x10)).toBe((1 << 28) | (1 << 29) | (1 << 24) | (1 << 27));
    expect(s.r32(0x08)).toBe(4);
    const l = setup(new VirtioRng(), { legacy: true });
    expect(l.r32(0x04)).toBe(1);
    l.w32(0x14, 1);
    expect(l.r32(0x10)).toBe(0);
  });

  it("reports queue sizes as QEMU (QueueNumMax 1024 for a queue that exists, 0 otherwise)", () => {
    const s = setup(new VirtioRng());
    s.w32(0x30, 0);
    expect(s.r32(0x34)).toBe(1024);
    s.w32(0x30, 1);
    expect(s.r32(0x34)).toBe(0);
  });

  it("resets on status 0 and acknowledges interrupts", () => {
    const s = setup(new VirtioRng());
    s.init();
    s.desc(0, BUF, 16, 2);
    expect(s.submit(0)).toEqual({ id: 0, len: 16 });
    expect(s.r32(0x60)).toBe(1);
    expect(s.irqs.at(-1)).toBe(true);
    s.w32(0x64, 1);
    expect(s.r32(0x60)).toBe(0);
    expect(s.irqs.at(-1)).toBe(false);
    s.w32(0x70, 0);
    expect(s.r32(0x70)).toBe(0);
    s.w32(0x30, 0);
    expect(s.r32(0x44)).toBe(0);
  });

  it("marks the pages a device writes dirty", () => {
    const s = setup(new VirtioRng());
    s.init();
    s.desc(0, BUF + 0x2000, 64, 2);
    s.dirty.length = 0;
    s.submit(0);
    expect(s.dirty).toContainEqual([BUF + 0x2000 - RAM, 64]);
    expect(s.dirty.some(([o]) => o >= USED - RAM && o < USED - RAM + 0x100)).toBe(true);
  });

  it("suppresses interrupts with EVENT_IDX until used_event is reached", () => {
    const s = setup(new VirtioRng());
    s.init((1n << 32n) | (1n << 29n));
    // used_event = 1: interrupt only when used idx moves past 1
    s.dv.setUint16(AVAIL - RAM + 4 + 2 * N, 1, true);
    s.desc(0, BUF, 8, 2);
    s.submit(0);
    expect(s.r32(0x60)).toBe(1); // first notification always
    s.w32(0x64, 1);
    s.submit(0); // used idx 2: crosses used_event 1
    expect(s.r32(0x60)).toBe(1);
    s.w32(0x64, 1);
    s.submit(0); // used idx 3: used_event still 1
    expect(s.r32(0x60)).toBe(0);
    // the device published avail_event
    expect(s.dv.getUint16(USED - RAM + 4 + 8 * N, true)).toBe(3);
  });

  it("marks the device broken instead of throwing on guest errors, until reset", () => {
    const cases: [string, (s: ReturnType<typeof setup>) => void][] = [
      ["head out of range", (s) => s.submit(N + 3)],
      ["looped chain", (s) => { s.desc(0, BUF, 8, 3, 1); s.desc(1, BUF, 8, 3, 0); s.submit(0); }],
      ["next out of range", (s) => { s.desc(0, BUF, 8, 3, 200); s.submit(0); }],
      ["buffer outside RAM", (s) => { s.desc(0, 0x1000, 8, 2); s.submit(0); }],
      ["buffer running past RAM", (s) => { s.desc(0, RAM + 0xff000, 0x2000, 2); s.submit(0); }],
      ["huge length", (s) => { s.desc(0, BUF, 0xffff_ffff, 2); s.submit(0); }],
      ["indirect table of bad size", (s) => { s.desc(0, BUF, 20, 4); s.submit(0); }],
      ["nested indirect", (s) => { s.desc(0, BUF + 0x800, 16, 4); s.desc(0, BUF, 16, 4, 0, BUF + 0x800); s.submit(0); }],
      ["avail idx jumping", (s) => { s.setAvailIdx(500); s.submit(0); }],
      ["readable after writable", (s) => { s.desc(0, BUF, 8, 3, 1); s.desc(1, BUF, 8, 0); s.submit(0); }],
    ];
    for (const [name, act] of cases) {
      const s = setup(new VirtioRng());
      s.init();
      expect(() => act(s), name).not.toThrow();
      expect(s.r32(0x70) & VIRTIO_CONFIG_S_NEEDS_RESET, name).toBe(VIRTIO_CONFIG_S_NEEDS_RESET);
      expect(s.errors.length, name).toBeGreaterThan(0);
      expect(s.r32(0x60) & 2, name).toBe(2);
      s.w32(0x70, 0);
      expect(s.r32(0x70), name).toBe(0);
    }
  });

  it("serves the legacy (version 1) layout through QueuePFN", () => {
    const s = setup(new VirtioRng(), { legacy: true });
    s.w32(0x70, 3);
    s.w32(0x28, 4096);
    s.w32(0x30, 0);
    s.w32(0x38, N);
    s.w32(0x3c, 4096);
    s.w32(0x40, DESC / 4096);
    s.w32(0x70, 7);
    expect(s.r32(0x40)).toBe(DESC / 4096);
    // avail right after the 8 descriptors, used at the next 4 KiB boundary
    const avail = DESC + 16 * N;
    const used = DESC + 0x1000;
    s.desc(0, BUF, 4, 2);
    s.dv.setUint16(avail - RAM + 4, 0, true);
    s.dv.setUint16(avail - RAM + 2, 1, true);
    s.w32(0x50, 0);
    expect(s.dv.getUint16(used - RAM + 2, true)).toBe(1);
    expect(s.dv.getUint32(used - RAM + 8, true)).toBe(4);
  });
});

describe("VirtioBlk", () => {
  function disk(readOnly = false) {
    const bytes = new Uint8Array(8 * 512);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 255;
    const backend = new MemoryBlockBackend(bytes, readOnly);
    const s = setup(new VirtioBlk({ backend, serial: "ferry-disk-0" }));
    s.init();
    return { s, backend };
  }

  it("offers QEMU 7.2's feature bits and config values", () => {
    const { s } = disk();
    s.w32(0x14, 0);
    expect(s.r32(0x10) & 0xffff).toBe((1 << 2) | (1 << 4) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 13) | (1 << 14));
    expect(s.t.read(0x100, 4)).toBe(8); // capacity
    expect(s.t.read(0x10c, 4)).toBe(254); // seg_max
    expect(s.t.read(0x114, 4)).toBe(512); // blk_size
    expect(s.t.read(0x112, 1)).toBe(16); // heads
    expect(s.t.read(0x113, 1)).toBe(63); // sectors
    expect(s.t.read(0x120, 1)).toBe(1); // wce
    expect(s.t.read(0x122, 2)).toBe(1); // num_queues
    expect(s.t.read(0x124, 4)).toBe(0x3f_ffff); // max_discard_sectors
    const ro = disk(true).s;
    expect(ro.r32(0x10) & (1 << 5)).toBe(1 << 5);
  });

  it("reads, writes, flushes and tells its id", () => {
    const { s, backend } = disk();
    let r = blkRequest(s, 0, 2, 1024);
    expect(r.status).toBe(0);
    expect(r.used?.len).toBe(1025);
    expect(s.ram.subarray(BUF + 0x100 - RAM, BUF + 0x100 - RAM + 1024)).toEqual(backend.bytes.subarray(1024, 2048));
    s.ram.fill(0xab, BUF + 0x100 - RAM, BUF + 0x100 - RAM + 512);
    r = blkRequest(s, 1, 7, 512, true);
    expect(r.status).toBe(0);
    expect(r.used?.len).toBe(1);
    expect(backend.bytes.subarray(7 * 512)).toEqual(new Uint8Array(512).fill(0xab));
    s.desc(0, BUF, 16, 1, 2);
    s.dv.setUint32(BUF - RAM, 4, true);
    s.submit(0);
    expect(backend.flushes).toBe(1);
    r = blkRequest(s, 8, 0, 20);
    expect(r.status).toBe(0);
    expect(new TextDecoder().decode(s.ram.subarray(BUF + 0x100 - RAM, BUF + 0x100 - RAM + 13))).toBe("ferry-disk-0\0");
  });

  it("fails requests past the end or not a multiple of 512 with IOERR, unknown types with UNSUPP", () => {
    const { s } = disk();
    expect(blkRequest(s, 0, 8, 512).status).toBe(1);
    expect(blkRequest(s, 0, 7, 1024).status).toBe(1);
    expect(blkRequest(s, 0, 0, 100).status).toBe(1);
    expect(blkRequest(s, 0, 2 ** 53, 512).status).toBe(1);
    expect(blkRequest(s, 0x76, 0, 512).status).toBe(2);
  });

  it("refuses writes to a read-only disk", () => {
    const { s, backend } = disk(true);
    const before = backend.bytes.slice();
    expect(blkRequest(s, 1, 0, 512, true).status).toBe(1);
    expect(backend.bytes).toEqual(before);
  });

  it("zeroes sectors with WRITE_ZEROES", () => {
    const { s, backend } = disk();
    s.dv.setUint32(BUF - RAM, 13, true);
    const seg = BUF + 0x40;
    s.dv.setBigUint64(seg - RAM, 3n, true);
    s.dv.setUint32(seg - RAM + 8, 2, true);
    s.dv.setUint32(seg - RAM + 12, 0, true);
    s.desc(0, BUF, 16, 1, 1);
    s.desc(1, seg, 16, 1, 2);
    s.desc(2, BUF + 0x80, 1, 2);
    s.submit(0);
    expect(s.ram[BUF + 0x80 - RAM]).toBe(0);
    expect(backend.bytes.subarray(3 * 512, 5 * 512).every((b) => b === 0)).toBe(true);
    expect(backend.bytes[5 * 512 + 1]).toBe(((5 * 512 + 1) * 31) & 255);
  });

  it("reads through an indirect descriptor table", () => {
    const { s, backend } = disk();
    const table = BUF + 0x4000;
    s.dv.setUint32(BUF - RAM, 0, true);
    s.dv.setBigUint64(BUF - RAM + 8, 1n, true);
    s.desc(0, BUF, 16, 1, 1, table);
    s.desc(1, BUF + 0x100, 512, 3, 2, table);
    s.desc(2, BUF + 0x400, 1, 2, 0, table);
    s.desc(5, table, 48, 4);
    expect(s.submit(5)).toEqual({ id: 5, len: 513 });
    expect(s.ram.subarray(BUF + 0x100 - RAM, BUF + 0x300 - RAM)).toEqual(backend.bytes.subarray(512, 1024));
  });
});

describe("VirtioConsole", () => {
  it("prints what the guest transmits and delivers host input into receive buffers", () => {
    const out: number[] = [];
    const con = new VirtioConsole({ onOutput: (b) => out.push(...b) });
    const s = setup(con);
    s.init(1n << 32n, 1);
    s.ram.set(new TextEncoder().encode("hi"), BUF - RAM);
    s.desc(0, BUF, 2, 0);
    expect(s.submit(0, 1)).toEqual({ id: 0, len: 0 });
    expect(new TextDecoder().decode(Uint8Array.from(out))).toBe("hi");
    expect(s.t.read(0x104, 4)).toBe(1); // max_nr_ports
    s.t.write(0x108, 4, 0x21); // emerg_wr
    expect(out.at(-1)).toBe(0x21);
  });
});

describe("VirtioMmio access sizes", () => {
  it("faults on 8-byte and unaligned accesses and reads 0 for narrow register accesses, as QEMU", () => {
    const s = setup(new VirtioRng());
    expect(s.t.read(0, 8)).toBeUndefined();
    expect(s.t.write(0x70, 8, 1n)).toBe(false);
    expect(s.t.read(2, 4)).toBeUndefined();
    expect(s.t.read(0, 2)).toBe(0);
    expect(s.t.read(0, 4)).toBe(0x74726976);
    expect(setup(undefined).t.read(0, 8)).toBeUndefined();
  });
});
