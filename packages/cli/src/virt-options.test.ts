import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { main, type CliIo } from "./main.ts";
import { SHIPPED_FIRMWARE_PATH, splitVirtOptions, virtMachineOptions } from "./virt-options.ts";

const payload = fileURLToPath(new URL("../../../guests/virt/virt.elf", import.meta.url));

function io(stdin: PassThrough | null = null) {
  let out = "";
  let err = "";
  const cli: CliIo = {
    stdout: (b) => { out += new TextDecoder().decode(b); },
    stderr: (t) => { err += t; },
    stdin,
    isTTY: false,
    readFile: (p) => readFileSync(p),
  };
  return { cli, out: () => out, err: () => err };
}

describe("splitVirtOptions", () => {
  it("takes the board's options out and leaves the rest, with -bios default as the shipped OpenSBI", () => {
    const v = splitVirtOptions([
      "-M", "virt,dumpdtb=x.dtb", "-m", "256M", "-append", "console=ttyS0", "--initrd=r.img",
      "-drive", "file=a.img,format=raw,if=virtio,readonly=on", "-drive", "file=b.img,if=none,format=raw,id=x0",
      "-device", "virtio-blk-device,drive=x0,bus=virtio-mmio-bus.0", "-device", "virtio-rng-device",
      "-global", "virtio-mmio.force-legacy=false", "-nographic",
    ]);
    expect(v.argv).toEqual(["-M", "virt", "-m", "256M", "-nographic", "-bios", SHIPPED_FIRMWARE_PATH]);
    expect(v.dumpdtb).toBe("x.dtb");
    expect(v.append).toBe("console=ttyS0");
    expect(v.initrd).toBe("r.img");
    expect(v.drives).toEqual([
      { file: "a.img", id: undefined, interface: "virtio", readOnly: true, serial: undefined },
      { file: "b.img", id: "x0", interface: "none", readOnly: false, serial: undefined },
    ]);
    expect(v.devices).toEqual([
      { driver: "virtio-blk-device", drive: "x0", bus: 0, serial: undefined, properties: {} },
      { driver: "virtio-rng-device", bus: undefined, properties: {} },
    ]);
    expect(v.globals).toEqual([{ driver: "virtio-mmio", property: "force-legacy", value: "false" }]);
    expect(splitVirtOptions(["-global", "virtio-mmio.force-legacy=on"]).globals).toEqual([
      { driver: "virtio-mmio", property: "force-legacy", value: "on" },
    ]);
    expect(splitVirtOptions(["-bios", "none"]).argv).toEqual(["-bios", "none"]);
  });

  it("rejects what this machine lacks with a clear message", () => {
    const bad: [string[], RegExp][] = [
      [["-drive", "file=a.img,format=qcow2"], /format=qcow2 is not supported/],
      [["-drive", "file=a.img,if=ide"], /if=ide is not supported/],
      [["-drive", "if=none,id=x"], /file= is required/],
      [["-drive", "file=a.img,if=none"], /needs an id=/],
      [["-device", "e1000"], /device 'e1000' is not supported/],
      [["-device", "virtio-blk-device"], /drive property not set/],
      [["-device", "virtio-rng-device,bus=virtio-mmio-bus.9"], /Bus 'virtio-mmio-bus.9' not found/],
      [["-device", "virtconsole"], /no virtio-serial-device/],
      [["-global", "virtio-mmio.foo=1"], /Property 'virtio-mmio.foo' not found/],
      [["-global", "e1000.mac=1"], /no device type 'e1000'/],
      [["-global", "virtio-mmio.force-legacy=maybe"], /force-legacy' expects 'on' or 'off'/],
      [["-device", "virtio-blk-device,drive=d,num-queue=2"], /Property 'virtio-blk-device.num-queue' not found/],
      [["-global", "nonsense"], /DRIVER.PROPERTY=VALUE/],
      [["-append"], /requires an argument/],
      [["-M", "virt,dumpdtb="], /dumpdtb needs a file name/],
    ];
    for (const [argv, re] of bad) expect(() => splitVirtOptions(argv), argv.join(" ")).toThrow(re);
  });
});

describe("virtMachineOptions", () => {
  it("opens the drives, puts if=virtio drives after the -devices, and honours readonly and serial", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-cli-drives-"));
    try {
      const a = join(dir, "a.img");
      const b = join(dir, "b.img");
      writeFileSync(a, new Uint8Array(1024));
      writeFileSync(b, new Uint8Array(2048));
      const v = splitVirtOptions([
        "-drive", `file=${a},if=virtio,readonly=on,serial=AAA`, "-drive", `file=${b},if=none,id=x0`,
        "-device", "virtio-rng-device", "-device", "virtio-blk-device,drive=x0,bus=virtio-mmio-bus.3",
      ]);
      const opts = await virtMachineOptions(v, readFileSync);
      const specs = opts.virtio!;
      expect(specs.map((s) => s.type)).toEqual(["virtio-rng-device", "virtio-blk-device", "virtio-blk-device"]);
      const [, dev, auto] = specs;
      expect(dev).toMatchObject({ bus: 3 });
      expect(dev?.type === "virtio-blk-device" && dev.backend.size).toBe(2048);
      expect(auto?.type === "virtio-blk-device" && auto.backend.readOnly).toBe(true);
      expect(auto).toMatchObject({ serial: "AAA" });
      expect(opts.globals).toEqual([]);
      await expect(virtMachineOptions(splitVirtOptions(["-device", "virtio-blk-device,drive=nope"]), readFileSync)).rejects.toThrow(
        /can't find value 'nope'/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("vm-cli run on the virt board", () => {
  it("boots the shipped OpenSBI without -bios and stops at the timeout", async () => {
    const t = io();
    expect(await main(["run", "-M", "virt", "-m", "128M", "-nographic", "--timeout", "0.5"], t.cli)).toBe(124);
    expect(t.out()).toContain("OpenSBI v1.1");
    expect(t.out()).toContain("Platform Name             : riscv-virtio,qemu");
  });

  it("runs the guests/virt payload with a -drive/-device disk and a virtio-rng", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-cli-virt-"));
    try {
      const img = join(dir, "disk.img");
      const disk = new Uint8Array(65536);
      disk.set(new TextEncoder().encode("FerryVM test disk: hello from sector 0\n"));
      writeFileSync(img, disk);
      const stdin = new PassThrough();
      const t = io(stdin);
      const timer = setInterval(() => {
        if (t.out().includes("uart: waiting for input")) {
          clearInterval(timer);
          stdin.write("q");
        }
      }, 5);
      const status = await main([
        "run", "-M", "virt", "-m", "128M", "-nographic", "-kernel", payload,
        "-drive", `file=${img},if=none,format=raw,id=d0`, "-device", "virtio-blk-device,drive=d0",
        "-device", "virtio-rng-device", "-device", "virtio-serial-device", "-device", "virtconsole",
        "-global", "virtio-mmio.force-legacy=false", "--timeout", "20",
      ], t.cli);
      clearInterval(timer);
      expect(t.out()).toContain("virt: all passed");
      expect(t.out()).toContain("virtio-mmio slots: 0 0 0 0 0 3 4 2");
      expect(t.out()).toContain("hello through virtio-console transmitq0\n");
      expect(t.out()).toContain("uart: irq 10 got 'q'");
      expect(status).toBe(0);
      // the payload wrote sector 2
      expect(readFileSync(img)[1024]).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("writes its device tree with -M virt,dumpdtb=FILE and exits, as QEMU", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-cli-dtb-"));
    try {
      const file = join(dir, "virt.dtb");
      const t = io();
      const kernel = join(dir, "k.bin");
      writeFileSync(kernel, new Uint8Array(64));
      expect(await main(["run", "-M", `virt,dumpdtb=${file}`, "-kernel", kernel, "-append", "root=/dev/vda", "-nographic"], t.cli)).toBe(0);
      expect(t.err()).toContain(`dtb dumped to ${file}. Exiting.`);
      const dtb = readFileSync(file);
      expect(dtb.readUInt32BE(0)).toBe(0xd00dfeed);
      expect(dtb.includes(Buffer.from("root=/dev/vda\0"))).toBe(true);
      if (spawnSync("dtc", ["--version"]).status === 0) {
        expect(spawnSync("dtc", ["-I", "dtb", "-O", "dts", file]).status).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a missing disk image or initrd, and -append without -kernel, as QEMU does", async () => {
    let t = io();
    expect(await main(["run", "-drive", "file=/nonexistent/x.img,format=raw", "-nographic"], t.cli)).toBe(1);
    expect(t.err()).toMatch(/could not open disk image: ENOENT/);
    t = io();
    expect(await main(["run", "-append", "x", "-nographic"], t.cli)).toBe(1);
    expect(t.err()).toMatch(/-append only allowed with -kernel/);
    t = io();
    expect(await main(["run", "-kernel", payload, "-initrd", "/nonexistent/r", "-nographic"], t.cli)).toBe(1);
    expect(t.err()).toMatch(/could not load ramdisk/);
  });
});
