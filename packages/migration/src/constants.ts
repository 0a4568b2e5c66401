/**
 * The numbers of QEMU 7.2's migration stream (migration/savevm.c, migration/ram.c): file
 * magic and version, section types, commands and their argument lengths, RAM record flags.
 *
 * @module
 */

/** "QEVM" (QEMU_VM_FILE_MAGIC). */
export const QEMU_VM_FILE_MAGIC = 0x5145564d;
/** The stream version QEMU ≥ 2.x writes (QEMU_VM_FILE_VERSION). */
export const QEMU_VM_FILE_VERSION = 3;
/** The obsolete v2 format (QEMU_VM_FILE_VERSION_COMPAT), rejected with a clear error. */
export const QEMU_VM_FILE_VERSION_COMPAT = 2;

export const QEMU_VM_EOF = 0x00;
export const QEMU_VM_SECTION_START = 0x01;
export const QEMU_VM_SECTION_PART = 0x02;
export const QEMU_VM_SECTION_END = 0x03;
export const QEMU_VM_SECTION_FULL = 0x04;
export const QEMU_VM_SUBSECTION = 0x05;
export const QEMU_VM_VMDESCRIPTION = 0x06;
export const QEMU_VM_CONFIGURATION = 0x07;
export const QEMU_VM_COMMAND = 0x08;
export const QEMU_VM_SECTION_FOOTER = 0x7e;

/** Section type byte → QEMU's name, for messages. */
export const SECTION_TYPE_NAMES: Readonly<Record<number, string>> = {
  [QEMU_VM_EOF]: "EOF",
  [QEMU_VM_SECTION_START]: "START",
  [QEMU_VM_SECTION_PART]: "PART",
  [QEMU_VM_SECTION_END]: "END",
  [QEMU_VM_SECTION_FULL]: "FULL",
  [QEMU_VM_SUBSECTION]: "SUBSECTION",
  [QEMU_VM_VMDESCRIPTION]: "VMDESCRIPTION",
  [QEMU_VM_CONFIGURATION]: "CONFIGURATION",
  [QEMU_VM_COMMAND]: "COMMAND",
  [QEMU_VM_SECTION_FOOTER]: "FOOTER",
};

/** QEMU's `enum qemu_vm_cmd`. */
export const MigCmd = {
  INVALID: 0,
  OPEN_RETURN_PATH: 1,
  PING: 2,
  POSTCOPY_ADVISE: 3,
  POSTCOPY_LISTEN: 4,
  POSTCOPY_RUN: 5,
  POSTCOPY_RAM_DISCARD: 6,
  PACKAGED: 7,
  ENABLE_COLO: 8,
  POSTCOPY_RESUME: 9,
  RECV_BITMAP: 10,
  MAX: 11,
} as const;

/** QEMU's `mig_cmd_args`: name and fixed argument length (-1: variable). */
export const MIG_CMD_ARGS: readonly { readonly name: string; readonly len: number }[] = [
  { name: "INVALID", len: -1 },
  { name: "OPEN_RETURN_PATH", len: 0 },
  { name: "PING", len: 4 },
  { name: "POSTCOPY_ADVISE", len: -1 },
  { name: "POSTCOPY_LISTEN", len: 0 },
  { name: "POSTCOPY_RUN", len: 0 },
  { name: "POSTCOPY_RAM_DISCARD", len: -1 },
  { name: "PACKAGED", len: 4 },
  { name: "ENABLE_COLO", len: 0 },
  { name: "POSTCOPY_RESUME", len: 0 },
  { name: "RECV_BITMAP", len: -1 },
];

/** RAM record flags, in the low bits of each record's be64 (migration/ram.c). */
export const RamSaveFlag = {
  /** Obsolete "full page" flag; never sent. */
  FULL: 0x01,
  /** A page filled with one byte (QEMU calls it ZERO; formerly COMPRESS). */
  ZERO: 0x02,
  MEM_SIZE: 0x04,
  PAGE: 0x08,
  EOS: 0x10,
  CONTINUE: 0x20,
  XBZRLE: 0x40,
  /** RDMA hook. */
  HOOK: 0x80,
  COMPRESS_PAGE: 0x100,
} as const;

/** The byte before an XBZRLE page's length (ENCODING_FLAG_XBZRLE). */
export const ENCODING_FLAG_XBZRLE = 0x1;

/** The target page size of riscv64 (TARGET_PAGE_SIZE). */
export const TARGET_PAGE_SIZE = 4096;

/** QEMU's RunState names (qapi/run-state.json), in QAPI order. */
export const RUN_STATES = [
  "debug",
  "inmigrate",
  "internal-error",
  "io-error",
  "paused",
  "postmigrate",
  "prelaunch",
  "finish-migrate",
  "restore-vm",
  "running",
  "save-vm",
  "shutdown",
  "suspended",
  "watchdog",
  "guest-panicked",
  "colo",
] as const;

export type RunState = (typeof RUN_STATES)[number];
