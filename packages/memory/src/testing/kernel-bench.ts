/** Test helpers: a small shared memory with the page kernels and fixed page slots. */
import { loadPageKernelsSync, type PageKernelExports } from "../kernels.ts";
import { KERNEL_SCRATCH_BASE } from "../layout.ts";

export interface KernelBench {
  memory: WebAssembly.Memory;
  k: PageKernelExports;
  u8: Uint8Array;
  /** Slot `i`: a 64 KiB area at KERNEL_SCRATCH_BASE + 64 KiB · (i + 1). */
  slot(i: number): number;
}

export function kernelBench(debug = true): KernelBench {
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 64, shared: true });
  const k = loadPageKernelsSync({ memory, debug });
  const u8 = new Uint8Array(memory.buffer);
  return { memory, k, u8, slot: (i) => KERNEL_SCRATCH_BASE + 0x1_0000 * (i + 1) };
}

/** A deterministic xorshift32 byte source. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}
