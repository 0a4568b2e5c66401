/**
 * virtio-blk with several request queues (QEMU's num-queues): what a guest driver sees (MQ,
 * config num_queues, a request's completion on the queue it came from), the request list's
 * queue index on the wire, and a stream from a device with another queue count failing.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ByteReader, loadState, loadStateFromBytes, saveStateToBytes } from "@ferryvm/vmstate";
import { PhysicalMemory } from "./physical-memory.ts";
import { MemoryBlockBackend, VIRTIO_BLK_F_MQ, VIRTIO_BLK_T_IN, VirtioBlk } from "./virtio-blk.ts";
import { VIRTIO_F_VERSION_1, VirtioMmio } from "./virtio-mmio.ts";
import { qemuSaveStream } from "./testing/qemu-hmp.ts";
import { VirtioState, vmstateVirtioDevice, type VirtioDeviceSectionState } from "./virtio-vmstate.ts";
import { negotiateFeatures } from "./testing/virtio-driver.ts";

const RAM = 0x8000_0000;
const N = 8;
/** Queue q's rings: descriptors, avail and used, 4 KiB apart, 16 KiB per queue. */
const ring = (q: number) => ({ desc: RAM + 0x1000 + q * 0x4000, avail: RAM + 0x2000 + q * 0x4000, used: RAM + 0x3000 + q * 0x4000 });
const BUF = RAM + 0x40000;
const SECTORS = 16;

function disk(): MemoryBlockBackend {
  const bytes = new Uint8Array(SECTORS * 512);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 9)) & 255;
  return new MemoryBlockBackend(bytes);
}

/** A guest driver: RAM, a transport with a virtio-blk, and per-queue rings. */
function driver(numQueues: number, memory = new PhysicalMemory(), ram = new Uint8Array(0x100000)) {
  if (memory.view(BigInt(RAM), 1) === undefined) memory.add({ name: "ram", base: RAM, bytes: ram });
  const backend = disk();
  const blk = new VirtioBlk({ backend, numQueues });
  const irqs: boolean[] = [];
  const t = new VirtioMmio({ memory, device: blk, onIrq: (l) => irqs.push(l) });
  const dv = new DataView(ram.buffer);
  const w32 = (off: number, v: number) => t.write(off, 4, v);
  const r32 = (off: number) => t.read(off, 4) as number;
  const availIdx = new Array<number>(numQueues).fill(0);
  return {
    t, blk, backend, ram, dv, irqs, memory, w32, r32,
    /** Status handshake accepting `features`, then every queue in `queues` set up. */
    init(features: bigint, queues: number[]) {
      negotiateFeatures(w32, features);
      for (const q of queues) {
        const r = ring(q);
        w32(0x30, q);
        w32(0x38, N);
        w32(0x80, r.desc);
        w32(0x84, 0);
        w32(0x90, r.avail);
        w32(0x94, 0);
        w32(0xa0, r.used);
        w32(0xa4, 0);
        w32(0x44, 1);
      }
      w32(0x70, 15);
    },
    /** A read of `sectors` from `sector` as descriptors 0..2 of queue q's table; made available, not notified. */
    queueRead(q: number, sector: number, sectors: number): { data: number; status: number } {
      const r = ring(q);
      const hdr = BUF + q * 0x2000;
      const data = hdr + 0x100;
      const status = data + sectors * 512;
      dv.setUint32(hdr - RAM, VIRTIO_BLK_T_IN, true);
      dv.setBigUint64(hdr - RAM + 8, BigInt(sector), true);
      ram[status - RAM] = 0xff;
      const desc = (i: number, addr: number, len: number, flags: number, next: number) => {
        const o = r.desc - RAM + 16 * i;
        dv.setBigUint64(o, BigInt(addr), true);
        dv.setUint32(o + 8, len, true);
        dv.setUint16(o + 12, flags, true);
        dv.setUint16(o + 14, next, true);
      };
      desc(0, hdr, 16, 1, 1);
      desc(1, data, sectors * 512, 3, 2);
      desc(2, status, 1, 2, 0);
      dv.setUint16(r.avail - RAM + 4 + 2 * (availIdx[q]! % N), 0, true);
      availIdx[q] = (availIdx[q]! + 1) & 0xffff;
      dv.setUint16(r.avail - RAM + 2, availIdx[q]!, true);
      return { data, status };
    },
    notify(q: number) {
      w32(0x50, q);
    },
    usedIdx(q: number): number {
      return dv.getUint16(ring(q).used - RAM + 2, true);
    },
    usedElem(q: number, slot: number): { id: number; len: number } {
      const o = ring(q).used - RAM + 4 + 8 * slot;
      return { id: dv.getUint32(o, true), len: dv.getUint32(o + 4, true) };
    },
  };
}

const MODERN = 1n << BigInt(VIRTIO_F_VERSION_1);
const MQ = 1n << BigInt(VIRTIO_BLK_F_MQ);

function section(t: VirtioMmio): VirtioDeviceSectionState {
  return { virtio: new VirtioState(t) };
}

describe("virtio-blk num-queues", () => {
  it("offers MQ and config num_queues with more than one queue, and neither with one", () => {
    const four = driver(4);
    four.w32(0x14, 0);
    expect(four.r32(0x10) & (1 << VIRTIO_BLK_F_MQ)).toBe(1 << VIRTIO_BLK_F_MQ);
    expect(four.t.read(0x122, 2)).toBe(4);
    for (let q = 0; q < 4; q++) {
      four.w32(0x30, q);
      expect(four.r32(0x34), `queue ${q}`).toBe(1024);
    }
    four.w32(0x30, 4);
    expect(four.r32(0x34)).toBe(0);
    const one = driver(1);
    one.w32(0x14, 0);
    expect(one.r32(0x10) & (1 << VIRTIO_BLK_F_MQ)).toBe(0);
    expect(one.t.read(0x122, 2)).toBe(1);
    one.w32(0x30, 1);
    expect(one.r32(0x34)).toBe(0);
  });

  it("serves a request submitted on queue 2 and completes it there, leaving the other queues alone", () => {
    const d = driver(4);
    d.init(MODERN | MQ, [0, 1, 2, 3]);
    expect(d.t.features & MQ).toBe(MQ);
    const req = d.queueRead(2, 3, 2);
    d.notify(2);
    expect(d.usedIdx(2)).toBe(1);
    expect(d.usedElem(2, 0)).toEqual({ id: 0, len: 2 * 512 + 1 });
    expect(d.ram[req.status - RAM]).toBe(0);
    expect(d.ram.subarray(req.data - RAM, req.data - RAM + 1024)).toEqual(d.backend.bytes.subarray(3 * 512, 5 * 512));
    for (const q of [0, 1, 3]) expect(d.usedIdx(q), `queue ${q}`).toBe(0);
    expect(d.r32(0x60)).toBe(1);
    expect(d.irqs.at(-1)).toBe(true);
    // Notifying queue 0 does not serve what waits on queue 3.
    d.queueRead(3, 0, 1);
    d.notify(0);
    expect(d.usedIdx(3)).toBe(0);
    d.notify(3);
    expect(d.usedIdx(3)).toBe(1);
  });

  it("refuses num-queues 0, fractions and more than 1024", () => {
    const backend = disk();
    expect(() => new VirtioBlk({ backend, numQueues: 0 })).toThrow(/num-queues property must be larger than 0/);
    expect(() => new VirtioBlk({ backend, numQueues: 1.5 })).toThrow(/num-queues/);
    expect(() => new VirtioBlk({ backend, numQueues: 1025 })).toThrow(/num-queues property must be at most 1024/);
    expect(new VirtioBlk({ backend, numQueues: 1024 }).queueSizes.length).toBe(1024);
  });
});

describe("virtio-blk num-queues on the wire", () => {
  const vmsd = vmstateVirtioDevice("virtio-blk");

  it("fails to load a 4-queue stream into a 1-queue device and back, naming the device and both counts", async () => {
    const four = driver(4);
    four.init(MODERN | MQ, [0, 1, 2, 3]);
    const one = driver(1);
    one.init(MODERN, [0]);
    const fromFour = saveStateToBytes(vmsd, section(four.t));
    const fromOne = saveStateToBytes(vmsd, section(one.t));
    await expect(loadStateFromBytes(fromFour, vmsd, section(driver(1).t))).rejects.toThrow(
      /virtio\/num_queues: loaded value 4 != local value 1: the stream's virtio-blk-device has 4 request queues, this one has 1 \(num-queues must be the same/,
    );
    await expect(loadStateFromBytes(fromOne, vmsd, section(driver(4).t))).rejects.toThrow(
      /loaded value 1 != local value 4: the stream's virtio-blk-device has 1 request queue, this one has 4/,
    );
    // The same counts load.
    await expect(loadStateFromBytes(fromFour, vmsd, section(driver(4).t))).resolves.toBeUndefined();
  });

  it("carries a request in flight on queue 2 with its queue index and completes it there after the load", async () => {
    const memory = new PhysicalMemory();
    const ram = new Uint8Array(0x100000);
    const a = driver(4, memory, ram);
    a.init(MODERN | MQ, [0, 1, 2, 3]);
    const req = a.queueRead(2, 5, 1);
    // The device took the request and had not answered when the VM stopped.
    a.blk.inflight = [{ ...a.t.queues[2]!.pop()!, queue: 2 }];
    const bytes = saveStateToBytes(vmsd, section(a.t));
    const one = driver(4);
    one.init(MODERN | MQ, [0, 1, 2, 3]);
    const idle = saveStateToBytes(vmsd, section(one.t));
    // The list is 1, be32 queue index 2, the 49168-byte element, 0 (an empty list is one 0 byte).
    expect(bytes.length - idle.length).toBe(1 + 4 + 49168);
    const b = driver(4, memory, ram);
    await loadStateFromBytes(bytes, vmsd, section(b.t));
    expect(b.blk.inflight.map((r) => r.queue)).toEqual([2]);
    expect(b.usedIdx(2)).toBe(0);
    b.t.poll();
    expect(b.usedIdx(2)).toBe(1);
    expect(b.usedElem(2, 0)).toEqual({ id: 0, len: 513 });
    expect(ram[req.status - RAM]).toBe(0);
    expect(ram.subarray(req.data - RAM, req.data - RAM + 512)).toEqual(b.backend.bytes.subarray(5 * 512, 6 * 512));
    for (const q of [0, 1, 3]) expect(b.usedIdx(q), `queue ${q}`).toBe(0);
  });

  it("refuses a request list entry naming a queue the device does not have", async () => {
    const memory = new PhysicalMemory();
    const ram = new Uint8Array(0x100000);
    const a = driver(4, memory, ram);
    a.init(MODERN | MQ, [0, 1, 2, 3]);
    a.queueRead(2, 5, 1);
    a.blk.inflight = [{ ...a.t.queues[2]!.pop()!, queue: 2 }];
    const bytes = saveStateToBytes(vmsd, section(a.t));
    // The list follows the transport's 24 bytes, the 57-byte config, the queue count and four
    // queues of 18 bytes: marker 1, then the be32 queue index.
    const at = 24 + 57 + 4 + 4 * 18;
    expect(bytes.subarray(at, at + 5)).toEqual(Uint8Array.of(1, 0, 0, 0, 2));
    bytes[at + 4] = 7;
    await expect(loadStateFromBytes(bytes, vmsd, section(driver(4, memory, ram).t))).rejects.toThrow(
      /invalid virtqueue index in request list: 0x7 \(the device has 4 queues\)/,
    );
  });
});

const hasQemu = spawnSync("qemu-system-riscv64", ["--version"]).status === 0;

/** An idle, stopped QEMU 7.2 `virt` with a 4-queue virtio-blk-device on virtio-mmio-bus.0, saved to a file. */
async function qemuFourQueueStream(dir: string): Promise<Uint8Array> {
  writeFileSync(join(dir, "disk.img"), new Uint8Array(1 << 20));
  return qemuSaveStream([
    "-M", "virt", "-m", "64M", "-bios", "none", "-nic", "none", "-display", "none", "-serial", "null",
    "-S", "-global", "virtio-mmio.force-legacy=false",
    "-drive", `file=${join(dir, "disk.img")},format=raw,if=none,id=d0`,
    "-device", "virtio-blk-device,drive=d0,num-queues=4,bus=virtio-mmio-bus.0",
  ], join(dir, "mq.mig"));
}

describe.skipIf(!hasQemu)("QEMU 7.2's num-queues=4 virtio-blk-device section", () => {
  it("loads into a 4-queue device (and saves back to QEMU's bytes), and fails clearly into a 1-queue one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ferryvm-blk-mq-"));
    try {
      const stream = await qemuFourQueueStream(dir);
      const idstr = new TextEncoder().encode("virtio-mmio@0000000010001000/virtio-blk");
      let at = -1;
      for (let i = 0; i + idstr.length <= stream.length && at < 0; i++) {
        if (stream[i] === idstr.length && idstr.every((b, k) => stream[i + 1 + k] === b)) at = i + 1 + idstr.length;
      }
      expect(at).toBeGreaterThan(0);
      const view = new DataView(stream.buffer, stream.byteOffset);
      expect(view.getUint32(at + 4)).toBe(2); // version_id
      const start = at + 8;
      const vmsd = vmstateVirtioDevice("virtio-blk");
      const d = driver(4);
      const reader = new ByteReader(stream.subarray(start));
      await loadState(reader, vmsd, section(d.t), 2);
      const body = stream.subarray(start, start + reader.position);
      expect(stream[start + reader.position]).toBe(0x7e); // the section footer follows
      expect(view.getUint32(start + 24 + 57)).toBe(4); // QEMU saved four queues
      // QEMU's config copy is stale until a guest reads it; the rest is QEMU's bytes.
      const again = saveStateToBytes(vmsd, section(d.t));
      expect(again.subarray(0, 24)).toEqual(body.subarray(0, 24));
      expect(again.subarray(24 + 57)).toEqual(body.subarray(24 + 57));
      await expect(loadStateFromBytes(body, vmsd, section(driver(1).t))).rejects.toThrow(
        /loaded value 4 != local value 1: the stream's virtio-blk-device has 4 request queues, this one has 1/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
