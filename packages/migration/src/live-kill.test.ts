// Live migrations of the a-b guest whose destination dies at seeded random points of the
// stream (setup, active, device), and migrate_cancel in the `device` state. The destination
// "dies" through a transport wrapper that cuts the stream after a chosen byte count and
// destroys the socket (as the kernel closes a killed process's socket: unread data → RST).
import type { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import type { IncomingChannel } from "./channel.ts";
import { MigrationIncoming } from "./incoming.ts";
import type { MigrationEvent, MigrationStatus } from "./migration-state.ts";
import { MigrationState } from "./outgoing.ts";
import { abGuest, count, keepsRunning, ramHashes, waitFor, type AbGuest } from "./testing/ab-guest.ts";
import { connectOutgoing, listenIncoming } from "./transport-node.ts";

/** The stream's setup part (header, configuration, the RAM section's block list) is ~120 bytes. */
const SETUP_BYTES = 101;
const SEED = Number(process.env.FERRYVM_KILL_SEED ?? 0x5eed6);

type Guest = AbGuest;

function guest(): Promise<Guest> {
  return abGuest();
}

/** Records the RAM when the migration stops the source and when it resumes it. */
function watchStops(g: Guest): { stopped: bigint[][]; resumed: bigint[][] } {
  const seen = { stopped: [] as bigint[][], resumed: [] as bigint[][] };
  const stop = g.vm.stop.bind(g.vm);
  const resume = g.vm.resume.bind(g.vm);
  g.vm.stop = async (state) => {
    await stop(state);
    if (state === "finish-migrate") seen.stopped.push(ramHashes(g));
  };
  g.vm.resume = () => {
    if (g.vm.runState === "finish-migrate") seen.resumed.push(ramHashes(g));
    return resume();
  };
  return seen;
}

/** mulberry32: a small seeded generator, so a failing kill point can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Wraps an incoming channel: `cut(received, chunkLength)` returns how many bytes of the next
 * chunk still arrive before the destination dies (undefined: the whole chunk arrives), or a
 * promise that holds the chunk back until it settles.
 */
function cuttable(channel: IncomingChannel, cut: (received: number, length: number) => number | undefined | Promise<void>): IncomingChannel {
  const socket = channel.source as unknown as Socket;
  async function* source(): AsyncGenerator<Uint8Array> {
    let received = 0;
    for await (const chunk of socket as AsyncIterable<Uint8Array>) {
      const keep = cut(received, chunk.length);
      if (keep instanceof Promise) await keep;
      else if (keep !== undefined) {
        if (keep > 0) yield chunk.subarray(0, keep);
        socket.destroy();
        throw new Error("the destination was killed");
      }
      received += chunk.length;
      yield chunk;
    }
  }
  return { ...channel, source: source() };
}

type Phase = "setup" | "active" | "device";

describe("a destination killed at random points of the stream", () => {
  it(`leaves the source failed and running on, its RAM unchanged while stopped, and a later migration succeeds (seed ${SEED})`, async () => {
    const rand = random(SEED);
    const src = await guest();
    const seen = watchStops(src);
    await src.vm.resume();
    await waitFor(() => src.out().includes("AB"));
    const phases: Phase[] = ["setup", "active", "device", "active", "device", "setup"];
    for (const phase of phases) {
      const dst = await guest();
      const listener = await listenIncoming("tcp:127.0.0.1:0");
      const ms = new MigrationState(src.vm);
      // the return path: without it, a source whose last bytes sit in the socket buffers
      // cannot tell that the destination died (QEMU's neither)
      ms.setCapabilities([{ capability: "return-path", state: true }]);
      // active: 20 MB/s and 1 ms cannot converge while the guest dirties, so the source is
      // still iterating when the cut comes; device: the first pass fits 30 s of downtime
      ms.setParameters(
        phase === "active"
          ? { "max-bandwidth": 20_000_000, "downtime-limit": 1 }
          : { "max-bandwidth": 10_000_000_000, "downtime-limit": 30_000 },
      );
      // setup: inside the ~120 bytes before the first page (0: killed on accept)
      const at = phase === "setup" ? Math.floor(rand() * SETUP_BYTES) : (16 << 10) + Math.floor(rand() * (1 << 20));
      const within = rand();
      let killedIn: MigrationStatus | undefined;
      const cut = (received: number, length: number): number | undefined => {
        if (killedIn !== undefined) return 0;
        // device: the source has stopped and sends the device state (QEMU 7.2 stays `active` then)
        if (phase === "device" ? src.vm.runState !== "finish-migrate" : received + length < at) return undefined;
        killedIn = phase === "device" ? "device" : ms.status;
        return phase === "device" ? Math.floor(within * length) : at - received;
      };
      const inc = new MigrationIncoming(dst.vm, { autostart: false });
      const incDone = inc.incoming(async () => cuttable(await listener.accept(), cut));
      const stopsBefore = seen.stopped.length;
      const status = await ms.migrate(() => connectOutgoing(listener.uri));
      const where = `${phase} kill at ${phase === "device" ? `${within.toFixed(3)} of a chunk` : `byte ${at}`}`;
      expect(status, where).toBe("failed");
      expect(killedIn, where).toBeDefined();
      if (phase !== "setup") expect(killedIn, where).toBe(phase);
      expect(ms.errorDesc, where).toMatch(/^Unable to write to socket: (Connection reset by peer|Broken pipe)$|^RP: (QEMUFile: read failed at offset \d+: Connection reset by peer|the return path closed before SHUT)$/);
      expect(await incDone, where).toBe("failed");
      expect(src.vm.runState, where).toBe("running");
      if (seen.stopped.length > stopsBefore) {
        expect(seen.resumed.length, where).toBe(seen.stopped.length);
        expect(seen.resumed.at(-1), where).toEqual(seen.stopped.at(-1));
      }
      await keepsRunning(src);
    }
    expect(seen.stopped.length).toBeGreaterThanOrEqual(2); // both device kills stopped the source
    // a new destination: the migration completes and the guest runs on there
    const dst = await guest();
    const listener = await listenIncoming("tcp:127.0.0.1:0");
    const inc = new MigrationIncoming(dst.vm, { autostart: false });
    const incDone = inc.incoming(() => listener.accept());
    const ms = new MigrationState(src.vm);
    ms.setParameters({ "max-bandwidth": 10_000_000_000, "downtime-limit": 30_000 });
    expect(await ms.migrate(() => connectOutgoing(listener.uri))).toBe("completed");
    expect(await incDone).toBe("completed");
    expect(src.vm.runState).toBe("postmigrate");
    expect(ramHashes(dst)).toEqual(ramHashes(src));
    await dst.vm.resume();
    await keepsRunning(dst);
    await dst.vm.stop("paused");
  }, 30_000);
});

describe("migrate_cancel in the device state", () => {
  it("cancels while the device state is on its way: the source resumes with its RAM unchanged", async () => {
    const src = await guest();
    const seen = watchStops(src);
    await src.vm.resume();
    await waitFor(() => src.out().includes("AB"));
    const dst = await guest();
    const listener = await listenIncoming("tcp:127.0.0.1:0");
    const events: MigrationEvent[] = [];
    const ms = new MigrationState(src.vm, { onEvent: (e) => events.push(e) });
    ms.setCapabilities([
      { capability: "events", state: true },
      { capability: "return-path", state: true },
    ]);
    ms.setParameters({ "max-bandwidth": 10_000_000_000, "downtime-limit": 30_000 });
    // the destination stops reading once the source has stopped for the switch-over: no SHUT comes back
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    let holding = false;
    const inc = new MigrationIncoming(dst.vm, { autostart: false });
    const incDone = inc.incoming(async () =>
      cuttable(await listener.accept(), () => {
        if (src.vm.runState !== "finish-migrate") return undefined;
        holding = true;
        return held;
      }),
    );
    const done = ms.migrate(() => connectOutgoing(listener.uri));
    await waitFor(() => holding);
    expect(ms.status).toBe("active");
    expect(src.vm.runState).toBe("finish-migrate");
    ms.cancel();
    expect(ms.status).toBe("cancelling");
    expect(await done).toBe("cancelled");
    release();
    expect(await incDone).toBe("failed");
    const statuses = events.filter((e) => e.event === "MIGRATION").map((e) => (e.data as { status: string }).status);
    expect(statuses).toEqual(["setup", "active", "cancelling", "cancelled"]);
    expect(ms.query()).toEqual({ status: "cancelled" });
    expect(seen.stopped.length).toBe(1);
    expect(seen.resumed).toEqual(seen.stopped);
    await keepsRunning(src);
    await src.vm.stop("paused");
  });
});
