import { describe, expect, it } from "vitest";
import { GuestMemory } from "@ferryvm/memory";
import { encodeRpMessage, MigRpMsg, readReturnPath } from "./channel.ts";
import {
  ALL_MIGRATION_CAPABILITIES,
  applyMigrationCapabilities,
  applyMigrationParameters,
  defaultMigrationCapabilities,
  defaultMigrationParameters,
  queryMigrateCapabilities,
} from "./migration-params.ts";
import type { MigratableVm } from "./migration-state.ts";
import { MigrationState } from "./outgoing.ts";
import { parseMigrationUri } from "./transport-node.ts";

describe("migration parameters", () => {
  it("start at QEMU 7.2's defaults", () => {
    const p = defaultMigrationParameters();
    expect(p["max-bandwidth"]).toBe(134217728);
    expect(p["downtime-limit"]).toBe(300);
    expect(p["xbzrle-cache-size"]).toBe(64 << 20);
    expect([p["cpu-throttle-initial"], p["cpu-throttle-increment"], p["max-cpu-throttle"]]).toEqual([20, 10, 99]);
    expect(p["cpu-throttle-tailslow"]).toBe(false);
    expect(p["throttle-trigger-threshold"]).toBe(50);
    expect(p["multifd-channels"]).toBe(2);
    expect(p["max-postcopy-bandwidth"]).toBe(0);
  });

  it("are refused with QEMU's texts when out of range", () => {
    const p = defaultMigrationParameters();
    const cases: [Parameters<typeof applyMigrationParameters>[1], string][] = [
      [{ "cpu-throttle-initial": 0 }, "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99"],
      [{ "cpu-throttle-increment": 100 }, "Parameter 'cpu_throttle_increment' expects an integer in the range of 1 to 99"],
      [{ "max-cpu-throttle": 10 }, "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99"],
      [{ "downtime-limit": 2_000_001 }, "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms"],
      [{ "xbzrle-cache-size": 5000 }, "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size"],
      [{ "throttle-trigger-threshold": 101 }, "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100"],
      [{ "multifd-channels": 0 }, "Parameter 'multifd_channels' expects a value between 1 and 255"],
      [{ "compress-level": 10 }, "Parameter 'compress_level' expects a value between 0 and 9"],
      [{ "downtime-limit": -1 }, "Parameter 'downtime-limit' expects uint64"],
    ];
    for (const [update, message] of cases) expect(() => applyMigrationParameters(p, update)).toThrow(message);
  });

  it("apply over the current values, and migrate-set-parameters is allowed at any time", () => {
    const p = applyMigrationParameters(defaultMigrationParameters(), { "max-bandwidth": 1000, "max-cpu-throttle": 50 });
    expect(p["max-bandwidth"]).toBe(1000);
    expect(p["max-cpu-throttle"]).toBe(50);
    expect(p["downtime-limit"]).toBe(300);
    expect(applyMigrationParameters(p, { "cpu-throttle-initial": 40 })["max-cpu-throttle"]).toBe(50);
  });
});

describe("migration capabilities", () => {
  it("list every QEMU 7.2 capability (and dirty-limit) as { capability, state }", () => {
    const list = queryMigrateCapabilities(defaultMigrationCapabilities());
    expect(list.map((c) => c.capability)).toEqual(ALL_MIGRATION_CAPABILITIES);
    expect(list[0]).toEqual({ capability: "xbzrle", state: false });
    expect(list.every((c) => c.state === false)).toBe(true);
  });

  it("refuse unknown names and features this VM does not run", () => {
    const caps = defaultMigrationCapabilities();
    expect(() => applyMigrationCapabilities(caps, [{ capability: "nope" as never, state: true }])).toThrow(
      "Parameter 'capability' does not accept value 'nope'",
    );
    expect(() => applyMigrationCapabilities(caps, [{ capability: "postcopy-ram", state: true }])).toThrow("Postcopy is not supported");
    expect(applyMigrationCapabilities(caps, [{ capability: "xbzrle", state: true }]).xbzrle).toBe(true);
  });
});

function fakeVm(): MigratableVm {
  const memory = GuestMemory.createSync({ ram: [{ idstr: "ram", size: 1 << 16 }] });
  let runState: MigratableVm["runState"] = "running";
  return {
    memory,
    machineName: "virt",
    get runState() {
      return runState;
    },
    registerDevices: () => {},
    stop: async (s) => void (runState = s),
    resume: async () => void (runState = "running"),
    setRunState: (s) => void (runState = s),
    setThrottle: () => {},
  };
}

describe("MigrationState", () => {
  it("answers query-migrate with {} before any migration and refuses capability changes while one runs", async () => {
    const ms = new MigrationState(fakeVm());
    expect(ms.query()).toEqual({});
    expect(ms.status).toBe("none");
    let release: () => void = () => {};
    const done = ms.migrate(() => new Promise((_, reject) => (release = () => reject(new Error("no")))));
    expect(() => ms.setCapabilities([{ capability: "xbzrle", state: true }])).toThrow("There's a migration process in progress");
    expect(() => ms.migrate(() => Promise.reject(new Error("x")))).toThrow("There's a migration process in progress");
    ms.setParameters({ "max-bandwidth": 1 });
    release();
    expect(await done).toBe("failed");
    expect(ms.query()).toEqual({ status: "failed", "error-desc": "no" });
    ms.setCapabilities([{ capability: "xbzrle", state: true }]);
    ms.cancel(); // a no-op when nothing runs
    expect(ms.status).toBe("failed");
  });

  it("migrates a small idle VM into a memory sink through every state to completed and postmigrate", async () => {
    const vm = fakeVm();
    const chunks: Uint8Array[] = [];
    const ms = new MigrationState(vm);
    const status = await ms.migrate(async () => ({ sink: { write: (c) => void chunks.push(c) }, close: async () => {}, abort: () => {} }));
    expect(status).toBe("completed");
    expect(vm.runState).toBe("postmigrate");
    const info = ms.query();
    expect(info.ram!.total).toBe(1 << 16);
    expect(info.ram!.duplicate).toBe(16);
    expect(info["setup-time"]).toBeGreaterThanOrEqual(0);
    expect(chunks.reduce((n, c) => n + c.length, 0)).toBeGreaterThan(100);
  });

  it("fails with return-path on a one-way channel", async () => {
    const ms = new MigrationState(fakeVm());
    ms.setCapabilities([{ capability: "return-path", state: true }]);
    expect(await ms.migrate(async () => ({ sink: { write: () => {} }, close: async () => {}, abort: () => {} }))).toBe("failed");
    expect(ms.errorDesc).toBe("Unable to open return-path for postcopy");
  });
});

describe("the return path", () => {
  it("reads PONGs then SHUT", async () => {
    const pongs: number[] = [];
    const r = await readReturnPath([encodeRpMessage(MigRpMsg.PONG, 1), encodeRpMessage(MigRpMsg.SHUT, 0)], (v) => pongs.push(v));
    expect(r.shut).toBe(0);
    expect(pongs).toEqual([1]);
  });

  it("reports a path that ends before SHUT and a bad message", async () => {
    expect((await readReturnPath([encodeRpMessage(MigRpMsg.PONG, 1)])).error?.message).toBe("RP: the return path closed before SHUT");
    const bad = new Uint8Array([0, 1, 0, 2, 0, 0]);
    expect((await readReturnPath([bad])).error?.message).toBe("RP: Received 'SHUT' message (0x0001) with bad length 2 expecting 4");
  });
});

describe("migration URIs", () => {
  it("parse tcp, unix, exec, fd and file, and name an unknown protocol as QEMU", () => {
    expect(parseMigrationUri("tcp:127.0.0.1:4444")).toEqual({ transport: "tcp", host: "127.0.0.1", port: 4444 });
    expect(parseMigrationUri("tcp:[::1]:4444")).toEqual({ transport: "tcp", host: "::1", port: 4444 });
    expect(parseMigrationUri("unix:/tmp/s")).toEqual({ transport: "unix", path: "/tmp/s" });
    expect(parseMigrationUri("exec:cat > f")).toEqual({ transport: "exec", command: "cat > f" });
    expect(parseMigrationUri("fd:5")).toEqual({ transport: "fd", fd: 5 });
    expect(parseMigrationUri("file:/tmp/x")).toEqual({ transport: "file", path: "/tmp/x" });
    expect(() => parseMigrationUri("rdma:1.2.3.4:5")).toThrow("unknown migration protocol: rdma:1.2.3.4:5");
  });
});

describe("HMP info migrate", () => {
  it("prints the globals and, after a migration, QEMU's lines", async () => {
    const { formatInfoMigrate, formatInfoMigrateCapabilities } = await import("./migration-hmp.ts");
    expect(formatInfoMigrate({})).toBe(
      "globals:\nstore-global-state: on\nonly-migratable: off\nsend-configuration: on\nsend-section-footer: on\ndecompress-error-check: on\nclear-bitmap-shift: 18\n",
    );
    const text = formatInfoMigrate({ status: "failed", "error-desc": "Failed to connect to '127.0.0.1:1': Connection refused" });
    expect(text).toContain("Migration status: failed (Failed to connect to '127.0.0.1:1': Connection refused)\ntotal time: 0 ms\n");
    const ms = new MigrationState(fakeVm());
    await ms.migrate(async () => ({ sink: { write: () => {} }, close: async () => {}, abort: () => {} }));
    const lines = formatInfoMigrate(ms.query()).split("\n");
    expect(lines[7]).toBe("Migration status: completed");
    expect(lines).toContain("total ram: 64 kbytes");
    expect(lines).toContain("duplicate: 16 pages");
    expect(lines).toContain("remaining ram: 0 kbytes");
    expect(lines.some((l) => l.startsWith("expected downtime"))).toBe(false);
    expect(formatInfoMigrateCapabilities([{ capability: "xbzrle", state: true }, { capability: "events", state: false }])).toBe(
      "xbzrle: on\nevents: off\n",
    );
  });
});
