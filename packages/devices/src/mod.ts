/**
 * FerryVM device models and the `virt` machine.
 *
 * ```ts
 * import { createMachine } from "@ferryvm/devices";
 * const m = await createMachine({ ramSize: 128 * 2 ** 20, harts: 1, bios: "none", kernel: elfBytes,
 *   onConsoleOutput: (b) => process.stdout.write(b) });
 * const result = await m.run({ timeoutMs: 10_000 }); // { kind: "exit", code: 0 }
 * ```
 *
 * @module
 */

export * from "./bus.ts";
export * from "./clint.ts";
export * from "./clock.ts";
export * from "./fdt.ts";
export * from "./file-block-backend.ts";
export * from "./goldfish-rtc.ts";
export * from "./physical-memory.ts";
export * from "./htif.ts";
export * from "./loader.ts";
export * from "./machine.ts";
export * from "./machine-types.ts";
export * from "./properties.ts";
export * from "./mrom.ts";
export * from "./plic.ts";
export * from "./sifive-test.ts";
export * from "./uart16550.ts";
export * from "./virt-fdt.ts";
export * from "./virtio-blk.ts";
export * from "./virtio-console.ts";
export * from "./virtio-mmio.ts";
export * from "./virtio-rng.ts";
export * from "./virtqueue.ts";
export * from "./clock-vmstate.ts";
export * from "./clint-vmstate.ts";
export * from "./cpu-vmstate.ts";
export * from "./goldfish-rtc-vmstate.ts";
export * from "./machine-vmstate.ts";
export * from "./plic-vmstate.ts";
export * from "./uart16550-vmstate.ts";
export * from "./virtio-vmstate.ts";
