/**
 * QEMU's `riscv_sifive_plic` (hw/intc/sifive_plic.c, v1): five uint32 VARRAYs whose lengths
 * come from local properties (num_sources 96, num_addrs = 2 contexts per hart, bitfield_words
 * = 3, num_enables = words × contexts), none on the wire. Our priority register of source 96
 * (writable, as on QEMU, but outside QEMU's array) goes in `riscv_sifive_plic/ferryvm` when
 * it is not zero. post_load drives the harts' MEIP/SEIP from the loaded state.
 *
 * @module
 */

import { vmstateUint32, vmstateVarrayUint32, type VMStateDescription } from "@ferryvm/vmstate";
import { PLIC_NUM_PRIORITIES, PLIC_NUM_SOURCES, type Plic } from "./plic.ts";

export class PlicState {
  readonly num_sources = PLIC_NUM_SOURCES;
  readonly num_addrs: number;
  readonly bitfield_words: number;
  readonly num_enables: number;
  readonly source_priority: Uint32Array;
  readonly target_priority: Uint32Array;
  readonly pending: Uint32Array;
  readonly claimed: Uint32Array;
  readonly enable: Uint32Array;
  readonly plic: Plic;

  constructor(plic: Plic) {
    this.plic = plic;
    this.num_addrs = plic.numContexts;
    this.bitfield_words = plic.pending.length;
    this.num_enables = plic.enable.length;
    this.source_priority = plic.sourcePriority.subarray(0, PLIC_NUM_SOURCES);
    this.target_priority = plic.targetPriority;
    this.pending = plic.pending;
    this.claimed = plic.claimed;
    this.enable = plic.enable;
  }

  get source_priority_last(): number {
    return this.plic.sourcePriority[PLIC_NUM_SOURCES]!;
  }
  set source_priority_last(v: number) {
    this.plic.sourcePriority[PLIC_NUM_SOURCES] = v;
  }

  /** Values a guest could not have written fail the load, naming the register. */
  validate(): void {
    const check = (name: string, a: Uint32Array) => {
      a.forEach((v, i) => {
        if (v > PLIC_NUM_PRIORITIES) {
          throw new RangeError(`riscv_sifive_plic/${name}[${i}]: priority ${v} exceeds ${PLIC_NUM_PRIORITIES}`);
        }
      });
    };
    check("source_priority", this.plic.sourcePriority);
    check("target_priority", this.target_priority);
  }
}

export const vmstateRiscvSifivePlic: VMStateDescription<PlicState> = {
  name: "riscv_sifive_plic",
  version_id: 1,
  minimum_version_id: 1,
  pre_load: (s) => {
    s.source_priority_last = 0;
  },
  post_load: (s) => {
    s.validate();
    s.plic.update();
  },
  fields: [
    vmstateVarrayUint32<PlicState>("source_priority", "num_sources"),
    vmstateVarrayUint32<PlicState>("target_priority", "num_addrs"),
    vmstateVarrayUint32<PlicState>("pending", "bitfield_words"),
    vmstateVarrayUint32<PlicState>("claimed", "bitfield_words"),
    vmstateVarrayUint32<PlicState>("enable", "num_enables"),
  ],
  subsections: [{
    name: "riscv_sifive_plic/ferryvm",
    version_id: 1,
    minimum_version_id: 1,
    needed: (s) => s.source_priority_last !== 0,
    fields: [vmstateUint32("source_priority_last")],
  }],
};
