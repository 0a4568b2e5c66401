/**
 * virtio-rng (virtio 1.2 §5.4, QEMU 7.2 hw/virtio/virtio-rng.c): one request queue of 8;
 * every writable buffer the guest offers is filled with random bytes from the host's CSPRNG
 * (Web Crypto `getRandomValues`, as `node:crypto`'s). No device-specific features or config.
 *
 * @module
 */

import type { VirtioContext, VirtioDevice } from "./virtio-mmio.ts";
import { totalLength, type Virtqueue } from "./virtqueue.ts";

export const VIRTIO_ID_RNG = 4;
export const VIRTIO_RNG_QUEUE_SIZE = 8;
const CHUNK = 65536;

export class VirtioRng implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_RNG;
  readonly typeName = "virtio-rng-device";
  readonly queueSizes = [VIRTIO_RNG_QUEUE_SIZE];
  readonly features = 0n;
  #fill: (buf: Uint8Array) => void;

  constructor(options: { fill?: (buf: Uint8Array) => void } = {}) {
    this.#fill = options.fill ?? ((b) => {
      for (let i = 0; i < b.length; i += CHUNK) globalThis.crypto.getRandomValues(b.subarray(i, i + CHUNK));
    });
  }

  config(): Uint8Array {
    return new Uint8Array(0);
  }

  reset(): void {}

  handleQueue(ctx: VirtioContext, queue: Virtqueue): void {
    for (;;) {
      const el = queue.pop();
      if (el === null) break;
      const len = totalLength(el.in);
      const bytes = new Uint8Array(len);
      this.#fill(bytes);
      queue.push(el, queue.writeIn(el, bytes));
      ctx.notify(queue);
    }
  }
}
