// A -> B -> C as users run it: B is a `vm-cli run -M virt-1.0` that takes the golden stream of
// the release that introduced virt-1.0 (A), and live-migrates over TCP to C, another
// `-M virt-1.0`. The guest keeps printing B, never E.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main, type CliIo } from "../main.ts";
import { QmpClient } from "../migrate-command.ts";
import { goldenArgs, listGoldens } from "./goldens.ts";

const dir = mkdtempSync(join(tmpdir(), "compat-live-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const golden10 = listGoldens().find((g) => g.meta.machineType === "virt-1.0")!;

function io() {
  let out = "";
  let err = "";
  const cli: CliIo = {
    stdout: (b) => void (out += new TextDecoder().decode(b)),
    stderr: (t) => void (err += t),
    stdin: null,
    isTTY: false,
    readFile: (p) => readFileSync(p),
  };
  return { cli, out: () => out, err: () => err };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const until = async (cond: () => boolean, what: string, ms = 15_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

async function vm(name: string, machineType: string, incoming: string) {
  const { args, cleanup } = goldenArgs(golden10, machineType);
  const sock = join(dir, `${name}.sock`);
  const t = io();
  const status = main(["run", ...args, "-qmp", `unix:${sock},server=on,wait=off`, "-incoming", incoming], t.cli);
  let qmp: QmpClient | undefined;
  for (let i = 0; qmp === undefined; i++) {
    try {
      qmp = await QmpClient.connect({ path: sock });
    } catch (e) {
      if (i > 300) throw new Error(`${String(e)}\n${t.err()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return { status, qmp, out: t.out, err: t.err, cleanup };
}

/** Quits each VM (one already gone is fine), waits for its end and removes its files. */
async function quitAll(vms: Awaited<ReturnType<typeof vm>>[]): Promise<void> {
  for (const v of vms) {
    await v.qmp.execute("quit").catch(() => undefined);
    await v.status;
    v.cleanup();
  }
}

describe("live migration between releases with the same machine type", () => {
  it("B (-M virt-1.0, loaded from A's golden stream) migrates over TCP to C (-M virt-1.0); the guest runs on", async () => {
    const file = join(dir, "a.mig");
    writeFileSync(file, golden10.stream());
    const b = await vm("b", "virt-1.0", `file:${file}`);
    const port = await freePort();
    const c = await vm("c", "virt-1.0", `tcp:127.0.0.1:${port}`);
    try {
      await until(() => (b.out().match(/B/g) ?? []).length >= 3, "B's guest to run");
      expect(await b.qmp.execute("migrate", { uri: `tcp:127.0.0.1:${port}` })).toEqual({});
      await until(() => c.out().includes("B"), "C's guest to run");
      const info = (await b.qmp.execute("query-migrate")) as { status: string };
      expect(info.status).toBe("completed");
      expect(await c.qmp.execute("query-status")).toMatchObject({ status: "running" });
      await until(() => (c.out().match(/B/g) ?? []).length >= 3, "C's guest to keep running");
      expect(b.out() + c.out()).not.toMatch(/E/);
      expect(c.err()).toBe("");
    } finally {
      await quitAll([b, c]);
    }
  }, 60_000);

  it("C refuses B's stream when it runs the newer type, and B runs on", async () => {
    const file = join(dir, "a2.mig");
    writeFileSync(file, golden10.stream());
    const b = await vm("b2", "virt-1.0", `file:${file}`);
    const port = await freePort();
    const c = await vm("c2", "virt", `tcp:127.0.0.1:${port}`);
    try {
      await until(() => b.out().includes("B"), "B's guest to run");
      await b.qmp.execute("migrate", { uri: `tcp:127.0.0.1:${port}` });
      expect(await c.status).toBe(1);
      expect(c.err()).toContain("Machine type received is 'virt-1.0' and local is 'virt-1.1'");
      let status = "";
      for (let i = 0; i < 500 && status !== "failed"; i++) {
        status = ((await b.qmp.execute("query-migrate")) as { status: string }).status;
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(status).toBe("failed");
      const before = (b.out().match(/B/g) ?? []).length;
      await until(() => (b.out().match(/B/g) ?? []).length > before + 2, "B's guest to run on");
      expect(await b.qmp.execute("query-status")).toMatchObject({ status: "running" });
    } finally {
      await quitAll([b, c]);
    }
  }, 60_000);
});
