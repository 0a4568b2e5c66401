import type { RunResult } from "@ferryvm/devices";
import fc from "fast-check";
import { closeSync, fstatSync, openSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { VmController } from "../controller.ts";
import type { MonitorContext } from "../hmp.ts";
import { MonitorFds, resolveNamedFd } from "./fds.ts";
import { JsonStreamer, type JsonValue } from "./json.ts";
import { QmpSession } from "./server.ts";

/** A machine that never ends a run by itself. */
function idleMachine() {
  let end: ((r: RunResult) => void) | undefined;
  return {
    run: () => new Promise<RunResult>((r) => (end = r)),
    stop: () => end?.({ kind: "stopped" }),
    reset: () => {},
    pause: () => Promise.resolve(),
    resume: () => {},
    paused: false,
  };
}

function context(): MonitorContext {
  const controller = new VmController(idleMachine(), { startPaused: true });
  void controller.start();
  return { controller, harts: 1, name: undefined, packageVersion: "test" };
}

const TOKENS = [
  "{", "}", "[", "]", ",", ":", " ", "\n", '"execute"', '"arguments"', '"id"', '"exec-oob"', '"qmp_capabilities"',
  '"query-status"', '"stop"', '"cont"', '"system_reset"', '"human-monitor-command"', '"command-line"', '"info status"',
  '"xp /2xg 0"', '"enable"', '["oob"]', "1", "-2.5e3", "true", "null", "'single'", '"\\u00e9"', '"\\q"', "garbage",
];

describe("a QMP session", () => {
  it("answers every input value exactly once, whatever the bytes, and never throws", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 4 })), { maxLength: 40 }), async (parts) => {
        const text = parts.join("") + "\n";
        const out: JsonValue[] = [];
        const session = new QmpSession(context(), (v) => out.push(v));
        await session.feed(text);
        const expected = new JsonStreamer().push(text).length;
        const answers = out.filter((v) => typeof v === "object" && v !== null && !Array.isArray(v) && !("event" in v));
        expect(answers).toHaveLength(expected);
        for (const a of answers) expect("return" in (a as object) || "error" in (a as object)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe("QMP machine types and device properties", () => {
  async function ask(command: object): Promise<JsonValue[]> {
    const out: JsonValue[] = [];
    const session = new QmpSession(context(), (v) => out.push(v));
    await session.feed(JSON.stringify({ execute: "qmp_capabilities" }) + JSON.stringify(command) + "\n");
    return out.filter((v) => typeof v === "object" && v !== null && !Array.isArray(v) && !("event" in v));
  }

  it("lists every machine type, the newest with its alias and is-default (query-machines)", async () => {
    const [, r] = await ask({ execute: "query-machines" });
    const list = (r as { return: { name: string; alias?: string; "is-default"?: boolean }[] }).return;
    expect(list.map((m) => [m.name, m.alias ?? null, m["is-default"] ?? false])).toEqual([
      ["virt-1.1", "virt", true],
      ["virt-1.0", null, false],
    ]);
  });

  it("lists a device type's properties with their defaults, and names an unknown type (device-list-properties)", async () => {
    const [, r] = await ask({ execute: "device-list-properties", arguments: { typename: "virtio-blk-device" } });
    expect((r as { return: unknown[] }).return).toContainEqual(
      expect.objectContaining({ name: "num-queues", type: "uint16", "default-value": 65535 }),
    );
    const [, bad] = await ask({ execute: "device-list-properties", arguments: { typename: "e1000" } });
    expect(bad).toEqual({ error: { class: "GenericError", desc: "Device 'e1000' not found" } });
  });
});

describe("QMP getfd and closefd", () => {
  const replies = (out: JsonValue[]): { return?: JsonValue; error?: { class: string; desc: string } }[] =>
    out.filter((v) => typeof v === "object" && v !== null && !Array.isArray(v) && !("event" in v) && !("QMP" in v)) as never;
  const isOpen = (fd: number): boolean => {
    try {
      fstatSync(fd);
      return true;
    } catch {
      return false;
    }
  };

  it("answers QEMU's no-descriptor error, with the reason when none can arrive", async () => {
    const out: JsonValue[] = [];
    const session = new QmpSession(context(), (v) => out.push(v));
    await session.feed('{"execute":"qmp_capabilities"}{"execute":"getfd","arguments":{"fdname":"mig"}}{"execute":"closefd","arguments":{"fdname":"mig"}}\n');
    const [, getfd, closefd] = replies(out);
    expect(getfd!.error).toEqual({ class: "GenericError", desc: "No file descriptor supplied via SCM_RIGHTS" });
    expect(closefd!.error!.desc).toBe("File descriptor named 'mig' not found");
    const tcp: JsonValue[] = [];
    const overTcp = new QmpSession(context(), (v) => tcp.push(v), { named: new MonitorFds(), unavailable: "descriptors pass only over a unix socket" });
    await overTcp.feed('{"execute":"qmp_capabilities"}{"execute":"getfd","arguments":{"fdname":"mig"}}');
    expect(replies(tcp)[1]!.error!.desc).toBe("No file descriptor supplied via SCM_RIGHTS (descriptors pass only over a unix socket; fd:N takes a descriptor the process inherited)");
  });

  it("names the first descriptor of the latest message that brought any, closing the ones nobody can take", async () => {
    const out: JsonValue[] = [];
    const named = new MonitorFds();
    const session = new QmpSession(context(), (v) => out.push(v), { named });
    const [a, b, c, d] = [0, 1, 2, 3].map(() => openSync("/dev/null", "r"));
    await session.feed('{"execute":"qmp_capabilities"}', [a!]);
    // A later message with descriptors replaces the earlier ones (char-socket.c's read_msgfds).
    await session.feed(" ", [b!, c!]);
    expect(isOpen(a!)).toBe(false);
    await session.feed('{"execute":"getfd","arguments":{"fdname":"one"}}');
    expect(replies(out)[1]).toEqual({ return: {} });
    expect(isOpen(b!)).toBe(true);
    expect(isOpen(c!)).toBe(false);
    expect(named.take("one")).toBe(b);
    closeSync(b!);
    // A name may not start with a digit (fd:N is a number); the descriptor is closed.
    await session.feed('{"execute":"getfd","arguments":{"fdname":"9"}}', [d!]);
    expect(replies(out)[2]!.error!.desc).toBe("Parameter 'fdname' expects a name not starting with a digit");
    expect(isOpen(d!)).toBe(false);
    // The same name twice: the first descriptor is closed.
    const [e, f, g] = [0, 1, 2].map(() => openSync("/dev/null", "r"));
    await session.feed('{"execute":"getfd","arguments":{"fdname":"mig"}}', [e!]);
    await session.feed('{"execute":"getfd","arguments":{"fdname":"mig"}}', [f!]);
    expect(isOpen(e!)).toBe(false);
    await session.feed('{"execute":"closefd","arguments":{"fdname":"mig"}}');
    expect(replies(out).slice(3)).toEqual([{ return: {} }, { return: {} }, { return: {} }]);
    expect(isOpen(f!)).toBe(false);
    expect(named.size).toBe(0);
    // Sent with a command that is not getfd, and never taken: closed with the connection.
    await session.feed('{"execute":"query-status"}', [g!]);
    expect(isOpen(g!)).toBe(true);
    session.close();
    await new Promise((r) => setImmediate(r));
    expect(isOpen(g!)).toBe(false);
  });

  it("fd:NAME takes the named descriptor over; numbers and other URIs pass unchanged", () => {
    const named = new MonitorFds();
    const fd = openSync("/dev/null", "r");
    named.add("mig", fd);
    expect(resolveNamedFd("tcp:127.0.0.1:4444", named)).toBe("tcp:127.0.0.1:4444");
    expect(resolveNamedFd("fd:7", named)).toBe("fd:7");
    expect(() => resolveNamedFd("fd:other", named)).toThrow("File descriptor named 'other' has not been found");
    expect(resolveNamedFd("fd:mig", named)).toBe(`fd:${fd}`);
    expect(() => resolveNamedFd("fd:mig", undefined)).toThrow("File descriptor named 'mig' has not been found");
    expect(named.size).toBe(0);
    expect(isOpen(fd)).toBe(true);
    closeSync(fd);
  });
});

describe("HMP info qtree", () => {
  it("shows the machine type and every device's properties, with where a non-default value came from", async () => {
    const { resolveMachineConfig } = await import("@ferryvm/devices");
    const { executeHmp } = await import("../hmp.ts");
    const machineConfig = resolveMachineConfig({
      machineType: "virt-1.0",
      cpuProperties: { c: "off" },
      virtio: [{ type: "virtio-rng-device", properties: { "max-bytes": "1024" } }],
    });
    const text = await executeHmp("info qtree", { ...context(), machineConfig });
    expect(text).toMatch(/^machine: virt-1\.0\n/);
    expect(text).toContain("    c = false   [option]\n");
    expect(text).toContain("      dev: virtio-rng-device, id \"\"\n");
    expect(text).toContain("        max-bytes = 1024 (0x400)   [option]\n");
    expect(text).toContain("        x-migrate-quota = false   [compat virt-1.0]\n");
  });
});
