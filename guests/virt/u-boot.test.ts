/**
 * A third-party guest built for QEMU's `virt`: Debian's U-Boot (package u-boot-qemu,
 * qemu-riscv64_smode) under the shipped OpenSBI, reading our FDT, UART and virtio-blk. Compared
 * with qemu-system-riscv64 running the same. Skipped when U-Boot (or QEMU, for the comparison)
 * is not installed.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createMachine, MemoryBlockBackend } from "@ferryvm/devices";

const UBOOT = "/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin";
const hasUboot = existsSync(UBOOT);
const hasQemu = hasUboot && spawnSync("qemu-system-riscv64", ["--version"]).status === 0;
const firmwarePath = fileURLToPath(
  new URL("../../packages/devices/firmware/opensbi-riscv64-generic-fw_dynamic.bin", import.meta.url),
);
const COMMANDS = ["virtio scan", "virtio info", "virtio read 0x84000000 1 2", "md.b 0x84000000 0x20", "crc32 0x84000000 0x400", "poweroff"];

function diskImage(): Uint8Array {
  const d = new Uint8Array(65536);
  for (let i = 0; i < d.length; i++) d[i] = (i * 29 + (i >> 9)) & 255;
  d.set(new TextEncoder().encode("FerryVM U-Boot disk, sector 1 "), 512);
  return d;
}

/** Drives the U-Boot prompt: a key to stop autoboot, then one command per prompt. */
function driver(send: (text: string) => void): (out: string) => void {
  let stopped = false;
  let prompts = 0;
  return (out) => {
    if (!stopped && out.includes("Hit any key")) {
      stopped = true;
      send(" ");
    }
    // prompts at the start of a line ("==> " in crc32's output is not one)
    const n = out.match(/(^|\n)=> /g)?.length ?? 0;
    if (n > prompts && n - 1 < COMMANDS.length) {
      prompts = n;
      send(COMMANDS[n - 1] + "\r");
    }
  };
}

/** What the commands printed (from the first prompt on), without terminal noise. */
function session(out: string): string {
  const i = out.indexOf("=> ");
  return out.slice(i).replace(/\r/g, "").replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
}

async function runOurs(): Promise<string> {
  let out = "";
  const m = await createMachine({
    bios: "default",
    kernel: readFileSync(UBOOT),
    virtio: [{ type: "virtio-blk-device", backend: new MemoryBlockBackend(diskImage()) }],
    onConsoleOutput: (b) => {
      out += new TextDecoder().decode(b);
      drive(out);
    },
  });
  const drive = driver((t) => m.sendConsoleInput(new TextEncoder().encode(t)));
  const r = await m.run({ timeoutMs: 20_000 });
  if (r.kind !== "exit") console.log(out);
  expect(r).toEqual({ kind: "exit", code: 0, cause: "guest-shutdown" });
  return out;
}

describe.skipIf(!hasUboot)("Debian's U-Boot for QEMU virt (S-mode) on FerryVM", () => {
  it("boots under OpenSBI, finds the disk on virtio-mmio and reads it", async () => {
    const out = await runOurs();
    expect(out).toContain("Model: riscv-virtio,qemu");
    expect(out).toContain("DRAM:  128 MiB");
    expect(out).toContain("In:    serial@10000000");
    expect(out).toContain("Device 0: QEMU VirtIO Block Device");
    expect(out).toContain("Capacity: 0.0 MB = 0.0 GB (128 x 512)");
    expect(out).toContain("2 blocks read: OK");
    expect(out).toContain("FerryVM U-Boot d");
    expect(out).toContain("poweroff ...");
  });

  it.skipIf(!hasQemu)("prints the same for the same commands as on qemu-system-riscv64", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ferryvm-uboot-"));
    try {
      const img = join(dir, "disk.img");
      writeFileSync(img, diskImage());
      const qemu = await new Promise<string>((resolve, reject) => {
        const p = spawn("qemu-system-riscv64", [
          "-M", "virt", "-m", "128M", "-nographic", "-bios", firmwarePath, "-kernel", UBOOT,
          "-global", "virtio-mmio.force-legacy=false",
          "-drive", `file=${img},if=none,format=raw,id=d0`, "-device", "virtio-blk-device,drive=d0",
        ]);
        let text = "";
        const drive = driver((t) => p.stdin.write(t));
        const timer = setTimeout(() => p.kill(), 20_000);
        p.stdout.on("data", (b: Buffer) => {
          text += b.toString();
          drive(text);
        });
        p.on("error", reject);
        p.on("close", () => {
          clearTimeout(timer);
          resolve(text);
        });
      });
      const ours = await runOurs();
      expect(session(qemu)).toContain("crc32 for 84000000 ... 840003ff ==> ");
      expect(session(ours)).toBe(session(qemu));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
