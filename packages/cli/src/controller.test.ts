import type { RunResult } from "@ferryvm/devices";
import { describe, expect, it } from "vitest";
import { VmController, type ControlledMachine, type VmEvent } from "./controller.ts";

/** A machine whose runs end when the test says, or at stop(). */
class FakeMachine implements ControlledMachine {
  runs = 0;
  resets = 0;
  #end: ((r: RunResult) => void) | undefined;
  run(): Promise<RunResult> {
    this.runs++;
    return new Promise((r) => (this.#end = r));
  }
  stop(): void {
    this.finish({ kind: "stopped" });
  }
  reset(): void {
    this.resets++;
  }
  paused = false;
  pause(): Promise<void> {
    this.paused = true;
    return Promise.resolve();
  }
  resume(): void {
    this.paused = false;
  }
  finish(r: RunResult): void {
    const end = this.#end;
    this.#end = undefined;
    end?.(r);
  }
  get inRun(): boolean {
    return this.#end !== undefined;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function setup(options: ConstructorParameters<typeof VmController>[1] = {}) {
  const m = new FakeMachine();
  const c = new VmController(m, options);
  const events: string[] = [];
  c.onEvent((e: VmEvent) => events.push(e.data ? `${e.event} ${JSON.stringify(e.data)}` : e.event));
  const outcome = c.start();
  return { m, c, events, outcome };
}

describe("VmController", () => {
  it("starts paused with -S and runs the machine only after cont", async () => {
    const { m, c, events, outcome } = setup({ startPaused: true });
    await tick();
    expect(c.state).toBe("prelaunch");
    expect(m.runs).toBe(0);
    await c.stop();
    expect(c.state).toBe("prelaunch");
    await c.cont();
    await tick();
    expect(c.state).toBe("running");
    expect(m.inRun).toBe(true);
    await c.stop();
    expect(c.state).toBe("paused");
    expect(m.inRun).toBe(false);
    await c.cont();
    await c.quit();
    expect(await outcome).toEqual({ kind: "quit", cause: "host-qmp-quit", code: 0 });
    expect(events).toEqual(["RESUME", "STOP", "RESUME", 'SHUTDOWN {"guest":false,"reason":"host-qmp-quit"}']);
  });

  it("resets on a guest reset, and a reset while paused leaves it in prelaunch", async () => {
    const { m, c, events } = setup();
    await tick();
    m.finish({ kind: "reset", cause: "guest-reset" });
    await tick();
    expect(m.resets).toBe(1);
    expect(c.state).toBe("running");
    await c.stop();
    await c.systemReset();
    expect(c.state).toBe("prelaunch");
    expect(events).toEqual([
      'RESET {"guest":true,"reason":"guest-reset"}',
      "STOP",
      'RESET {"guest":false,"reason":"host-qmp-system-reset"}',
    ]);
    await c.quit();
  });

  it("turns resets into shutdowns with -no-reboot", async () => {
    const { m, c, events, outcome } = setup({ noReboot: true });
    await tick();
    await c.systemReset();
    expect(await outcome).toEqual({ kind: "quit", cause: "host-qmp-system-reset", code: 0 });
    expect(m.resets).toBe(0);
    expect(events).toEqual(['SHUTDOWN {"guest":false,"reason":"host-qmp-system-reset"}']);
    expect(c.finished).toBe(true);
    await c.cont(); // a no-op once finished
  });

  it("ends with the guest's code at a poweroff, or holds it in shutdown with -no-shutdown", async () => {
    const a = setup();
    await tick();
    a.m.finish({ kind: "exit", code: 7, cause: "guest-shutdown" });
    expect(await a.outcome).toEqual({ kind: "exit", code: 7 });
    expect(a.events).toEqual(['SHUTDOWN {"guest":true,"reason":"guest-shutdown"}']);

    const b = setup({ noShutdown: true });
    await tick();
    b.m.finish({ kind: "exit", code: 7, cause: "guest-shutdown" });
    await tick();
    expect(b.c.state).toBe("shutdown");
    await expect(b.c.cont()).rejects.toThrow("Resetting the Virtual Machine is required");
    await b.c.quit();
    expect(await b.outcome).toEqual({ kind: "quit", cause: "host-qmp-quit", code: 7 });
    expect(b.events).toEqual([
      'SHUTDOWN {"guest":true,"reason":"guest-shutdown"}',
      "STOP",
      'SHUTDOWN {"guest":false,"reason":"host-qmp-quit"}',
    ]);
  });

  it("keeps a machine that throws in internal-error when asked", async () => {
    const errors: unknown[] = [];
    const m: ControlledMachine = {
      run: () => Promise.reject(new Error("boom")),
      stop: () => {},
      reset: () => {},
      pause: () => Promise.resolve(),
      resume: () => {},
      paused: false,
    };
    const c = new VmController(m, { keepOnError: true, onError: (e) => errors.push(e) });
    const events: string[] = [];
    c.onEvent((e) => events.push(e.event));
    const outcome = c.start();
    await tick();
    expect(c.state).toBe("internal-error");
    expect(events).toEqual(["STOP"]);
    expect(errors).toHaveLength(1);
    await c.signal("SIGTERM");
    expect(await outcome).toEqual({ kind: "signal", signal: "SIGTERM" });
    await expect(new VmController(m).start()).rejects.toThrow("boom");
  });

  it("waits in inmigrate without running; cont and stop there only decide whether it starts after the load", async () => {
    const { m, c, events, outcome } = setup({ incoming: true });
    await tick();
    expect(c.state).toBe("inmigrate");
    expect(c.running).toBe(false);
    expect(m.runs).toBe(0);
    expect(c.autostart).toBe(true);
    await c.stop();
    expect(c.state).toBe("inmigrate");
    expect(c.autostart).toBe(false);
    await c.cont();
    expect(c.state).toBe("inmigrate");
    expect(c.autostart).toBe(true);
    await c.systemReset();
    expect(c.state).toBe("inmigrate");
    expect(m.runs).toBe(0);
    await c.exclusive(async () => c.vmStart());
    await tick();
    expect(c.state).toBe("running");
    expect(m.inRun).toBe(true);
    await c.quit();
    await outcome;
    expect(events).toEqual(['RESET {"guest":false,"reason":"host-qmp-system-reset"}', "RESUME", 'SHUTDOWN {"guest":false,"reason":"host-qmp-quit"}']);
  });

  it("runs a task between two runs, holding other requests until it ends", async () => {
    const { m, c, events, outcome } = setup();
    await tick();
    expect(m.inRun).toBe(true);
    const order: string[] = [];
    let release!: () => void;
    const task = c.exclusive(async () => {
      order.push(`task: inRun=${m.inRun}`);
      c.stopForMigration();
      await new Promise<void>((r) => (release = r));
      c.setRunState("postmigrate");
      order.push("task done");
    });
    await tick();
    const stop = c.stop().then(() => order.push(`stop: ${c.state}`));
    await tick();
    expect(c.state).toBe("finish-migrate");
    release();
    await task;
    await stop;
    expect(order).toEqual(["task: inRun=false", "task done", "stop: postmigrate"]);
    expect(m.inRun).toBe(false);
    await c.cont();
    await tick();
    expect(m.inRun).toBe(true);
    await c.quit();
    await outcome;
    expect(events).toEqual(["STOP", "RESUME", 'SHUTDOWN {"guest":false,"reason":"host-qmp-quit"}']);
  });

  it("ends the run with the message a task fails with", async () => {
    const { m, c, outcome } = setup({ incoming: true });
    await c.exclusive(async () => c.fail("bad stream"));
    expect(await outcome).toEqual({ kind: "error", message: "bad stream" });
    expect(m.runs).toBe(0);
  });

  it("pauses the vCPUs in the run for a live migration's switch-over, and resumes them in it after a failure", async () => {
    const { m, c, events, outcome } = setup();
    await tick();
    expect(m.runs).toBe(1);
    await c.pauseForMigration("finish-migrate");
    expect(c.state).toBe("finish-migrate");
    expect(m.paused).toBe(true);
    expect(m.inRun).toBe(true); // the run was not ended and restarted
    await c.resumeAfterMigration();
    expect(c.state).toBe("running");
    expect(m.paused).toBe(false);
    expect(m.runs).toBe(1);
    // A success leaves it postmigrate; cont runs the guest again, unpaused.
    await c.pauseForMigration("finish-migrate");
    c.setRunState("postmigrate");
    await c.cont();
    await tick();
    expect(c.state).toBe("running");
    expect(m.paused).toBe(false);
    expect(m.inRun).toBe(true);
    expect(m.runs).toBe(2);
    // Not running: as requestStop (the state is set, no STOP).
    await c.stop();
    await c.pauseForMigration("finish-migrate");
    expect(c.state).toBe("finish-migrate");
    expect(m.paused).toBe(false);
    await c.quit();
    await outcome;
    expect(events).toEqual(["STOP", "RESUME", "STOP", "RESUME", "STOP", 'SHUTDOWN {"guest":false,"reason":"host-qmp-quit"}']);
  });
});
