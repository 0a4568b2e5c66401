import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMachine } from "./machine.ts";
import { buildVirtFdt, VIRT_ISA_STRING } from "./virt-fdt.ts";

const have = (cmd: string, arg: string) => spawnSync(cmd, [arg]).status === 0;
const hasDtc = have("dtc", "--version") && have("fdtput", "--help");
const hasQemu = hasDtc && have("qemu-system-riscv64", "--version");

/** Nodes QEMU has that this machine does not model. */
const ABSENT = ["/fw-cfg@10100000", "/flash@20000000", "/platform-bus@4000000", "/soc/pci@30000000"];

function dts(dir: string, dtb: Uint8Array, name: string, drop: readonly string[] = []): string {
  const file = join(dir, name);
  writeFileSync(file, dtb);
  for (const node of drop) expect(spawnSync("fdtput", ["-r", file, node]).status).toBe(0);
  // rng-seed is random; riscv,isa names what each CPU implements.
  spawnSync("fdtput", ["-t", "x", file, "/chosen", "rng-seed", "0"]);
  const out = spawnSync("dtc", ["-I", "dtb", "-O", "dts", file], { encoding: "utf8" });
  expect(out.status).toBe(0);
  return out.stdout.replace(/riscv,isa = "[^"]*"/g, 'riscv,isa = "ISA"');
}

describe("buildVirtFdt", () => {
  it("announces bootargs, the initrd range, the ISA and a random seed", () => {
    const a = buildVirtFdt({ ramBase: 0x8000_0000, ramSize: 2 ** 27, harts: 1, bootargs: "console=ttyS0", initrd: { start: 0x8820_0000, end: 0x8820_0bb8 } });
    const b = buildVirtFdt({ ramBase: 0x8000_0000, ramSize: 2 ** 27, harts: 1 });
    const text = new TextDecoder("latin1").decode(a);
    expect(text).toContain("console=ttyS0");
    expect(text).toContain("linux,initrd-start");
    expect(text).toContain(VIRT_ISA_STRING);
    expect(new TextDecoder("latin1").decode(b)).not.toContain("bootargs");
    expect(a.length).toBeLessThan(0x10_0000);
  });

  it.skipIf(!hasQemu)("matches qemu-system-riscv64's dumpdtb for the same options, less the devices we lack", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ferryvm-fdt-"));
    try {
      const kernel = join(dir, "k.bin");
      const initrd = join(dir, "initrd.bin");
      writeFileSync(kernel, new Uint8Array(100_000));
      writeFileSync(initrd, new Uint8Array(3000).fill(7));
      for (const [smp, mem] of [["1", "128M"], ["2", "256M"], ["3", "1G"]] as const) {
        const q = join(dir, `q${smp}.dtb`);
        const args = ["-M", `virt,dumpdtb=${q}`, "-smp", smp, "-m", mem, "-nographic",
          "-bios", new URL("../firmware/opensbi-riscv64-generic-fw_dynamic.bin", import.meta.url).pathname,
          "-kernel", kernel, "-append", "console=ttyS0 root=/dev/vda", "-initrd", initrd];
        const r = spawnSync("qemu-system-riscv64", args, { encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        const m = await createMachine({
          harts: Number(smp),
          ramSize: Number.parseInt(mem) * (mem.endsWith("G") ? 2 ** 30 : 2 ** 20),
          bios: "default",
          kernel: new Uint8Array(100_000),
          bootargs: "console=ttyS0 root=/dev/vda",
          initrd: new Uint8Array(3000).fill(7),
        });
        const theirs = dts(dir, readFileSync(q), `q${smp}.fixed.dtb`, ABSENT);
        const ours = dts(dir, m.buildFdt(), `o${smp}.dtb`);
        expect(ours).toBe(theirs);
        expect(ours).toContain(`cpu@${Number(smp) - 1} {`);
        expect(ours).toContain("linux,initrd-start = <0x");
        expect(ours).toContain('bootargs = "console=ttyS0 root=/dev/vda";');
        expect(ours).toContain("virtio_mmio@10008000");
        expect(ours).toContain("rng-seed = <0x00>;");
        // The guest sees the same bytes at QEMU's FDT address.
        const inRam = m.physicalMemory.view(m.fdtAddr, 40)!;
        expect(new DataView(inRam.buffer, inRam.byteOffset).getUint32(0)).toBe(0xd00dfeed);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
