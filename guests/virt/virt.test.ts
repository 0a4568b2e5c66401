/**
 * guests/virt: the shipped OpenSBI plus our S-mode payload on FerryVM's `virt` board (SBI
 * console, timer interrupts, virtio-blk, virtio-rng, RTC, UART receive interrupts through the
 * PLIC), and the same run on qemu-system-riscv64 (skipped without QEMU) printing the same.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createMachine, MemoryBlockBackend } from "@ferryvm/devices";

const elfPath = fileURLToPath(new URL("./virt.elf", import.meta.url));
const firmwarePath = fileURLToPath(
  new URL("../../packages/devices/firmware/opensbi-riscv64-generic-fw_dynamic.bin", import.meta.url),
);
const hasQemu = spawnSync("qemu-system-riscv64", ["--version"]).status === 0;

/** 64 KiB: a text line in sector 0, a pattern in sector 1. */
function diskImage(): Uint8Array {
  const d = new Uint8Array(65536);
  d.set(new TextEncoder().encode("FerryVM test disk: hello from sector 0\n"));
  for (let i = 512; i < 1024; i++) d[i] = (i * 13) & 255;
  return d;
}

function fnv1a(bytes: Uint8Array): string {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return "0x" + h.toString(16);
}

/** The payload's part of the console output (OpenSBI's banner differs in the ISA lines). */
function payloadLines(text: string): string {
  const start = text.indexOf("virt: S-mode payload");
  return start < 0 ? "" : text.slice(start).replace(/\r/g, "");
}

async function runOurs(disk: Uint8Array, virtioLegacy = false): Promise<{ out: string; result: string; console: string }> {
  let out = "";
  let vcon = "";
  let sent = false;
  const m = await createMachine({
    ramSize: 128 * 2 ** 20,
    bios: "default",
    kernel: readFileSync(elfPath),
    virtioLegacy,
    virtio: [
      { type: "virtio-blk-device", backend: new MemoryBlockBackend(disk) },
      { type: "virtio-rng-device" },
      { type: "virtio-serial-device", onOutput: (b) => { vcon += new TextDecoder().decode(b); } },
    ],
    onConsoleOutput: (b) => {
      out += new TextDecoder().decode(b);
      if (!sent && out.includes("uart: waiting for input")) {
        sent = true;
        m.sendConsoleInput(new TextEncoder().encode("x"));
      }
    },
  });
  const r = await m.run({ timeoutMs: 20_000 });
  return { out, result: JSON.stringify(r), console: vcon };
}

describe("guests/virt on FerryVM", () => {
  it("boots the shipped OpenSBI, which prints its banner and platform lines", async () => {
    const disk = diskImage();
    const { out, result, console } = await runOurs(disk);
    expect(out).toContain("OpenSBI v1.1");
    expect(out).toContain("Platform Name             : riscv-virtio,qemu");
    expect(out).toContain("Platform Console Device   : uart8250");
    expect(out).toContain("Domain0 Next Address      : 0x0000000080200000");
    expect(out).toContain("Domain0 Next Arg1         : 0x0000000087e00000");
    const payload = payloadLines(out);
    expect(payload, out).toContain("virt: all passed");
    expect(payload).not.toContain("FAIL");
    expect(payload).toContain("virtio-mmio slots: 0 0 0 0 0 3 4 2");
    expect(console).toBe("hello through virtio-console transmitq0\n!\n");
    expect(payload).toContain(`fnv1a ${fnv1a(diskImage().subarray(0, 1024))}`);
    expect(payload).toContain("uart: irq 10 got 'x'");
    expect(result).toBe(JSON.stringify({ kind: "exit", code: 0, cause: "guest-shutdown" }));
    // The guest's write reached the disk.
    const expected = new Uint8Array(512).map((_, i) => (i * 7 + 3) & 255);
    expect(disk.subarray(1024, 1536)).toEqual(expected);
  });

  it.skipIf(!hasQemu)("prints OpenSBI's banner as on qemu-system-riscv64, but for the ISA lines", async () => {
    const qemu = spawnSync("timeout", ["1.5", "qemu-system-riscv64", "-M", "virt", "-m", "128M", "-nographic", "-bios", firmwarePath], {
      encoding: "utf8",
    }).stdout;
    let ours = "";
    const m = await createMachine({ bios: "default", onConsoleOutput: (b) => { ours += new TextDecoder().decode(b); } });
    await m.run({ timeoutMs: 1000 });
    // QEMU's CPU has F, D and H (and H's delegations); ours is RV64IMAC.
    const differ = /^(Boot HART Base ISA|Boot HART MIDELEG|Boot HART MEDELEG)/;
    const banner = (t: string) => t.split("\n").filter((l) => l.trim() !== "" && !differ.test(l) && !l.startsWith("qemu-system"));
    expect(banner(qemu).length).toBeGreaterThan(30);
    expect(banner(ours)).toEqual(banner(qemu));
  });

  it("drives the legacy (version 1) transports as well", async () => {
    const { out, result } = await runOurs(diskImage(), true);
    expect(out).toContain("virtio-blk: slot 7, version 1,");
    expect(out).toContain("virt: all passed");
    expect(result).toBe(JSON.stringify({ kind: "exit", code: 0, cause: "guest-shutdown" }));
  });

  it.skipIf(!hasQemu)("prints the same as on qemu-system-riscv64, with modern and with legacy virtio-mmio", async () => {
    for (const legacy of [false, true]) await sameAsQemu(legacy);
  });
});

async function sameAsQemu(legacy: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "ferryvm-virt-"));
  try {
    const img = join(dir, "disk.img");
    const conFile = join(dir, "console.txt");
    writeFileSync(img, diskImage());
    const qemuOut = await new Promise<string>((resolve, reject) => {
      const p = spawn("qemu-system-riscv64", [
        "-M", "virt", "-m", "128M", "-nographic", "-bios", firmwarePath, "-kernel", elfPath,
        // QEMU 7.2's default is force-legacy=on
        ...(legacy ? [] : ["-global", "virtio-mmio.force-legacy=false"]),
        "-drive", `file=${img},if=none,format=raw,id=d0`, "-device", "virtio-blk-device,drive=d0",
        "-device", "virtio-rng-device",
        "-device", "virtio-serial-device,max_ports=1", "-chardev", `file,id=c0,path=${conFile}`,
        "-device", "virtconsole,chardev=c0",
      ]);
      let text = "";
      let sent = false;
      const timer = setTimeout(() => p.kill(), 20_000);
      p.stdout.on("data", (b: Buffer) => {
        text += b.toString();
        if (!sent && text.includes("uart: waiting for input")) {
          sent = true;
          p.stdin.write("x");
        }
      });
      p.on("error", reject);
      p.on("close", () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
    const ours = await runOurs(diskImage(), legacy);
    expect(payloadLines(qemuOut)).toContain("virt: all passed");
    expect(payloadLines(qemuOut)).toContain(`version ${legacy ? 1 : 2},`);
    expect(payloadLines(ours.out)).toBe(payloadLines(qemuOut));
    expect(ours.console).toBe(readFileSync(conFile, "utf8"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
