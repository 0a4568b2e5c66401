// CPU features across migration: the cpu section's misa / env.features checks and the
// cpu/isa_ext subsection (cpu-vmstate.ts).
import { describe, expect, it } from "vitest";
import { CPU_HART_AREA_BASE, CPU_HART_BLOCK_SIZE, Cpu, type CpuIsa } from "@ferryvm/cpu-wasm";
import { loadStateFromBytes, saveStateToBytes, vmdescJson, type VMStateDescription } from "@ferryvm/vmstate";
import { HartState, vmstateRiscvCpu, type HartStateOptions } from "./cpu-vmstate.ts";

const cpus = new WeakMap<HartState, Cpu>();

function hart(isa: Partial<CpuIsa> = {}, options: HartStateOptions = {}): HartState {
  const pages = Math.ceil((CPU_HART_AREA_BASE + CPU_HART_BLOCK_SIZE) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const cpu = Cpu.createSync({ memory, harts: 1, mmio: { read: () => undefined, write: () => false }, isa });
  cpu.reset(0, 0x8000_0000n);
  const state = new HartState(cpu, 0, options);
  cpus.set(state, cpu);
  return state;
}

async function migrate(from: HartState, to: HartState, vmsd: VMStateDescription<HartState> = vmstateRiscvCpu): Promise<Uint8Array> {
  const bytes = saveStateToBytes(vmsd, from);
  await loadStateFromBytes(bytes, vmstateRiscvCpu, to);
  return bytes;
}

describe("CPU features in the cpu section", () => {
  it("a hart with the same extensions loads, with or without cpu/isa_ext", async () => {
    await expect(migrate(hart(), hart())).resolves.toBeInstanceOf(Uint8Array);
    await expect(migrate(hart({ c: false, m: false }), hart({ c: false, m: false }))).resolves.toBeInstanceOf(Uint8Array);
    await expect(migrate(hart({ sstc: false }, { migrateIsaExt: false }), hart({ sstc: false }))).resolves.toBeInstanceOf(Uint8Array);
  });

  it("a misa letter the destination lacks fails naming it", async () => {
    await expect(migrate(hart(), hart({ c: false }))).rejects.toThrow(
      "cpu: hart 0: the stream's CPU has extension 'c', which this CPU lacks (it runs with c=off)",
    );
    await expect(migrate(hart({ c: false }), hart({ m: false, c: false }))).rejects.toThrow(/has extension 'm'.*m=off/);
  });

  it("a misa letter the stream lacks fails too, naming it", async () => {
    await expect(migrate(hart({ a: false }), hart())).rejects.toThrow(
      "cpu: hart 0: the stream's CPU lacks extension 'a', which this CPU has (start it with a=off)",
    );
  });

  it("a letter this CPU does not implement (a QEMU stream with F) is named", async () => {
    const withF: VMStateDescription<HartState> = {
      ...vmstateRiscvCpu,
      pre_save: (s) => {
        s.capture();
        s["env.misa_ext"] |= 1 << 5;
      },
    };
    await expect(migrate(hart(), hart(), withF)).rejects.toThrow(
      "cpu: hart 0: the stream's CPU has extension 'f', which this CPU does not implement",
    );
  });

  it("a stream without cpu/ferryvm arms the Sstc timer only on a hart with sstc", async () => {
    const later: VMStateDescription<HartState> = {
      ...vmstateRiscvCpu,
      pre_save: (s) => {
        s.capture();
        s["env.stimecmp"] = 1000n;
      },
    };
    for (const sstc of [true, false]) {
      const to = hart({ sstc });
      const cpu = cpus.get(to)!;
      cpu.hart(0).mtimecmp = 5000n;
      await migrate(hart({ sstc }), to, later);
      // mtime is 0: an armed stimecmp of 1000 comes before mtimecmp.
      expect(cpu.hart(0).timerDeadline).toBe(sstc ? 1000n : 5000n);
    }
  });

  it("mmu and pmp travel in QEMU's env.features even without cpu/isa_ext", async () => {
    await expect(migrate(hart({}, { migrateIsaExt: false }), hart({ pmp: false }))).rejects.toThrow(
      "cpu: hart 0: the stream's CPU has extension 'pmp', which this CPU lacks (it runs with pmp=off)",
    );
    await expect(migrate(hart({ mmu: false }, { migrateIsaExt: false }), hart())).rejects.toThrow(
      "the stream's CPU lacks extension 'mmu', which this CPU has (start it with mmu=off)",
    );
  });
});

describe("the cpu/isa_ext subsection", () => {
  it("lists the non-misa extensions that are on, by name", () => {
    const h = hart({ zifencei: false });
    const desc = vmdescJson(vmstateRiscvCpu, h);
    expect(desc).toContain('"cpu/isa_ext"');
    expect([...h.isa_ext_names.subarray(0, h.isa_ext_len)].map((b) => (b < 32 ? `|${b}|` : String.fromCharCode(b))).join("")).toBe(
      "|5|zicsr|4|sstc|3|mmu|3|pmp",
    );
    expect(h.isa_ext_count).toBe(4);
  });

  it("an extension the destination lacks fails naming it", async () => {
    await expect(migrate(hart(), hart({ sstc: false }))).rejects.toThrow(
      "cpu: hart 0: the stream's CPU has extension 'sstc', which this CPU lacks (it runs with sstc=off)",
    );
    await expect(migrate(hart({ sstc: false }), hart({ zifencei: false, sstc: false }))).rejects.toThrow(/has extension 'zifencei'/);
  });

  it("an extension the stream lacks fails naming it", async () => {
    await expect(migrate(hart({ zifencei: false }), hart())).rejects.toThrow(
      "cpu: hart 0: the stream's CPU lacks extension 'zifencei', which this CPU has (start it with zifencei=off)",
    );
  });

  it("a name this release does not know fails naming it", async () => {
    const enc = new TextEncoder();
    const withZfoo: VMStateDescription<HartState> = {
      ...vmstateRiscvCpu,
      pre_save: (s) => {
        s.capture();
        const extra = enc.encode("zfoo");
        const names = new Uint8Array(s.isa_ext_len + 1 + extra.length);
        names.set(s.isa_ext_names.subarray(0, s.isa_ext_len));
        names[s.isa_ext_len] = extra.length;
        names.set(extra, s.isa_ext_len + 1);
        s.isa_ext_names = names;
        s.isa_ext_len = names.length;
        s.isa_ext_count += 1;
      },
    };
    await expect(migrate(hart(), hart(), withZfoo)).rejects.toThrow(
      "cpu: hart 0: the stream's CPU has extension 'zfoo', which this CPU does not implement",
    );
  });

  it("is not sent when the machine type says so (virt-1.0), and then cannot catch a difference", async () => {
    const gated = hart({ sstc: false }, { migrateIsaExt: false });
    expect(vmdescJson(vmstateRiscvCpu, gated)).not.toContain("cpu/isa_ext");
    const ungated = saveStateToBytes(vmstateRiscvCpu, hart({ sstc: false }));
    const without = await migrate(gated, hart({}, { migrateIsaExt: false }));
    expect(without.length).toBeLessThan(ungated.length);
    // misa and env.features are still checked.
    await expect(migrate(hart({ pmp: false }, { migrateIsaExt: false }), hart({ sstc: false }))).rejects.toThrow(/lacks extension 'pmp'/);
  });
});
