// Figures for the report (not a timed test): a 256 MiB guest, idle and dirtying 99 MiB,
// migrated over loopback tcp to a destination in another process (a second vitest run of
// this file with FERRYVM_LIVE_DEST set). Opt-in:
// `FERRYVM_LIVE_FIGURES=1 pnpm vitest run packages/migration/src/live-figures.test.ts`.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createMachine } from "@ferryvm/devices";
import { MigrationIncoming } from "./incoming.ts";
import { MigrationState } from "./outgoing.ts";
import { InThreadMachineVm } from "./testing/machine-vm.ts";
import { connectOutgoing, listenIncoming } from "./transport-node.ts";

const KERNEL = new Uint8Array(readFileSync(new URL("../../../guests/migration/a-b.elf", import.meta.url)));
const RAM = 256 << 20;
const DEST = process.env.FERRYVM_LIVE_DEST;

async function vm(span: number): Promise<{ vm: InThreadMachineVm; bytes: () => number }> {
  let b = 0;
  const machine = await createMachine({ ramSize: RAM, kernel: KERNEL, onConsoleOutput: (x) => (b += x.length) });
  const end = new Uint8Array(8);
  new DataView(end.buffer).setBigUint64(0, 0x80100000n + BigInt(span), true);
  machine.guestMemory.write(0x80004020, end);
  return { vm: new InThreadMachineVm(machine), bytes: () => b };
}

describe.skipIf(DEST === undefined)("live migration figures: the destination process", () => {
  it("loads one incoming migration and runs on", async () => {
    const dst = await vm(0);
    const listener = await listenIncoming(DEST!);
    console.log(`LISTENING ${listener.uri}`);
    const inc = new MigrationIncoming(dst.vm);
    const status = await inc.incoming(() => listener.accept());
    const before = dst.bytes();
    await new Promise((r) => setTimeout(r, 500));
    console.log(`DEST ${status} ${dst.vm.runState} printed ${dst.bytes() - before}`);
    await dst.vm.stop("paused");
  }, 120_000);
});

describe.skipIf(process.env.FERRYVM_LIVE_FIGURES === undefined || DEST !== undefined)("live migration figures", () => {
  for (const [name, span] of [["idle", 4096], ["dirtying 99 MiB", 99 << 20]] as const) {
    it(`migrates a 256 MiB ${name} guest over loopback tcp to another process`, async () => {
      const env: NodeJS.ProcessEnv = { ...process.env, FERRYVM_LIVE_DEST: "tcp:127.0.0.1:0" };
      delete env.FERRYVM_LIVE_FIGURES;
      const child = spawn("pnpm", ["vitest", "run", "packages/migration/src/live-figures.test.ts"], {
        env,
        stdio: ["ignore", "pipe", "inherit"],
      });
      let text = "";
      child.stdout.on("data", (d: Buffer) => (text += d.toString()));
      const src = await vm(span);
      await src.vm.resume();
      await new Promise((r) => setTimeout(r, 300));
      const i0 = src.vm.machine.instructions;
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 1000));
      const mipsAlone = (src.vm.machine.instructions - i0) / (performance.now() - t0) / 1000;
      while (!/LISTENING (\S+)/.test(text)) await new Promise((r) => setTimeout(r, 20));
      const uri = /LISTENING (\S+)/.exec(text)![1]!;
      const ms = new MigrationState(src.vm);
      ms.setParameters({ "max-bandwidth": 10_000_000_000 });
      const i1 = src.vm.machine.instructions;
      const t1 = performance.now();
      let precopyEnd = t1;
      let i2 = i1;
      let threshold = 0;
      const poll = setInterval(() => {
        if (ms.status === "active") {
          precopyEnd = performance.now();
          i2 = src.vm.machine.instructions;
          threshold = ms.thresholdSize;
        }
      }, 2);
      const status = await ms.migrate(() => connectOutgoing(uri));
      clearInterval(poll);
      expect(status).toBe("completed");
      await new Promise<void>((r) => child.once("close", () => r()));
      expect(text).toMatch(/DEST completed running printed [1-9]/);
      const info = ms.query();
      console.log(
        JSON.stringify({
          guest: name,
          "total-time": info["total-time"],
          downtime: info.downtime,
          "setup-time": info["setup-time"],
          transferred: info.ram!.transferred,
          "MB/s": Math.round(info.ram!.transferred / 1e3 / info["total-time"]!),
          "pages/s": Math.round((info.ram!.normal + info.ram!.duplicate) / (info["total-time"]! / 1000)),
          passes: info.ram!["dirty-sync-count"],
          normal: info.ram!.normal,
          duplicate: info.ram!.duplicate,
          "downtime-bytes": info.ram!["downtime-bytes"],
          "threshold at switch-over": Math.round(threshold),
          "pending at switch-over": ms.switchover?.pendingBytes,
          "stop-and-copy bytes": ms.switchover?.downtimeBytes,
          "expected downtime": ms.switchover?.expectedDowntime,
          "MIPS alone": Math.round(mipsAlone),
          "MIPS during precopy": Math.round((i2 - i1) / Math.max(1, precopyEnd - t1) / 1000),
        }),
      );
    }, 120_000);
  }
});
