import { saveStateToBytes, loadStateFromBytes } from "@ferryvm/vmstate";
import { describe, expect, it } from "vitest";
import { analyzeMigration } from "./analyze.ts";
import { GlobalState, incomingRunState, vmstateGlobalstate } from "./global-state.ts";
import { SaveVmRegistry } from "./handlers.ts";
import { qemuLoadvmState } from "./loadvm.ts";
import { MemorySink, QemuFileReader, QemuFileWriter } from "./qemu-file.ts";
import { qemuSavevmState } from "./savevm.ts";

async function save(config: Parameters<typeof qemuSavevmState>[2]): Promise<Uint8Array> {
  const sink = new MemorySink();
  const f = new QemuFileWriter(sink);
  await qemuSavevmState(f, new SaveVmRegistry(), config);
  await f.close();
  return sink.bytes();
}

const load = (bytes: Uint8Array, config: Parameters<typeof qemuLoadvmState>[2]) =>
  qemuLoadvmState(new QemuFileReader(bytes), new SaveVmRegistry(), config);

describe("the configuration section", () => {
  it("carries no subsection unless a capability needs one", async () => {
    const bytes = await save({ machineName: "virt", capabilities: ["xbzrle", "events"] });
    // header, 0x07, be32 4, "virt", EOF, vmdesc
    expect(Array.from(bytes.subarray(8, 18))).toEqual([0x07, 0, 0, 0, 4, 0x76, 0x69, 0x72, 0x74, 0x00]);
  });

  it("sends x-ignore-shared and the uuid as subsections, and the loader checks them", async () => {
    const uuid = new Uint8Array(16).map((_, i) => i);
    const bytes = await save({ machineName: "virt", capabilities: ["x-ignore-shared", "validate-uuid"], uuid });
    const text = Buffer.from(bytes).toString("latin1");
    expect(text).toContain("\x05\x1aconfiguration/capabilities\x00\x00\x00\x01\x00\x00\x00\x01\x0fx-ignore-shared");
    expect(text).toContain("\x05\x12configuration/uuid\x00\x00\x00\x01");
    const r = await load(bytes, { machineName: "virt", capabilities: ["x-ignore-shared", "validate-uuid"], uuid });
    expect(r.configuration).toEqual({ machineName: "virt", capabilities: ["x-ignore-shared"], uuid });
    await expect(load(bytes, { machineName: "virt" })).rejects.toThrow(
      "capability x-ignore-shared is off here, but the stream has it on",
    );
    const other = uuid.slice().reverse();
    await expect(
      load(bytes, { machineName: "virt", capabilities: ["x-ignore-shared", "validate-uuid"], uuid: other }),
    ).rejects.toThrow("UUID received is 000102030405060708090a0b0c0d0e0f and local is 0f0e0d0c0b0a09080706050403020100");
    expect(analyzeMigration(bytes, { configuration: true })).toEqual({
      configuration: { name: "virt", capabilities: ["x-ignore-shared"], uuid: "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f" },
    });
  });

  it("fails on an unknown capability, naming it", async () => {
    const bytes = await save({ machineName: "virt", capabilities: ["x-ignore-shared"] });
    const at = Buffer.from(bytes).indexOf("x-ignore-shared");
    const patched = bytes.slice();
    patched.set(Buffer.from("x-ignore-sharex"), at);
    await expect(load(patched, { machineName: "virt", capabilities: ["x-ignore-shared"] })).rejects.toThrow(
      "configuration/capabilities: received unknown capability 'x-ignore-sharex'",
    );
  });

  it("accepts a received machine name that prefixes the local one, as QEMU's strncmp does", async () => {
    const bytes = await save({ machineName: "virt" });
    await expect(load(bytes, { machineName: "virt-7.2" })).resolves.toMatchObject({ configuration: { machineName: "virt" } });
    await expect(load(bytes, { machineName: "vir" })).rejects.toThrow("Machine type received is 'virt' and local is 'vir'");
  });
});

describe("the globalstate section", () => {
  it("is be32 strlen + 1 and a 100-byte name, as QEMU's", () => {
    const bytes = saveStateToBytes(vmstateGlobalstate, new GlobalState("paused"));
    expect(bytes.length).toBe(104);
    expect(Array.from(bytes.subarray(0, 10))).toEqual([0, 0, 0, 7, 0x70, 0x61, 0x75, 0x73, 0x65, 0x64]);
  });

  it("is not sent for running or paused when optional (old machine types), but for other states", () => {
    const gs = new GlobalState("running");
    gs.optional = true;
    expect(vmstateGlobalstate.needed!(gs)).toBe(false);
    gs.store("postmigrate");
    expect(vmstateGlobalstate.needed!(gs)).toBe(true);
  });

  it("rejects a run state QEMU does not know", async () => {
    const bytes = saveStateToBytes(vmstateGlobalstate, new GlobalState("running"));
    bytes.set(Buffer.from("runninX"), 4);
    await expect(loadStateFromBytes(bytes, vmstateGlobalstate, new GlobalState())).rejects.toThrow("invalid run state 'runninX'");
  });

  it("loads QEMU 7.2's globalstate sections, paused and running", async () => {
    const { readFileSync } = await import("node:fs");
    for (const [name, state] of [["hello-paused", "paused"], ["a-b-running", "running"]] as const) {
      const bytes = readFileSync(new URL(`../testdata/qemu72-virt-${name}.mig`, import.meta.url));
      const at = bytes.lastIndexOf("\x0bglobalstate") + 12 + 8; // str8 idstr, instance_id, version_id
      const gs = new GlobalState("prelaunch");
      await loadStateFromBytes(new Uint8Array(bytes.subarray(at, at + 104)), vmstateGlobalstate, gs);
      expect(gs.state).toBe(state);
      expect(incomingRunState(gs)).toBe(state);
    }
  });

  it("decides the run state after an incoming migration as QEMU does", () => {
    const gs = new GlobalState();
    expect(incomingRunState(gs)).toBe("running"); // no section received
    gs.received = true;
    gs.state = "shutdown";
    expect(incomingRunState(gs)).toBe("shutdown");
    gs.state = "running";
    expect(incomingRunState(gs, false)).toBe("paused");
  });
});
