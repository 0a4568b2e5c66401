import { describe, expect, it } from "vitest";
import { createMachine, placeVirtioDevices } from "./machine.ts";
import { MemoryBlockBackend } from "./virtio-blk.ts";

describe("placeVirtioDevices", () => {
  it("gives devices without a bus the last free slot first, as QEMU's -device on virt", () => {
    expect(placeVirtioDevices([{}, {}, {}])).toEqual([7, 6, 5]);
  });

  it("puts bus=virtio-mmio-bus.N devices in slot N, and the others around them", () => {
    expect(placeVirtioDevices([{ bus: 7 }, {}, { bus: 0 }, {}])).toEqual([7, 6, 0, 5]);
  });

  it("refuses a slot taken, out of range, or a ninth device", () => {
    expect(() => placeVirtioDevices([{}, { bus: 7 }])).toThrow(/virtio-mmio-bus.7' is full/);
    expect(() => placeVirtioDevices([{ bus: 8 }])).toThrow(/not found/);
    expect(() => placeVirtioDevices(Array.from({ length: 9 }, () => ({})))).toThrow(/no free/);
  });
});

describe("the virt board", () => {
  it("maps the PLIC, RTC and eight virtio-mmio slots at QEMU's addresses", async () => {
    const m = await createMachine({
      virtio: [{ type: "virtio-rng-device" }, { type: "virtio-blk-device", backend: new MemoryBlockBackend(new Uint8Array(4096)), bus: 0 }],
    });
    const names = m.bus.mappings.map((b) => `${b.name}@${b.base.toString(16)}+${b.size.toString(16)}`);
    expect(names).toContain("riscv.sifive.plic@c000000+600000");
    expect(names).toContain("goldfish_rtc@101000+1000");
    for (let n = 0; n < 8; n++) expect(names).toContain(`virtio-mmio@${(0x1000_1000 + n * 0x1000).toString(16)}+1000`);
    expect(m.bus.read(0x1000_8008, 4, 0)).toBe(4);
    expect(m.bus.read(0x1000_1008, 4, 0)).toBe(2);
    expect(m.bus.read(0x1000_2008, 4, 0)).toBe(0);
  });

  it("loads a raw kernel at the 2 MiB boundary after the firmware and the initrd as QEMU's riscv_load_initrd", async () => {
    const kernel = new Uint8Array(4096).fill(0x13);
    const initrd = new Uint8Array(100).fill(0x5a);
    const m = await createMachine({ ramSize: 128 * 2 ** 20, bios: "default", kernel, initrd });
    expect(m.kernelImage?.lowAddr).toBe(0x8020_0000n);
    // 128 MiB: kernel + RAM/2
    expect(m.initrdRange).toEqual({ start: 0x8420_0000n, end: 0x8420_0064n });
    expect(m.physicalMemory.view(0x8420_0000n, 100)).toEqual(initrd);
    expect(m.fdtAddr).toBe(0x87e0_0000n);
    const big = await createMachine({ ramSize: 512 * 2 ** 20, bios: "default", kernel, initrd });
    expect(big.initrdRange?.start).toBe(0x8820_0000n);
    // fw_dynamic_info.next_addr is the kernel
    expect(m.physicalMemory.readU64(0x1000 + 0x28 + 16)).toBe(0x8020_0000n);
  });

  it("refuses an initrd without a kernel", async () => {
    await expect(createMachine({ bios: "default", initrd: new Uint8Array(10) })).rejects.toThrow(/needs a kernel/);
  });

  it("delivers a UART receive interrupt to the hart's SEIP through the PLIC", async () => {
    const m = await createMachine({});
    const w = (a: number, v: number) => m.bus.write(a, 4, v, 0);
    w(0x0c00_0000 + 4 * 10, 1);
    w(0x0c00_2080, 1 << 10);
    m.bus.write(0x1000_0001, 1, 1, 0); // IER: receive data
    m.sendConsoleInput(new Uint8Array([0x41]));
    await m.run({ timeoutMs: 5 });
    expect(m.hart(0).mipExternal & (1 << 9)).toBe(1 << 9);
    expect(m.bus.read(0x0c20_1004, 4, 0)).toBe(10);
    expect(m.bus.read(0x1000_0000, 1, 0)).toBe(0x41);
    w(0x0c20_1004, 10);
    expect(m.hart(0).mipExternal & (1 << 9)).toBe(0);
  });
});

describe("virtio DMA on the board", () => {
  it("marks the guest pages a virtio-blk read fills dirty for migration", async () => {
    const disk = new Uint8Array(4096).fill(0x5a);
    const m = await createMachine({ virtio: [{ type: "virtio-blk-device", backend: new MemoryBlockBackend(disk), bus: 0 }] });
    const base = 0x1000_1000;
    const w = (o: number, v: number) => m.bus.write(base + o, 4, v, 0);
    const ram = 0x8000_0000;
    const [desc, avail, used, hdr, data, status] = [0x10000, 0x11000, 0x12000, 0x13000, 0x20000, 0x13100].map((x) => ram + x);
    w(0x70, 11);
    w(0x30, 0);
    w(0x38, 4);
    w(0x80, desc!);
    w(0x90, avail!);
    w(0xa0, used!);
    w(0x44, 1);
    w(0x70, 15);
    const pm = m.physicalMemory;
    const d = (i: number, addr: number, len: number, flags: number, next: number) => {
      const b = new Uint8Array(16);
      const v = new DataView(b.buffer);
      v.setBigUint64(0, BigInt(addr), true);
      v.setUint32(8, len, true);
      v.setUint16(12, flags, true);
      v.setUint16(14, next, true);
      pm.write(desc! + 16 * i, b);
    };
    pm.write(hdr!, new Uint8Array(16)); // IN, sector 0
    d(0, hdr!, 16, 1, 1);
    d(1, data!, 4096, 3, 2);
    d(2, status!, 1, 2, 0);
    pm.write(avail!, Uint8Array.of(0, 0, 1, 0, 0, 0));
    const bitmap = m.guestMemory.dirty("migration");
    const block = m.guestMemory.block("riscv_virt_board.ram");
    bitmap.sync();
    bitmap.clear();
    w(0x50, 0);
    bitmap.sync();
    expect(bitmap.test(block, 0x20)).toBe(true); // the data page
    expect(bitmap.test(block, 0x12)).toBe(true); // the used ring
    expect(bitmap.test(block, 0x30)).toBe(false);
    expect(pm.view(data!, 4096)!.every((b) => b === 0x5a)).toBe(true);
  });
});
