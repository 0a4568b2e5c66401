// The "Backwards compatibility" scenarios of QEMU's migration documentation, with our releases:
// the golden stream of a machine type stands for the release that introduced it ("A"), the
// current code for the newer release ("B", "C"). See goldens.ts.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FIRMWARE_ROM_BLOCK_NAME, VirtioBlk, type Machine } from "@ferryvm/devices";
import { checkVmdescCompat, type Vmdesc } from "@ferryvm/migration";
import { main, type CliIo } from "../main.ts";
import { loadMachine } from "../snapshot/vm-state.ts";
import { goldenArgs, listGoldens, machineFromArgs, saveToBytes, streamVmdesc, type Golden } from "./goldens.ts";

const golden10 = listGoldens().find((g) => g.meta.machineType === "virt-1.0")!;

/** A machine with the golden's configuration as `machineType` (plus `extra` arguments). */
async function machineAs(g: Golden, machineType: string, extra: string[] = []): Promise<{ machine: Machine; console: () => string; cleanup: () => void }> {
  const { args, cleanup } = goldenArgs(g, machineType);
  let out = "";
  const machine = await machineFromArgs([...args, ...extra], (b) => (out += new TextDecoder().decode(b)));
  return { machine, console: () => out, cleanup };
}

/** Runs the guest `ms` and checks it made passes without finding a wrong page. */
async function runsOn(m: { machine: Machine; console: () => string }, ms = 250): Promise<void> {
  const before = m.console().length;
  const r = await m.machine.run({ timeoutMs: ms });
  expect(r.kind).toBe("timeout");
  const seen = m.console().slice(before);
  expect(seen).toMatch(/B/);
  expect(m.console()).not.toMatch(/E/);
}

function sections(d: Vmdesc): string[] {
  return d.devices.map((s) => s.name);
}

function blk(m: Machine): VirtioBlk {
  return m.virtio.map((t) => t.device).find((d): d is VirtioBlk => d instanceof VirtioBlk)!;
}

function subsectionNames(d: Vmdesc): string[] {
  const names: string[] = [];
  const walk = (s: { subsections?: { vmsd_name: string; fields?: unknown[]; subsections?: unknown[] }[]; fields?: unknown[] }) => {
    for (const sub of s.subsections ?? []) {
      names.push(sub.vmsd_name);
      walk(sub as never);
    }
    for (const f of (s.fields ?? []) as { struct?: unknown }[]) if (f.struct !== undefined) walk(f.struct as never);
  };
  for (const dev of d.devices) walk(dev as never);
  return names;
}

describe("machine types keep the old behaviour", () => {
  it("virt-1.0 pins what virt-1.1 changed: one virtio-blk queue, no rng quota, the retired field, no CPU isa_ext, no firmware ROM", async () => {
    const old = await machineAs(golden10, "virt-1.0", ["-device", "virtio-rng-device,max-bytes=1024,period=1000"]);
    const now = await machineAs(golden10, "virt-1.1", ["-device", "virtio-rng-device,max-bytes=1024,period=1000"]);
    try {
      expect(old.machine.config.machineType.name).toBe("virt-1.0");
      expect(now.machine.config.machineType.name).toBe("virt-1.1");
      // -smp 2: num-queues' new default (auto) is one queue per hart.
      expect(blk(old.machine).numQueues).toBe(1);
      expect(blk(now.machine).numQueues).toBe(2);
      expect(old.machine.config.virtio[0]!.origin("num-queues")).toBe("compat virt-1.0");
      const oldDesc = streamVmdesc(await saveToBytes(old.machine));
      const nowDesc = streamVmdesc(await saveToBytes(now.machine));
      expect(subsectionNames(oldDesc)).not.toContain("virtio-rng-device/quota");
      expect(subsectionNames(nowDesc)).toContain("virtio-rng-device/quota");
      expect(subsectionNames(oldDesc)).not.toContain("cpu/isa_ext");
      expect(subsectionNames(nowDesc)).toContain("cpu/isa_ext");
      const fields = (d: Vmdesc) => d.devices.find((s) => s.name === "ferryvm/virt")!.fields?.map((f) => f.name) ?? [];
      expect(fields(oldDesc)).toContain("plic_sources");
      expect(fields(nowDesc)).not.toContain("plic_sources");
      expect(sections(oldDesc)).toEqual(sections(nowDesc));
    } finally {
      old.cleanup();
      now.cleanup();
    }
  });

  it("a -global or -device option still overrides the machine type's compat value", async () => {
    const m = await machineAs(golden10, "virt-1.0", ["-global", "virtio-blk-device.num-queues=2"]);
    try {
      expect(blk(m.machine).numQueues).toBe(2);
      expect(m.machine.config.virtio[0]!.origin("num-queues")).toBe("-global");
    } finally {
      m.cleanup();
    }
  });
});

describe("older release to newer (case 6)", () => {
  it("the golden virt-1.0 stream loads into this release's virt-1.0 and the guest runs on", async () => {
    const b = await machineAs(golden10, "virt-1.0");
    try {
      await loadMachine(b.machine, golden10.stream());
      await runsOn(b);
    } finally {
      b.cleanup();
    }
  });

  it("fails, naming both machine types, when the destination runs another type", async () => {
    const b = await machineAs(golden10, "virt-1.0");
    const other = await machineAs(golden10, "virt");
    try {
      await runsOn(b, 100);
      await expect(loadMachine(other.machine, await saveToBytes(b.machine))).rejects.toThrow(
        "Machine type received is 'virt-1.0' and local is 'virt-1.1' (a stream loads only into the machine type that saved it: start this side with -M virt-1.0)",
      );
      // The golden itself was recorded by the release that still called the type `virt`, which
      // QEMU's prefix comparison accepts for any virt-X.Y: the device sections then disagree
      // (virt-1.1 retired a field), and the load fails naming the section.
      await expect(loadMachine(other.machine, golden10.stream())).rejects.toThrow(/ferryvm\/virt/);
    } finally {
      b.cleanup();
      other.cleanup();
    }
  });
});

describe("newer release to older (case 5), checked through the golden vmdesc", () => {
  it("what this release writes as virt-1.0 the release that recorded the golden can load", async () => {
    const b = await machineAs(golden10, "virt-1.0");
    try {
      await runsOn(b, 150);
      const ours = streamVmdesc(await saveToBytes(b.machine));
      const theirs = streamVmdesc(golden10.stream());
      expect(checkVmdescCompat(ours, theirs, { sameState: true }).errors).toEqual([]);
    } finally {
      b.cleanup();
    }
  });

  it("what it writes as virt-1.1 the older release could not load, and the checker says why", async () => {
    const b = await machineAs(golden10, "virt-1.1");
    try {
      await runsOn(b, 150);
      const ours = streamVmdesc(await saveToBytes(b.machine));
      const { errors } = checkVmdescCompat(ours, streamVmdesc(golden10.stream()), { sameState: true });
      const text = errors.map((e) => `${e.code} ${e.path}`).join("\n");
      expect(text).toMatch(/ferryvm\/virt/); // plic_sources retired
      expect(text).toMatch(/cpu\/isa_ext/); // a subsection the old release does not know
      expect(text).toMatch(/virtio/); // two request queues
    } finally {
      b.cleanup();
    }
  });
});

describe("A -> B -> C (A: the release that introduced virt-1.0; B, C: this release with -M virt-1.0)", () => {
  it("the middle hop keeps the old behaviour, so C loads B's stream, the guest runs on, and B's stream could go back to A", async () => {
    const b = await machineAs(golden10, "virt-1.0");
    const c = await machineAs(golden10, "virt-1.0");
    try {
      await loadMachine(b.machine, golden10.stream());
      await runsOn(b);
      expect(blk(b.machine).numQueues).toBe(1);
      const bc = await saveToBytes(b.machine);
      await loadMachine(c.machine, bc);
      await runsOn(c);
      expect(blk(c.machine).numQueues).toBe(1);
      const a = streamVmdesc(golden10.stream());
      expect(checkVmdescCompat(streamVmdesc(bc), a, { sameState: true }).errors).toEqual([]);
      expect(checkVmdescCompat(a, streamVmdesc(bc), { sameState: true }).errors).toEqual([]);
    } finally {
      b.cleanup();
      c.cleanup();
    }
  });

  it("a middle hop that took the new default would have broken it: the load fails naming num-queues", async () => {
    const b = await machineAs(golden10, "virt-1.0", ["-global", "virtio-blk-device.num-queues=2"]);
    try {
      await expect(loadMachine(b.machine, golden10.stream())).rejects.toThrow(/num-queues/);
    } finally {
      b.cleanup();
    }
  });
});

describe("mismatches fail clearly", () => {
  function io() {
    let err = "";
    const cli: CliIo = { stdout: () => {}, stderr: (t) => void (err += t), stdin: null, isTTY: false, readFile: (p) => readFileSync(p) };
    return { cli, err: () => err };
  }

  it("an unknown machine type, with QEMU's text", async () => {
    const t = io();
    expect(await main(["run", "-M", "virt-2.0", "-bios", "none", "-nographic"], t.cli)).toBe(1);
    expect(t.err()).toBe("vm-cli: -M: unsupported machine type 'virt-2.0'\nUse -machine help to list supported machines\n");
  });

  it("a section version newer than this release loads", async () => {
    const stream = golden10.stream().slice();
    const name = new TextEncoder().encode("riscv_sifive_plic");
    let at = -1;
    for (let i = 0; i < stream.length - name.length && at < 0; i++) {
      if (stream[i] === name.length && name.every((b, j) => stream[i + 1 + j] === b)) at = i;
    }
    expect(at).toBeGreaterThan(0);
    const version = new DataView(stream.buffer, stream.byteOffset + at + 1 + name.length + 4, 4);
    version.setUint32(0, version.getUint32(0) + 1);
    const b = await machineAs(golden10, "virt-1.0");
    try {
      await expect(loadMachine(b.machine, stream)).rejects.toThrow(/version \d+ too new for 'riscv_sifive_plic' \(local \d+\): the stream comes from a newer release/);
    } finally {
      b.cleanup();
    }
  });

  it("a CPU extension the destination lacks, named (misa's c, and sstc through cpu/isa_ext)", async () => {
    const src = await machineAs(golden10, "virt-1.1");
    const noC = await machineAs(golden10, "virt-1.1", ["-cpu", "rv64,c=off"]);
    const noSstc = await machineAs(golden10, "virt-1.1", ["-cpu", "rv64,sstc=off"]);
    try {
      await runsOn(src, 100);
      const bytes = await saveToBytes(src.machine);
      await expect(loadMachine(noC.machine, bytes)).rejects.toThrow(/extension 'c'/);
      await expect(loadMachine(noSstc.machine, bytes)).rejects.toThrow(/sstc/);
    } finally {
      src.cleanup();
      noC.cleanup();
      noSstc.cleanup();
    }
  });
});

describe("the firmware ROM", () => {
  it("travels with the VM from virt-1.1: the destination keeps the source's firmware after a reset, and a bigger local firmware is resized to the stream's", async () => {
    const { createMachine } = await import("@ferryvm/devices");
    const fw = new Uint8Array(70_000).map((_, i) => (i * 7 + 1) & 0xff); // 70 KB: a 128 KiB ROM
    const bigger = new Uint8Array(200_000).map((_, i) => (i * 13 + 5) & 0xff); // 256 KiB ROM
    const src = await createMachine({ ramSize: 16 << 20, bios: fw });
    const dst = await createMachine({ ramSize: 16 << 20, bios: bigger });
    const rom = (m: Machine) => m.guestMemory.ramBlocks.find((b) => b.idstr === FIRMWARE_ROM_BLOCK_NAME)!;
    expect(rom(src).usedLength).toBe(128 * 1024);
    expect(rom(dst).usedLength).toBe(256 * 1024);
    await loadMachine(dst, await saveToBytes(src));
    expect(rom(dst).usedLength).toBe(128 * 1024);
    dst.reset();
    expect(dst.physicalMemory.view(0x8000_0000n, fw.length)).toEqual(fw);
    const old = await createMachine({ ramSize: 16 << 20, bios: fw, machineType: "virt-1.0" });
    expect(old.guestMemory.ramBlocks.some((b) => b.idstr === FIRMWARE_ROM_BLOCK_NAME)).toBe(false);
  });
});
