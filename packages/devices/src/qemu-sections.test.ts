/**
 * Sections QEMU 7.2 saved from `virt` (test-fixtures/qemu-7.2-sections: the bodies of a
 * stream of guests/migration/a-b.elf run for 0.7 s under
 * `qemu-system-riscv64 -M virt -cpu rv64,f=off,d=off,h=off,debug=off -bios none -nic none`,
 * and of an idle `virt` with a virtio-blk-device on virtio-mmio-bus.0, force-legacy=false)
 * load into our devices and save back to the same bytes.
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { loadStateFromBytes, saveStateToBytes, vmstateDumpJson, type VMStateDescription } from "@ferryvm/vmstate";
import { vmstateRiscvMtimer } from "./clint-vmstate.ts";
import { vmstateGoldfishRtc } from "./goldfish-rtc-vmstate.ts";
import { vmstateRiscvSifivePlic } from "./plic-vmstate.ts";
import { vmstateSerialMm } from "./uart16550-vmstate.ts";
import { createMachine, type Machine } from "./machine.ts";
import { MemoryBlockBackend } from "./virtio-blk.ts";

function fixture(name: string): Uint8Array {
  const bytes = readFileSync(new URL(`../test-fixtures/qemu-7.2-sections/${name}`, import.meta.url));
  return new Uint8Array(name.endsWith(".gz") ? gunzipSync(bytes) : bytes);
}

async function roundTrip(m: Machine, idstr: string, bytes: Uint8Array): Promise<Uint8Array> {
  const e = m.vmstateEntries().find((x) => x.idstr === idstr)!;
  await loadStateFromBytes(bytes, e.vmsd, e.opaque as never, { versionId: e.vmsd.version_id });
  return saveStateToBytes(e.vmsd, e.opaque as never);
}

describe("QEMU 7.2's sections load into our devices and save back to the same bytes", () => {
  for (const id of ["timer", "riscv_mtimer", "riscv_sifive_plic", "serial", "goldfish_rtc"]) {
    it(id, async () => {
      const m = await createMachine({ ramSize: 128 << 20 });
      const bytes = fixture(`a-b-${id}.bin`);
      expect(await roundTrip(m, id, bytes)).toEqual(bytes);
    });
  }

  it("cpu_common and cpu (a hart without F, D, H and triggers, mid-run)", async () => {
    const m = await createMachine({ ramSize: 128 << 20 });
    // The timer first, as in the stream: the hart's mip reads MTIP against the restored clock.
    await roundTrip(m, "timer", fixture("a-b-timer.bin"));
    const common = fixture("a-b-cpu_common.bin");
    const cpu = fixture("a-b-cpu.bin");
    const e = m.vmstateEntries().filter((x) => x.idstr === "cpu_common" || x.idstr === "cpu");
    await loadStateFromBytes(common, e[0]!.vmsd, e[0]!.opaque as never, { versionId: 1 });
    await loadStateFromBytes(cpu, e[1]!.vmsd, e[1]!.opaque as never, { versionId: 5 });
    await roundTrip(m, "riscv_mtimer", fixture("a-b-riscv_mtimer.bin"));
    expect(m.hart(0).pc).toBeGreaterThanOrEqual(0x8000_0000n);
    expect(saveStateToBytes(e[0]!.vmsd, e[0]!.opaque as never)).toEqual(common);
    const again = saveStateToBytes(e[1]!.vmsd, e[1]!.opaque as never);
    // Ours adds cpu/ferryvm (the counters QEMU does not save); the rest is QEMU's bytes.
    expect(again.subarray(0, cpu.length)).toEqual(cpu);
  });

  it("the virtio-blk device's section (QEMU's hand-written virtio layout)", async () => {
    const m = await createMachine({
      ramSize: 128 << 20,
      virtio: [{ type: "virtio-blk-device", backend: new MemoryBlockBackend(new Uint8Array(1 << 20)), bus: 0 }],
    });
    const bytes = fixture("idle-virtio-blk.bin.gz");
    const again = await roundTrip(m, "virtio-mmio@0000000010001000/virtio-blk", bytes);
    // QEMU refreshes its copy of the config space only when the guest reads it (these bytes
    // are stale zeros there); ours are the device's current config. The rest is QEMU's.
    const CONFIG = 24;
    const config = m.virtio[0]!.device!.config();
    expect(config.length).toBe(new DataView(bytes.buffer).getUint32(CONFIG - 4));
    expect(again.subarray(CONFIG, CONFIG + config.length)).toEqual(config);
    expect(again.subarray(0, CONFIG)).toEqual(bytes.subarray(0, CONFIG));
    expect(again.subarray(CONFIG + config.length)).toEqual(bytes.subarray(CONFIG + config.length));
  });
});

describe("our descriptions against QEMU 7.2's -dump-vmstate", () => {
  it("match QEMU's for serial-mm, the PLIC, the mtimer and the RTC, but for our own subsections", () => {
    const qemuText = readFileSync(new URL("../../vmstate/src/testdata/qemu-7.2-virt-dump-vmstate.json", import.meta.url), "utf8");
    const ours = vmstateDumpJson(
      {
        "riscv.sifive.plic": vmstateRiscvSifivePlic as VMStateDescription<never>,
        "riscv.aclint.mtimer": vmstateRiscvMtimer as VMStateDescription<never>,
        goldfish_rtc: vmstateGoldfishRtc as VMStateDescription<never>,
        "serial-mm": vmstateSerialMm as VMStateDescription<never>,
      },
      { machine: "virt" },
    );
    interface Node {
      [k: string]: unknown;
    }
    // Host struct sizes are QEMU's sizeof (ours print 0); FerryVM's subsections are extra
    // state QEMU's checker accepts on the destination.
    const normalize = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.filter((x) => !String((x as Node).name ?? "").endsWith("/ferryvm")).map(normalize);
      if (v !== null && typeof v === "object") {
        const o: Node = {};
        for (const [k, x] of Object.entries(v as Node)) o[k] = k === "size" && "Description" in (v as Node) ? 0 : normalize(x);
        if (Array.isArray(o.Subsections) && o.Subsections.length === 0) delete o.Subsections;
        return o;
      }
      return v;
    };
    expect(normalize(JSON.parse(ours))).toEqual(normalize(JSON.parse(qemuText)));
  });
});
