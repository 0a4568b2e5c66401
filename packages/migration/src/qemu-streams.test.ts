import { GuestMemory } from "@ferryvm/memory";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { analyzeMigration, type AnalyzeJson } from "./analyze.ts";
import { SaveVmRegistry } from "./handlers.ts";
import { qemuLoadvmState } from "./loadvm.ts";
import { QemuFileReader } from "./qemu-file.ts";
import { RamMigration } from "./ram.ts";
import { createTinyMachine, TINY_MACHINE } from "./testing.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../testdata/${name}`, import.meta.url)));
type Obj = { [key: string]: AnalyzeJson };

describe("loading streams QEMU 7.2 wrote", () => {
  it("fails on the first RAM block this machine lacks", async () => {
    const m = createTinyMachine();
    await expect(
      qemuLoadvmState(new QemuFileReader(fixture("qemu72-virt-hello-paused.mig")), m.registry, { machineName: TINY_MACHINE }),
    ).rejects.toThrow("ram: unknown RAM block 'virt.flash0', cannot accept migration");
  });

  it("loads the RAM section of a machine with QEMU's blocks, then stops at the first device it lacks", async () => {
    const memory = GuestMemory.createSync({
      ram: [
        { idstr: "riscv_virt_board.mrom", size: 0xf000, base: 0x1000 },
        { idstr: "riscv_virt_board.ram", size: 16 << 20, base: 0x8000_0000 },
        { idstr: "virt.flash0", size: 32 << 20, base: 0x2000_0000 },
        { idstr: "virt.flash1", size: 32 << 20, base: 0x2200_0000 },
      ],
    });
    const registry = new SaveVmRegistry();
    new RamMigration(memory).register(registry);
    const bytes = fixture("qemu72-virt-a-b-running.mig");
    await expect(qemuLoadvmState(new QemuFileReader(bytes), registry, { machineName: "virt" })).rejects.toThrow(
      "unknown section 'timer' instance 0",
    );
    // every page the stream sent (the last copy wins) is in RAM now
    const memoryDump = ((analyzeMigration(bytes, { memory: true }) as Obj)["ram (2)"] as Obj).memory as Obj;
    let pages = 0;
    for (const [key, value] of Object.entries(memoryDump)) {
      const [, id, addr] = /^(.*) \(0x([0-9a-f]+)\)$/.exec(key)!;
      if (id !== "riscv_virt_board.ram") continue;
      const page = memory.block(id).page(parseInt(addr!, 16) / 4096);
      const expected = value === "Filled with 0x00" ? Array(4096).fill("00").join(" ") : value;
      expect(Array.from(page, (b) => b.toString(16).padStart(2, "0")).join(" ")).toBe(expected);
      pages++;
    }
    expect(pages).toBe(4096);
  });

  it("rejects a QEMU stream for another machine type", async () => {
    await expect(
      qemuLoadvmState(new QemuFileReader(fixture("qemu72-virt-hello-paused.mig")), new SaveVmRegistry(), { machineName: "spike" }),
    ).rejects.toThrow("Machine type received is 'virt' and local is 'spike'");
  });
});
