import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ByteReader,
  loadState,
  saveState,
  saveStateToBytes,
  type VMStateDescription,
  VMStateError,
  vmstateUint16,
  vmstateUint32,
  vmstateUint8Array,
  vmstateUint64,
} from "@ferryvm/vmstate";
import { MemorySink, MigrationError, QemuFileReader, QemuFileWriter, ShortReadError } from "./mod.ts";

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) {
    await Promise.resolve();
    yield bytes.slice(i, i + size);
  }
}

describe("QemuFileWriter", () => {
  it("writes big-endian integers, bytes and str8 in order across buffer boundaries", async () => {
    const sink = new MemorySink();
    const out = new QemuFileWriter(sink, { bufferSize: 64 });
    for (let i = 0; i < 20; i++) {
      out.putU8(0xab);
      out.putBe16(0x0102);
      out.putBe32(0xdeadbeef);
      out.putBe64(0x0102030405060708n);
    }
    out.putStr8("ram");
    out.putBytes(new Uint8Array(100).fill(7));
    expect(out.position).toBe(20 * 15 + 4 + 100);
    await out.close();
    const bytes = sink.bytes();
    expect(bytes.length).toBe(out.position);
    expect([...bytes.subarray(0, 15)]).toEqual([0xab, 1, 2, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect([...bytes.subarray(300, 304)]).toEqual([3, 0x72, 0x61, 0x6d]);
    expect(bytes.subarray(304).every((b) => b === 7)).toBe(true);
    expect(sink.closed).toBe(true);
  });

  it("holds bytes until flush() and waits for a slow sink", async () => {
    const written: number[] = [];
    let release: () => void = () => {};
    const sink = {
      write(chunk: Uint8Array) {
        written.push(chunk.length);
        return new Promise<void>((resolve) => {
          release = resolve;
        });
      },
    };
    const out = new QemuFileWriter(sink, { bufferSize: 64 });
    out.putBytes(new Uint8Array(10));
    expect(written).toEqual([]);
    expect(out.pendingBytes).toBe(10);
    let flushed = false;
    const flush = out.flush().then(() => {
      flushed = true;
    });
    await Promise.resolve();
    expect(written).toEqual([10]);
    expect(flushed).toBe(false);
    release();
    await flush;
    expect(flushed).toBe(true);
    expect(out.pendingBytes).toBe(0);
  });

  it("copies putBytes() data, so the caller may reuse its array", async () => {
    const sink = new MemorySink();
    const out = new QemuFileWriter(sink, { bufferSize: 64 });
    const page = new Uint8Array(4096).fill(1);
    out.putBytes(page);
    page.fill(2);
    await out.flush();
    expect(sink.bytes().every((b) => b === 1)).toBe(true);
  });

  it("a failed sink write makes flush() reject, and keeps failing", async () => {
    const out = new QemuFileWriter({
      write() {
        throw new Error("connection reset");
      },
    });
    out.putU8(1);
    await expect(out.flush()).rejects.toThrow("connection reset");
    out.putU8(2);
    await expect(out.flush()).rejects.toBeInstanceOf(MigrationError);
    expect(out.error?.message).toContain("connection reset");
  });
});

describe("QemuFileReader", () => {
  const bytes = new Uint8Array([
    /* u8 */ 0x7f,
    /* be16 */ 0x01, 0x02,
    /* be32 */ 0xde, 0xad, 0xbe, 0xef,
    /* be64 */ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    /* str8 */ 0x03, 0x72, 0x61, 0x6d,
    /* tail */ 1, 2, 3, 4, 5, 6,
  ]);

  for (const size of [1, 3, 64]) {
    it(`reads integers, str8, peeks and skips over ${size}-byte chunks`, async () => {
      const input = new QemuFileReader(chunked(bytes, size));
      expect(await input.readU8()).toBe(0x7f);
      expect(await input.readU16()).toBe(0x0102);
      expect(await input.readU32()).toBe(0xdeadbeef);
      expect(await input.readU64()).toBe(0xfffffffffffffffen);
      expect([...(await input.peek(2))]).toEqual([3, 0x72]);
      expect(await input.readStr8()).toBe("ram");
      await input.skip(2);
      expect(input.position).toBe(21);
      const rest = new Uint8Array(4);
      await input.readInto(rest);
      expect([...rest]).toEqual([3, 4, 5, 6]);
      expect(await input.atEnd()).toBe(true);
      expect([...(await input.peek(4))]).toEqual([]);
    });
  }

  it("reads more than its buffer straight into the destination", async () => {
    const big = Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff);
    const input = new QemuFileReader(chunked(big, 700), { bufferSize: 1024 });
    expect(await input.readU8()).toBe(0);
    const dest = new Uint8Array(4999);
    await input.readInto(dest);
    expect(dest).toEqual(big.subarray(1));
    expect(input.position).toBe(5000);
  });

  it("names the field, the offset, the bytes needed and left on a short read", async () => {
    const input = new QemuFileReader(chunked(new Uint8Array([0, 0, 0, 1, 2, 3, 4, 5]), 2));
    await input.skip(5);
    const err = await input.readU32("section id").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShortReadError);
    expect((err as Error).message).toBe("QEMUFile: section id: short read at offset 5 (needed 4 bytes, 3 left)");
    const more = new QemuFileReader(new Uint8Array(10));
    await expect(more.readInto(new Uint8Array(16), "page")).rejects.toThrow(
      "QEMUFile: page: short read at offset 0 (needed 16 bytes, 10 left)",
    );
    await expect(new QemuFileReader(new Uint8Array(3)).skip(4)).rejects.toThrow("needed 4 bytes, 3 left");
  });

  it("checks a length against its maximum before allocating", async () => {
    const input = new QemuFileReader(new Uint8Array(8));
    await expect(input.readBytes(0xffffffff, 4096, "block length")).rejects.toThrow(
      "QEMUFile: block length 4294967295 exceeds 4096 at offset 0",
    );
    await expect(input.readBytes(-1, 4096)).rejects.toThrow("length -1 exceeds 4096");
    expect([...(await input.readBytes(2, 4096))]).toEqual([0, 0]);
  });

  it("turns a failing source into a MigrationError with the offset", async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1, 2]);
      throw new Error("ECONNRESET");
    }
    const input = new QemuFileReader(failing());
    await input.readU16();
    await expect(input.readU8()).rejects.toThrow("QEMUFile: read failed at offset 2: ECONNRESET");
  });

  it("rejects a fill larger than its buffer", async () => {
    const input = new QemuFileReader(new Uint8Array(0), { bufferSize: 1024 });
    await expect(input.fill(2048)).rejects.toThrow(RangeError);
  });

  it("reads a WHATWG ReadableStream", async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([0, 0]));
        controller.enqueue(new Uint8Array([1, 0]));
        controller.close();
      },
    });
    expect(await new QemuFileReader(stream).readU32()).toBe(0x100);
  });

  it("reads what ByteReader reads, however the stream is chunked", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.constantFrom(1, 2, 4, 8, 13), { maxLength: 40 }),
        async (bytes, chunk, ops) => {
          const a = new QemuFileReader(chunked(bytes, chunk), { bufferSize: 1024 });
          const b = new ByteReader(bytes);
          for (const op of ops) {
            const ra = await readOp(a, op).catch((e: unknown) => (e as Error).constructor.name);
            const rb = await readOp(b, op).catch((e: unknown) => (e as Error).constructor.name);
            expect(ra).toEqual(rb);
            if (typeof ra === "string") return;
            expect(a.position).toBe(b.position);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

async function readOp(input: QemuFileReader | ByteReader, op: number): Promise<unknown> {
  if (op === 13) {
    const d = new Uint8Array(13);
    await input.readInto(d);
    return [...d];
  }
  await input.fill(op);
  switch (op) {
    case 1:
      return input.getU8();
    case 2:
      return input.getBe16();
    case 4:
      return input.getBe32();
    default:
      return input.getBe64();
  }
}

describe("VMState over QEMUFile", () => {
  interface Dev {
    a: number;
    b: bigint;
    fifo: Uint8Array;
    c: number;
  }
  const vmsd: VMStateDescription<Dev> = {
    name: "dev",
    version_id: 1,
    minimum_version_id: 1,
    fields: [vmstateUint32("a"), vmstateUint64("b"), vmstateUint8Array("fifo", 16), vmstateUint16("c")],
  };
  const dev: Dev = { a: 0x01020304, b: 5n, fifo: new Uint8Array(16).fill(9), c: 0xffff };

  it("saveState() through a QemuFileWriter writes what saveStateToBytes() writes", async () => {
    const sink = new MemorySink();
    const out = new QemuFileWriter(sink, { bufferSize: 64 });
    saveState(out, vmsd, dev);
    await out.flush();
    expect(sink.bytes()).toEqual(saveStateToBytes(vmsd, dev));
  });

  it("loadState() reads a stream arriving one byte at a time", async () => {
    const copy: Dev = { a: 0, b: 0n, fifo: new Uint8Array(16), c: 0 };
    await loadState(new QemuFileReader(chunked(saveStateToBytes(vmsd, dev), 1)), vmsd, copy, 1);
    expect(copy).toEqual(dev);
  });

  it("loadState() fails on every truncation with the field and the offset", async () => {
    const bytes = saveStateToBytes(vmsd, dev);
    for (let n = 0; n < bytes.length; n++) {
      const copy: Dev = { a: 0, b: 0n, fifo: new Uint8Array(16), c: 0 };
      const err = await loadState(new QemuFileReader(chunked(bytes.subarray(0, n), 3)), vmsd, copy, 1).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(VMStateError);
      expect((err as Error).message).toMatch(/^vmstate: dev\/(a|b|fifo|c): QEMUFile: short read at offset \d+ \(needed \d+ bytes, \d+ left\)$/);
    }
  });
});

describe("QemuFileWriter buffer reuse", () => {
  it("reuses a buffer only after the sink released it, and the bytes stay right", async () => {
    const seen: Uint8Array[] = [];
    const held: { chunk: Uint8Array; release: (() => void) | undefined }[] = [];
    const buffers = new Set<ArrayBufferLike>();
    const sink = {
      write(chunk: Uint8Array, release?: () => void) {
        buffers.add(chunk.buffer);
        held.push({ chunk, release });
      },
    };
    const f = new QemuFileWriter(sink, { bufferSize: 64 });
    let next = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 100; i++) f.putU8(next++ & 0xff);
      await f.flush();
      // the sink still holds every chunk of this round: check them, then let them go
      for (const h of held.splice(0)) {
        seen.push(h.chunk.slice());
        h.release?.();
      }
    }
    const all = new Uint8Array(seen.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of seen) {
      all.set(c, at);
      at += c.length;
    }
    expect(all).toEqual(Uint8Array.from({ length: 2000 }, (_, i) => i & 0xff));
    // 2000 bytes in 64-byte buffers: without reuse some 32 buffers, with it a handful
    expect(buffers.size).toBeLessThan(8);
  });
});
