import { describe, expect, it } from "vitest";
import { qemuLoadvmState } from "./loadvm.ts";
import { QemuFileReader } from "./qemu-file.ts";
import { createTinyMachine, populateTinyMachine, saveTinyMachine, TINY_MACHINE } from "./testing.ts";
import { incomingRunState } from "./global-state.ts";

describe("save and load of a whole machine", () => {
  it("restores RAM, device objects, globalstate and an old-style section", async () => {
    const src = createTinyMachine({ ramPages: 8 });
    populateTinyMachine(src);
    const bytes = await saveTinyMachine(src);

    const dst = createTinyMachine({ ramPages: 8 });
    dst.memory.block("riscv_virt_board.ram").page(3).fill(0x55); // must become zero again
    const result = await qemuLoadvmState(new QemuFileReader(bytes), dst.registry, { machineName: TINY_MACHINE });

    for (const id of ["riscv_virt_board.ram", "riscv_virt_board.mrom"]) {
      expect(dst.memory.block(id).bytes).toEqual(src.memory.block(id).bytes);
    }
    expect(dst.serial).toEqual(src.serial);
    expect(dst.legacy).toEqual(src.legacy);
    expect(dst.globalState.received).toBe(true);
    expect(dst.globalState.state).toBe("running");
    expect(incomingRunState(dst.globalState)).toBe("running");
    expect(result.sections.map((s) => s.entry.idstr)).toEqual(["ram", "serial", "globalstate", "legacy"]);
    expect(result.vmdescLength).toBeGreaterThan(0);
  });

  it("keeps a VM saved while paused paused after the load", async () => {
    const src = createTinyMachine();
    populateTinyMachine(src);
    src.globalState.store("paused");
    const dst = createTinyMachine();
    await qemuLoadvmState(new QemuFileReader(await saveTinyMachine(src)), dst.registry, { machineName: TINY_MACHINE });
    expect(dst.globalState.state).toBe("paused");
    expect(incomingRunState(dst.globalState)).toBe("paused");
    expect(incomingRunState(dst.globalState, false)).toBe("paused");
  });

  it("counts pages as QEMU's query-migrate does", async () => {
    const src = createTinyMachine({ ramPages: 8 });
    populateTinyMachine(src);
    await saveTinyMachine(src);
    const c = src.ram.counters();
    // 10 pages: mrom page 0, ram pages 1 and 7 are not zero
    expect(c.normal).toBe(3);
    expect(c.duplicate).toBe(7);
    expect(c["normal-bytes"]).toBe(3 * 4096);
    expect(c["dirty-sync-count"]).toBe(2);
    expect(c.remaining).toBe(0);
    expect(c.total).toBe(10 * 4096);
    expect(c["downtime-bytes"]).toBe(c.transferred);
  });

  it("rejects a stream from another machine type, naming both", async () => {
    const src = createTinyMachine();
    const bytes = await saveTinyMachine(src);
    const dst = createTinyMachine();
    await expect(qemuLoadvmState(new QemuFileReader(bytes), dst.registry, { machineName: "sifive_u" })).rejects.toThrow(
      "Machine type received is 'virt' and local is 'sifive_u'",
    );
  });

  it("rejects a stream whose RAM size differs, naming the block", async () => {
    const bytes = await saveTinyMachine(createTinyMachine({ ramPages: 8 }));
    const dst = createTinyMachine({ ramPages: 4 });
    await expect(qemuLoadvmState(new QemuFileReader(bytes), dst.registry, { machineName: TINY_MACHINE })).rejects.toThrow(
      "RAM block 'riscv_virt_board.ram' has used length 0x8000 in the stream but 0x4000 here",
    );
  });

  it("rejects a stream with a device this machine lacks", async () => {
    const src = createTinyMachine();
    src.registry.registerVmstate({ name: "goldfish_rtc", version_id: 3, minimum_version_id: 1, fields: [] }, {});
    const bytes = await saveTinyMachine(src);
    await expect(
      qemuLoadvmState(new QemuFileReader(bytes), createTinyMachine().registry, { machineName: TINY_MACHINE }),
    ).rejects.toThrow("unknown section 'goldfish_rtc' instance 0");
  });
});
