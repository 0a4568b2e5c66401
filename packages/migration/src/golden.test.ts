import { GuestMemory } from "@ferryvm/memory";
import { MigrationPriority, vmstateUint16, vmstateUint32, vmstateUint8, type VMStateDescription } from "@ferryvm/vmstate";
import { describe, expect, it } from "vitest";
import { GlobalState, registerGlobalState } from "./global-state.ts";
import { SaveVmRegistry } from "./handlers.ts";
import { qemuLoadvmState } from "./loadvm.ts";
import { MemorySink, QemuFileReader, QemuFileWriter } from "./qemu-file.ts";
import { RamMigration } from "./ram.ts";
import { qemuSavevmState } from "./savevm.ts";

/** Byte builder for the expected stream; each call is one field of the format. */
class Bytes {
  readonly out: number[] = [];
  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  be16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  be32(v: number): this {
    return this.be16(v >>> 16).be16(v & 0xffff);
  }
  be64(v: number): this {
    return this.be32(Math.floor(v / 2 ** 32)).be32(v >>> 0);
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.out.push(bytes[i]!);
    return this;
  }
  str8(s: string): this {
    return this.u8(s.length).raw(new TextEncoder().encode(s));
  }
  text(s: string): this {
    return this.raw(new TextEncoder().encode(s));
  }
}

interface Dev {
  value: number;
  extra: number;
}
const vmstateDev: VMStateDescription<Dev> = {
  name: "dev",
  version_id: 2,
  minimum_version_id: 1,
  fields: [vmstateUint32("value")],
  subsections: [{ name: "dev/sub", version_id: 1, minimum_version_id: 1, needed: (d) => d.extra !== 0, fields: [vmstateUint16("extra")] }],
};
const vmstateHi: VMStateDescription<{ b: number }> = {
  name: "hi",
  version_id: 1,
  minimum_version_id: 1,
  priority: MigrationPriority.MAX,
  fields: [vmstateUint8("b")],
};
const vmstateSkipped: VMStateDescription<{ x: number }> = {
  name: "skipped",
  version_id: 1,
  minimum_version_id: 1,
  needed: () => false,
  fields: [vmstateUint8("x")],
};

function machine() {
  const memory = GuestMemory.createSync({
    ram: [
      { idstr: "pc.rom", size: 0x1000 }, // created first, but smaller: sent second
      { idstr: "pc.ram", size: 0x2000 },
    ],
  });
  const registry = new SaveVmRegistry();
  new RamMigration(memory).register(registry); // section id 0
  const dev: Dev = { value: 0, extra: 0 };
  registry.registerVmstate(vmstateDev, dev); // id 1
  const hi = { b: 0 };
  registry.registerVmstate(vmstateHi, hi); // id 2, priority MAX: saved first
  const gs = new GlobalState("running");
  registerGlobalState(registry, gs); // id 3
  registry.registerVmstate(vmstateSkipped, { x: 1 }); // id 4, never sent
  return { memory, registry, dev, hi, gs };
}

const VMDESC =
  '{"page_size": 4096, "devices": [' +
  '{"name": "hi", "instance_id": 0, "vmsd_name": "hi", "version": 1, "fields": [{"name": "b", "type": "uint8", "size": 1}]}, ' +
  '{"name": "dev", "instance_id": 0, "vmsd_name": "dev", "version": 2, "fields": [{"name": "value", "type": "uint32", "size": 4}], ' +
  '"subsections": [{"vmsd_name": "dev/sub", "version": 1, "fields": [{"name": "extra", "type": "uint16", "size": 2}]}]}, ' +
  '{"name": "globalstate", "instance_id": 0, "vmsd_name": "globalstate", "version": 1, "fields": [' +
  '{"name": "size", "type": "uint32", "size": 4}, {"name": "runstate", "type": "buffer", "size": 100}]}]}';

function expectedStream(romPage: Uint8Array): Uint8Array {
  const b = new Bytes();
  b.be32(0x5145564d).be32(3); // magic "QEVM", version 3
  b.u8(0x07).be32(4).text("virt"); // CONFIGURATION: be32 len, machine name (no subsections)
  // START ram: type, section_id 0, idstr, instance 0, version 4
  b.u8(0x01).be32(0).str8("ram").be32(0).be32(4);
  b.be64(0x3000 | 0x04); // total used bytes | MEM_SIZE
  b.str8("pc.ram").be64(0x2000); // largest block first
  b.str8("pc.rom").be64(0x1000);
  b.be64(0x10); // EOS
  b.u8(0x7e).be32(0); // footer, section 0
  // PART ram (the first round sends every page)
  b.u8(0x02).be32(0);
  b.be64(0x0000 | 0x02).str8("pc.ram").u8(0); // ZERO page at 0 of pc.ram, fill byte 0
  b.be64(0x1000 | 0x02 | 0x20).u8(0); // ZERO | CONTINUE: same block, no idstr
  b.be64(0x0000 | 0x08).str8("pc.rom").raw(romPage); // PAGE at 0 of pc.rom + 4096 bytes
  b.be64(0x10); // EOS
  b.u8(0x7e).be32(0);
  // END ram: nothing dirty since
  b.u8(0x03).be32(0).be64(0x10).u8(0x7e).be32(0);
  // FULL hi (priority MAX first): section_id 2, idstr, instance 0, version 1, field b, footer
  b.u8(0x04).be32(2).str8("hi").be32(0).be32(1).u8(0x5a).u8(0x7e).be32(2);
  // FULL dev: value, then subsection 0x05 str8 name be32 version, extra
  b.u8(0x04).be32(1).str8("dev").be32(0).be32(2).be32(0xdeadbeef);
  b.u8(0x05).str8("dev/sub").be32(1).be16(0x1234);
  b.u8(0x7e).be32(1);
  // FULL globalstate: size = strlen("running") + 1, 100-byte runstate
  const runstate = new Uint8Array(100);
  runstate.set(new TextEncoder().encode("running"));
  b.u8(0x04).be32(3).str8("globalstate").be32(0).be32(1).be32(8).raw(runstate).u8(0x7e).be32(3);
  b.u8(0x00); // EOF ("skipped" is not needed: not sent, not in vmdesc)
  b.u8(0x06).be32(VMDESC.length).text(VMDESC); // VMDESCRIPTION
  return new Uint8Array(b.out);
}

describe("the stream of a tiny hand-made machine", () => {
  it("is byte for byte QEMU 7.2's layout", async () => {
    const m = machine();
    m.dev.value = 0xdeadbeef;
    m.dev.extra = 0x1234;
    m.hi.b = 0x5a;
    const rom = m.memory.block("pc.rom");
    for (let i = 0; i < 4096; i++) rom.bytes[i] = (i * 7) & 0xff;
    const sink = new MemorySink();
    const f = new QemuFileWriter(sink);
    const vmdesc = await qemuSavevmState(f, m.registry, { machineName: "virt" });
    await f.close();
    expect(vmdesc).toBe(VMDESC);
    expect(Buffer.from(sink.bytes()).toString("hex")).toBe(Buffer.from(expectedStream(rom.bytes.slice())).toString("hex"));
  });

  it("loads back into a fresh machine", async () => {
    const rom = new Uint8Array(4096).map((_, i) => i ^ 0x33);
    const m = machine();
    await qemuLoadvmState(new QemuFileReader(expectedStream(rom)), m.registry, { machineName: "virt" });
    expect(m.memory.block("pc.rom").bytes).toEqual(rom);
    expect(m.dev).toEqual({ value: 0xdeadbeef, extra: 0x1234 });
    expect(m.hi.b).toBe(0x5a);
    expect(m.gs.state).toBe("running");
  });
});
