// Figures for the report (not a timed test): a 256 MiB guest, idle and dirtying, migrated
// over loopback tcp within this process (both VMs in-thread). Runs only with
// FERRYVM_LIVE_FIGURES=1: `FERRYVM_LIVE_FIGURES=1 pnpm vitest run packages/migration/src/live-figures.test.ts`.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createMachine } from "@ferryvm/devices";
import { MigrationIncoming } from "./incoming.ts";
import { MigrationState } from "./outgoing.ts";
import { InThreadMachineVm } from "./testing/machine-vm.ts";
import { connectOutgoing, listenIncoming } from "./transport-node.ts";

const KERNEL = new Uint8Array(readFileSync(new URL("../../../guests/migration/a-b.elf", import.meta.url)));
const RAM = 256 << 20;

async function vm(span: number): Promise<{ vm: InThreadMachineVm; out: () => string }> {
  let b = 0;
  const machine = await createMachine({ ramSize: RAM, kernel: KERNEL, onConsoleOutput: (x) => (b += x.length) });
  const end = new Uint8Array(8);
  new DataView(end.buffer).setBigUint64(0, 0x80100000n + BigInt(span), true);
  machine.guestMemory.write(0x80004020, end);
  return { vm: new InThreadMachineVm(machine), out: () => String(b) };
}

describe.skipIf(process.env.FERRYVM_LIVE_FIGURES === undefined)("live migration figures", () => {
  for (const [name, span] of [["idle", 4096], ["dirtying 99 MiB", 99 << 20]] as const) {
    it(`migrates a 256 MiB ${name} guest over loopback tcp`, async () => {
      const src = await vm(span);
      await src.vm.resume();
      await new Promise((r) => setTimeout(r, 300));
      const i0 = src.vm.machine.instructions;
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 1000));
      const mipsAlone = (src.vm.machine.instructions - i0) / (performance.now() - t0) / 1000;
      const dst = await vm(span);
      const listener = await listenIncoming("tcp:127.0.0.1:0");
      const inc = new MigrationIncoming(dst.vm);
      const incDone = inc.incoming(() => listener.accept());
      const ms = new MigrationState(src.vm);
      ms.setParameters({ "max-bandwidth": 10_000_000_000 });
      const i1 = src.vm.machine.instructions;
      const t1 = performance.now();
      let precopyEnd = 0;
      let i2 = 0;
      const poll = setInterval(() => {
        if (ms.status === "active") {
          precopyEnd = performance.now();
          i2 = src.vm.machine.instructions;
        }
      }, 5);
      const status = await ms.migrate(() => connectOutgoing(listener.uri));
      clearInterval(poll);
      expect(status).toBe("completed");
      expect(await incDone).toBe("completed");
      const info = ms.query();
      const mipsDuring = (i2 - i1) / Math.max(1, precopyEnd - t1) / 1000;
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
          "MIPS alone": Math.round(mipsAlone),
          "MIPS during precopy": Math.round(mipsDuring),
        }),
      );
      await dst.vm.stop("paused");
    }, 120_000);
  }
});
