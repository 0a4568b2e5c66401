import { describe, expect, it } from "vitest";
import { analyzeMigration, type AnalyzeJson } from "./analyze.ts";
import { qemuLoadvmState } from "./loadvm.ts";
import { migratableBlocks, ZERO_PAGE_COST } from "./ram.ts";
import { qemuSavevmStatePending, qemuSavevmStateSetup } from "./savevm.ts";
import { MemorySink, QemuFileWriter } from "./qemu-file.ts";
import { createTinyMachine, populateTinyMachine, QemuFileReader, saveTinyMachineLive, TINY_MACHINE, tinyStreamWithXbzrle } from "./testing.ts";

type Obj = { [key: string]: AnalyzeJson };

describe("the RAM section", () => {
  it("lists blocks largest first, ties in creation order, as QEMU's ram_list", () => {
    const m = createTinyMachine({ ramPages: 2 }); // mrom (2 pages) was created first
    expect(migratableBlocks(m.memory).map((b) => b.idstr)).toEqual(["riscv_virt_board.mrom", "riscv_virt_board.ram"]);
    const m2 = createTinyMachine({ ramPages: 8 });
    expect(migratableBlocks(m2.memory).map((b) => b.idstr)).toEqual(["riscv_virt_board.ram", "riscv_virt_board.mrom"]);
  });

  it("sends pages dirtied between rounds again, and the destination ends equal", async () => {
    const src = createTinyMachine({ ramPages: 16 });
    populateTinyMachine(src);
    const base = src.memory.block("riscv_virt_board.ram").base!;
    const bytes = await saveTinyMachineLive(src, 3, (r) => {
      src.memory.write(base + 4096 * (2 + r), new Uint8Array([0xc0 + r]));
    });
    const c = src.ram.counters();
    expect(c.normal + c.duplicate).toBe(18 + 3); // every page once, then the 3 dirtied ones
    expect(c["dirty-sync-count"]).toBe(5); // setup, 3 pending_exact, completion
    const dst = createTinyMachine({ ramPages: 16 });
    await qemuLoadvmState(new QemuFileReader(bytes), dst.registry, { machineName: TINY_MACHINE });
    expect(dst.memory.block("riscv_virt_board.ram").bytes).toEqual(src.memory.block("riscv_virt_board.ram").bytes);
  });

  it("sends XBZRLE deltas once a page is cached, and the destination decodes them", async () => {
    const { machine: src, bytes } = await tinyStreamWithXbzrle();
    const x = src.ram.xbzrleCounters();
    expect(x.pages).toBeGreaterThanOrEqual(1);
    expect(x["cache-miss"]).toBeGreaterThanOrEqual(1);
    expect(x.bytes).toBeGreaterThan(0);
    expect(x.bytes).toBeLessThan(100);
    const memory = ((analyzeMigration(bytes, { memory: true }) as Obj)["ram (0)"] as Obj).memory as Obj;
    expect(Object.values(memory).some((v) => (v as string).startsWith("XBZRLE "))).toBe(true);
    const dst = createTinyMachine({ ramPages: 4 });
    await qemuLoadvmState(new QemuFileReader(bytes), dst.registry, { machineName: TINY_MACHINE });
    expect(dst.memory.block("riscv_virt_board.ram").bytes).toEqual(src.memory.block("riscv_virt_board.ram").bytes);
  });

  it("estimates pending bytes from what dirty pages cost on the wire: zero pages are cheap", async () => {
    const m = createTinyMachine({ ramPages: 64 });
    const f = new QemuFileWriter(new MemorySink());
    await qemuSavevmStateSetup(f, m.registry);
    // 66 dirty pages, all zero: ZERO_PAGE_COST each rather than QEMU's 4096
    expect(qemuSavevmStatePending(m.registry, false).must_precopy).toBe(66 * ZERO_PAGE_COST);
    expect(m.ram.counters().remaining).toBe(66 * 4096);
    m.memory.block("riscv_virt_board.ram").bytes.fill(1);
    // the ram pages (64 of 66) are not zero any more: the estimate follows the sample
    const est = qemuSavevmStatePending(m.registry, false).must_precopy;
    expect(est).toBeGreaterThan(60 * 4104);
    expect(est).toBeLessThan(66 * 4104);
  });
});

describe("the RAM section's pending estimate", () => {
  it("samples the dirty pages uniformly: the unsent tail of a pass is not judged by its first pages", async () => {
    const m = createTinyMachine({ ramPages: 4096 });
    const f = new QemuFileWriter(new MemorySink());
    await qemuSavevmStateSetup(f, m.registry);
    const ram = m.memory.block("riscv_virt_board.ram");
    for (let p = 0; p < 1024; p++) ram.page(p).fill(1); // no dirty marking: as already-dirty pages
    const dirty = m.memory.dirty("migration");
    for (let p = 0; p < 512; p++) dirty.testAndClear(ram, p); // the pass sent these
    // left: 512 normal pages, then 3072 zero pages (+ the 2 zero mrom pages)
    const exact = 512 * 4104 + 3074 * ZERO_PAGE_COST;
    const est = qemuSavevmStatePending(m.registry, true).must_precopy;
    expect(Math.abs(est - exact) / exact).toBeLessThan(0.1);
    const quick = qemuSavevmStatePending(m.registry, false).must_precopy;
    expect(Math.abs(quick - exact) / exact).toBeLessThan(0.25);
  });
});

describe("the RAM section with x-ignore-shared", () => {
  it("adds each block's guest address to the block list, and loads it back", async () => {
    const { SaveVmRegistry } = await import("./handlers.ts");
    const { RamMigration } = await import("./ram.ts");
    const { qemuSavevmState } = await import("./savevm.ts");
    const make = () => {
      const m = createTinyMachine({ ramPages: 4 });
      const registry = new SaveVmRegistry();
      new RamMigration(m.memory, { ignoreShared: true }).register(registry);
      return { m, registry };
    };
    const src = make();
    populateTinyMachine(src.m);
    const sink = new MemorySink();
    const f = new QemuFileWriter(sink);
    const config = { machineName: TINY_MACHINE, capabilities: ["x-ignore-shared"] };
    await qemuSavevmState(f, src.registry, config);
    await f.close();
    const bytes = sink.bytes();
    const at = Buffer.from(bytes).indexOf("riscv_virt_board.ram") + 20;
    // used length 0x4000, then the guest address 0x80000000
    expect(Buffer.from(bytes.subarray(at, at + 16)).toString("hex")).toBe("0000000000004000" + "0000000080000000");
    const dst = make();
    await qemuLoadvmState(new QemuFileReader(bytes), dst.registry, config);
    expect(dst.m.memory.block("riscv_virt_board.ram").bytes).toEqual(src.m.memory.block("riscv_virt_board.ram").bytes);
  });
});
