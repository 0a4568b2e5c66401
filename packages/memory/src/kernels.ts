/**
 * The page kernels: the AssemblyScript module `build/memory.wasm` instantiated on a VM's
 * shared linear memory. Every pointer argument is an offset in that memory; nothing is copied.
 *
 * Each SIMD kernel has a scalar twin (`*Scalar`) computing the same result another way; the
 * tests hold them to each other, the bench measures both.
 */
/** The raw exports of build/memory.wasm (pointers are u32 offsets into the linear memory). */
export interface PageKernelExports {
  buffer_is_zero(ptr: number, len: number): number;
  buffer_is_zero_scalar(ptr: number, len: number): number;
  zero_page_scan(ptr: number, pages: number, pageSize: number, out: number): number;
  xbzrle_encode(old: number, cur: number, slen: number, dst: number, dlen: number): number;
  xbzrle_encode_scalar(old: number, cur: number, slen: number, dst: number, dlen: number): number;
  xbzrle_decode(src: number, slen: number, dst: number, dlen: number): number;
  xbzrle_decode_scalar(src: number, slen: number, dst: number, dlen: number): number;
  xxh64(ptr: number, len: number, seed: bigint): bigint;
  xxh64_scalar(ptr: number, len: number, seed: bigint): bigint;
  xxh64_pages(ptr: number, pages: number, pageSize: number, out: number): void;
  xxh64_pages_scalar(ptr: number, pages: number, pageSize: number, out: number): void;
  find_next_bit(bitmap: number, nbits: number, start: number): number;
  find_next_bit_scalar(bitmap: number, nbits: number, start: number): number;
  collect_bits(bitmap: number, nbits: number, start: number, out: number, max: number): number;
  collect_bits_scalar(bitmap: number, nbits: number, start: number, out: number, max: number): number;
  count_bits(bitmap: number, nbits: number): number;
  count_bits_scalar(bitmap: number, nbits: number): number;
  sync_bitmap(live: number, synced: number, words: number): number;
  test_and_clear_bit(bitmap: number, bit: number): number;
  set_bit_range(bitmap: number, start: number, count: number): number;
  load_zero_records(src: number, len: number, host: number, pages: number, touched: number, flags: number): number;
  page_run_records(
    bitmap: number, list: number, n: number, zeros: number, first: number, host: number,
    zeroFlags: number, pageFlags: number, out: number, normals: number,
  ): number;
  read_pass(ptr: number, len: number): bigint;
  copy_pass(dst: number, src: number, len: number): void;
}

export interface LoadKernelsOptions {
  /** The VM's shared memory (at least 3 wasm pages: the module's statics sit at 128 KiB). */
  memory: WebAssembly.Memory;
  /** Use build/memory.debug.wasm (assertions on). */
  debug?: boolean;
  /** The module bytes, when they do not come from the package's build directory. */
  wasm?: BufferSource;
}

function wasmUrl(debug: boolean): URL {
  return new URL(debug ? "../build/memory.debug.wasm" : "../build/memory.wasm", import.meta.url);
}

function imports(memory: WebAssembly.Memory): WebAssembly.Imports {
  return {
    env: {
      memory,
      abort(_msg: number, _file: number, line: number, column: number): never {
        throw new Error(`memory.wasm: assertion failed at ${line}:${column}`);
      },
    },
  };
}

function readWasm(debug: boolean): BufferSource {
  const url = wasmUrl(debug);
  // no static node:fs import, so the package also loads in a browser (which passes `wasm` or awaits loadPageKernels)
  const fs = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.(
    "node:fs",
  ) as typeof import("node:fs") | undefined;
  if (fs === undefined) throw new Error("loading the page kernels synchronously needs Node.js (or pass options.wasm)");
  try {
    return fs.readFileSync(url) as unknown as BufferSource;
  } catch (error) {
    throw new Error(`cannot read ${url.pathname}: build @ferryvm/memory first (pnpm --filter @ferryvm/memory build)`, {
      cause: error,
    });
  }
}

/** Instantiates the page kernels synchronously (Node: reads the module from build/). */
export function loadPageKernelsSync(options: LoadKernelsOptions): PageKernelExports {
  const module = new WebAssembly.Module(options.wasm ?? readWasm(options.debug ?? false));
  const instance = new WebAssembly.Instance(module, imports(options.memory));
  return instance.exports as unknown as PageKernelExports;
}

/** Instantiates the page kernels (fetches the module in a browser, reads it in Node). */
export async function loadPageKernels(options: LoadKernelsOptions): Promise<PageKernelExports> {
  let bytes = options.wasm;
  if (bytes === undefined) {
    const url = wasmUrl(options.debug ?? false);
    bytes = url.protocol === "file:" ? readWasm(options.debug ?? false) : await (await fetch(url)).arrayBuffer();
  }
  const { instance } = await WebAssembly.instantiate(bytes, imports(options.memory));
  return instance.exports as unknown as PageKernelExports;
}
