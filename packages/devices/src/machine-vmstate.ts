/**
 * The `virt` machine's list of sections, in QEMU 7.2's registration order (DESIGN.md §5):
 * `ferryvm/virt` (ours: the machine's shape, so a stream from another configuration fails on
 * its first device section with the field that differs), `timer`, a `cpu_common`/`cpu` pair
 * per hart (instance id = hart index), `riscv_mtimer`, `riscv_sifive_plic`, `serial`,
 * `goldfish_rtc`, then one section per virtio device
 * (`virtio-mmio@<16 hex digits>/virtio-blk`...). RAM and globalstate are the migration
 * side's. QEMU's PCIe host, pflash and fw_cfg sections are not modelled.
 *
 * @module
 */

import {
  vmstateUint32Array,
  vmstateUint32Equal,
  vmstateUint64Equal,
  vmstateValidate,
  MigrationError,
  type VMStateDescription,
} from "@ferryvm/vmstate";
import { HartState, vmstateCpuCommon, vmstateRiscvCpu } from "./cpu-vmstate.ts";
import { TimersState, vmstateTimers } from "./clock-vmstate.ts";
import { MtimerState, vmstateRiscvMtimer } from "./clint-vmstate.ts";
import { GoldfishRtcState, vmstateGoldfishRtc } from "./goldfish-rtc-vmstate.ts";
import type { Machine } from "./machine.ts";
import { PlicState, vmstateRiscvSifivePlic } from "./plic-vmstate.ts";
import { PLIC_NUM_SOURCES } from "./plic.ts";
import { SerialState, vmstateSerialMm, type SerialMmState } from "./uart16550-vmstate.ts";
import { virtioVmsdName, vmstateVirtioDevice, VirtioState, type VirtioDeviceSectionState } from "./virtio-vmstate.ts";

/** One section of the machine: what `registerVmstate(vmsd, opaque, { idstr, instanceId })` takes. */
export interface VmstateEntry {
  readonly idstr: string;
  readonly instanceId: number;
  readonly vmsd: VMStateDescription<never>;
  readonly opaque: unknown;
}

/** The registry side (`SaveVmRegistry` of @ferryvm/migration has this method). */
export interface VmstateRegistry {
  registerVmstate<T>(vmsd: VMStateDescription<T>, opaque: T, options: { idstr?: string; instanceId?: number }): unknown;
}

function entry<T>(idstr: string, instanceId: number, vmsd: VMStateDescription<T>, opaque: T): VmstateEntry {
  return { idstr, instanceId, vmsd: vmsd as unknown as VMStateDescription<never>, opaque };
}

/** The machine's shape: what must match between the saving and the loading machine. */
export class VirtShapeState {
  harts: number;
  ram_size: bigint;
  /**
   * Retired in virt-1.1 (the PLIC's source count is fixed by the machine type, so it says
   * nothing): sent only while `virt-machine.x-plic-sources-field` is on, as it is for virt-1.0.
   */
  plic_sources = PLIC_NUM_SOURCES;
  /** `virt-machine.x-plic-sources-field`: the retired field is on the wire (both sides must agree). */
  readonly sendPlicSources: boolean;
  /** virtio device id in each of the 8 slots (0 = empty). */
  virtio_ids: Uint32Array;
  readonly #local: Uint32Array;

  constructor(machine: Machine) {
    this.harts = machine.harts;
    this.ram_size = BigInt(machine.ramSize);
    this.sendPlicSources = machine.config.machine.bool("x-plic-sources-field");
    this.#local = Uint32Array.from(machine.virtio.map((v) => v.device?.deviceId ?? 0));
    this.virtio_ids = this.#local.slice();
  }

  checkVirtio(): boolean {
    for (let i = 0; i < this.#local.length; i++) {
      if (this.virtio_ids[i] !== this.#local[i]) {
        throw new MigrationError(
          `vmstate: ferryvm/virt/virtio_ids[${i}]: loaded device id ${this.virtio_ids[i]} != local ${this.#local[i]} (virtio-mmio bus ${i})`,
        );
      }
    }
    return true;
  }

  resetIds(): void {
    this.virtio_ids = this.#local.slice();
  }
}

export const vmstateFerryvmVirt: VMStateDescription<VirtShapeState> = {
  name: "ferryvm/virt",
  version_id: 1,
  minimum_version_id: 1,
  post_save: (s) => s.resetIds(),
  fields: [
    vmstateUint32Equal("harts", { errHint: "the hart count (-smp) differs" }),
    vmstateUint64Equal("ram_size", { errHint: "the RAM size (-m) differs" }),
    // QEMU's VMSTATE_UINT32_TEST: a field retired by a later machine type (see machine-types.ts).
    vmstateUint32Equal("plic_sources", { test: (s) => s.sendPlicSources }),
    vmstateUint32Array("virtio_ids", 8),
    vmstateValidate("virtio_ids_valid", (s) => s.checkVirtio()),
  ],
};

/** QEMU's idstr of a device on virtio-mmio bus `n` of `virt` (its dev path + "/" + vmsd name). */
export function virtioIdstr(base: number, vmsdName: string): string {
  return `virtio-mmio@${base.toString(16).padStart(16, "0")}/${vmsdName}`;
}

/** Builds the section list of a machine (its state objects stay bound to it). */
export function virtVmstateEntries(machine: Machine, options: { virtioBase: number; virtioStride: number }): VmstateEntry[] {
  const list: VmstateEntry[] = [];
  list.push(entry("ferryvm/virt", 0, vmstateFerryvmVirt, new VirtShapeState(machine)));
  list.push(entry("timer", 0, vmstateTimers, new TimersState(machine.clock, machine.cpu)));
  for (let h = 0; h < machine.harts; h++) {
    const hart = new HartState(machine.cpu, h, { migrateIsaExt: machine.config.cpu.bool("x-migrate-isa-ext") });
    list.push(entry("cpu_common", h, vmstateCpuCommon, hart));
    list.push(entry("cpu", h, vmstateRiscvCpu, hart));
  }
  list.push(entry("riscv_mtimer", 0, vmstateRiscvMtimer, new MtimerState(machine.cpu, machine.clock)));
  list.push(entry("riscv_sifive_plic", 0, vmstateRiscvSifivePlic, new PlicState(machine.plic)));
  const serial: SerialMmState = { serial: new SerialState(machine.uart, (b) => machine.uartTransmit(b)) };
  list.push(entry("serial", 0, vmstateSerialMm, serial));
  list.push(entry("goldfish_rtc", 0, vmstateGoldfishRtc, new GoldfishRtcState(machine.rtc, () => BigInt(machine.clock.ns()))));
  machine.virtio.forEach((t, n) => {
    const name = t.device === undefined ? undefined : virtioVmsdName(t.device.typeName);
    if (name === undefined) return;
    const state: VirtioDeviceSectionState = { virtio: new VirtioState(t) };
    list.push(entry(virtioIdstr(options.virtioBase + n * options.virtioStride, name), 0, vmstateVirtioDevice(name), state));
  });
  return list;
}
