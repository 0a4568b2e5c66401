// The RAM section's block list on load: resizeable blocks (QEMU's qemu_ram_resize) and
// blocks missing from the stream.
import { describe, expect, it } from "vitest";
import { GuestMemory, qemuRamResize, type RamBlockOptions } from "@ferryvm/memory";
import { SaveVmRegistry } from "./handlers.ts";
import { qemuLoadvmState } from "./loadvm.ts";
import { MemorySink, QemuFileReader, QemuFileWriter } from "./qemu-file.ts";
import { RamMigration } from "./ram.ts";
import { qemuSavevmState } from "./savevm.ts";

const MACHINE = "virt";
const PAGE = 4096;

function machine(ram: RamBlockOptions[]): { memory: GuestMemory; registry: SaveVmRegistry } {
  const memory = GuestMemory.createSync({ ram });
  const registry = new SaveVmRegistry();
  new RamMigration(memory).register(registry);
  return { memory, registry };
}

const RAM: RamBlockOptions = { idstr: "riscv_virt_board.ram", size: 8 * PAGE, base: 0x8000_0000 };

/** A ROM of `used` pages within `max` pages, at 0x1000. */
function rom(used: number, max: number, resizeable = true): RamBlockOptions {
  return { idstr: "riscv.rom", size: max * PAGE, usedLength: used * PAGE, base: 0x1000, readonly: true, resizeable };
}

async function save(m: { memory: GuestMemory; registry: SaveVmRegistry }): Promise<Uint8Array> {
  const sink = new MemorySink();
  const f = new QemuFileWriter(sink);
  await qemuSavevmState(f, m.registry, { machineName: MACHINE });
  await f.close();
  return sink.bytes();
}

async function load(m: { registry: SaveVmRegistry }, bytes: Uint8Array): Promise<void> {
  await qemuLoadvmState(new QemuFileReader(bytes), m.registry, { machineName: MACHINE });
}

/** A source whose ROM holds a recognisable pattern on each of its pages. */
function source(romPages: number, romMax = 4): { memory: GuestMemory; registry: SaveVmRegistry } {
  const src = machine([rom(romPages, romMax), RAM]);
  const r = src.memory.block("riscv.rom");
  for (let p = 0; p < r.pages; p++) r.page(p).fill(0x40 + p);
  src.memory.block("riscv_virt_board.ram").page(3).fill(0x77);
  return src;
}

describe("resizeable RAM blocks on load", () => {
  it("grows a resizeable block to the stream's length within its max length, and tells its listeners", async () => {
    const bytes = await save(source(3));
    const dst = machine([rom(1, 4), RAM]);
    const block = dst.memory.block("riscv.rom");
    const seen: [number, number][] = [];
    block.onResize((_, from, to) => seen.push([from, to]));
    await load(dst, bytes);
    expect(block.usedLength).toBe(3 * PAGE);
    expect(seen).toEqual([[PAGE, 3 * PAGE]]);
    for (let p = 0; p < 3; p++) expect(block.page(p).every((b) => b === 0x40 + p)).toBe(true);
    expect(dst.memory.block("riscv_virt_board.ram").page(3)[0]).toBe(0x77);
    // as qemu_ram_resize: the whole new used length is dirty for every client
    const dirty = dst.memory.dirty("migration");
    dirty.sync();
    expect(dirty.count(block)).toBe(3);
  });

  it("shrinks a resizeable block to a shorter length in the stream", async () => {
    const bytes = await save(source(1));
    const dst = machine([rom(3, 4), RAM]);
    await load(dst, bytes);
    const block = dst.memory.block("riscv.rom");
    expect(block.usedLength).toBe(PAGE);
    expect(block.page(0)[0]).toBe(0x40);
  });

  it("fails with QEMU's 'Size too large' when the stream's length passes the max length", async () => {
    const bytes = await save(source(4, 4));
    const dst = machine([rom(1, 2), RAM]);
    await expect(load(dst, bytes)).rejects.toThrow(
      "ram: Size too large: riscv.rom: 0x4000 > 0x2000: Invalid argument (RAM block 'riscv.rom' has used length 0x4000 in the stream but 0x1000 here, and its max length is 0x2000)",
    );
    expect(dst.memory.block("riscv.rom").usedLength).toBe(PAGE);
  });

  it("fails with QEMU's 'Size mismatch' when the block is not resizeable, even within its max length", async () => {
    const bytes = await save(source(2));
    const dst = machine([rom(1, 4, false), RAM]);
    await expect(load(dst, bytes)).rejects.toThrow(
      "ram: Size mismatch: riscv.rom: 0x2000 != 0x1000: Invalid argument (RAM block 'riscv.rom' has used length 0x2000 in the stream but 0x1000 here, and it is not resizeable)",
    );
    expect(dst.memory.block("riscv.rom").usedLength).toBe(PAGE);
  });

  it("rounds a length that is not page aligned up to the page size, as HOST_PAGE_ALIGN", () => {
    const m = machine([rom(1, 4), RAM]);
    const block = m.memory.block("riscv.rom");
    qemuRamResize(block, 2 * PAGE + 1);
    expect(block.usedLength).toBe(3 * PAGE);
    qemuRamResize(block, 3 * PAGE); // same length: nothing to do, even for a fixed block
    expect(() => qemuRamResize(m.memory.block("riscv_virt_board.ram"), 8 * PAGE)).not.toThrow();
  });
});

describe("local blocks missing from the stream", () => {
  it("loads a stream without a read-only block: the ROM keeps the destination's contents", async () => {
    const src = machine([RAM]);
    src.memory.block("riscv_virt_board.ram").page(5).fill(0x55);
    const bytes = await save(src);
    const dst = machine([rom(2, 4), RAM]);
    const r = dst.memory.block("riscv.rom");
    r.page(1).fill(0x99);
    await load(dst, bytes);
    expect(r.usedLength).toBe(2 * PAGE);
    expect(r.page(1).every((b) => b === 0x99)).toBe(true);
    expect(dst.memory.block("riscv_virt_board.ram").page(5)[0]).toBe(0x55);
  });

  it("fails on a stream without a block of ordinary RAM", async () => {
    const src = machine([RAM]);
    const bytes = await save(src);
    const dst = machine([RAM, { idstr: "extra.ram", size: 2 * PAGE }]);
    await expect(load(dst, bytes)).rejects.toThrow("ram: RAM block 'extra.ram' (0x2000 bytes) is missing from the stream");
  });
});
