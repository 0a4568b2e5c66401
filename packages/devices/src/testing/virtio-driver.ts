/**
 * What a virtio-mmio driver does before it sets up queues, for the device tests: reset,
 * ACKNOWLEDGE | DRIVER, the 64 feature bits through DriverFeaturesSel, then FEATURES_OK.
 * Tests only (src/testing is not built).
 *
 * @module
 */

/** Status handshake accepting `features`; `w32(offset, value)` writes a register. */
export function negotiateFeatures(w32: (offset: number, value: number) => void, features: bigint): void {
  w32(0x70, 0); // Status: reset
  w32(0x70, 3); // ACKNOWLEDGE | DRIVER
  w32(0x24, 1); // DriverFeaturesSel: bits 32-63
  w32(0x20, Number(features >> 32n));
  w32(0x24, 0);
  w32(0x20, Number(features & 0xffff_ffffn));
  w32(0x70, 11); // | FEATURES_OK
}
