/**
 * Saves a QEMU 7.2 machine's stream for the tests that read QEMU's bytes: QEMU runs with
 * `args` and `-monitor stdio`; `before` drives its HMP (cont, stop, ...), then `migrate
 * "exec:cat > FILE"` until `info migrate` says completed, and quit.
 * Tests only (src/testing is not built).
 *
 * @module
 */

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function qemuSaveStream(
  args: readonly string[],
  file: string,
  before: (hmp: (line: string) => void) => Promise<void> = async () => {},
): Promise<Uint8Array> {
  const qemu = spawn("qemu-system-riscv64", [...args, "-monitor", "stdio"], { stdio: ["pipe", "pipe", "inherit"] });
  let monitor = "";
  qemu.stdout.on("data", (b: Buffer) => (monitor += b.toString("latin1")));
  const done = new Promise<void>((r) => qemu.on("exit", () => r()));
  const hmp = (line: string): void => void qemu.stdin.write(`${line}\n`);
  await before(hmp);
  hmp(`migrate "exec:cat > ${file}"`);
  hmp("info migrate");
  for (let i = 0; i < 100 && !/Migration status: completed/.test(monitor); i++) {
    await sleep(100);
    hmp("info migrate");
  }
  hmp("quit");
  await done;
  return new Uint8Array(readFileSync(file));
}
