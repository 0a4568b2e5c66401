// Live precopy migration with the a-b workload guest, modelled on QEMU's migration-test:
// every transport, xbzrle, auto-converge, a migration that cannot converge, cancel in each
// state, bad and vanishing destinations, a return-path SHUT failure.
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { IncomingChannel, OutgoingChannel } from "./channel.ts";
import { MigrationIncoming } from "./incoming.ts";
import type { MigrationEvent } from "./migration-state.ts";
import { SaveVmRegistry } from "./handlers.ts";
import { MigrationState } from "./outgoing.ts";
import { QemuFileWriter } from "./qemu-file.ts";
import { savevmStateCompletePrecopyNonIterable } from "./savevm.ts";
import { abGuest, count, keepsRunning, ramHashes, runningAbGuest, waitFor, type AbGuest } from "./testing/ab-guest.ts";
import { InThreadMachineVm } from "./testing/machine-vm.ts";
import { connectOutgoing, listenIncoming } from "./transport-node.ts";

const RAM = 32 << 20;
const dir = mkdtempSync(join(tmpdir(), "ferryvm-live-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Guest = AbGuest;

/** A machine with a-b loaded, dirtying `span` bytes from RAM + 1 MiB; not started. */
function guest(span = 8 << 20, options: { uuid?: Uint8Array; ramSize?: number } = {}): Promise<Guest> {
  return abGuest({ span, ...options });
}

const DEBUG = process.env.LIVE_DEBUG !== undefined;
const debugTimer = DEBUG ? setInterval(() => console.log(debugState()), 1000) : undefined;
let debugState: () => unknown = () => "";
afterAll(() => clearInterval(debugTimer));

function running(span?: number): Promise<Guest> {
  return runningAbGuest({ span });
}

/** Migrates `src` over `uri`; the destination stays paused (autostart off) so RAM can be compared. */
async function migrateOver(
  src: Guest,
  outUri: string,
  inUri: string,
  setup: (ms: MigrationState) => void = () => {},
): Promise<{ dst: Guest; ms: MigrationState; inc: MigrationIncoming }> {
  const dst = await guest();
  const listener = await listenIncoming(inUri);
  const inc = new MigrationIncoming(dst.vm, { autostart: false });
  const incDone = inc.incoming(() => listener.accept());
  const ms = new MigrationState(src.vm);
  // migrate_ensure_converge of QEMU's migration-test: two vCPU-sharing VMs in one thread
  // would not otherwise keep up with a guest dirtying 8 MiB per millisecond
  ms.setParameters({ "max-bandwidth": 10_000_000_000, "downtime-limit": 30_000 });
  setup(ms);
  debugState = () => [ms.query(), inc.query(), ms.thresholdSize, InThreadMachineVm.running];
  const target = outUri === "" ? listener.uri : outUri;
  expect(await ms.migrate(() => connectOutgoing(target))).toBe("completed");
  expect(await incDone).toBe("completed");
  return { dst, ms, inc };
}

async function checkMoved(src: Guest, dst: Guest): Promise<void> {
  expect(src.vm.runState).toBe("postmigrate");
  expect(dst.vm.runState).toBe("paused");
  expect(ramHashes(dst)).toEqual(ramHashes(src));
  const printed = src.out().length;
  await dst.vm.resume();
  await keepsRunning(dst);
  expect(src.out().length).toBe(printed);
  await dst.vm.stop("paused");
}

describe("live precopy migration of the a-b guest", () => {
  it("moves a running guest over tcp: the destination runs on with the same RAM, the source ends postmigrate", async () => {
    const src = await running();
    const { dst, ms } = await migrateOver(src, "", "tcp:127.0.0.1:0");
    const info = ms.query();
    expect(info.status).toBe("completed");
    expect(info.ram!.total).toBe(src.vm.memory.ramBlocks.reduce((n, b) => n + b.usedLength, 0));
    expect(info.ram!.transferred).toBeGreaterThan(0);
    expect(info.ram!.normal).toBeGreaterThan(2048);
    expect(info.ram!.duplicate).toBeGreaterThan(0);
    expect(info.downtime).toBeGreaterThanOrEqual(0);
    expect(info["total-time"]).toBeGreaterThanOrEqual(info.downtime!);
    expect(info.ram!.remaining).toBeUndefined();
    // migration_calculate_complete: the whole stream (RAM plus a few KiB of headers and
    // device state) over the time after setup
    const afterSetup = info["total-time"]! - info["setup-time"]!;
    expect(info.ram!.mbps / ((info.ram!.transferred * 8) / afterSetup / 1000)).toBeGreaterThanOrEqual(1);
    expect(info.ram!.mbps / ((info.ram!.transferred * 8) / afterSetup / 1000)).toBeLessThan(1.05);
    await checkMoved(src, dst);
  });

  it("prepare() compiles the switch-over's device save without changing what it saves", async () => {
    const g = await guest();
    const save = async (): Promise<Uint8Array> => {
      const chunks: Uint8Array[] = [];
      const registry = new SaveVmRegistry();
      g.vm.registerDevices(registry);
      const f = new QemuFileWriter({ write: (b) => void chunks.push(b.slice()) });
      savevmStateCompletePrecopyNonIterable(f, registry);
      await f.flush();
      return Uint8Array.from(chunks.flatMap((c) => [...c]));
    };
    const before = await save();
    const ms = new MigrationState(g.vm);
    ms.prepare(3);
    expect(await save()).toEqual(before);
    expect(before.length).toBeGreaterThan(1000);
  });

  it("sends MIGRATION and MIGRATION_PASS events with the events capability, and autostarts the destination", async () => {
    const src = await running();
    const dst = await guest();
    const listener = await listenIncoming("tcp:127.0.0.1:0");
    const inc = new MigrationIncoming(dst.vm);
    const incDone = inc.incoming(() => listener.accept());
    const events: MigrationEvent[] = [];
    const ms = new MigrationState(src.vm, { onEvent: (e) => events.push(e) });
    ms.setCapabilities([{ capability: "events", state: true }]);
    ms.setParameters({ "max-bandwidth": 10_000_000_000 });
    expect(await ms.migrate(() => connectOutgoing(listener.uri))).toBe("completed");
    expect(await incDone).toBe("completed");
    const statuses = events.filter((e) => e.event === "MIGRATION").map((e) => (e.data as { status: string }).status);
    // QEMU 7.2 enters `device` only with pause-before-switchover
    expect(statuses).toEqual(["setup", "active", "completed"]);
    const passes = events.filter((e) => e.event === "MIGRATION_PASS").map((e) => (e.data as { pass: number }).pass);
    expect(passes[0]).toBe(1);
    expect(passes.length).toBeGreaterThanOrEqual(2);
    expect(passes).toEqual(passes.map((_, i) => i + 1));
    expect(dst.vm.runState).toBe("running");
    await keepsRunning(dst);
    await dst.vm.stop("paused");
  });

  it("moves the guest over a unix socket with the return path (PING/PONG, SHUT 0)", async () => {
    const src = await running();
    const path = join(dir, "mig.sock");
    const { dst } = await migrateOver(src, `unix:${path}`, `unix:${path}`, (m) =>
      m.setCapabilities([{ capability: "return-path", state: true }]),
    );
    await checkMoved(src, dst);
  });

  it("moves the guest through exec:cat into a file and back in with exec:cat FILE", async () => {
    const src = await running();
    const file = join(dir, "exec.bin");
    const ms = new MigrationState(src.vm);
    ms.setParameters({ "max-bandwidth": 10_000_000_000 });
    expect(await ms.migrate(() => connectOutgoing(`exec:cat > ${file}`))).toBe("completed");
    const dst = await guest();
    const inc = new MigrationIncoming(dst.vm, { autostart: false });
    const listener = await listenIncoming(`exec:cat ${file}`);
    expect(await inc.incoming(() => listener.accept())).toBe("completed");
    await checkMoved(src, dst);
  });

  it("moves the guest to file: and loads it from there", async () => {
    const src = await running();
    const file = join(dir, "file.bin");
    const ms = new MigrationState(src.vm);
    ms.setParameters({ "max-bandwidth": 10_000_000_000 });
    debugState = () => ms.query();
    expect(await ms.migrate(() => connectOutgoing(`file:${file}`))).toBe("completed");
    const dst = await guest();
    const inc = new MigrationIncoming(dst.vm, { autostart: false });
    const listener = await listenIncoming(`file:${file}`);
    expect(await inc.incoming(() => listener.accept())).toBe("completed");
    await checkMoved(src, dst);
  });

  it("moves the guest over fd:N (a FIFO opened by both sides)", async () => {
    const src = await running();
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const rfd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const wfd = openSync(fifo, "w");
    try {
      const { dst } = await migrateOver(src, `fd:${wfd}`, `fd:${rfd}`);
      await checkMoved(src, dst);
    } finally {
      for (const fd of [wfd, rfd]) {
        try {
          closeSync(fd);
        } catch {
          // the socket closed it
        }
      }
    }
  });

  it("moves the guest through a regular file given as fd:N, written then read at the descriptor's offset", async () => {
    const src = await running();
    const file = join(dir, "by-fd.bin");
    // Something before the stream: fd: writes and reads where the descriptor stands.
    writeFileSync(file, "header\n");
    const wfd = openSync(file, "a");
    const ms = new MigrationState(src.vm);
    ms.setParameters({ "max-bandwidth": 10_000_000_000 });
    debugState = () => ms.query();
    expect(await ms.migrate(() => connectOutgoing(`fd:${wfd}`))).toBe("completed");
    expect(readFileSync(file).subarray(0, 11).toString("latin1")).toBe("header\nQEVM");
    const rfd = openSync(file, "r");
    readSync(rfd, Buffer.alloc(7), 0, 7, null);
    const dst = await guest();
    const inc = new MigrationIncoming(dst.vm, { autostart: false });
    const listener = await listenIncoming(`fd:${rfd}`);
    expect(await inc.incoming(() => listener.accept())).toBe("completed");
    await checkMoved(src, dst);
  });

  it("sends pages of later passes as XBZRLE deltas with the xbzrle capability", async () => {
    const src = await running();
    // XBZRLE deltas start in the third pass (the second fills the cache): hold the switch-over
    // off until then, whatever speed the loaded test machine gives the guest.
    let watch: ReturnType<typeof setInterval> | undefined;
    const { dst, ms } = await migrateOver(src, "", "tcp:127.0.0.1:0", (m) => {
      m.setCapabilities([{ capability: "xbzrle", state: true }]);
      m.setParameters({ "xbzrle-cache-size": 16 << 20, "max-bandwidth": 100_000_000, "downtime-limit": 1 });
      watch = setInterval(() => {
        if ((m.query().ram?.["dirty-sync-count"] ?? 0) < 4) return;
        clearInterval(watch);
        m.setParameters({ "downtime-limit": 30_000 });
      }, 10);
    });
    clearInterval(watch);
    const info = ms.query();
    expect(info["xbzrle-cache"]!["cache-size"]).toBe(16 << 20);
    expect(info["xbzrle-cache"]!.pages).toBeGreaterThan(0);
    expect(info["xbzrle-cache"]!.bytes).toBeLessThan(info["xbzrle-cache"]!.pages * 100);
    expect(info.ram!["dirty-sync-count"]).toBeGreaterThanOrEqual(3);
    await checkMoved(src, dst);
  });
});

describe("migrations that do not complete", () => {
  /** A destination that accepts and loads; `done` says how it ended, `kill` drops its connection. */
  async function destination(): Promise<{ uri: string; inc: MigrationIncoming; done: Promise<string>; dst: Guest; kill(): void }> {
    const dst = await guest();
    const listener = await listenIncoming("tcp:127.0.0.1:0");
    const inc = new MigrationIncoming(dst.vm, { autostart: false });
    let channel: IncomingChannel | undefined;
    const done = inc.incoming(async () => (channel = await listener.accept()));
    const kill = (): void => (channel!.source as unknown as { destroy(): void }).destroy();
    return { uri: listener.uri, inc, done, dst, kill };
  }

  it("throttles the guest with auto-converge from the second evaluation, between initial and max, and cancels cleanly", async () => {
    const src = await running();
    const d = await destination();
    const ms = new MigrationState(src.vm);
    ms.setCapabilities([{ capability: "auto-converge", state: true }]);
    ms.setParameters({ "max-bandwidth": 20_000_000, "downtime-limit": 1, "cpu-throttle-initial": 30, "cpu-throttle-increment": 20, "max-cpu-throttle": 80 });
    const done = ms.migrate(() => connectOutgoing(d.uri));
    let syncsAtFirstThrottle = 0;
    await waitFor(() => {
      if (ms.throttlePercentage > 0 && syncsAtFirstThrottle === 0) syncsAtFirstThrottle = ms.query().ram!["dirty-sync-count"];
      return src.vm.throttleLog.length >= 2;
    }, 15_000);
    expect(ms.query()["cpu-throttle-percentage"]).toBeGreaterThanOrEqual(30);
    expect(syncsAtFirstThrottle).toBeGreaterThanOrEqual(3);
    expect(src.vm.throttleLog.slice(0, 2)).toEqual([30, 50]);
    ms.cancel();
    expect(await done).toBe("cancelled");
    expect(src.vm.throttle).toBe(0);
    for (const pct of src.vm.throttleLog.slice(0, -1)) {
      expect(pct).toBeGreaterThanOrEqual(30);
      expect(pct).toBeLessThanOrEqual(80);
    }
    expect(await d.done).toBe("failed");
    await keepsRunning(src);
    await src.vm.stop("paused");
  }, 25_000);

  it("never completes at 3 MB/s and 1 ms downtime, and is cancelled cleanly while active", async () => {
    const src = await running();
    const d = await destination();
    const ms = new MigrationState(src.vm);
    ms.setParameters({ "max-bandwidth": 3_000_000, "downtime-limit": 1 });
    const done = ms.migrate(() => connectOutgoing(d.uri));
    await waitFor(() => ms.status === "active");
    await new Promise((r) => setTimeout(r, 1500));
    const info = ms.query();
    expect(info.status).toBe("active");
    expect(info.ram!.transferred).toBeGreaterThan(2_000_000);
    expect(info.ram!.transferred).toBeLessThan(7_000_000);
    expect(info.ram!.remaining).toBeGreaterThan(0);
    expect(info["expected-downtime"]).toBeGreaterThan(1);
    ms.cancel();
    expect(ms.status).toBe("cancelling");
    expect(await done).toBe("cancelled");
    expect(ms.query()).toEqual({ status: "cancelled" });
    expect(await d.done).toBe("failed");
    await keepsRunning(src);
    await src.vm.stop("paused");
  });

  it("is cancelled in setup, before the connection is made", async () => {
    const src = await running();
    const ms = new MigrationState(src.vm);
    let release: (c: OutgoingChannel) => void = () => {};
    const done = ms.migrate(() => new Promise<OutgoingChannel>((r) => (release = r)));
    expect(ms.status).toBe("setup");
    expect(ms.query()).toEqual({ status: "setup" });
    ms.cancel();
    let aborted = false;
    release({ sink: { write: () => {} }, close: async () => {}, abort: () => (aborted = true) });
    expect(await done).toBe("cancelled");
    expect(aborted).toBe(true);
    await keepsRunning(src);
    await src.vm.stop("paused");
  });

  it("pauses before the switch-over, goes on with migrate-continue, and is cancelled in pre-switchover with the source resumed", async () => {
    const src = await running();
    const d = await destination();
    const ms = new MigrationState(src.vm);
    ms.setCapabilities([{ capability: "pause-before-switchover", state: true }]);
    ms.setParameters({ "max-bandwidth": 10_000_000_000, "downtime-limit": 30_000 });
    expect(() => ms.continue("pre-switchover")).toThrow("Migration not in expected state: none");
    const done = ms.migrate(() => connectOutgoing(d.uri));
    await waitFor(() => ms.status === "pre-switchover");
    expect(src.vm.runState).toBe("finish-migrate");
    ms.cancel();
    expect(await done).toBe("cancelled");
    expect(await d.done).toBe("failed");
    await keepsRunning(src);
    const d2 = await destination();
    const done2 = ms.migrate(() => connectOutgoing(d2.uri));
    await waitFor(() => ms.status === "pre-switchover");
    ms.continue("pre-switchover");
    expect(await done2).toBe("completed");
    expect(await d2.done).toBe("completed");
    await checkMoved(src, d2.dst);
  });

  it("fails on a refused connection with QEMU's text, and the source keeps running", async () => {
    const src = await running();
    const ms = new MigrationState(src.vm);
    expect(await ms.migrate(() => connectOutgoing("tcp:127.0.0.1:1"))).toBe("failed");
    expect(ms.query()).toEqual({ status: "failed", "error-desc": "Failed to connect to '127.0.0.1:1': Connection refused" });
    await keepsRunning(src);
    await src.vm.stop("paused");
  });

  it("fails when the destination dies mid-stream; the source keeps running and a second migration succeeds", async () => {
    const src = await running();
    const d = await destination();
    const ms = new MigrationState(src.vm);
    ms.setParameters({ "max-bandwidth": 20_000_000 });
    const done = ms.migrate(() => connectOutgoing(d.uri));
    await waitFor(() => ms.status === "active" && ms.query().ram!.transferred > 1_000_000);
    d.kill();
    expect(await done).toBe("failed");
    expect(ms.errorDesc).toMatch(/^Unable to write to socket: (Connection reset by peer|Broken pipe)$|^RP: /);
    expect(await d.done).toBe("failed");
    await keepsRunning(src);
    const { dst: dst2 } = await migrateOver(src, "", "tcp:127.0.0.1:0");
    await checkMoved(src, dst2);
  });

  it("fails on a full disk (file:/dev/full) with the errno text, the source running on", async () => {
    const src = await running();
    const ms = new MigrationState(src.vm);
    expect(await ms.migrate(() => connectOutgoing("file:/dev/full"))).toBe("failed");
    expect(ms.errorDesc).toContain("No space left on device");
    await keepsRunning(src);
    await src.vm.stop("paused");
  });

  it("fails when the destination dies after the source stopped (device state), and restarts the source", async () => {
    const src = await running();
    const d = await destination();
    const ms = new MigrationState(src.vm);
    ms.setCapabilities([
      { capability: "pause-before-switchover", state: true },
      { capability: "return-path", state: true },
    ]);
    ms.setParameters({ "max-bandwidth": 10_000_000_000, "downtime-limit": 30_000 });
    const done = ms.migrate(() => connectOutgoing(d.uri));
    await waitFor(() => ms.status === "pre-switchover");
    const stoppedHashes = ramHashes(src);
    let resumedHashes: bigint[] = [];
    const resume = src.vm.resume.bind(src.vm);
    src.vm.resume = () => {
      resumedHashes = ramHashes(src);
      return resume();
    };
    d.kill();
    ms.continue("pre-switchover");
    expect(await done).toBe("failed");
    expect(await d.done).toBe("failed");
    expect(resumedHashes).toEqual(stoppedHashes);
    await keepsRunning(src);
    await src.vm.stop("paused");
  });

  it("fails when the destination's SHUT reports an error (its RAM differs), the source running on", async () => {
    const src = await running();
    const dst = await guest(8 << 20, { ramSize: RAM * 2 });
    const listener = await listenIncoming("tcp:127.0.0.1:0");
    const inc = new MigrationIncoming(dst.vm);
    const incDone = inc.incoming(() => listener.accept());
    const ms = new MigrationState(src.vm);
    ms.setCapabilities([{ capability: "return-path", state: true }]);
    ms.setParameters({ "max-bandwidth": 50_000_000 });
    expect(await ms.migrate(() => connectOutgoing(listener.uri))).toBe("failed");
    expect(ms.errorDesc).toBe("RP: Sibling indicated error 1");
    expect(await incDone).toBe("failed");
    expect(inc.errorDesc).toContain("used length");
    await keepsRunning(src);
    await src.vm.stop("paused");
  });

  it("fails the load when validate-uuid finds another UUID", async () => {
    const src = await guest(8 << 20, { uuid: new Uint8Array(16).fill(1) });
    await src.vm.resume();
    await waitFor(() => src.out().includes("AB"));
    const dst = await guest(8 << 20, { uuid: new Uint8Array(16).fill(2) });
    const listener = await listenIncoming("tcp:127.0.0.1:0");
    const inc = new MigrationIncoming(dst.vm);
    inc.setCapabilities([{ capability: "validate-uuid", state: true }]);
    const incDone = inc.incoming(() => listener.accept());
    const ms = new MigrationState(src.vm);
    ms.setCapabilities([{ capability: "validate-uuid", state: true }]);
    ms.setParameters({ "max-bandwidth": 50_000_000 });
    expect(await ms.migrate(() => connectOutgoing(listener.uri))).toBe("failed");
    expect(await incDone).toBe("failed");
    expect(inc.errorDesc).toBe(
      "configuration: UUID received is 01010101010101010101010101010101 and local is 02020202020202020202020202020202",
    );
    await keepsRunning(src);
    await src.vm.stop("paused");
  });
});
