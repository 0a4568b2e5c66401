/**
 * Offsets of the hart state and the machine area, and the CSR numbers, shared with the
 * AssemblyScript sources (the same files compile as both languages).
 */
export * from "../assembly/hart-layout.ts";
export * from "../assembly/machine-area.ts";
export * from "../assembly/csr-numbers.ts";

/** Where the cpu-wasm module expects its areas (packages/memory/src/layout.ts). */
export const CPU_MACHINE_AREA_BASE = 0x0004_0000;
export const CPU_HART_AREA_BASE = 0x0010_0000;
export const CPU_HART_BLOCK_SIZE = 0x1_0000;
export const CPU_MAX_HARTS = 32;
