/**
 * A raw disk image file as a {@link BlockBackend} (QEMU's `-drive file=...,format=raw`),
 * through synchronous `node:fs` calls at explicit positions. Node only: `node:fs` is loaded
 * when {@link openFileBlockBackend} runs, so browser bundles of the package do not need it.
 *
 * @module
 */

import type { BlockBackend } from "./virtio-blk.ts";

type Fs = typeof import("node:fs");

export class FileBlockBackend implements BlockBackend {
  readonly path: string;
  readonly size: number;
  readonly readOnly: boolean;
  #fs: Fs;
  #fd: number;

  constructor(fs: Fs, path: string, fd: number, size: number, readOnly: boolean) {
    this.#fs = fs;
    this.path = path;
    this.#fd = fd;
    this.size = size;
    this.readOnly = readOnly;
  }

  read(offset: number, into: Uint8Array): void {
    let done = 0;
    while (done < into.length) {
      const n = this.#fs.readSync(this.#fd, into, done, into.length - done, offset + done);
      if (n === 0) {
        into.fill(0, done);
        return;
      }
      done += n;
    }
  }

  write(offset: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += this.#fs.writeSync(this.#fd, data, done, data.length - done, offset + done);
  }

  flush(): void {
    if (!this.readOnly) this.#fs.fsyncSync(this.#fd);
  }

  close(): void {
    this.#fs.closeSync(this.#fd);
  }
}

/** Opens a raw image (read-write unless `readOnly`). */
export async function openFileBlockBackend(path: string, options: { readOnly?: boolean } = {}): Promise<FileBlockBackend> {
  const fs = await import("node:fs");
  const readOnly = options.readOnly ?? false;
  const fd = fs.openSync(path, readOnly ? "r" : "r+");
  const size = fs.fstatSync(fd).size;
  return new FileBlockBackend(fs, path, fd, size, readOnly);
}
