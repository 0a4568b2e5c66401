import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../bin/vm-cli.js", import.meta.url));
const built = existsSync(fileURLToPath(new URL("../dist/cli.js", import.meta.url)));
const fixtures = fileURLToPath(new URL("../../devices/test-fixtures/", import.meta.url));

function vmCli(args: string[], input = "") {
  const r = spawnSync(process.execPath, [bin, ...args], { input, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe.skipIf(!built)("the vm-cli executable (built dist/)", () => {
  it("runs a guest with its console on stdout and exits with the guest's status", () => {
    const r = vmCli(["run", "-M", "virt", "-bios", "none", "-kernel", `${fixtures}uart-hello.elf`, "-nographic"]);
    expect(r).toEqual({ status: 0, stdout: "hello from uart\n", stderr: "" });
    expect(vmCli(["run", "-bios", "none", "-kernel", `${fixtures}htif-fail.elf`, "-nographic"]).status).toBe(5);
  });

  it("forwards piped stdin", () => {
    const r = vmCli(["run", "-bios", "none", "-kernel", `${fixtures}echo.elf`, "-nographic"], "pipe q");
    expect(r.stdout).toBe("> PIPE ");
    expect(r.status).toBe(0);
  });

  it("exits 124 with a message on stderr after --timeout", () => {
    const r = vmCli(["run", "-bios", "none", "-kernel", `${fixtures}spin.elf`, "-nographic", "--timeout", "0.3"]);
    expect(r.status).toBe(124);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/timeout/);
  });

  it("on SIGINT sends SHUTDOWN host-signal to QMP clients and exits 130", async () => {
    const path = join(tmpdir(), `vm-cli-sig-${process.pid}.sock`);
    const child = spawn(process.execPath, [bin, "run", "-bios", "none", "-kernel", `${fixtures}spin.elf`, "-nographic", "-qmp", `unix:${path},server=on,wait=on`], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    let sock: net.Socket | undefined;
    for (let i = 0; i < 200 && sock === undefined; i++) {
      sock = await new Promise<net.Socket | undefined>((resolve) => {
        const s = net.createConnection(path);
        s.once("connect", () => resolve(s));
        s.once("error", () => setTimeout(() => resolve(undefined), 25));
      });
    }
    let text = "";
    sock!.on("data", (d) => {
      text += d.toString();
      if (text.includes('"return"') && !text.includes("SIGINT-sent")) {
        text += "SIGINT-sent";
        child.kill("SIGINT");
      }
    });
    sock!.write('{"execute":"qmp_capabilities"}\n');
    expect(await exited).toBe(130);
    expect(text).toMatch(/"event": "SHUTDOWN", "data": \{"guest": false, "reason": "host-signal"\}\}\r\n/);
    expect(stderr).toMatch(/terminating on signal SIGINT/);
  });

  it("exits 1 naming an invalid option", () => {
    expect(vmCli(["run", "-bogus"])).toEqual({ status: 1, stdout: "", stderr: "vm-cli: -bogus: invalid option\n" });
  });
});
