import { GuestMemory } from "@ferryvm/memory";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SaveVmRegistry } from "./handlers.ts";
import { qemuLoadvmState } from "./loadvm.ts";
import { MemorySink, QemuFileReader, QemuFileWriter } from "./qemu-file.ts";
import { RamMigration } from "./ram.ts";
import { qemuSavevmState } from "./savevm.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../testdata/${name}`, import.meta.url)));

/**
 * The RAM records of a stream (setup list and page records, without section framing and EOS
 * markers, which fall where the rate limiter and timers put them), up to the first FULL.
 */
function ramRecords(bytes: Uint8Array): { setup: Uint8Array; pages: Uint8Array; sections: string[] } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  at += 1 + 4 + v.getUint32(at + 1); // configuration
  const pages: number[] = [];
  let setup: Uint8Array | undefined;
  const sections: string[] = [];
  for (;;) {
    const type = bytes[at]!;
    if (type === 0x04 || type === 0x00) break;
    at += 5;
    if (type === 0x01) at += 1 + bytes[at]! + 8;
    sections.push(["", "START", "PART", "END"][type]!);
    const start = at;
    for (;;) {
      const rec = at;
      const word = v.getBigUint64(at);
      const flags = Number(word & 0xfffn);
      at += 8;
      if (flags === 0x10) break;
      if (flags & 0x04) {
        for (let left = word & ~0xfffn; left > 0n; ) {
          at += 1 + bytes[at]!;
          left -= v.getBigUint64(at);
          at += 8;
        }
        continue;
      }
      if (!(flags & 0x20)) at += 1 + bytes[at]!;
      at += flags & 0x02 ? 1 : 4096;
      for (let i = rec; i < at; i++) pages.push(bytes[i]!);
    }
    if (type === 0x01) setup = bytes.subarray(start, at);
    at += 5; // footer
  }
  return { setup: setup!, pages: new Uint8Array(pages), sections };
}

describe("the RAM section against QEMU 7.2's", () => {
  it("sends the same block list and the same page records, byte for byte, with QEMU's counters", async () => {
    const qemu = fixture("qemu72-virt-hello-paused.mig");
    const memory = GuestMemory.createSync({
      ram: [
        { idstr: "riscv_virt_board.mrom", size: 0xf000, base: 0x1000 },
        { idstr: "riscv_virt_board.ram", size: 16 << 20, base: 0x8000_0000 },
        { idstr: "virt.flash0", size: 32 << 20, base: 0x2000_0000 },
        { idstr: "virt.flash1", size: 32 << 20, base: 0x2200_0000 },
      ],
    });
    const registry = new SaveVmRegistry();
    const ram = new RamMigration(memory);
    ram.register(registry);
    await expect(qemuLoadvmState(new QemuFileReader(qemu), registry, { machineName: "virt" })).rejects.toThrow("'timer'");

    const sink = new MemorySink();
    const f = new QemuFileWriter(sink);
    await qemuSavevmState(f, registry, { machineName: "virt" });
    await f.close();
    const ours = ramRecords(sink.bytes());
    const theirs = ramRecords(qemu);
    expect(Buffer.from(ours.setup).equals(Buffer.from(theirs.setup))).toBe(true);
    expect(ours.pages.length).toBe(theirs.pages.length);
    expect(Buffer.from(ours.pages).equals(Buffer.from(theirs.pages))).toBe(true);
    expect(theirs.sections[0]).toBe("START");
    expect(theirs.sections.at(-1)).toBe("END");
    // QEMU's query-migrate said: normal 8, duplicate 20487, normal-bytes 32768, dirty-sync-count 2,
    // transferred 217290 (one PART there too: its EOS counts, the END's does not)
    expect(theirs.sections).toEqual(["START", "PART", "END"]);
    const c = ram.counters();
    expect([c.normal, c.duplicate, c["normal-bytes"], c["dirty-sync-count"], c.total, c.transferred]).toEqual([
      8, 20487, 32768, 2, 83947520, 217290,
    ]);
  });
});
