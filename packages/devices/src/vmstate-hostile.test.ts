/**
 * Hart and virtio state across a save and load (LR reservation, Sstc timer, counters, console
 * input not yet delivered), and loads of damaged sections: each fails with a MigrationError
 * naming what is wrong, never with another exception or a hang.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { H_LR_ADDR, H_LR_VALID, H_LR_VALUE, H_MCYCLE, H_MINSTRET, H_STIMECMP, H_STIMER_ARMED } from "@ferryvm/cpu-wasm";
import { loadStateFromBytes, MigrationError, saveStateToBytes } from "@ferryvm/vmstate";
import { createMachine, type Machine } from "./machine.ts";
import { MemoryBlockBackend } from "./virtio-blk.ts";
import { decodeVirtqueueElementOld } from "./virtio-vmstate.ts";

const CODE = 0x8000_0000n;
const DATA = 0x8000_1000n;

function section(m: Machine, idstr: string, instanceId = 0) {
  const e = m.vmstateEntries().find((x) => x.idstr === idstr && x.instanceId === instanceId)!;
  return {
    save: () => saveStateToBytes(e.vmsd, e.opaque as never),
    load: (bytes: Uint8Array) => loadStateFromBytes(bytes, e.vmsd, e.opaque as never, { versionId: e.vmsd.version_id }),
  };
}

async function moveAll(from: Machine, to: Machine): Promise<void> {
  from.guestMemory.ramBlocks.forEach((b, i) => to.guestMemory.ramBlocks[i]!.bytes.set(b.bytes));
  for (const e of from.vmstateEntries()) await section(to, e.idstr, e.instanceId).load(section(from, e.idstr, e.instanceId).save());
}

describe("a hart's state across a save and load", () => {
  it("keeps the LR reservation (the SC after it succeeds), the armed Sstc timer, the counters and WFI", async () => {
    const machines = [await createMachine({ ramSize: 16 << 20 }), await createMachine({ ramSize: 16 << 20 })];
    const [a, b] = machines as [Machine, Machine];
    const scd = (0b00011 << 27) | (3 << 20) | (1 << 15) | (3 << 12) | (4 << 7) | 0x2f; // sc.d x4, x3, (x1)
    a.physicalMemory.write(CODE, Uint8Array.of(scd & 0xff, (scd >> 8) & 0xff, (scd >> 16) & 0xff, scd >>> 24));
    const h = a.hart(0);
    h.pc = CODE;
    h.x[1] = DATA;
    h.x[3] = 7n;
    h.x[4] = 99n;
    const v = new DataView(a.memory.buffer, h.base, 0x1000);
    v.setUint32(H_LR_VALID, 1, true);
    v.setBigUint64(H_LR_ADDR, DATA, true);
    v.setBigUint64(H_LR_VALUE, 0n, true);
    v.setBigUint64(H_STIMECMP, 5000n, true);
    v.setUint32(H_STIMER_ARMED, 1, true);
    v.setBigUint64(H_MCYCLE, 123n, true);
    v.setBigUint64(H_MINSTRET, 456n, true);
    h.mtimecmp = 777n;
    h.wfi = true;
    await moveAll(a, b);
    expect(b.hart(0).wfi).toBe(true);
    for (const m of machines) m.hart(0).wfi = false;
    const w = new DataView(b.memory.buffer, b.hart(0).base, 0x1000);
    expect([w.getUint32(H_STIMER_ARMED, true), w.getBigUint64(H_STIMECMP, true), w.getBigUint64(H_MINSTRET, true)]).toEqual([1, 5000n, 456n]);
    expect(b.hart(0).mtimecmp).toBe(777n);
    for (const m of machines) {
      m.cpu.mtime = 0n;
      m.cpu.run(0, 1);
      expect(m.hart(0).x[4]).toBe(0n); // sc.d succeeded
      expect(m.physicalMemory.view(DATA, 1)![0]).toBe(7);
    }
  });

  it("refuses a hart of another ISA or index, naming the field", async () => {
    const a = await createMachine({ ramSize: 16 << 20, harts: 2 });
    const bytes = section(a, "cpu", 1).save();
    const isa = bytes.slice();
    isa[711]! |= 1 << 5; // misa_ext gains F
    await expect(section(a, "cpu", 1).load(isa)).rejects.toThrow(/hart 1: the stream's CPU has extension 'f', which this CPU does not implement/);
    await expect(section(a, "cpu", 0).load(bytes)).rejects.toThrow(/cpu\/env\.mhartid: loaded value 0x1 != local value 0x0/);
  });
});

describe("virtio state across a save and load", () => {
  it("keeps console input the guest has not taken yet", async () => {
    const spec = () => ({ ramSize: 16 << 20, virtio: [{ type: "virtio-serial-device" as const, bus: 0 }] });
    const a = await createMachine(spec());
    const b = await createMachine(spec());
    a.virtioConsole!.send(new TextEncoder().encode("hello"));
    const bytes = section(a, "virtio-mmio@0000000010001000/virtio-console").save();
    expect(new TextDecoder().decode(bytes)).toContain("virtio/ferryvm");
    await section(b, "virtio-mmio@0000000010001000/virtio-console").load(bytes);
    expect(new TextDecoder().decode(b.virtioConsole!.inputBytes)).toBe("hello");
  });

  it("refuses features the device does not offer and another queue count", async () => {
    const m = await createMachine({
      ramSize: 16 << 20,
      virtio: [{ type: "virtio-blk-device", backend: new MemoryBlockBackend(new Uint8Array(4096)), bus: 0 }],
    });
    const s = section(m, "virtio-mmio@0000000010001000/virtio-blk");
    const bytes = s.save();
    const features = bytes.slice();
    // The 64-bit guest features of virtio/64bit_features (they override guest_features_lo, as in QEMU).
    const at = new TextDecoder("latin1").decode(bytes).indexOf("virtio/64bit_features") + "virtio/64bit_features".length + 4;
    features.set([0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff], at);
    await expect(s.load(features)).rejects.toThrow(/virtio-blk.*features 0x[0-9a-f]+ unsupported; allowed features: 0x/);
    const queues = bytes.slice();
    queues[24 + 57 + 3] = 2; // queue count after the 57-byte config
    await expect(s.load(queues)).rejects.toThrow(/virtio\/num_queues: loaded value 2 != local value 1/);
  });
});

describe("damaged sections", () => {
  it("fail with a MigrationError (bit flips and truncations of every section of a running machine)", async () => {
    const disk = new Uint8Array(65536);
    const make = () =>
      createMachine({
        ramSize: 128 << 20,
        kernel: new Uint8Array(readFileSync(new URL("../../../guests/migration/a-b.elf", import.meta.url))),
        virtio: [
          { type: "virtio-blk-device", backend: new MemoryBlockBackend(disk), bus: 0 },
          { type: "virtio-serial-device", bus: 1 },
          { type: "virtio-rng-device", bus: 2 },
        ],
      });
    const a = await make();
    await a.run({ timeoutMs: 50 });
    const b = await make();
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    let failures = 0;
    for (const e of a.vmstateEntries()) {
      const bytes = section(a, e.idstr, e.instanceId).save();
      const target = section(b, e.idstr, e.instanceId);
      const mutants: Uint8Array[] = [];
      for (let i = 0; i < 40; i++) {
        const m = bytes.slice();
        for (let k = 0; k <= rand(3); k++) m[rand(m.length)]! ^= 1 << rand(8);
        mutants.push(m);
      }
      for (const cut of [0, 1, bytes.length >> 1, bytes.length - 1]) mutants.push(bytes.slice(0, cut));
      for (const m of mutants) {
        try {
          await target.load(m);
        } catch (err) {
          failures++;
          expect(err, `${e.idstr}: ${String(err)}`).toBeInstanceOf(MigrationError);
        }
      }
      await target.load(bytes); // and the good bytes still load after all that
    }
    expect(failures).toBeGreaterThan(100);
  });
});

describe("virtio-blk requests in flight (QEMU's request list)", () => {
  const RAMB = 0x8000_0000;
  const DESC = RAMB + 0x1000;
  const AVAIL = RAMB + 0x2000;
  const USED = RAMB + 0x3000;
  const BUF = RAMB + 0x10000;
  const LIST = 12 + 1 + 1 + 2 + 4 + 4 + 57 + 4 + (4 + 4 + 8 + 2);

  async function withInflightRead(): Promise<{ a: Machine; disk: Uint8Array }> {
    const disk = new Uint8Array(8192).map((_, i) => (i * 31) & 255);
    const a = await createMachine({
      ramSize: 16 << 20,
      virtio: [{ type: "virtio-blk-device", backend: new MemoryBlockBackend(disk), bus: 0 }],
    });
    const t = a.virtio[0]!;
    const w32 = (o: number, v: number) => t.write(o, 4, v);
    for (const [o, v] of [[0x70, 0], [0x70, 3], [0x24, 1], [0x20, 1], [0x24, 0], [0x20, 0], [0x70, 11], [0x30, 0], [0x38, 8],
      [0x80, DESC], [0x84, 0], [0x90, AVAIL], [0x94, 0], [0xa0, USED], [0xa4, 0], [0x44, 1], [0x70, 15]] as const) w32(o, v);
    const put = (addr: number, bytes: Uint8Array) => a.physicalMemory.write(BigInt(addr), bytes);
    const u8 = (n: number, f: (v: DataView) => void) => {
      const b = new Uint8Array(n);
      f(new DataView(b.buffer));
      return b;
    };
    put(BUF, u8(16, (v) => v.setBigUint64(8, 1n, true))); // VIRTIO_BLK_T_IN, sector 1
    const desc = (i: number, addr: number, len: number, flags: number, next: number) =>
      put(DESC + 16 * i, u8(16, (v) => {
        v.setBigUint64(0, BigInt(addr), true);
        v.setUint32(8, len, true);
        v.setUint16(12, flags, true);
        v.setUint16(14, next, true);
      }));
    desc(0, BUF, 16, 1, 1);
    desc(1, BUF + 0x100, 512, 3, 2);
    desc(2, BUF + 0x400, 1, 2, 0);
    put(AVAIL, u8(6, (v) => v.setUint16(2, 1, true))); // ring[0] = head 0, idx 1
    // The device took the request and had not answered when the VM stopped (QEMU: stopped on an I/O error).
    const blk = t.device as import("./virtio-blk.ts").VirtioBlk;
    blk.inflight = [t.queues[0]!.pop()!];
    return { a, disk };
  }

  it("load from the stream and are served when the machine runs again, saved back unchanged until then", async () => {
    const { a, disk } = await withInflightRead();
    const id = "virtio-mmio@0000000010001000/virtio-blk";
    const bytes = section(a, id).save();
    // After the transport's part (3 words, status, isr, queue_sel, features, the 57-byte config,
    // the queue count and one queue's num, align, desc, last_avail_idx): 1, the element, 0.
    expect([bytes[LIST], bytes[LIST + 1 + 49168]]).toEqual([1, 0]);
    expect(decodeVirtqueueElementOld(bytes.subarray(LIST + 1, LIST + 1 + 49168), 8)).toEqual({
      index: 0,
      out: [{ addr: BigInt(BUF), len: 16 }],
      in: [{ addr: BigInt(BUF + 0x100), len: 512 }, { addr: BigInt(BUF + 0x400), len: 1 }],
    });
    const b = await createMachine({
      ramSize: 16 << 20,
      virtio: [{ type: "virtio-blk-device", backend: new MemoryBlockBackend(disk), bus: 0 }],
    });
    await moveAll(a, b);
    expect(section(b, id).save()).toEqual(bytes);
    const result = await b.run({ timeoutMs: 5 });
    expect(result.kind).toBe("timeout");
    const used = b.physicalMemory.view(BigInt(USED), 12)!;
    const uv = new DataView(used.buffer, used.byteOffset, 12);
    expect([uv.getUint16(2, true), uv.getUint32(4, true), uv.getUint32(8, true)]).toEqual([1, 0, 513]);
    expect(b.physicalMemory.view(BigInt(BUF + 0x100), 512)).toEqual(disk.subarray(512, 1024));
    expect(b.physicalMemory.view(BigInt(BUF + 0x400), 1)![0]).toBe(0);
    expect(b.virtio[0]!.isr & 1).toBe(1);
  });

  it("are refused when they do not fit the queue or the used index", async () => {
    const { a } = await withInflightRead();
    const id = "virtio-mmio@0000000010001000/virtio-blk";
    const bytes = section(a, id).save();
    const badIndex = bytes.slice();
    badIndex[LIST + 1] = 200; // element index 200 in a queue of 8
    await expect(section(a, id).load(badIndex)).rejects.toThrow(/request 0: virtqueue element index 200 >= queue size 8/);
    (a.virtio[0]!.device as import("./virtio-blk.ts").VirtioBlk).inflight = [];
    await expect(section(a, id).load(section(a, id).save())).rejects.toThrow(/1 requests in use .* but 0 in the stream's request list/);
  });
});
