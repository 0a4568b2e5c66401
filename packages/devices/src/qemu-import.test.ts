/**
 * A running QEMU 7.2 `virt` moves into FerryVM: QEMU runs guests/migration/a-b.elf, stops and
 * saves with `migrate "exec:cat > FILE"`; the test reads that stream (RAM pages into our RAM
 * blocks, each section we model through our descriptions, the others skipped by their
 * footers) into a fresh machine, which then goes on printing B. Skipped without QEMU.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ByteReader, loadState } from "@ferryvm/vmstate";
import { createMachine, type Machine } from "./machine.ts";
import { qemuSaveStream, sleep } from "./testing/qemu-hmp.ts";

const hasQemu = spawnSync("qemu-system-riscv64", ["--version"]).status === 0;
const elfPath = fileURLToPath(new URL("../../../guests/migration/a-b.elf", import.meta.url));

async function qemuStream(dir: string): Promise<Uint8Array> {
  const args = [
    "-M", "virt", "-cpu", "rv64,f=off,d=off,h=off,debug=off", "-m", "128M", "-bios", "none", "-nic", "none",
    "-display", "none", "-serial", "null", "-S", "-kernel", elfPath,
  ];
  return qemuSaveStream(args, join(dir, "a-b.mig"), async (hmp) => {
    await sleep(300);
    hmp("cont");
    await sleep(1000); // past the guest's "A" and a few passes, even on a loaded machine
    hmp("stop");
  });
}

/** Reads a QEMU 7.2 stream into the machine (the part of qemu_loadvm_state this needs). */
async function importStream(m: Machine, bytes: Uint8Array): Promise<string[]> {
  const r = new ByteReader(bytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const skipTo = async (at: number) => r.skip(at - r.position);
  const str8 = async () => {
    await r.fill(1);
    const n = r.getU8();
    const s = new Uint8Array(n);
    await r.readInto(s);
    return new TextDecoder().decode(s);
  };
  await r.fill(8);
  expect(r.getBe32()).toBe(0x5145564d);
  expect(r.getBe32()).toBe(3);
  await r.fill(5);
  expect(r.getU8()).toBe(0x07);
  await r.skip(r.getBe32()); // machine name
  const blocks = new Map(m.guestMemory.ramBlocks.map((b) => [b.idstr, b.bytes]));
  const loaded: string[] = [];
  let block: Uint8Array | undefined;
  const ram = async () => {
    for (;;) {
      await r.fill(8);
      const word = r.getBe64();
      const flags = Number(word & 0xfffn);
      const addr = Number(word & ~0xfffn);
      if (flags & 0x04) {
        let left = addr;
        while (left > 0) {
          await str8();
          await r.fill(8);
          left -= Number(r.getBe64());
        }
        continue;
      }
      if (flags & 0x10) return;
      if (!(flags & 0x20)) block = blocks.get(await str8());
      if (flags & 0x02) {
        await r.fill(1);
        const fill = r.getU8();
        if (block !== undefined) block.fill(fill, addr, addr + 4096);
      } else if (flags & 0x08) {
        const page = new Uint8Array(4096);
        await r.readInto(page);
        if (block !== undefined) block.set(page, addr);
      } else {
        throw new Error(`RAM flags 0x${flags.toString(16)}`);
      }
    }
  };
  const footer = async () => {
    await r.fill(5);
    expect(r.getU8()).toBe(0x7e);
    r.getBe32();
  };
  for (;;) {
    await r.fill(1);
    const type = r.getU8();
    if (type === 0x00) break; // QEMU_VM_EOF
    if (type === 0x02 || type === 0x03) {
      await r.fill(4);
      r.getBe32();
      await ram();
      await footer();
      continue;
    }
    expect([0x01, 0x04]).toContain(type);
    await r.fill(4);
    const sectionId = r.getBe32();
    const idstr = await str8();
    await r.fill(8);
    const instanceId = r.getBe32();
    const version = r.getBe32();
    if (idstr === "ram") {
      await ram();
    } else {
      const e = m.vmstateEntries().find((x) => x.idstr === idstr && x.instanceId === instanceId);
      if (e !== undefined) {
        await loadState(r, e.vmsd, e.opaque as never, version);
        loaded.push(idstr);
      } else {
        // Not modelled (PCIe host, pflash, fw_cfg, globalstate): skip to its footer.
        let at = r.position;
        while (!(bytes[at] === 0x7e && dv.getUint32(at + 1) === sectionId && [0x00, 0x02, 0x03, 0x04].includes(bytes[at + 5]!))) {
          if (++at + 6 > bytes.length) throw new Error(`no footer for section ${idstr}`);
        }
        await skipTo(at);
      }
    }
    await footer();
  }
  return loaded;
}

describe("a QEMU 7.2 stream imported into FerryVM", () => {
  it.skipIf(!hasQemu)("continues QEMU's a-b run: the guest keeps printing B on FerryVM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ferryvm-import-"));
    try {
      const bytes = await qemuStream(dir);
      let out = "";
      const m = await createMachine({
        ramSize: 128 << 20,
        kernel: readFileSync(elfPath),
        onConsoleOutput: (b) => (out += Buffer.from(b).toString("latin1")),
      });
      const loaded = await importStream(m, bytes);
      expect(loaded).toEqual(["timer", "cpu_common", "cpu", "riscv_mtimer", "riscv_sifive_plic", "serial", "goldfish_rtc"]);
      expect(m.hart(0).pc).toBeGreaterThanOrEqual(0x8000_0000n);
      const ram = m.guestMemory.ramBlocks[0]!.bytes;
      const passes = ram[0x10_0000]!;
      for (let i = 0; i < 20 && out.length < 2; i++) expect((await m.run({ timeoutMs: 300 })).kind).toBe("timeout");
      expect(out).toMatch(/^B+$/);
      // QEMU made `passes` passes (or was in the next one); ours continued from there.
      expect((ram[0x10_0000]! - passes) & 0xff).toBeGreaterThanOrEqual(out.length - 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
