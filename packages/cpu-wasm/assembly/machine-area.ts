/**
 * The machine area: state shared by every hart of a VM, at MACHINE_AREA_BASE (packages/memory
 * layout). Offsets are relative to the area's start. Valid AssemblyScript and TypeScript.
 *
 * ```
 * +0x000  mtime          u64  CLINT time (10 MHz), written by TypeScript before each run slice
 * +0x008  tohost         u64  guest-physical address of HTIF tohost, 0 = none
 * +0x010  fromhost       u64  guest-physical address of HTIF fromhost, 0 = none
 * +0x018  regionCount    u32  RAM regions in the table (<= MA_MAX_REGIONS)
 * +0x01c  traceFlags     u32  MA_TRACE_* bits: trace hooks the trap path calls (0 = none)
 * +0x040  regions[8]     64 bytes each:
 *           +0x00 base u64 | +0x08 size u64 | +0x10 hostOffset u32 | +0x14 flags u32
 *           +0x18 dirtyClients u32 | +0x1c bitmap host offsets u32 x 4
 * ```
 */
export const MA_MTIME = 0x000;
export const MA_TOHOST = 0x008;
export const MA_FROMHOST = 0x010;
export const MA_REGION_COUNT = 0x018;
/** u32: MA_TRACE_* bits, read only on the trap path (never by the instruction loop). */
export const MA_TRACE_FLAGS = 0x01c;
export const MA_REGIONS = 0x040;
export const MA_MAX_REGIONS = 8;
export const MA_REGION_SIZE = 0x40;

export const RG_BASE = 0x00;
export const RG_SIZE = 0x08;
export const RG_HOST_OFFSET = 0x10;
export const RG_FLAGS = 0x14;
export const RG_DIRTY_CLIENTS = 0x18;
export const RG_BITMAPS = 0x1c;
export const RG_MAX_DIRTY_CLIENTS = 4;

/** Region flag: stores are store access faults (mrom). */
export const RG_FLAG_READONLY = 1;

/** Trace flag: every trap taken calls the `trace_trap` import (QEMU's `-d int`). */
export const MA_TRACE_TRAP = 1;
