/**
 * Image loading as QEMU's hw/riscv/boot.c: an ELF goes to its segments' physical addresses
 * (bss zeroed); anything else is a raw image placed at a given address.
 *
 * @module
 */

import { parseElf, type ElfImage } from "@ferryvm/cpu-wasm";
import type { PhysicalMemory } from "./physical-memory.ts";

export interface LoadedImage {
  /** Lowest address loaded (QEMU's kernel_load_base: what fw_dynamic's next_addr gets). */
  readonly lowAddr: bigint;
  /** One past the highest byte loaded. */
  readonly endAddr: bigint;
  /** ELF entry point, or the load address of a raw image. */
  readonly entry: bigint;
  /** The parsed ELF, when the image is one. */
  readonly elf: ElfImage | undefined;
}

export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

export interface LoadImageOptions {
  /** Where a raw (non-ELF) image goes. */
  rawAddr: bigint;
  /** Names the image in errors ("kernel", "firmware (-bios)"). */
  what: string;
}

/** Loads `image` (ELF, or raw at `rawAddr`) into guest memory; errors name what did not fit. */
export function loadImage(memory: PhysicalMemory, image: Uint8Array, options: LoadImageOptions): LoadedImage {
  const { rawAddr, what } = options;
  if (isElf(image)) {
    const elf = parseElf(image);
    let low: bigint | undefined;
    let end = 0n;
    for (const seg of elf.segments) {
      if (seg.memsz === 0) continue;
      const block = memory.blockFor(seg.paddr, seg.memsz);
      if (block === undefined) {
        throw new RangeError(
          `${what}: segment at 0x${seg.paddr.toString(16)} (0x${seg.memsz.toString(16)} bytes) is outside guest RAM`,
        );
      }
      memory.write(seg.paddr, seg.data);
      if (seg.memsz > seg.filesz) memory.zero(seg.paddr + BigInt(seg.filesz), seg.memsz - seg.filesz);
      if (low === undefined || seg.paddr < low) low = seg.paddr;
      const segEnd = seg.paddr + BigInt(seg.memsz);
      if (segEnd > end) end = segEnd;
    }
    if (low === undefined) throw new RangeError(`${what}: the ELF file has no loadable segment`);
    return { lowAddr: low, endAddr: end, entry: elf.entry, elf };
  }
  if (memory.blockFor(rawAddr, image.length) === undefined) {
    throw new RangeError(
      `${what}: ${image.length} bytes at 0x${rawAddr.toString(16)} do not fit in guest RAM`,
    );
  }
  memory.write(rawAddr, image);
  return { lowAddr: rawAddr, endAddr: rawAddr + BigInt(image.length), entry: rawAddr, elf: undefined };
}
