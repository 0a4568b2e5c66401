import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { UsageError } from "./args.ts";
import { DEFAULT_GUEST, parseDemoArgs, runDemo, type DemoArgs } from "./demo.ts";

const built = existsSync(fileURLToPath(new URL("../dist/cli.js", import.meta.url)));
const uartHello = fileURLToPath(new URL("../../devices/test-fixtures/uart-hello.elf", import.meta.url));

function capture() {
  const io = {
    out: "",
    err: "",
    stdout: (t: string) => {
      io.out += t;
    },
    stderr: (t: string) => {
      io.err += t;
    },
  };
  return io;
}

function pids(text: string): number[] {
  return [...text.matchAll(/started \(pid (\d+)\)/g)].map((m) => Number(m[1]));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}


describe("vm-cli demo's arguments", () => {
  it("defaults to two hops of the demo guest, shorter hops from the environment", () => {
    const a = parseDemoArgs([], { FERRYVM_DEMO_HOP_SECONDS: "0.5" })!;
    expect(a).toMatchObject({ hops: 2, hopSeconds: 0.5, keepGoing: false, ram: "128M" });
    expect(a.guest).toBe(DEFAULT_GUEST);
    expect(DEFAULT_GUEST).toMatch(/demo-guest\/demo\.elf$/);
    expect(parseDemoArgs(["--hops", "3", "--hop-seconds", "1", "--keep-going", "-m", "64M"], {})).toMatchObject({ hops: 3, hopSeconds: 1, keepGoing: true, ram: "64M" });
    expect(parseDemoArgs(["--help"], {})).toBeUndefined();
    expect(() => parseDemoArgs(["--hops", "0"], {})).toThrow(UsageError);
    expect(() => parseDemoArgs(["--guest", "/nonexistent.elf"], {})).toThrow(/not found/);
    expect(() => parseDemoArgs(["--bogus"], {})).toThrow(/unknown option --bogus/);
  });
});

describe.skipIf(!built || !existsSync(DEFAULT_GUEST))("vm-cli demo (real vm-cli run children)", () => {
  it("migrates the guest A -> B -> A', its tick counter going on and its RAM intact, prints both hops' figures and exits 0", async () => {
    const io = capture();
    const args: DemoArgs = { hops: 2, hopSeconds: 1.1, keepGoing: false, guest: DEFAULT_GUEST, ram: "32M" };
    const { status, hops } = await runDemo(args, io);
    expect(io.err).toBe("");
    expect(status).toBe(0);
    expect(hops.map((h) => `${h.from}->${h.to}`)).toEqual(["A->B", "B->A'"]);
    for (const h of hops) {
      expect(h.summary.status).toBe("completed");
      expect(h.summary.totalTime).toBeGreaterThan(0);
      expect(h.summary.zeroPages + h.summary.normalPages).toBeGreaterThanOrEqual(32 * 1024 * 1024 / 4096);
      // Continuity: the destination's first tick is the one after the source's last.
      expect(h.lastTick).toBeDefined();
      expect(h.nextTick).toBe(h.lastTick! + 1);
    }
    expect(io.out).toMatch(/^\[A\] FerryVM demo guest/m);
    expect(io.out).toMatch(/^\[A\] tick 1  uptime 1\.\d s/m);
    expect(io.out).toMatch(/^\[B\] tick \d+  uptime/m);
    expect(io.out).toMatch(/^\[A'\] tick \d+  uptime/m);
    expect(io.out).not.toMatch(/^\[(B|A')\] FerryVM demo guest/m);
    // The guest checked its 8 MiB of rewritten pages on every host: none lost or damaged.
    expect(io.out).toMatch(/^\[A'\] tick \d+  uptime [\d.]+ s  pages rewritten \d+, all intact$/m);
    expect(io.out).not.toMatch(/BAD/);
    // Its dirty pages went over the wire: more than the handful of an idle guest.
    expect(hops[0]!.summary.normalPages).toBeGreaterThan(1000);
    expect(io.out).toMatch(/^== hop 1 A -> B: total \d+ ms, downtime \d+ ms, [\d.]+ mbps, transferred .*, pages \d+ normal \+ \d+ zero/m);
    expect(io.out).toMatch(/^== hop 2 B -> A': total \d+ ms, downtime \d+ ms/m);
    // No child left behind, no temporary directory either.
    const children = pids(io.out);
    expect(children).toHaveLength(3);
    for (const p of children) expect(alive(p)).toBe(false);
    const dir = /QMP (\S+)\/A\.qmp/.exec(io.out)?.[1];
    expect(dir).toMatch(/ferryvm-demo-/);
    expect(existsSync(dir!)).toBe(false);
  }, 30_000);

  it("says why and exits 1 when a child dies, ending the others", async () => {
    const io = capture();
    // uart-hello prints one line and powers off: A dies before the first hop.
    const { status, hops } = await runDemo({ hops: 2, hopSeconds: 2, keepGoing: false, guest: uartHello, ram: "32M" }, io);
    expect(status).toBe(1);
    expect(hops).toEqual([]);
    expect(io.err).toMatch(/^vm-cli: demo: A exited unexpectedly \(status 0\)/);
    for (const p of pids(io.out)) expect(alive(p)).toBe(false);
  }, 30_000);
});
