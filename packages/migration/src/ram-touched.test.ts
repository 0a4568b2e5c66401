// The "touched" client (GuestMemory.touchedBits): pages never written since the memory was
// created are zero, so the RAM section sends them as zero pages without reading them and the
// loader skips an incoming zero page over one.
import { describe, expect, it } from "vitest";
import { GuestMemory, TOUCHED_CLIENT } from "@ferryvm/memory";
import { qemuLoadvmState } from "./loadvm.ts";
import { QemuFileReader, saveTinyMachineLive, createTinyMachine, TINY_MACHINE } from "./testing.ts";

const CLIENTS = ["migration", "snapshot", TOUCHED_CLIENT];

describe("RAM migration over a memory that knows its untouched pages", () => {
  it("sends written pages in full, every other page as a zero page, and the destination ends equal", async () => {
    const src = createTinyMachine({ ramPages: 64, dirtyClients: CLIENTS });
    const ram = src.memory.block("riscv_virt_board.ram");
    src.memory.write(ram.base! + 5 * 4096, new Uint8Array(4096).fill(0x5a));
    src.memory.write(ram.base! + 9 * 4096 + 17, new Uint8Array([1, 2, 3]));
    // written, then zeroed again: touched, so it is read (and found zero)
    src.memory.write(ram.base! + 12 * 4096, new Uint8Array([7]));
    src.memory.write(ram.base! + 12 * 4096, new Uint8Array([0]));
    const bytes = await saveTinyMachineLive(src, 1, () => {});
    const c = src.ram.counters();
    expect(c.normal).toBe(2);
    expect(c.duplicate).toBe(64 + 2 - 2);
    const dst = createTinyMachine({ ramPages: 64, dirtyClients: CLIENTS });
    const dram = dst.memory.block("riscv_virt_board.ram");
    // the destination had written page 12 and 30 (its own kernel, say): the zero pages must clear them
    dst.memory.write(dram.base! + 12 * 4096, new Uint8Array([9]));
    dst.memory.write(dram.base! + 30 * 4096 + 100, new Uint8Array([9]));
    await qemuLoadvmState(new QemuFileReader(bytes), dst.registry, { machineName: TINY_MACHINE });
    expect(dram.bytes).toEqual(ram.bytes);
    // what the loader wrote counts as touched on the destination (a later save reads it)
    const touched = dst.memory.touchedBits(dram)!;
    expect((touched[0]! >>> 5) & 1).toBe(1);
    expect((touched[0]! >>> 9) & 1).toBe(1);
  });

  it("does not read untouched pages: one written behind the tracking's back is taken for zero (why only the virt machine opts in)", async () => {
    const src = createTinyMachine({ ramPages: 8, dirtyClients: CLIENTS });
    src.memory.block("riscv_virt_board.ram").page(3).fill(0xee); // RamBlock.bytes: not tracked
    await saveTinyMachineLive(src, 1, () => {});
    expect(src.ram.counters().normal).toBe(0);
    const plain = createTinyMachine({ ramPages: 8 });
    plain.memory.block("riscv_virt_board.ram").page(3).fill(0xee);
    await saveTinyMachineLive(plain, 1, () => {});
    expect(plain.ram.counters().normal).toBe(1);
  });

  it("is off for a memory passed in (it may not have started zeroed) and without the client", () => {
    const fresh = GuestMemory.createSync({ ram: [{ idstr: "r", size: 4096, base: 0 }], dirtyClients: CLIENTS });
    expect(fresh.touchedBits(fresh.block("r"))).toBeDefined();
    const reused = GuestMemory.createSync({ ram: [{ idstr: "r", size: 4096, base: 0 }], dirtyClients: CLIENTS, memory: fresh.memory });
    expect(reused.touchedBits(reused.block("r"))).toBeUndefined();
    const plain = GuestMemory.createSync({ ram: [{ idstr: "r", size: 4096, base: 0 }] });
    expect(plain.touchedBits(plain.block("r"))).toBeUndefined();
  });
});
