/**
 * SiFive test finisher (QEMU hw/misc/sifive_test.c), at 0x10_0000 on `virt`.
 *
 * ```
 * +0x0  u32  write: bits 15:0 status, bits 31:16 code
 *            0x3333 FINISHER_FAIL  -> exit(code)
 *            0x5555 FINISHER_PASS  -> exit(0)
 *            0x7777 FINISHER_RESET -> system reset
 *            anything else is ignored; reads return 0
 * ```
 * Valid accesses are 2 or 4 bytes, naturally aligned (others are access faults, as QEMU).
 *
 * @module
 */

import type { AccessSize, MmioDevice } from "./bus.ts";

export const SIFIVE_TEST_SIZE = 0x1000;
export const FINISHER_FAIL = 0x3333;
export const FINISHER_PASS = 0x5555;
export const FINISHER_RESET = 0x7777;

export type FinisherEvent = { kind: "exit"; code: number } | { kind: "reset" };

export class SifiveTest implements MmioDevice {
  #onEvent: (event: FinisherEvent, hart: number) => void;

  constructor(onEvent: (event: FinisherEvent, hart: number) => void) {
    this.#onEvent = onEvent;
  }

  read(offset: number, size: AccessSize): number | undefined {
    if (!validAccess(offset, size)) return undefined;
    return 0;
  }

  write(offset: number, size: AccessSize, value: number | bigint, hart: number): boolean {
    if (!validAccess(offset, size)) return false;
    if (offset !== 0) return true;
    const v = Number(BigInt(value) & 0xffff_ffffn);
    const status = v & 0xffff;
    const code = v >>> 16;
    if (status === FINISHER_FAIL) this.#onEvent({ kind: "exit", code }, hart);
    else if (status === FINISHER_PASS) this.#onEvent({ kind: "exit", code: 0 }, hart);
    else if (status === FINISHER_RESET) this.#onEvent({ kind: "reset" }, hart);
    return true;
  }
}

function validAccess(offset: number, size: AccessSize): boolean {
  return (size === 2 || size === 4) && (offset & (size - 1)) === 0;
}
