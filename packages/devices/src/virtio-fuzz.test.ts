import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PhysicalMemory } from "./physical-memory.ts";
import { MemoryBlockBackend, VirtioBlk } from "./virtio-blk.ts";
import { VirtioConsole } from "./virtio-console.ts";
import { VirtioMmio, type VirtioDevice } from "./virtio-mmio.ts";
import { VirtioRng } from "./virtio-rng.ts";

const RAM = 0x8000_0000;

const devices: [string, () => VirtioDevice][] = [
  ["virtio-blk", () => new VirtioBlk({ backend: new MemoryBlockBackend(new Uint8Array(4096)) })],
  ["virtio-rng", () => new VirtioRng()],
  ["virtio-console", () => { const c = new VirtioConsole(); c.send(new Uint8Array(100)); return c; }],
];

describe("virtio devices under a hostile guest", () => {
  for (const [name, make] of devices) {
    it(`${name}: random rings and register traffic never throw on the host`, () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 0x4000, maxLength: 0x4000 }),
          fc.array(fc.tuple(fc.integer({ min: 0, max: 0x1ff }), fc.integer({ min: 0, max: 0xffff_ffff }), fc.constantFrom(1, 2, 4, 8)), { maxLength: 60 }),
          (ramInit, writes) => {
            const ram = new Uint8Array(0x4000);
            ram.set(ramInit);
            const mem = new PhysicalMemory();
            mem.add({ name: "ram", base: RAM, bytes: ram });
            const t = new VirtioMmio({ memory: mem, device: make() });
            // a plausible setup, then chaos: queue 0 and 1 rings inside the random RAM
            const w = (o: number, v: number) => t.write(o, 4, v);
            w(0x70, 11);
            for (const q of [0, 1]) {
              w(0x30, q);
              w(0x38, 8);
              w(0x80, RAM + 0x100 * q);
              w(0x90, RAM + 0x1000 + 0x100 * q);
              w(0xa0, RAM + 0x2000 + 0x100 * q);
              w(0x44, 1);
            }
            w(0x70, 15);
            for (const [off, v, size] of writes) {
              const o = off & ~(size - 1);
              t.write(o, size as 1 | 2 | 4 | 8, size === 8 ? BigInt(v) : v);
              t.read(o, size as 1 | 2 | 4 | 8);
              if ((off & 7) === 0) w(0x50, v & 1);
              t.poll();
            }
            expect(t.read(0, 4)).toBe(0x74726976);
          },
        ),
        { numRuns: 150 },
      );
    });
  }
});
