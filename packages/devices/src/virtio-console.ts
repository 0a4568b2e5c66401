/**
 * virtio-console (virtio 1.2 §5.3; QEMU 7.2 hw/char/virtio-serial-bus.c with one port, the
 * console, i.e. `-device virtio-serial-device,max_ports=1 -device virtconsole`): queues
 * receiveq0 and transmitq0 of 128 and, as QEMU always adds them, the control queues of 32
 * (unused without MULTIPORT; control messages are returned unread); feature EMERG_WRITE.
 *
 * ```
 * config: cols u16, rows u16, max_nr_ports u32, emerg_wr u32 (a write sends one byte)
 * ```
 * Output goes to `onOutput`; {@link VirtioConsole.send} queues host input, delivered into the
 * receive buffers the guest posts.
 *
 * @module
 */

import type { VirtioContext, VirtioDevice } from "./virtio-mmio.ts";
import type { Virtqueue } from "./virtqueue.ts";

export const VIRTIO_ID_CONSOLE = 3;
export const VIRTIO_CONSOLE_F_SIZE = 0;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;
export const VIRTIO_CONSOLE_QUEUE_SIZE = 128;

export class VirtioConsole implements VirtioDevice {
  readonly deviceId = VIRTIO_ID_CONSOLE;
  readonly typeName = "virtio-serial-device";
  readonly queueSizes = [VIRTIO_CONSOLE_QUEUE_SIZE, VIRTIO_CONSOLE_QUEUE_SIZE, 32, 32];
  readonly features = 1n << BigInt(VIRTIO_CONSOLE_F_EMERG_WRITE);
  #out: (bytes: Uint8Array) => void;
  #input: number[] = [];
  #wake: () => void;

  constructor(options: { onOutput?: (bytes: Uint8Array) => void; onInputWanted?: () => void } = {}) {
    this.#out = options.onOutput ?? (() => {});
    this.#wake = options.onInputWanted ?? (() => {});
  }

  /** Bytes waiting for guest receive buffers. */
  get pendingInput(): number {
    return this.#input.length;
  }

  /** Queues host input for the guest. */
  /** Host input not yet delivered to the guest (kept across a save and restore). */
  get inputBytes(): Uint8Array {
    return Uint8Array.from(this.#input);
  }
  set inputBytes(bytes: Uint8Array) {
    this.#input = Array.from(bytes);
  }

  send(bytes: Uint8Array): void {
    for (const b of bytes) this.#input.push(b);
    this.#wake();
  }

  config(): Uint8Array {
    const c = new Uint8Array(12);
    new DataView(c.buffer).setUint32(4, 1, true); // max_nr_ports
    return c;
  }

  configWrite(offset: number, data: Uint8Array): void {
    if (offset === 8 && data[0] !== 0) this.#out(data.subarray(0, 1));
  }

  reset(): void {}

  handleQueue(ctx: VirtioContext, queue: Virtqueue): void {
    if (queue.index === 3) {
      for (let el = queue.pop(); el !== null; el = queue.pop()) {
        queue.push(el, 0);
        ctx.notify(queue);
      }
    } else if (queue.index === 1) {
      for (;;) {
        const el = queue.pop();
        if (el === null) break;
        this.#out(queue.readOut(el));
        queue.push(el, 0);
        ctx.notify(queue);
      }
    } else if (queue.index === 0) {
      this.poll(ctx);
    }
  }

  poll(ctx: VirtioContext): void {
    const rx = ctx.queues[0];
    if (rx === undefined || !rx.ready || this.#input.length === 0) return;
    while (this.#input.length > 0) {
      const el = rx.pop();
      if (el === null) break;
      const n = rx.writeIn(el, Uint8Array.from(this.#input.slice(0, 65536)));
      this.#input.splice(0, n);
      rx.push(el, n);
      ctx.notify(rx);
    }
  }
}
