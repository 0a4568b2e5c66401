import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

  it("waits while the VM is paused and nothing else holds the process (-S, stdin at its end), as QEMU, until a signal", async () => {
    const child = spawn(process.execPath, [bin, "run", "-bios", "none", "-kernel", `${fixtures}uart-hello.elf`, "-nographic", "-S"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr!.resume();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
    await new Promise((r) => setTimeout(r, 1500));
    expect(child.exitCode).toBe(null);
    expect(out).toBe("");
    child.kill("SIGTERM");
    expect(await exited).toEqual({ code: 143, signal: null });
  });

  it("exits 1 naming an invalid option", () => {
    expect(vmCli(["run", "-bogus"])).toEqual({ status: 1, stdout: "", stderr: "vm-cli: -bogus: invalid option\n" });
  });

  it("saves through the stdio monitor, restores with -incoming exec:, analyzes, and refuses another -m", () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-cli-bin-mig-"));
    try {
      // a-b with a 64-page range (mig_end = mig_start + 64 pages), so the stream stays small
      const elf = new Uint8Array(readFileSync(fileURLToPath(new URL("../../../guests/migration/a-b.elf", import.meta.url))));
      const text = new TextDecoder("latin1").decode(elf);
      const v = new DataView(elf.buffer);
      const small = join(dir, "a-b.elf");
      const file = join(dir, "vm.mig");
      // mig_start and mig_end are consecutive 8-byte words in .data: 0x80100000, 0x86400000
      const at = text.indexOf("\x00\x00\x10\x80\x00\x00\x00\x00\x00\x00\x40\x86");
      expect(at).toBeGreaterThan(0);
      v.setBigUint64(at + 8, 0x80140000n, true);
      writeFileSync(small, elf);
      const base = ["run", "-M", "virt", "-m", "16M", "-bios", "none", "-kernel", small];
      const src = vmCli([...base, "-display", "none", "-serial", "null", "-monitor", "stdio"], `migrate "exec:cat > '${file}'"\ninfo status\nquit\n`);
      expect(src.status).toBe(0);
      expect(src.stdout).toContain("VM status: paused (postmigrate)");
      const dst = vmCli([...base, "-nographic", "-incoming", `exec:cat '${file}'`, "--timeout", "1"]);
      expect(dst.status).toBe(124);
      expect(dst.stdout).toMatch(/^A?B+$/);
      const analyzed = vmCli(["analyze", file]);
      expect(analyzed.status).toBe(0);
      expect(Object.keys(JSON.parse(analyzed.stdout) as object)[0]).toBe("ram (0)");
      const other = vmCli(["run", "-M", "virt", "-m", "32M", "-bios", "none", "-kernel", small, "-nographic", "-incoming", `file:${file}`]);
      expect(other.status).toBe(1);
      expect(other.stderr).toMatch(/^vm-cli: load of migration failed: .*riscv_virt_board\.ram.*\n$/);
      expect(other.stdout).toBe("");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
