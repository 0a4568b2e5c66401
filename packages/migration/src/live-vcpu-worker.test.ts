// Live precopy migration of the a-b guest with the source's vCPU in a worker thread
// (@ferryvm/devices' vcpuThread "worker"): the guest keeps running during precopy, the
// destination gets the same RAM and runs on (B, never E), the stopped source's RAM does not
// change, and a cancelled or failed migration leaves the source running.
// The worker loads the devices package's dist/: skipped until it is built (`pnpm test` builds).
import { existsSync, readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { createMachine, type Machine } from "@ferryvm/devices";
import { MigrationIncoming } from "./incoming.ts";
import { MigrationState } from "./outgoing.ts";
import { InThreadMachineVm } from "./testing/machine-vm.ts";
import { connectOutgoing, listenIncoming } from "./transport-node.ts";

const KERNEL = new Uint8Array(readFileSync(new URL("../../../guests/migration/a-b.elf", import.meta.url)));
const MIG_START = 0x80100000n;
const MIG_END_ADDR = 0x80004020;
const RAM = 32 << 20;
const WORKER_BUILT = existsSync(new URL("../../devices/dist/vcpu-thread.js", import.meta.url));

const machines: Machine[] = [];
afterAll(async () => {
  for (const m of machines) await m.dispose();
});

interface Guest {
  vm: InThreadMachineVm;
  out(): string;
}

async function guest(vcpuThread: "main" | "worker", span = 8 << 20): Promise<Guest> {
  let text = "";
  const machine = await createMachine({
    ramSize: RAM,
    kernel: KERNEL,
    vcpuThread,
    onConsoleOutput: (b) => {
      text += new TextDecoder().decode(b);
    },
  });
  machines.push(machine);
  const end = new Uint8Array(8);
  new DataView(end.buffer).setBigUint64(0, MIG_START + BigInt(span), true);
  machine.guestMemory.write(MIG_END_ADDR, end);
  // Long runs: the worker keeps the harts going between them, the event loop stays free.
  return { vm: new InThreadMachineVm(machine, { sliceMs: 250 }), out: () => text };
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const count = (s: string, c: string): number => s.split(c).length - 1;

async function running(): Promise<Guest> {
  const g = await guest("worker");
  await g.vm.resume();
  await waitFor(() => g.out().includes("AB"));
  return g;
}

async function keepsRunning(g: Guest): Promise<void> {
  const before = count(g.out(), "B");
  await waitFor(() => count(g.out(), "B") > before + 2);
  expect(g.out()).not.toContain("E");
  expect(g.vm.runState).toBe("running");
}

function ramHashes(g: Guest): bigint[] {
  const m = g.vm.memory;
  return m.ramBlocks.map((b) => m.hashBlock(b));
}

describe.skipIf(!WORKER_BUILT)("live migration with the source's vCPU in a worker thread", () => {
  it("moves the running a-b guest over tcp; the guest runs on during precopy and on the destination, never E", async () => {
    const src = await running();
    const dst = await guest("main");
    const listener = await listenIncoming("tcp:127.0.0.1:0");
    const inc = new MigrationIncoming(dst.vm, { autostart: false });
    const incDone = inc.incoming(() => listener.accept());
    const ms = new MigrationState(src.vm);
    ms.setParameters({ "max-bandwidth": 10_000_000_000, "downtime-limit": 30_000 });
    const n0 = src.vm.machine.instructions;
    expect(await ms.migrate(() => connectOutgoing(listener.uri))).toBe("completed");
    expect(await incDone).toBe("completed");
    expect(src.vm.machine.instructions).toBeGreaterThan(n0); // it ran while its RAM was sent
    expect(src.vm.runState).toBe("postmigrate");
    expect(dst.vm.runState).toBe("paused");
    const hashes = ramHashes(src);
    expect(ramHashes(dst)).toEqual(hashes);
    const printed = src.out().length;
    await dst.vm.resume();
    await keepsRunning(dst);
    // The stopped source does not move: same RAM, no output.
    expect(ramHashes(src)).toEqual(hashes);
    expect(src.out().length).toBe(printed);
    await dst.vm.stop("paused");
  });

  it("is cancelled while active and leaves the source running", async () => {
    const src = await running();
    const dst = await guest("main");
    const listener = await listenIncoming("tcp:127.0.0.1:0");
    const inc = new MigrationIncoming(dst.vm);
    const incDone = inc.incoming(() => listener.accept());
    const ms = new MigrationState(src.vm);
    ms.setParameters({ "max-bandwidth": 3_000_000, "downtime-limit": 1 });
    const done = ms.migrate(() => connectOutgoing(listener.uri));
    await waitFor(() => ms.status === "active");
    await new Promise((r) => setTimeout(r, 300));
    ms.cancel();
    expect(await done).toBe("cancelled");
    expect(await incDone).toBe("failed");
    await keepsRunning(src);
    await src.vm.stop("paused");
  });

  it("fails on a refused connection and the source keeps running", async () => {
    const src = await running();
    const ms = new MigrationState(src.vm);
    expect(await ms.migrate(() => connectOutgoing("tcp:127.0.0.1:1"))).toBe("failed");
    await keepsRunning(src);
    await src.vm.stop("paused");
  });
});
