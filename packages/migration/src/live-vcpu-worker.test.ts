// Live precopy migration of the a-b guest with the source's vCPU in a worker thread
// (@ferryvm/devices' vcpuThread "worker"): the guest keeps running during precopy, the
// destination gets the same RAM and runs on (B, never E), the stopped source's RAM does not
// change, and a cancelled or failed migration leaves the source running.
// The worker loads the devices package's dist/: skipped until it is built (`pnpm test` builds).
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import type { Machine } from "@ferryvm/devices";
import { MigrationIncoming } from "./incoming.ts";
import { MigrationState } from "./outgoing.ts";
import { abGuest, keepsRunning, ramHashes, waitFor, type AbGuest } from "./testing/ab-guest.ts";
import { connectOutgoing, listenIncoming } from "./transport-node.ts";

const WORKER_BUILT = existsSync(new URL("../../devices/dist/vcpu-thread.js", import.meta.url));

const machines: Machine[] = [];
afterAll(async () => {
  for (const m of machines) await m.dispose();
});

type Guest = AbGuest;

async function guest(vcpuThread: "main" | "worker"): Promise<Guest> {
  // Long runs: the worker keeps the harts going between them, the event loop stays free.
  const g = await abGuest({ vcpuThread, sliceMs: 250 });
  machines.push(g.machine);
  return g;
}

async function running(): Promise<Guest> {
  const g = await guest("worker");
  await g.vm.resume();
  await waitFor(() => g.out().includes("AB"));
  return g;
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
