// The dirty-bitmap race with the real machine in worker mode: the a-b guest rewrites 4 MiB
// in the worker while this thread syncs the migration bitmap over and over (each sync ends
// with the worker-mode barrier) and copies every reported page to a shadow, as precopy does.
// After a stop and a last sync the shadow must equal guest RAM: no store was lost.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createMachine } from "./machine.ts";
import { vcpuWorkerAvailable } from "./vcpu-worker.ts";

const AB = new Uint8Array(readFileSync(new URL("../../../guests/migration/a-b.elf", import.meta.url)));
const MIG_START = 0x80100000n;
const MIG_END_ADDR = 0x80004020;
const SPAN = 4 << 20;

describe.skipIf(!vcpuWorkerAvailable())("dirty tracking of a guest run in the vCPU worker", () => {
  it("reports every page the worker's guest stores to while syncs race it, with no store lost", async () => {
    let text = "";
    const m = await createMachine({
      ramSize: 16 << 20,
      kernel: AB,
      vcpuThread: "worker",
      onConsoleOutput: (b) => (text += new TextDecoder().decode(b)),
    });
    try {
      const end = new Uint8Array(8);
      new DataView(end.buffer).setBigUint64(0, MIG_START + BigInt(SPAN), true);
      m.guestMemory.write(MIG_END_ADDR, end);
      const ram = m.guestMemory.block("riscv_virt_board.ram");
      const mig = m.guestMemory.dirty("migration");
      const shadow = new Uint8Array(ram.usedLength);
      const copyDirty = (): number => {
        let n = 0;
        for (const page of mig.pages(ram)) {
          if (!mig.testAndClear(ram, page)) continue;
          shadow.set(ram.page(page), page * 4096);
          n++;
        }
        return n;
      };
      mig.sync();
      mig.setAll(ram);
      copyDirty();
      const run = m.run({ timeoutMs: 20_000 });
      let rounds = 0;
      let copied = 0;
      const until = performance.now() + 1200;
      while (performance.now() < until) {
        mig.sync();
        copied += copyDirty();
        rounds++;
        await new Promise((r) => setImmediate(r));
      }
      m.stop();
      expect(await run).toEqual({ kind: "stopped" });
      mig.sync();
      copyDirty();
      expect(text).toMatch(/^AB+B/); // several passes over the pages, none seen damaged (E)
      expect(text).not.toContain("E");
      expect(rounds).toBeGreaterThan(20);
      expect(copied).toBeGreaterThan(SPAN / 4096); // pages were re-dirtied between syncs
      const differing: number[] = [];
      for (let p = 0; p < ram.pages; p++) {
        const a = ram.page(p);
        const b = shadow.subarray(p * 4096, (p + 1) * 4096);
        if (!a.every((v, k) => v === b[k])) differing.push(p);
      }
      expect(differing).toEqual([]);
    } finally {
      await m.dispose();
    }
  });
});
