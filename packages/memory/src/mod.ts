/**
 * @ferryvm/memory: the address space of a FerryVM virtual machine — RAM blocks (QEMU's
 * RAMBlock), MMIO regions, the one linear-memory map (layout.ts), dirty bitmaps with several
 * clients — and the page kernels in AssemblyScript (zero-page scan, XBZRLE, XXH64 page hash,
 * bitmap scans), each SIMD kernel with a scalar twin.
 *
 * ```ts
 * import { GuestMemory } from "@ferryvm/memory";
 *
 * const mem = GuestMemory.createSync({
 *   ram: [{ idstr: "riscv_virt_board.ram", size: 128 << 20, base: 0x8000_0000 }],
 *   dirtyClients: ["migration", "snapshot"],
 * });
 * mem.write(0x8000_1000, new Uint8Array([1, 2, 3])); // a device (DMA) write: marks the page dirty
 * const migration = mem.dirty("migration");
 * migration.sync();                                   // live bits -> synced bitmap, then the sync barrier
 * const ram = mem.block("riscv_virt_board.ram");
 * for (const page of migration.pages(ram)) {
 *   if (!migration.testAndClear(ram, page)) continue;
 *   if (mem.isZeroPage(ram, page)) sendZero(page);
 *   else send(ram.page(page)); // a view, no copy
 * }
 * const delta = mem.xbzrle.encode(cache.get(addr)!, ram.pageHostOffset(page)); // undefined: overflow
 * ```
 *
 * Kernel scratch: GuestMemory uses [KERNEL_SCRATCH_BASE, + MEMORY_SCRATCH_SIZE) for its own
 * buffers (bitmap iteration, page hashes, `mem.xbzrle`); other users start after it.
 */
export * from "./layout.ts";
export * from "./kernels.ts";
export * from "./ram-block.ts";
export * from "./dirty.ts";
export * from "./guest-memory.ts";
export * from "./xbzrle.ts";
export * from "./page-cache.ts";
export * from "./xxhash.ts";
