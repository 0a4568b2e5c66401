import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { patchElfU64 } from "@ferryvm/cpu-wasm";
import { loadStateFromBytes, saveStateToBytes, vmdescJson } from "@ferryvm/vmstate";
import { createMachine, type Machine, type MachineOptions } from "./machine.ts";
import { MemoryBlockBackend } from "./virtio-blk.ts";

const RAM = 128 * 1024 * 1024;

function guest(path: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../../../guests/${path}`, import.meta.url)));
}

/** Saves every section of the machine (the migration side writes these into a stream). */
function saveSections(m: Machine): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const e of m.vmstateEntries()) out.set(`${e.idstr}#${e.instanceId}`, saveStateToBytes(e.vmsd, e.opaque as never));
  return out;
}

async function loadSections(m: Machine, sections: Map<string, Uint8Array>): Promise<void> {
  for (const e of m.vmstateEntries()) {
    const bytes = sections.get(`${e.idstr}#${e.instanceId}`);
    if (bytes === undefined) throw new Error(`no section ${e.idstr} ${e.instanceId}`);
    await loadStateFromBytes(bytes, e.vmsd, e.opaque as never, { versionId: e.vmsd.version_id });
  }
}

function copyRam(from: Machine, to: Machine): void {
  from.guestMemory.ramBlocks.forEach((b, i) => to.guestMemory.ramBlocks[i]!.bytes.set(b.bytes));
}

async function machine(options: MachineOptions, out: string[]): Promise<Machine> {
  return createMachine({ ramSize: RAM, onConsoleOutput: (b) => out.push(Buffer.from(b).toString("latin1")), ...options });
}

function hartBlock(m: Machine, h: number): Uint8Array {
  // The architectural part of the hart block: everything up to the run-control words.
  return new Uint8Array(m.memory.buffer, m.hart(h).base, 0x3a0).slice();
}

describe("the virt machine's section list", () => {
  it("follows QEMU 7.2's order and idstrs, a cpu_common/cpu pair per hart", async () => {
    const m = await createMachine({
      ramSize: 16 << 20,
      harts: 2,
      virtio: [
        { type: "virtio-blk-device", backend: { size: 4096, readOnly: false, read() {}, write() {}, flush() {} }, bus: 0 },
        { type: "virtio-rng-device", bus: 3 },
      ],
    });
    expect(m.vmstateEntries().map((e) => `${e.idstr}:${e.instanceId}:v${e.vmsd.version_id}`)).toEqual([
      "ferryvm/virt:0:v1",
      "timer:0:v2",
      "cpu_common:0:v1",
      "cpu:0:v5",
      "cpu_common:1:v1",
      "cpu:1:v5",
      "riscv_mtimer:0:v1",
      "riscv_sifive_plic:0:v1",
      "serial:0:v3",
      "goldfish_rtc:0:v3",
      "virtio-mmio@0000000010001000/virtio-blk:0:v2",
      "virtio-mmio@0000000010004000/virtio-rng:0:v1",
    ]);
  });

  it("registers into a registry in that order", async () => {
    const m = await createMachine({ ramSize: 16 << 20 });
    const seen: string[] = [];
    m.registerVmstate({
      registerVmstate(vmsd, _opaque, options) {
        seen.push(`${options.idstr}/${options.instanceId}/${vmsd.name}`);
      },
    });
    expect(seen).toEqual(m.vmstateEntries().map((e) => `${e.idstr}/${e.instanceId}/${e.vmsd.name}`));
  });

  it("rejects a stream of another hart count or RAM size, naming the field", async () => {
    const a = await createMachine({ ramSize: 16 << 20, harts: 2 });
    const b = await createMachine({ ramSize: 16 << 20, harts: 1 });
    const c = await createMachine({ ramSize: 32 << 20, harts: 2 });
    const bytes = saveStateToBytes(a.vmstateEntries()[0]!.vmsd, a.vmstateEntries()[0]!.opaque as never);
    await expect(loadStateFromBytes(bytes, b.vmstateEntries()[0]!.vmsd, b.vmstateEntries()[0]!.opaque as never, { versionId: 1 }))
      .rejects.toThrow(/ferryvm\/virt\/harts: loaded value 2 != local value 1/);
    await expect(loadStateFromBytes(bytes, c.vmstateEntries()[0]!.vmsd, c.vmstateEntries()[0]!.opaque as never, { versionId: 1 }))
      .rejects.toThrow(/ferryvm\/virt\/ram_size/);
  });

  it("rejects a stream whose virtio buses hold other devices", async () => {
    const a = await createMachine({ ramSize: 16 << 20, virtio: [{ type: "virtio-rng-device", bus: 2 }] });
    const b = await createMachine({ ramSize: 16 << 20, virtio: [{ type: "virtio-rng-device", bus: 1 }] });
    const bytes = saveStateToBytes(a.vmstateEntries()[0]!.vmsd, a.vmstateEntries()[0]!.opaque as never);
    await expect(loadStateFromBytes(bytes, b.vmstateEntries()[0]!.vmsd, b.vmstateEntries()[0]!.opaque as never, { versionId: 1 }))
      .rejects.toThrow(/virtio_ids\[1\]: loaded device id 0 != local 4/);
  });

  it("prints QEMU 7.2's vmdesc for cpu, plic, mtimer, timer and serial", async () => {
    const qemu = JSON.parse(
      readFileSync(new URL("../../vmstate/src/testdata/qemu-7.2-virt-vmdesc.json", import.meta.url), "utf8"),
    ) as Record<string, string>;
    const m = await createMachine({ ramSize: 16 << 20 });
    const find = (id: string) => m.vmstateEntries().find((e) => e.idstr === id)!;
    for (const id of ["riscv_sifive_plic", "riscv_mtimer", "timer", "serial"]) {
      const e = find(id);
      e.vmsd.pre_save?.(e.opaque as never);
      expect(vmdescJson(e.vmsd, e.opaque as never, { name: id, instanceId: 0 }), id).toBe(qemu[id]);
    }
    // QEMU's hart also has F, D and H, so its cpu entry lists cpu/hyper and cpu/debug: ours
    // must equal it with those two subsections left out.
    const cpu = find("cpu");
    const ours = JSON.parse(vmdescJson(cpu.vmsd, cpu.opaque as never, { name: "cpu", instanceId: 0 })) as {
      fields: unknown[];
      subsections: { vmsd_name: string }[];
    };
    const theirs = JSON.parse(qemu.cpu!) as typeof ours;
    expect(ours.fields).toEqual(theirs.fields);
    // cpu/isa_ext is ours (machine types from virt-1.1: the extensions misa does not show).
    expect(ours.subsections.map((s) => s.vmsd_name)).toEqual(["cpu/pmp", "cpu/envcfg", "cpu/isa_ext"]);
    expect(ours.subsections.slice(0, 2)).toEqual(theirs.subsections.filter((s) => s.vmsd_name === "cpu/pmp" || s.vmsd_name === "cpu/envcfg"));
  });
});

describe("a whole-machine save and restore", () => {
  it.each([1, 2])("continues the migration workload on %i hart(s): it keeps printing B, never A or E, and its pages show one edge", async (harts) => {
    const elf = guest("migration/a-b.elf");
    const out1: string[] = [];
    const m1 = await machine({ kernel: elf, harts }, out1);
    const r1 = await m1.run({ timeoutMs: 400 });
    expect(r1.kind).toBe("timeout");
    const before = out1.join("");
    expect(before).toMatch(/^AB+$/);

    const sections = saveSections(m1);
    const out2: string[] = [];
    const m2 = await machine({ kernel: elf, harts }, out2);
    copyRam(m1, m2);
    await loadSections(m2, sections);
    for (let h = 0; h < harts; h++) {
      expect(hartBlock(m2, h)).toEqual(hartBlock(m1, h));
      expect(m2.hart(h).wfi).toBe(m1.hart(h).wfi);
    }
    expect(m2.hart(0).pc).toBe(m1.hart(0).pc);
    // The same virtual time, mtime and next timer deadline: armed timers fire at the same guest time.
    expect(m2.clock.ns()).toBe(m1.clock.ns());
    expect(m2.clock.mtime).toBe(m1.clock.mtime);
    expect(m2.cpu.mtime).toBe(m1.clock.mtime);
    expect(m2.hart(0).timerDeadline).toBe(m1.hart(0).timerDeadline);
    expect(m2.clock.nsForMtime(m2.hart(0).timerDeadline)).toBe(m1.clock.nsForMtime(m1.hart(0).timerDeadline));

    const r2 = await m2.run({ timeoutMs: 600 });
    expect(r2.kind).toBe("timeout");
    const after = out2.join("");
    expect(after).toMatch(/^B+$/);
    expect(after.length).toBeGreaterThanOrEqual(2);

    // Every page's first byte holds the pass count n or n+1, the n+1 pages first (one edge).
    const ram = m2.guestMemory.ramBlocks[0]!.bytes;
    const first = ram[0x10_0000]!;
    let edge = false;
    for (let off = 0x10_0000; off < 0x640_0000; off += 4096) {
      const v = ram[off]!;
      if (v === first && !edge) continue;
      edge = true;
      expect((first - v) & 0xff, `page at 0x${off.toString(16)}`).toBe(1);
    }
    // The first page counts every finished pass (each printed a B), or one more mid-pass.
    expect((first - (before.length - 1 + after.length)) & 0xff).toBeLessThanOrEqual(1);
  });

  it("makes the restored machine execute exactly as the original would have", async () => {
    const elf = patchElfU64(guest("migration/a-b.elf"), "mig_end", 0x8020_0000n);
    const m1 = await machine({ kernel: elf }, []);
    await m1.run({ timeoutMs: 100 });
    const sections = saveSections(m1);
    const m2 = await machine({ kernel: elf }, []);
    copyRam(m1, m2);
    await loadSections(m2, sections);
    for (const m of [m1, m2]) {
      m.cpu.mtime = 12345n;
      for (let i = 0; i < 20; i++) m.cpu.run(0, 50_000);
    }
    expect(hartBlock(m2, 0)).toEqual(hartBlock(m1, 0));
    expect(m2.guestMemory.ramBlocks[0]!.bytes.subarray(0x10_0000, 0x20_0000)).toEqual(
      m1.guestMemory.ramBlocks[0]!.bytes.subarray(0x10_0000, 0x20_0000),
    );
  });
});

describe("the virt payload (OpenSBI, virtio-blk/rng/console, PLIC, SBI timer) migrated many times", () => {
  it.each([
    { legacy: false, slice: 20_000 },
    { legacy: true, slice: 60_000 },
  ])("passes every check when each run slice goes on in another machine restored from the last (legacy virtio-mmio: $legacy)", async ({ legacy, slice }) => {
    const disk = new Uint8Array(65536);
    disk.set(new TextEncoder().encode("FerryVM test disk: hello from sector 0\n"));
    for (let i = 512; i < 1024; i++) disk[i] = (i * 13) & 255;
    const kernel = guest("virt/virt.elf");
    const bios = new Uint8Array(readFileSync(new URL("../firmware/opensbi-riscv64-generic-fw_dynamic.bin", import.meta.url)));
    let out = "";
    let vcon = "";
    const make = () =>
      createMachine({
        ramSize: RAM,
        bios,
        kernel,
        slice,
        virtioLegacy: legacy,
        virtio: [
          { type: "virtio-blk-device", backend: new MemoryBlockBackend(disk) }, // shared storage
          { type: "virtio-rng-device" },
          { type: "virtio-serial-device", onOutput: (b) => { vcon += new TextDecoder().decode(b); } },
        ],
        onConsoleOutput: (b) => {
          out += new TextDecoder().decode(b);
        },
      });
    // Three machines in turn: each load lands on a machine that last ran two hops earlier, so
    // whatever the load does not overwrite would show.
    const pool = [await make(), await make(), await make()];
    let current = pool[0]!;
    let sent = false;
    const step = () => {
      // Host input goes to the machine that runs next (input a machine has not taken is host
      // state, not guest state, as in QEMU's chardevs).
      if (!sent && out.includes("uart: waiting for input")) {
        sent = true;
        current.sendConsoleInput(new TextEncoder().encode("x"));
      }
      return current.run({ timeoutMs: 1 });
    };
    let hops = 0;
    let result = await step();
    while (result.kind === "timeout" && hops < 400) {
      const sections = saveSections(current);
      const next = pool[(hops + 1) % pool.length]!;
      copyRam(current, next);
      await loadSections(next, sections);
      current = next;
      hops++;
      result = await step();
    }
    expect(result).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
    expect(hops).toBeGreaterThan(20);
    const payload = out.slice(out.indexOf("virt: S-mode payload"));
    expect(payload, out).toContain("virt: all passed");
    expect(payload).not.toContain("FAIL");
    expect(payload).toContain("uart: irq 10 got 'x'");
    expect(vcon).toBe("hello through virtio-console transmitq0\n!\n");
    expect(disk.subarray(1024, 1536)).toEqual(new Uint8Array(512).map((_, i) => (i * 7 + 3) & 255));
  });
});
