import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  JsonWriter,
  loadStateFromBytes,
  saveState,
  saveStateToBytes,
  ByteWriter,
  type VMStateDescription,
  type VMStateField,
  vmdescJson,
  vmstateBitmap,
  vmstateBool,
  vmstateBuffer,
  vmstateInt64,
  vmstateInt64V,
  vmstateStruct,
  vmstateStructArray,
  vmstateUint16,
  vmstateUint32,
  vmstateUint32Array,
  vmstateUint64,
  vmstateUint64Array,
  vmstateUint8,
  vmstateUint8Array,
  vmstateUnused,
  vmstateVarrayUint32,
  vmstateVStruct,
  vmstateInfoUint64,
  vmstateWithTmp,
} from "./mod.ts";

const qemu = JSON.parse(
  readFileSync(new URL("./testdata/qemu-7.2-virt-vmdesc.json", import.meta.url), "utf8"),
) as Record<string, string>;

describe("vmdesc JSON matches QEMU 7.2's text for the virt machine's devices", () => {
  it("serial (a struct field holding a description with subsections, none needed)", () => {
    interface SerialState {
      [k: string]: number;
    }
    const u8 = ["rbr", "ier", "iir", "lcr", "mcr", "lsr", "msr", "scr"];
    const serial: VMStateDescription<SerialState> = {
      name: "serial",
      version_id: 3,
      minimum_version_id: 2,
      fields: [
        vmstateUint16("divider", { version: 2 }),
        ...u8.map((k) => vmstateUint8<SerialState>(k)),
        vmstateUint8("fcr_vmstate", { version: 3 }),
      ],
      subsections: [{
        name: "serial/poll",
        version_id: 1,
        minimum_version_id: 1,
        needed: (s) => s.poll_msl! >= 0,
        fields: [vmstateUint32("poll_msl")],
      }],
    };
    const serialMm: VMStateDescription<{ serial: SerialState }> = {
      name: "serial",
      version_id: 3,
      minimum_version_id: 2,
      fields: [vmstateStruct("serial", serial)],
    };
    const s: SerialState = { divider: 12, iir: 1, mcr: 8, lsr: 0x60, msr: 0xb0, poll_msl: -1 };
    for (const k of [...u8, "fcr_vmstate"]) s[k] ??= 0;
    expect(vmdescJson(serialMm, { serial: s }, { name: "serial", instanceId: 0 })).toBe(qemu.serial);
  });

  it("riscv_sifive_plic (VARRAYs compressed to array_len)", () => {
    interface Plic {
      num_sources: number;
      num_addrs: number;
      bitfield_words: number;
      num_enables: number;
      source_priority: Uint32Array;
      target_priority: Uint32Array;
      pending: Uint32Array;
      claimed: Uint32Array;
      enable: Uint32Array;
    }
    const vmsd: VMStateDescription<Plic> = {
      name: "riscv_sifive_plic",
      version_id: 1,
      minimum_version_id: 1,
      fields: [
        vmstateVarrayUint32("source_priority", "num_sources"),
        vmstateVarrayUint32("target_priority", "num_addrs"),
        vmstateVarrayUint32("pending", "bitfield_words"),
        vmstateVarrayUint32("claimed", "bitfield_words"),
        vmstateVarrayUint32("enable", "num_enables"),
      ],
    };
    const plic: Plic = {
      num_sources: 96,
      num_addrs: 2,
      bitfield_words: 3,
      num_enables: 6,
      source_priority: new Uint32Array(96),
      target_priority: new Uint32Array(2),
      pending: new Uint32Array(3),
      claimed: new Uint32Array(3),
      enable: new Uint32Array(6),
    };
    expect(vmdescJson(vmsd, plic, { name: "riscv_sifive_plic" })).toBe(qemu.riscv_sifive_plic);
  });

  it("riscv_mtimer (a VARRAY of one element has no array_len)", () => {
    const vmsd: VMStateDescription<{ num_harts: number; timecmp: BigUint64Array }> = {
      name: "riscv_mtimer",
      version_id: 1,
      minimum_version_id: 1,
      fields: [vmstateVarrayUint32("timecmp", "num_harts", { info: vmstateInfoUint64 })],
    };
    expect(vmdescJson(vmsd, { num_harts: 1, timecmp: new BigUint64Array(1) }, { name: "riscv_mtimer" })).toBe(
      qemu.riscv_mtimer,
    );
  });

  it("timer (VMSTATE_UNUSED, a _V field)", () => {
    const vmsd: VMStateDescription<{ cpu_ticks_offset: bigint; cpu_clock_offset: bigint }> = {
      name: "timer",
      version_id: 2,
      minimum_version_id: 1,
      fields: [vmstateInt64("cpu_ticks_offset"), vmstateUnused(8), vmstateInt64V("cpu_clock_offset", 2)],
      subsections: [{ name: "timer/icount", version_id: 1, minimum_version_id: 1, needed: () => false, fields: [] }],
    };
    expect(vmdescJson(vmsd, { cpu_ticks_offset: 0n, cpu_clock_offset: 0n }, { name: "timer" })).toBe(qemu.timer);
  });

  it("globalstate (a buffer)", () => {
    const vmsd: VMStateDescription<{ size: number; runstate: Uint8Array }> = {
      name: "globalstate",
      version_id: 1,
      minimum_version_id: 1,
      fields: [vmstateUint32("size"), vmstateBuffer("runstate")],
    };
    expect(vmdescJson(vmsd, { size: 8, runstate: new Uint8Array(100) }, { name: "globalstate" })).toBe(
      qemu.globalstate,
    );
  });

  it("cpu (struct arrays, subsections with struct arrays inside)", () => {
    const { cpu, state } = cpuDescription();
    expect(vmdescJson(cpu, state, { name: "cpu" })).toBe(qemu.cpu);
  });

  it("cpu: QEMU's section loads whole (four subsections) and saves back to the same bytes", async () => {
    const bytes = new Uint8Array(readFileSync(new URL("./testdata/qemu-7.2-virt-cpu.bin", import.meta.url)));
    const { cpu, state } = cpuDescription();
    await loadStateFromBytes(bytes, cpu, state, { versionId: 5 });
    expect(state["env.pc"]).toBe(0x1000n);
    expect(state["env.misa_mxl"]).toBe(2);
    expect(saveStateToBytes(cpu, state)).toEqual(bytes);
  });
});

/** QEMU 7.2's riscv "cpu" description (target/riscv/machine.c) over a flat state object. */
function cpuDescription(): { cpu: VMStateDescription<Record<string, unknown>>; state: Record<string, unknown> } {
  type Cpu = Record<string, unknown>;
  const u64 = (k: string) => vmstateUint64<Cpu>(k as never);
  const u32 = (k: string) => vmstateUint32<Cpu>(k as never);
  const u64s = (k: string, n: number) => vmstateUint64Array<Cpu>(k as never, n);
  const u8s = (k: string, n: number) => vmstateUint8Array<Cpu>(k as never, n);
  const env = (names: string) => names.split(" ").map((n) => `env.${n}`);
  const state: Cpu = {};
  const init = (fields: VMStateField<Cpu>[]) => {
    for (const f of fields) {
      const l = f.layout;
      if (l.kind === "single") state[f.name] = l.info.name === "uint64" ? 0n : 0;
      if (l.kind === "array") {
        const n = (l.count as { fixed: number }).fixed;
        state[f.name] = l.info.name === "uint64" ? new BigUint64Array(n) : new Uint8Array(n);
      }
    }
    return fields;
  };
  type Entry = Record<string, unknown>;
  const pmu: VMStateDescription<Entry> = {
    name: "cpu/pmu",
    version_id: 1,
    minimum_version_id: 1,
    fields: [
      ...["mhpmcounter_val", "mhpmcounterh_val", "mhpmcounter_prev", "mhpmcounterh_prev"].map((k) =>
        vmstateUint64<Entry>(k as never)
      ),
      vmstateBool<Entry>("started" as never),
    ],
  };
  const pmpEntry: VMStateDescription<Entry> = {
    name: "cpu/pmp/entry",
    version_id: 1,
    minimum_version_id: 1,
    fields: [vmstateUint64<Entry>("addr_reg" as never), vmstateUint8<Entry>("cfg_reg" as never)],
  };
  state["env.pmu_ctrs"] = Array.from({ length: 32 }, () => ({
    mhpmcounter_val: 0n,
    mhpmcounterh_val: 0n,
    mhpmcounter_prev: 0n,
    mhpmcounterh_prev: 0n,
    started: false,
  }));
  state["env.pmp_state.pmp"] = Array.from({ length: 16 }, () => ({ addr_reg: 0n, cfg_reg: 0 }));
  const sub = (name: string, version: number, fields: VMStateField<Cpu>[]): VMStateDescription<Cpu> => ({
    name,
    version_id: version,
    minimum_version_id: 1,
    fields,
  });
  const cpu: VMStateDescription<Cpu> = {
    name: "cpu",
    version_id: 5,
    minimum_version_id: 5,
    fields: init([
      u64s("env.gpr", 32),
      u64s("env.fpr", 32),
      u8s("env.miprio", 64),
      u8s("env.siprio", 64),
      ...env("pc load_res load_val frm badaddr guest_phys_fault_addr priv_ver vext_ver").map(u64),
      ...env("misa_mxl misa_ext misa_mxl_max misa_ext_mask features").map(u32),
      ...env(
        "priv virt resetvec mhartid mstatus mip miclaim mie mideleg satp stval medeleg stvec sepc scause " +
          "mtvec mepc mcause mtval miselect siselect scounteren mcounteren mcountinhibit",
      ).map(u64),
      vmstateStructArray<Cpu, never>("env.pmu_ctrs" as never, 32, pmu as never),
      u64s("env.mhpmevent_val", 32),
      u64s("env.mhpmeventh_val", 32),
      ...env("sscratch mscratch mfromhost mtohost stimecmp").map(u64),
    ]),
    subsections: [
      sub("cpu/pmp", 1, [vmstateStructArray<Cpu, never>("env.pmp_state.pmp" as never, 16, pmpEntry as never)]),
      sub(
        "cpu/hyper",
        2,
        init([
          ...env("hstatus hedeleg hideleg hcounteren htval htinst hgatp hgeie hgeip htimedelta vstimecmp hvictl")
            .map(u64),
          u8s("env.hviprio", 64),
          ...env(
            "vsstatus vstvec vsscratch vsepc vscause vstval vsatp vsiselect mtval2 mtinst stvec_hs sscratch_hs " +
              "sepc_hs scause_hs stval_hs satp_hs mstatus_hs",
          ).map(u64),
        ]),
      ),
      sub("cpu/envcfg", 1, init(env("menvcfg senvcfg henvcfg").map(u64))),
      sub(
        "cpu/debug",
        2,
        init([u64("env.trigger_cur"), u64s("env.tdata1", 2), u64s("env.tdata2", 2), u64s("env.tdata3", 2)]),
      ),
    ],
  };
  return { cpu, state };
}

describe("vmdesc JSON of the other field kinds", () => {
  interface Inner {
    v: number;
  }
  const inner: VMStateDescription<Inner> = {
    name: "inner",
    version_id: 2,
    minimum_version_id: 1,
    fields: [vmstateUint8("v", { version: 2 })],
  };
  interface Tmp {
    parent: Kinds;
    t: number;
  }
  interface Kinds {
    tested: Uint32Array;
    empty: Uint8Array;
    nbits: number;
    bits: BigUint64Array;
    vs: Inner;
    one: Uint8Array;
  }
  const tmp: VMStateDescription<Tmp> = { name: "kinds/tmp", version_id: 0, minimum_version_id: 0, fields: [vmstateUint16("t")] };
  const vmsd: VMStateDescription<Kinds> = {
    name: "kinds",
    version_id: 1,
    minimum_version_id: 1,
    fields: [
      vmstateUint32Array("tested", 2, { test: () => true }),
      vmstateUint8Array("empty", 0),
      vmstateUnused(2),
      vmstateBitmap("bits", "nbits"),
      vmstateVStruct("vs", inner, { structVersion: 1 }),
      vmstateUint8Array("one", 1),
      vmstateUnused(1),
      vmstateWithTmp(tmp, (parent: Kinds): Tmp => ({ parent, t: 7 })),
    ],
  };
  const obj: Kinds = {
    tested: new Uint32Array(2),
    empty: new Uint8Array(0),
    nbits: 65,
    bits: new BigUint64Array(2),
    vs: { v: 1 },
    one: new Uint8Array(1),
  };

  it("writes index entries for a _TEST array, nothing for an empty one, name[n] for repeated names", () => {
    expect(vmdescJson(vmsd, obj)).toBe(
      '{"vmsd_name": "kinds", "version": 1, "fields": [' +
        '{"name": "tested", "index": 0, "type": "uint32", "size": 4}, ' +
        '{"name": "tested", "index": 1, "type": "uint32", "size": 4}, ' +
        '{"name": "unused[0]", "type": "unused_buffer", "size": 2}, ' +
        '{"name": "bits", "type": "bitmap", "size": 16}, ' +
        '{"name": "vs", "type": "vstruct", "vmsd_name": "inner", "version": 1, "fields": [], "size": 0}, ' +
        '{"name": "one", "type": "uint8", "size": 1}, ' +
        '{"name": "unused[1]", "type": "unused_buffer", "size": 1}, ' +
        '{"name": "tmp", "type": "tmp", "vmsd_name": "kinds/tmp", "version": 0, "fields": [' +
        '{"name": "t", "type": "uint16", "size": 2}], "size": 2}' +
        "]}",
    );
  });

  it("the sizes in the vmdesc add up to the bytes saved", () => {
    const w = new JsonWriter();
    const out = new ByteWriter();
    w.startObject();
    saveState(out, vmsd, obj, { vmdesc: w });
    w.endObject();
    const desc = JSON.parse(w.toString()) as { fields: { size: number; array_len?: number }[] };
    const total = desc.fields.reduce((sum, f) => sum + f.size * (f.array_len ?? 1), 0);
    expect(total).toBe(out.position);
  });
});
