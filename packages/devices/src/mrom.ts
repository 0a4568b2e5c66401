/**
 * The `virt` board's mask ROM at 0x1000: QEMU's reset vector (hw/riscv/boot.c,
 * riscv_setup_rom_reset_vec) followed by OpenSBI's `fw_dynamic_info`.
 *
 * ```
 * 0x1000  auipc t0, 0            0x1014  jr    t0
 * 0x1004  addi  a2, t0, 40       0x1018  .dword start_addr
 * 0x1008  csrr  a0, mhartid      0x1020  .dword fdt_addr
 * 0x100c  ld    a1, 32(t0)       0x1028  fw_dynamic_info: magic 0x4942534f, version 2,
 * 0x1010  ld    t0, 24(t0)               next_addr, next_mode 1 (S), options 0, boot_hart 0
 * ```
 *
 * @module
 */

export const MROM_BASE = 0x1000;
/** QEMU's virt memmap size for the mrom (0xf000). */
export const MROM_SIZE = 0xf000;
export const FW_DYNAMIC_INFO_MAGIC = 0x4942534fn;
export const FW_DYNAMIC_INFO_VERSION = 2n;
export const FW_DYNAMIC_INFO_NEXT_MODE_S = 1n;
/** Offset of fw_dynamic_info in the ROM (after the ten-word reset vector). */
export const FW_DYNAMIC_INFO_OFFSET = 0x28;

export interface ResetVectorOptions {
  /** Where the harts jump: the firmware (DRAM base), or the kernel entry with `-bios none`. */
  startAddr: bigint;
  /** Guest-physical address of the device tree (a1). */
  fdtAddr: bigint;
  /** fw_dynamic_info.next_addr: the kernel's load address, or 0 without a kernel. */
  nextAddr: bigint;
}

/** The ROM's first 0x40 bytes: reset vector (0x28) then fw_dynamic_info (0x30). */
export function buildResetVector(options: ResetVectorOptions): Uint8Array {
  const rom = new Uint8Array(FW_DYNAMIC_INFO_OFFSET + 6 * 8);
  const dv = new DataView(rom.buffer);
  const code = [
    0x00000297, // auipc t0, %pcrel_hi(fw_dyn)
    0x02828613, // addi  a2, t0, %pcrel_lo(1b)
    0xf1402573, // csrr  a0, mhartid
    0x0202b583, // ld    a1, 32(t0)
    0x0182b283, // ld    t0, 24(t0)
    0x00028067, // jr    t0
  ];
  code.forEach((w, i) => dv.setUint32(i * 4, w, true));
  dv.setBigUint64(24, BigInt.asUintN(64, options.startAddr), true);
  dv.setBigUint64(32, BigInt.asUintN(64, options.fdtAddr), true);
  const info = [
    FW_DYNAMIC_INFO_MAGIC,
    FW_DYNAMIC_INFO_VERSION,
    BigInt.asUintN(64, options.nextAddr),
    FW_DYNAMIC_INFO_NEXT_MODE_S,
    0n,
    0n,
  ];
  info.forEach((v, i) => dv.setBigUint64(FW_DYNAMIC_INFO_OFFSET + i * 8, v, true));
  return rom;
}
