import type { RunResult } from "@ferryvm/devices";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { VmController } from "../controller.ts";
import type { MonitorContext } from "../hmp.ts";
import { JsonStreamer, type JsonValue } from "./json.ts";
import { QmpSession } from "./server.ts";

/** A machine that never ends a run by itself. */
function idleMachine() {
  let end: ((r: RunResult) => void) | undefined;
  return {
    run: () => new Promise<RunResult>((r) => (end = r)),
    stop: () => end?.({ kind: "stopped" }),
    reset: () => {},
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
