/**
 * The `virt` machine for bare programs: the address space (`@ferryvm/memory`'s GuestMemory: one
 * shared `WebAssembly.Memory`, dirty bitmaps), RAM at 0x8000_0000 and the mask ROM at 0x1000,
 * the MMIO bus with the finisher, CLINT and UART, HTIF through ELF symbols, the harts, and the
 * run loop.
 *
 * The run loop gives each hart a slice of instructions in turn, updating mtime before every
 * slice. When every hart waits in WFI it sleeps until the next timer deadline or console
 * input (icount mode jumps virtual time to the deadline instead); otherwise it yields to the
 * event loop every few milliseconds so stdin, timers and signals are served.
 *
 * @module
 */

import { Cpu, ExitReason, H_STIMECMP, isaString, type CpuIsa, type HartView, type TrapEvent } from "@ferryvm/cpu-wasm";
import { DEFAULT_DIRTY_CLIENTS, GuestMemory, MAX_GUEST_RAM, MAX_HARTS, TOUCHED_CLIENT, type MemoryLayout } from "@ferryvm/memory";
import { SystemBus } from "./bus.ts";
import { Clint, CLINT_SIZE } from "./clint.ts";
import { VirtualClock } from "./clock.ts";
import { buildVirtFdt } from "./virt-fdt.ts";
import { GoldfishRtc, GOLDFISH_RTC_SIZE } from "./goldfish-rtc.ts";
import { Plic, PLIC_SIZE } from "./plic.ts";
import { VirtioMmio, VIRTIO_MMIO_SIZE, type VirtioDevice } from "./virtio-mmio.ts";
import { VirtioBlk, type BlockBackend } from "./virtio-blk.ts";
import { VirtioConsole } from "./virtio-console.ts";
import { VirtioRng } from "./virtio-rng.ts";
import { PhysicalMemory } from "./physical-memory.ts";
import { Htif } from "./htif.ts";
import { loadImage, type LoadedImage } from "./loader.ts";
import { buildResetVector, MROM_BASE, MROM_SIZE } from "./mrom.ts";
import { SifiveTest, SIFIVE_TEST_SIZE, type FinisherEvent } from "./sifive-test.ts";
import { Uart16550 } from "./uart16550.ts";
import { virtVmstateEntries, type VmstateEntry, type VmstateRegistry } from "./machine-vmstate.ts";
import {
  findMachineType,
  isKnownDriver,
  RV64_CPU_CLASS,
  VIRT_MACHINE_CLASS,
  VIRTIO_BLK_AUTO_NUM_QUEUES,
  VIRTIO_BLK_CLASS,
  VIRTIO_MMIO_CLASS,
  VIRTIO_RNG_CLASS,
  VIRTIO_RNG_NO_LIMIT,
  VIRTIO_SERIAL_CLASS,
  type MachineType,
} from "./machine-types.ts";
import { PropertyError, resolveProperties, type DeviceProperties, type GlobalProperty } from "./properties.ts";
import type { VcpuHost, VcpuWorker, runVcpuWorker } from "./vcpu-worker.ts";

/** QEMU 7.2 hw/riscv/virt.c memory map (the parts this machine has). */
export const VIRT_MROM = 0x0000_1000;
export const VIRT_TEST = 0x0010_0000;
export const VIRT_RTC = 0x0010_1000;
export const VIRT_CLINT = 0x0200_0000;
export const VIRT_PLIC = 0x0c00_0000;
export const VIRT_VIRTIO = 0x1000_1000;
export const VIRTIO_COUNT = 8;
export const UART0_IRQ = 10;
export const RTC_IRQ = 11;
/** virtio-mmio slot n raises PLIC source VIRTIO_IRQ + n. */
export const VIRTIO_IRQ = 1;
export const VIRT_UART0 = 0x1000_0000;
/** QEMU maps 8 << regshift bytes of the UART (regshift 0). */
export const VIRT_UART0_SIZE = 8;
export const VIRT_DRAM = 0x8000_0000;
export const RAM_BLOCK_NAME = "riscv_virt_board.ram";
export const MROM_BLOCK_NAME = "riscv_virt_board.mrom";
/** QEMU builds the FDT in a 1 MiB buffer and places it by that size. */
export const FDT_MAX_SIZE = 0x10_0000;
export const DEFAULT_RAM_SIZE = 128 * 1024 * 1024;
/** The most RAM a machine takes: wasm32's limit less the mask ROM. */
export const MAX_RAM_SIZE = MAX_GUEST_RAM - MROM_SIZE;
/** Instructions per run slice. */
export const DEFAULT_SLICE = 100_000;

export interface MachineOptions {
  /**
   * The machine type (`-M`): "virt" (the newest, see `MACHINE_TYPES`) or a versioned name such
   * as "virt-1.0", whose compat list sets its devices' properties as that release had them.
   */
  machineType?: string;
  /** Board properties (`-M virt,prop=value`), e.g. `{ "x-firmware-rom": "off" }`. */
  machineProperties?: Readonly<Record<string, string>>;
  /** CPU model properties (`-cpu rv64,c=off`), e.g. `{ c: "off", sstc: "off" }`. */
  cpuProperties?: Readonly<Record<string, string>>;
  /** `-global driver.property=value` entries, applied after the machine type's compat list. */
  globals?: readonly GlobalProperty[];
  /** Guest RAM in bytes (a multiple of 4 KiB); default 128 MiB. */
  ramSize?: number;
  /** Number of harts (-smp); default 1. */
  harts?: number;
  /**
   * Firmware loaded at 0x8000_0000 (ELF or raw bytes); "default" = the shipped OpenSBI
   * fw_dynamic (QEMU's `-bios default`, Node only); "none" (the default here): the ROM jumps
   * to the kernel.
   */
  bios?: "none" | "default" | Uint8Array;
  /** `-append`: the kernel command line (/chosen/bootargs). */
  bootargs?: string;
  /** `-initrd`: placed as QEMU's riscv_load_initrd, announced in /chosen. */
  initrd?: Uint8Array;
  /** virtio-mmio devices, placed as QEMU places `-device` (see {@link placeVirtioDevices}). */
  virtio?: readonly VirtioDeviceSpec[];
  /**
   * QEMU's `virtio-mmio.force-legacy`: version 1 transports. Default false (version 2). The same
   * as the global `virtio-mmio.force-legacy`; when both are given this one wins.
   */
  virtioLegacy?: boolean;
  /** /chosen/rng-seed (32 bytes); random when absent. */
  rngSeed?: Uint8Array;
  /** Kernel or bare program: ELF at its physical addresses, or a raw image after the firmware. */
  kernel?: Uint8Array;
  /** What the guest prints (UART, HTIF console, HTIF write to fd 1). */
  onConsoleOutput?: (bytes: Uint8Array) => void;
  /** HTIF syscall writes to fd 2 (default: the console). */
  onErrorOutput?: (bytes: Uint8Array) => void;
  /** Guest errors worth a log line (unknown HTIF requests), like QEMU's -d guest_errors. */
  onGuestError?: (message: string) => void;
  /** Deterministic time: mtime advances with retired instructions (true = shift 3, or `{ shift }`). */
  icount?: boolean | { shift: number };
  /** Dirty-memory client names (at most 4); default ["migration", "snapshot", "touched"] (see `TOUCHED_CLIENT`). */
  dirtyClients?: readonly string[];
  /** Instructions per hart slice; default {@link DEFAULT_SLICE}. */
  slice?: number;
  /** Use the CPU's debug build (assertions on). */
  debugCpu?: boolean;
  /**
   * Every trap a hart takes (QEMU's `-d int`: print `formatTrapQemu(event)` from
   * @ferryvm/cpu-wasm). Also settable later through {@link Machine.onTrap}.
   */
  onTrap?: (event: TrapEvent) => void;
  /** Each hart reset (power-on, system reset), before it (QEMU's `-d cpu_reset` logs then). */
  onCpuReset?: (event: CpuResetEvent) => void;
  /**
   * Where the harts run (QEMU's `-accel tcg,thread=single|multi`): "main" (the default) on this
   * thread between the device work, "worker" in a worker_threads Worker on the shared memory
   * while devices, save/load, QMP and migration stay here (see vcpu-worker.ts; Node only, no
   * icount, no onTrap). Call {@link Machine.dispose} to end the worker.
   */
  vcpuThread?: "main" | "worker";
}

/** A hart about to be reset; `line` is QEMU's first `-d cpu_reset` line ("CPU Reset (CPU 0)"). */
export interface CpuResetEvent {
  hart: number;
  line: string;
}

/** A virtio-mmio device to plug; `bus` is N of `bus=virtio-mmio-bus.N` (the slot). */
export type VirtioDeviceSpec =
  | { type: "virtio-blk-device"; backend: BlockBackend; serial?: string; bus?: number; properties?: Readonly<Record<string, string>> }
  | { type: "virtio-rng-device"; bus?: number; properties?: Readonly<Record<string, string>> }
  | { type: "virtio-serial-device"; bus?: number; onOutput?: (bytes: Uint8Array) => void; properties?: Readonly<Record<string, string>> }
  | { type: "custom"; device: VirtioDevice; bus?: number };

/**
 * Slots for virtio devices as QEMU's qdev does on `virt`: an explicit `bus` takes that slot;
 * a device without one takes the highest free slot (QEMU's bus search finds the last-created
 * free virtio-mmio bus first). Returns the slot of each spec; throws when a slot is taken,
 * out of range, or none is free.
 */
export function placeVirtioDevices(specs: readonly { bus?: number }[]): number[] {
  const used = new Array<boolean>(VIRTIO_COUNT).fill(false);
  return specs.map((s, i) => {
    if (s.bus !== undefined) {
      if (!Number.isInteger(s.bus) || s.bus < 0 || s.bus >= VIRTIO_COUNT) {
        throw new RangeError(`virtio device ${i}: bus 'virtio-mmio-bus.${s.bus}' not found (0..${VIRTIO_COUNT - 1})`);
      }
      if (used[s.bus]) throw new RangeError(`virtio device ${i}: bus 'virtio-mmio-bus.${s.bus}' is full`);
      used[s.bus] = true;
      return s.bus;
    }
    for (let n = VIRTIO_COUNT - 1; n >= 0; n--) {
      if (!used[n]) {
        used[n] = true;
        return n;
      }
    }
    throw new RangeError(`virtio device ${i}: no free virtio-mmio bus (there are ${VIRTIO_COUNT})`);
  });
}

/**
 * The firmware ROM (machine types from virt-1.1, `virt-machine.x-firmware-rom`): an unmapped,
 * read-only RAM block holding the `-bios` image, copied to 0x8000_0000 at every reset. It
 * migrates with the RAM, so after a migration — and after a reset on the destination — the
 * guest keeps the firmware it booted with (QEMU's "even after resetting a VM, the old firmware
 * is used"). Its used length is the image size rounded up to a power of two (at least 64 KiB),
 * within a 4 MiB maximum: a later release whose firmware grew still loads an older stream (the
 * block is resized to the stream's length, QEMU's resizeable RAM blocks).
 */
export const FIRMWARE_ROM_BLOCK_NAME = "riscv_virt_board.bios";
/** The firmware ROM's maximum length (reserved in the linear memory). */
export const FIRMWARE_ROM_MAX = 4 * 1024 * 1024;

/** The firmware ROM's used length for an image of `bytes`: a power of two, at least 64 KiB. */
export function firmwareRomSize(bytes: number): number {
  let size = 64 * 1024;
  while (size < bytes) size *= 2;
  return size;
}

/** Where the shipped OpenSBI fw_dynamic lies (packages/devices/firmware, from src/ and dist/ alike). */
export const DEFAULT_FIRMWARE_URL: URL = new URL("../firmware/opensbi-riscv64-generic-fw_dynamic.bin", import.meta.url);

/** The shipped OpenSBI, read through node:fs. */
export async function loadDefaultFirmware(): Promise<Uint8Array> {
  const { readFile } = await import("node:fs/promises");
  return new Uint8Array(await readFile(DEFAULT_FIRMWARE_URL));
}

/** QEMU 7.2's ShutdownCause values a run can end with (the SHUTDOWN / RESET event's `reason`). */
export type ShutdownCause = "guest-shutdown" | "guest-reset" | "guest-panic";

/**
 * Why run() returned. "exit" (sifive_test pass/fail, HTIF exit) has cause "guest-shutdown"
 * whatever the code (QEMU 7.2 just exits); "reset" (the finisher's 0x7777) "guest-reset".
 */
export type RunResult =
  | { kind: "exit"; code: number; cause: ShutdownCause }
  | { kind: "timeout" }
  | { kind: "reset"; cause: ShutdownCause }
  | { kind: "stopped" };

/** QEMU's CPU_THROTTLE_TIMESLICE_NS, in ms: the vCPU runs this long between throttle sleeps. */
export const THROTTLE_TIMESLICE_MS = 10;

export interface RunOptions {
  /** Wall-clock limit; the run ends with `{ kind: "timeout" }` when it passes. */
  timeoutMs?: number;
}

const MIN_YIELD_MS = 8;
/**
 * The longest delay setTimeout keeps (2^31 - 1 ms): Node and browsers fire a longer one after
 * 1 ms. A far deadline (mtimecmp near all ones) sleeps this long, then the run loop looks again.
 */
export const MAX_TIMER_MS = 0x7fff_ffff;

function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === "function") return new Promise((r) => setImmediate(r));
  return new Promise((r) => setTimeout(r, 0));
}

/** Creates a `virt` machine with the images loaded and every hart at the reset vector. */
export async function createMachine(options: MachineOptions = {}): Promise<Machine> {
  const harts = options.harts ?? 1;
  if (!Number.isInteger(harts) || harts < 1 || harts > MAX_HARTS) {
    throw new RangeError(`invalid number of harts ${harts}: this machine supports 1..${MAX_HARTS}`);
  }
  const ramSize = options.ramSize ?? DEFAULT_RAM_SIZE;
  if (!Number.isInteger(ramSize) || ramSize <= 0 || ramSize % 4096 !== 0) {
    throw new RangeError(`invalid RAM size ${ramSize}: must be a positive multiple of 4096 bytes`);
  }
  if (ramSize > MAX_RAM_SIZE) {
    throw new RangeError(
      `RAM size ${ramSize / 2 ** 20} MiB exceeds the maximum of ${Math.floor(MAX_RAM_SIZE / 2 ** 20)} MiB (a wasm32 linear memory)`,
    );
  }
  const config = resolveMachineConfig(options);
  if (options.bios === "default") options = { ...options, bios: await loadDefaultFirmware() };
  const bios = options.bios;
  const firmwareRom = bios instanceof Uint8Array && config.machine.bool("x-firmware-rom");
  if (firmwareRom && bios.length > FIRMWARE_ROM_MAX) {
    throw new RangeError(`firmware (-bios) of ${bios.length} bytes exceeds the firmware ROM's ${FIRMWARE_ROM_MAX / 2 ** 20} MiB`);
  }
  const guestMemory = await GuestMemory.create({
    ram: [
      { idstr: RAM_BLOCK_NAME, size: ramSize, base: VIRT_DRAM },
      { idstr: MROM_BLOCK_NAME, size: MROM_SIZE, base: MROM_BASE, readonly: true },
      ...(firmwareRom
        ? [{ idstr: FIRMWARE_ROM_BLOCK_NAME, size: FIRMWARE_ROM_MAX, usedLength: firmwareRomSize(bios.length), readonly: true, resizeable: true }]
        : []),
    ],
    harts,
    // "touched": every write to this machine's RAM is tracked (CPU, devices, loaders, the ROM
    // fill), so migration may take a never-written page for zero without reading it.
    dirtyClients: options.dirtyClients ?? [...DEFAULT_DIRTY_CLIENTS, TOUCHED_CLIENT],
  });
  const bus = new SystemBus();
  const cpu = await Cpu.create({ memory: guestMemory.memory, harts, mmio: bus, debug: options.debugCpu ?? false, isa: cpuIsaOf(config.cpu) });
  let vcpu: MachineParts["vcpu"];
  if (options.vcpuThread === "worker") {
    if (options.icount !== undefined && options.icount !== false) throw new RangeError("icount is not supported with the vCPU in a worker thread (use thread=single)");
    if (options.onTrap !== undefined) throw new RangeError("tracing traps (onTrap, -d int) is not supported with the vCPU in a worker thread (use thread=single)");
    // Loaded only here: the module needs node:worker_threads.
    const mod = await import("./vcpu-worker.ts");
    // Before the Machine resets the harts: the worker's Cpu resets them as it starts.
    const worker = await mod.VcpuWorker.start(cpu, { bus, isa: cpuIsaOf(config.cpu), slice: options.slice ?? DEFAULT_SLICE, debug: options.debugCpu ?? false });
    vcpu = { worker, run: mod.runVcpuWorker };
  } else if (options.vcpuThread !== undefined && options.vcpuThread !== "main") {
    throw new RangeError(`vcpuThread must be "main" or "worker", not ${JSON.stringify(options.vcpuThread)}`);
  }
  return new Machine(options, { guestMemory, bus, cpu, harts, ramSize, config, vcpu });
}

/** The machine type and every device's resolved properties. */
export interface MachineConfig {
  readonly machineType: MachineType;
  /** `virt-machine`'s properties (`-M virt,...`). */
  readonly machine: DeviceProperties;
  /** The CPU model's properties (`-cpu rv64,...`), the same for every hart. */
  readonly cpu: DeviceProperties;
  /** `virtio-mmio`'s (one set for the eight transports). */
  readonly virtioMmio: DeviceProperties;
  /** Each `virtio` spec's properties, in spec order (undefined for custom devices). */
  readonly virtio: readonly (DeviceProperties | undefined)[];
}

/**
 * Resolves the machine type and every device's properties (defaults, the type's compat list,
 * `-global`s, the device's options). Throws MachineTypeError or PropertyError naming what was
 * wrong.
 */
export function resolveMachineConfig(options: MachineOptions): MachineConfig {
  const machineType = findMachineType(options.machineType ?? "virt");
  const globals = options.globals ?? [];
  for (const g of globals) {
    if (!isKnownDriver(g.driver)) throw new PropertyError(`-global ${g.driver}.${g.property}=${g.value}: no device type '${g.driver}' on this machine`);
  }
  const layers = { compat: machineType.compat, machineType: machineType.name, globals };
  const withPrefix = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof PropertyError && !e.message.startsWith(what)) throw new PropertyError(`${what}: ${e.message}`);
      throw e;
    }
  };
  const machine = withPrefix("-machine", () => resolveProperties(VIRT_MACHINE_CLASS, { ...layers, ...(options.machineProperties ? { options: options.machineProperties } : {}) }));
  const cpu = withPrefix("-cpu", () => resolveProperties(RV64_CPU_CLASS, { ...layers, ...(options.cpuProperties ? { options: options.cpuProperties } : {}) }));
  const virtioMmio = resolveProperties(VIRTIO_MMIO_CLASS, {
    ...layers,
    ...(options.virtioLegacy === undefined ? {} : { options: { "force-legacy": options.virtioLegacy ? "on" : "off" } }),
  });
  const virtio = (options.virtio ?? []).map((spec) => {
    if (spec.type === "custom") return undefined;
    const cls = spec.type === "virtio-blk-device" ? VIRTIO_BLK_CLASS : spec.type === "virtio-rng-device" ? VIRTIO_RNG_CLASS : VIRTIO_SERIAL_CLASS;
    const own: Record<string, string> = { ...(spec.properties ?? {}) };
    if (spec.type === "virtio-blk-device" && spec.serial !== undefined) own["serial"] = spec.serial;
    const props = withPrefix(`-device ${spec.type}`, () => resolveProperties(cls, { ...layers, options: own }));
    if (spec.type === "virtio-blk-device") {
      const q = props.number("num-queues");
      if (q === 0) throw new PropertyError(`-device virtio-blk-device: num-queues property must be greater than 0`);
      if (q !== VIRTIO_BLK_AUTO_NUM_QUEUES && q > 64) throw new PropertyError(`-device virtio-blk-device: num-queues property must be <= 64`);
    }
    if (spec.type === "virtio-rng-device") {
      if (props.bigint("max-bytes") > VIRTIO_RNG_NO_LIMIT) throw new PropertyError(`-device virtio-rng-device: 'max-bytes' parameter expects a non-negative 64-bit integer`);
      if (props.number("period") === 0) throw new PropertyError(`-device virtio-rng-device: 'period' parameter expects a positive integer`);
    }
    return props;
  });
  return { machineType, machine, cpu, virtioMmio, virtio };
}

/** The CPU properties as @ferryvm/cpu-wasm's CpuIsa (QEMU spells Zicsr/Zifencei with a capital). */
function cpuIsaOf(p: DeviceProperties): Partial<CpuIsa> {
  return {
    m: p.bool("m"), a: p.bool("a"), c: p.bool("c"), s: p.bool("s"), u: p.bool("u"),
    zicsr: p.bool("Zicsr"), zifencei: p.bool("Zifencei"), sstc: p.bool("sstc"), mmu: p.bool("mmu"), pmp: p.bool("pmp"),
  };
}

interface MachineParts {
  guestMemory: GuestMemory;
  bus: SystemBus;
  cpu: Cpu;
  harts: number;
  ramSize: number;
  config: MachineConfig;
  /** The vCPU worker thread (vcpuThread "worker"). */
  vcpu?: { worker: VcpuWorker; run: typeof runVcpuWorker } | undefined;
}

export class Machine {
  /** The address space: RAM blocks, dirty bitmaps (what migration reads). */
  readonly guestMemory: GuestMemory;
  readonly layout: MemoryLayout;
  readonly memory: WebAssembly.Memory;
  readonly bus: SystemBus;
  readonly cpu: Cpu;
  readonly harts: number;
  readonly ramSize: number;
  readonly physicalMemory = new PhysicalMemory();
  readonly clock: VirtualClock;
  readonly uart: Uart16550;
  readonly clint: Clint;
  readonly finisher: SifiveTest;
  readonly plic: Plic;
  readonly rtc: GoldfishRtc;
  /** The eight virtio-mmio transports (slot n at 0x1000_1000 + n·0x1000). */
  readonly virtio: readonly VirtioMmio[];
  /** The virtio console, when one was plugged. */
  readonly virtioConsole: VirtioConsole | undefined;
  /** Where the initrd went, when one was given. */
  readonly initrdRange: { start: bigint; end: bigint } | undefined;
  /** HTIF, when the kernel (or firmware) ELF has a `tohost` symbol. */
  readonly htif: Htif | undefined;
  /** Where the harts jump from the ROM. */
  readonly startAddr: bigint;
  readonly fdtAddr: bigint;
  readonly kernelImage: LoadedImage | undefined;
  readonly firmwareImage: LoadedImage | undefined;
  /** The machine type and every device's properties. */
  readonly config: MachineConfig;

  #options: MachineOptions;
  #slice: number;
  #out: (bytes: Uint8Array) => void;
  #err: (bytes: Uint8Array) => void;
  #outBuf = new Uint8Array(4096);
  #outLen = 0;
  #input: number[] = [];
  #pending: RunResult | undefined;
  #wake: (() => void) | undefined;
  #running = false;
  #instructions = 0;
  /** mtime the harts saw at the start of the last round. */
  #roundMtime = 0n;
  #vmstate: VmstateEntry[] | undefined;
  #throttle = 0;
  /** Host ms the vCPUs ran since the last throttle sleep. */
  #ranMs = 0;
  #pauseRequested = false;
  #paused = false;
  #pauseWaiters: (() => void)[] = [];
  #resumeWake: (() => void) | undefined;
  #vcpu: MachineParts["vcpu"];

  constructor(options: MachineOptions, parts: MachineParts) {
    this.#options = options;
    this.guestMemory = parts.guestMemory;
    this.layout = parts.guestMemory.layout;
    this.memory = parts.guestMemory.memory;
    this.bus = parts.bus;
    this.cpu = parts.cpu;
    this.harts = parts.harts;
    this.ramSize = parts.ramSize;
    this.config = parts.config;
    this.#slice = options.slice ?? DEFAULT_SLICE;
    this.#out = options.onConsoleOutput ?? (() => {});
    const errOut = options.onErrorOutput;
    this.#err = errOut === undefined ? (b) => this.#emit(b) : (b) => { this.flushOutput(); errOut(b); };
    const icount = options.icount;
    this.clock = new VirtualClock(
      icount === undefined || icount === false ? {} : { icountShift: icount === true ? 3 : icount.shift },
    );

    const gm = this.guestMemory;
    for (const block of gm.ramBlocks) {
      this.physicalMemory.add({
        name: block.idstr,
        base: block.base!,
        bytes: block.bytes,
        markDirty: (offset, length) => gm.markDirty(block, offset, length),
      });
    }
    this.cpu.setRegions(gm.cpuRegions());
    this.#vcpu = parts.vcpu;
    const vcpu = this.#vcpu?.worker;
    if (vcpu !== undefined) {
      // Harts run in the worker: the barrier flags their flush requests and waits for the running one.
      gm.setSyncBarrier(() => vcpu.barrier());
      vcpu.attach({
        onHtif: () => {
          const r = this.htif?.handleTohost();
          if (r !== undefined) this.#pending ??= { ...r, cause: "guest-shutdown" };
        },
        afterCall: () => {
          vcpu.clockMoved(this.clock);
          if (this.#pending !== undefined) vcpu.requestPark();
          if (this.#pending !== undefined || this.#outLen > 0) this.#wake?.();
        },
      });
    } else {
      // Harts run on this thread between slices, so a bitmap sync can drop their store TLBs itself.
      gm.setSyncBarrier(() => {
        for (let h = 0; h < this.harts; h++) this.cpu.tlbFlushStores(h);
      });
    }

    this.finisher = new SifiveTest((e, hart) => this.#onFinisher(e, hart));
    // The CLINT's mtime register reads the value the harts' `time` CSR reads (set at each slice
    // start), so guests see one clock; a guest write moves the virtual clock and that value.
    const cpu = this.cpu;
    const clock = this.clock;
    this.clint = new Clint({
      harts: this.harts,
      hart: (i) => cpu.hart(i),
      timebase: {
        get mtime() {
          return cpu.mtime;
        },
        setMtime(value: bigint) {
          clock.setMtime(value);
          cpu.mtime = value;
        },
      },
    });
    this.plic = new Plic({
      harts: this.harts,
      hart: (i) => cpu.hart(i),
      onGuestError: (m) => options.onGuestError?.(m),
    });
    this.rtc = new GoldfishRtc({ onIrq: this.plic.irqLine(RTC_IRQ), onGuestError: (m) => options.onGuestError?.(m) });
    this.uart = new Uart16550({
      onIrq: this.plic.irqLine(UART0_IRQ),
      onTransmit: (b) => this.#emitByte(b),
      nowNs: () => this.clock.ns(),
      onAcceptInput: () => this.#pumpInput(),
    });
    this.bus.map("riscv.sifive.test", VIRT_TEST, SIFIVE_TEST_SIZE, this.finisher);
    this.bus.map("riscv.aclint", VIRT_CLINT, CLINT_SIZE, this.clint);
    this.bus.map("serial", VIRT_UART0, VIRT_UART0_SIZE, this.uart);
    this.bus.map("goldfish_rtc", VIRT_RTC, GOLDFISH_RTC_SIZE, this.rtc);
    this.bus.map("riscv.sifive.plic", VIRT_PLIC, PLIC_SIZE, this.plic);
    const specs = options.virtio ?? [];
    const slots = placeVirtioDevices(specs);
    const devices = new Array<VirtioDevice | undefined>(VIRTIO_COUNT).fill(undefined);
    let vcon: VirtioConsole | undefined;
    specs.forEach((spec, i) => {
      let dev: VirtioDevice;
      const props = this.config.virtio[i];
      if (spec.type === "virtio-blk-device") {
        const serial = props!.string("serial");
        const q = props!.number("num-queues");
        dev = new VirtioBlk({
          backend: spec.backend,
          ...(serial === "" ? {} : { serial }),
          // num-queues' auto (the default from virt-1.1): one request queue per hart.
          numQueues: q === VIRTIO_BLK_AUTO_NUM_QUEUES ? this.harts : q,
          onError: (m) => options.onGuestError?.(m),
        });
      } else if (spec.type === "virtio-rng-device") {
        dev = new VirtioRng({
          maxBytes: props!.bigint("max-bytes"),
          periodMs: props!.number("period"),
          migrateQuota: props!.bool("x-migrate-quota"),
          nowNs: () => this.clock.ns(),
        });
      } else if (spec.type === "virtio-serial-device") {
        if (vcon !== undefined) throw new RangeError("only one virtio console is supported");
        vcon = new VirtioConsole({ onOutput: spec.onOutput ?? ((b) => this.#emit(b)), onInputWanted: () => this.#wake?.() });
        dev = vcon;
      } else {
        dev = spec.device;
      }
      devices[slots[i]!] = dev;
    });
    this.virtioConsole = vcon;
    this.virtio = devices.map((device, n) => {
      const t = new VirtioMmio({
        memory: this.physicalMemory,
        ...(device === undefined ? {} : { device }),
        legacy: this.config.virtioMmio.bool("force-legacy"),
        onIrq: this.plic.irqLine(VIRTIO_IRQ + n),
        onGuestError: (m) => options.onGuestError?.(m),
      });
      this.bus.map("virtio-mmio", VIRT_VIRTIO + n * VIRTIO_MMIO_SIZE, VIRTIO_MMIO_SIZE, t);
      return t;
    });

    const dramEnd = BigInt(VIRT_DRAM + this.ramSize);
    const top = dramEnd < 0xc000_0000n ? dramEnd : 0xc000_0000n;
    this.fdtAddr = (top - BigInt(FDT_MAX_SIZE)) & ~0x1f_ffffn;

    const rom = gm.ramBlocks.find((b) => b.idstr === FIRMWARE_ROM_BLOCK_NAME);
    if (rom !== undefined && options.bios instanceof Uint8Array) {
      rom.bytes.fill(0);
      rom.bytes.set(options.bios);
      // A write outside the CPU and physicalMemory: mark it, so dirty tracking (and migration's
      // "never written, so zero" shortcut) sees it.
      gm.markDirty(rom, 0, rom.usedLength);
    }
    const images = this.#loadImages();
    this.firmwareImage = images.firmware;
    this.kernelImage = images.kernel;
    this.initrdRange = images.initrd;
    this.startAddr = images.startAddr;
    const elf = images.kernel?.elf ?? images.firmware?.elf;
    const tohost = elf?.symbol("tohost");
    if (tohost !== undefined) {
      const fromhost = elf?.symbol("fromhost")?.value ?? null;
      this.htif = new Htif({
        memory: this.physicalMemory,
        tohost: tohost.value,
        fromhost,
        onConsoleOutput: (b) => this.#emit(b),
        onErrorOutput: this.#err,
        onUnknown: (m) => options.onGuestError?.(m),
      });
      this.cpu.setTohost(tohost.value, fromhost);
    } else {
      this.cpu.setTohost(null, null);
    }
    if (options.onTrap !== undefined) this.cpu.onTrap = options.onTrap;
    this.#resetHarts();
  }

  /** The trap hook (see {@link MachineOptions.onTrap}); undefined = off, costs nothing then. */
  get onTrap(): ((event: TrapEvent) => void) | undefined {
    return this.cpu.onTrap;
  }
  set onTrap(fn: ((event: TrapEvent) => void) | undefined) {
    if (this.#vcpu !== undefined && fn !== undefined) throw new Error("tracing traps (onTrap, -d int) is not supported with the vCPU in a worker thread (use thread=single)");
    this.cpu.onTrap = fn;
  }

  /** Where the harts run (see {@link MachineOptions.vcpuThread}). */
  get vcpuThread(): "main" | "worker" {
    return this.#vcpu === undefined ? "main" : "worker";
  }

  /** Ends the vCPU worker thread, if any (the machine cannot run afterwards). */
  async dispose(): Promise<void> {
    await this.#vcpu?.worker.terminate();
  }

  /** The hart-reset hook (see {@link MachineOptions.onCpuReset}). */
  get onCpuReset(): ((event: CpuResetEvent) => void) | undefined {
    return this.#options.onCpuReset;
  }
  set onCpuReset(fn: ((event: CpuResetEvent) => void) | undefined) {
    const { onCpuReset: _, ...rest } = this.#options;
    this.#options = fn === undefined ? rest : { ...rest, onCpuReset: fn };
  }

  /**
   * Auto-converge throttle (QEMU's cpu_throttle_set): with `percent` in 1..99 the run loop
   * sleeps percent / (100 - percent) × {@link THROTTLE_TIMESLICE_MS} after every timeslice
   * the vCPUs ran, so they run (100 - percent)% of wall time; 0 turns it off.
   */
  setThrottle(percent: number): void {
    if (!Number.isInteger(percent) || percent < 0 || percent > 99) {
      throw new RangeError(`throttle percentage ${percent} out of range 0..99`);
    }
    this.#throttle = percent;
    this.#ranMs = 0;
    this.#vcpu?.worker.setThrottle(percent);
  }

  get throttle(): number {
    return this.#throttle;
  }

  /**
   * Pauses the vCPUs (QEMU's vm_stop without ending `run()`): resolves once every hart has
   * stopped at an instruction boundary and the virtual clock is frozen. A run() started while
   * paused waits (QEMU's -S). Device state and RAM may be read (and saved) while paused.
   */
  pause(): Promise<void> {
    if (this.#paused) return Promise.resolve();
    if (!this.#running) {
      this.#paused = true;
      return Promise.resolve();
    }
    this.#pauseRequested = true;
    if (this.#vcpu?.worker.parkIfAsleep()) {
      // Every hart slept in WFI and stays parked: paused now, without a round trip through
      // the run loop (which reaches its pause point next and waits there).
      this.#pausedEarly = true;
      this.flushOutput();
      this.clock.stop();
      this.#wake?.();
      return Promise.resolve();
    }
    for (let i = 0; i < this.harts; i++) this.cpu.hart(i).stopRequest = true;
    const p = new Promise<void>((resolve) => this.#pauseWaiters.push(resolve));
    this.#wake?.();
    return p;
  }

  /** Lets paused vCPUs run again (a pending pause() is cancelled after it settles). */
  resume(): void {
    this.#pausedEarly = false;
    if (this.#pauseRequested && !this.#paused) {
      // Not reached the pause point yet: it pauses, settles pause(), then resumes at once.
      this.#resumeAfterPause = true;
      return;
    }
    this.#paused = false;
    this.#resumeWake?.();
  }

  /** True while the vCPUs are paused (see {@link pause}). */
  get paused(): boolean {
    return this.#paused || this.#pausedEarly;
  }

  #resumeAfterPause = false;
  /** pause() parked sleeping harts at once; the run loop has not reached its pause point yet. */
  #pausedEarly = false;

  /** Instructions retired by all harts since creation. */
  /**
   * Every section QEMU's `virt` would send that this machine models, in QEMU's registration
   * order, each `{ idstr, instanceId, vmsd, opaque }` for `SaveVmRegistry.registerVmstate`
   * (see machine-vmstate.ts). The same objects serve every save and load of this machine.
   * Save and load only while `run()` is not running; load RAM before the devices (the RAM
   * section comes first in a stream): virtio's post_load reads the rings' indices from RAM.
   */
  vmstateEntries(): readonly VmstateEntry[] {
    this.#vmstate ??= virtVmstateEntries(this, { virtioBase: VIRT_VIRTIO, virtioStride: VIRTIO_MMIO_SIZE });
    return this.#vmstate;
  }

  /** Registers every entry of `vmstateEntries()` in order (`registry` is a `SaveVmRegistry`). */
  registerVmstate(registry: VmstateRegistry): void {
    for (const e of this.vmstateEntries()) {
      registry.registerVmstate(e.vmsd, e.opaque as never, { idstr: e.idstr, instanceId: e.instanceId });
    }
  }

  /** A byte the serial port sends to the console (a restored stream's pending transmit bytes). */
  uartTransmit(byte: number): void {
    this.#emitByte(byte);
  }

  get instructions(): number {
    return this.#vcpu?.worker.instructions ?? this.#instructions;
  }

  hart(i: number): HartView {
    return this.cpu.hart(i);
  }

  /** Queues console input for the guest (UART receive, or a pending HTIF console read). */
  sendConsoleInput(bytes: Uint8Array): void {
    for (const b of bytes) this.#input.push(b);
    this.#wake?.();
  }

  /** Sends a break on the console line (Ctrl-A b). */
  sendBreak(): void {
    this.uart.receiveBreak();
    this.#wake?.();
  }

  /** Ends a running {@link run} with `{ kind: "stopped" }` at the next slice boundary. */
  stop(): void {
    this.#pending ??= { kind: "stopped" };
    for (let i = 0; i < this.harts; i++) this.cpu.hart(i).stopRequest = true;
    this.#wake?.();
    this.#resumeWake?.();
  }

  /** System reset (the finisher's 0x7777): images reloaded, devices and harts reset. */
  reset(): void {
    this.#loadImages();
    this.uart.reset();
    this.plic.reset();
    this.rtc.reset();
    for (const v of this.virtio) v.reset();
    this.htif?.reset();
    this.clock.reset();
    this.#resetHarts();
  }

  /** Runs until the guest exits, resets, the timeout passes or {@link stop} is called. */
  async run(options: RunOptions = {}): Promise<RunResult> {
    if (this.#running) throw new Error("Machine.run() is already running");
    this.#running = true;
    const hostStart = performance.now();
    const deadline = options.timeoutMs === undefined ? Infinity : hostStart + options.timeoutMs;
    let lastYield = hostStart;
    this.clock.start();
    try {
      if (this.#vcpu !== undefined) return await this.#vcpu.run(this.#vcpu.worker, this.#vcpuHost(), deadline);
      for (;;) {
        if (this.#pauseRequested || this.#paused) {
          await this.#pausePoint(deadline);
          if (this.#pending !== undefined) return this.#takePending();
          if (performance.now() >= deadline) return { kind: "timeout" };
          lastYield = performance.now();
        }
        this.#pumpInput();
        this.uart.poll();
        this.rtc.poll();
        for (const v of this.virtio) v.poll();
        let idle = true;
        const roundStart = performance.now();
        this.#roundMtime = this.clock.mtime;
        for (let h = 0; h < this.harts && this.#pending === undefined; h++) {
          this.cpu.mtime = this.clock.mtime;
          const reason = this.cpu.run(h, this.#slice);
          const retired = Number(this.cpu.hart(h).lastRetired);
          this.#instructions += retired;
          this.clock.addInstructions(retired);
          if (retired !== 0 || reason !== ExitReason.Wfi) idle = false;
          if (reason === ExitReason.Htif && this.htif !== undefined) {
            const r = this.htif.handleTohost();
            if (r !== undefined) this.#pending ??= { ...r, cause: "guest-shutdown" };
          } else if (reason === ExitReason.Stop) {
            this.cpu.hart(h).stopRequest = false;
          }
        }
        this.flushOutput();
        if (this.#pending !== undefined) return this.#takePending();
        const now = performance.now();
        if (now >= deadline) return { kind: "timeout" };
        if (this.#throttle > 0 && !idle) {
          this.#ranMs += now - roundStart;
          if (this.#ranMs >= THROTTLE_TIMESLICE_MS) {
            await this.#throttleSleep(deadline);
            lastYield = performance.now();
            if (this.#pending !== undefined) return this.#takePending();
            continue;
          }
        }
        if (idle) {
          await this.#idle(deadline);
          lastYield = performance.now();
        } else if (now - lastYield >= MIN_YIELD_MS) {
          await yieldToEventLoop();
          lastYield = performance.now();
        }
        if (this.#pending !== undefined) return this.#takePending();
      }
    } finally {
      this.flushOutput();
      this.clock.stop();
      this.#running = false;
      if (this.#pauseRequested) {
        // The run ended before its pause point: the harts are stopped all the same.
        for (let i = 0; i < this.harts; i++) this.cpu.hart(i).stopRequest = false;
        this.#pauseRequested = false;
        this.#pausedEarly = false;
        this.#paused = !this.#resumeAfterPause;
        this.#resumeAfterPause = false;
        for (const w of this.#pauseWaiters.splice(0)) w();
      }
    }
  }

  /** The worker-mode run loop's view of this machine's private state. */
  #vcpuHost(): VcpuHost {
    return {
      machine: this,
      hasPending: () => this.#pending !== undefined,
      takePending: () => this.#takePending(),
      pauseWanted: () => this.#pauseRequested || this.#paused,
      pausePoint: (deadline) => this.#pausePoint(deadline),
      pumpInput: () => this.#pumpInput(),
      setWake: (fn) => {
        this.#wake = fn;
      },
    };
  }

  /** Hands buffered guest output to `onConsoleOutput`. */
  flushOutput(): void {
    if (this.#outLen === 0) return;
    const chunk = this.#outBuf.slice(0, this.#outLen);
    this.#outLen = 0;
    this.#out(chunk);
  }

  /** QEMU's cpu_throttle_thread: sleep pct / (100 - pct) × the time the vCPUs just ran. */
  async #throttleSleep(deadline: number): Promise<void> {
    const pct = this.#throttle;
    const ms = Math.min((this.#ranMs * pct) / (100 - pct), deadline - performance.now());
    this.#ranMs = 0;
    if (ms <= 0) return;
    const end = performance.now() + ms;
    await new Promise<void>((resolve) => {
      const self = this;
      const timer = setTimeout(done, Math.round(ms));
      function done(): void {
        clearTimeout(timer);
        self.#wake = undefined;
        resolve();
      }
      // stop() and pause() end the sleep early; console input waits for the vCPU.
      this.#wake = () => {
        if (this.#pending !== undefined || this.#pauseRequested) done();
      };
    });
    // setTimeout has ~1 ms granularity: an oversleep counts as sleep owed by the next slice.
    const over = performance.now() - end;
    if (over > 0) this.#ranMs = -(over * (100 - pct)) / pct;
  }

  /** Harts stopped at an instruction boundary: freeze the clock and wait for resume(). */
  async #pausePoint(deadline: number): Promise<void> {
    for (let i = 0; i < this.harts; i++) this.cpu.hart(i).stopRequest = false;
    this.#pauseRequested = false;
    this.#paused = true;
    this.#pausedEarly = false;
    this.flushOutput();
    this.clock.stop();
    for (const w of this.#pauseWaiters.splice(0)) w();
    if (this.#resumeAfterPause) {
      this.#resumeAfterPause = false;
      this.#paused = false;
    }
    try {
      while (this.#paused && this.#pending === undefined && performance.now() < deadline) {
        await new Promise<void>((resolve) => {
          const ms = deadline - performance.now();
          const timer = ms === Infinity ? undefined : setTimeout(done, Math.min(Math.ceil(ms), MAX_TIMER_MS));
          const self = this;
          function done(): void {
            if (timer !== undefined) clearTimeout(timer);
            self.#resumeWake = undefined;
            resolve();
          }
          this.#resumeWake = done;
        });
      }
    } finally {
      this.clock.start();
    }
  }

  #takePending(): RunResult {
    const r = this.#pending!;
    this.#pending = undefined;
    for (let i = 0; i < this.harts; i++) this.cpu.hart(i).stopRequest = false;
    return r;
  }

  /** Every hart waits: sleep (or warp icount time) until the next event. */
  async #idle(deadline: number): Promise<void> {
    let next = Infinity;
    const mtime = this.clock.mtime;
    const state = new DataView(this.memory.buffer);
    for (let h = 0; h < this.harts; h++) {
      const hart = this.cpu.hart(h);
      // Sstc's stimecmp counts too (a spurious wake-up when STCE is off costs one round).
      for (const cmp of [hart.mtimecmp, state.getBigUint64(hart.base + H_STIMECMP, true)]) {
        if (cmp > mtime) next = Math.min(next, this.clock.nsForMtime(cmp));
        // Due since the harts last looked at the time (they went to WFI before it): wake now.
        else if (cmp > this.#roundMtime) next = Math.min(next, this.clock.ns());
      }
    }
    const uartAt = this.uart.nextDeadlineNs();
    if (uartAt >= 0) next = Math.min(next, uartAt);
    // A rate-limited virtio-rng waiting for its next period.
    for (const v of this.virtio) {
      const at = v.nextDeadlineNs();
      if (at >= 0) next = Math.min(next, at);
    }
    const rtcIn = this.rtc.nsUntilAlarm();
    if (rtcIn >= 0) next = Math.min(next, this.clock.ns() + rtcIn);
    if (this.virtioConsole !== undefined && this.virtioConsole.pendingInput > 0 && this.virtio.some((v) => v.driverOk)) {
      // Input waits for receive buffers; look again soon.
      next = Math.min(next, this.clock.ns() + 10e6);
    }
    if (this.#input.length > 0 && this.#inputAccepted()) return;
    if (this.clock.icount && next !== Infinity) {
      this.clock.warpTo(next);
      await yieldToEventLoop();
      return;
    }
    let ms = next === Infinity ? Infinity : (next - this.clock.ns()) / 1e6;
    ms = Math.min(ms, deadline - performance.now());
    // Clamped: the run loop re-checks every deadline when the sleep ends early.
    if (ms !== Infinity) ms = Math.min(Math.ceil(ms), MAX_TIMER_MS);
    if (ms <= 0) {
      await yieldToEventLoop();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = ms === Infinity ? undefined : setTimeout(done, ms);
      const self = this;
      function done(): void {
        if (timer !== undefined) clearTimeout(timer);
        self.#wake = undefined;
        resolve();
      }
      this.#wake = done;
    });
  }

  #inputAccepted(): boolean {
    return (this.htif?.wantsInput ?? false) || this.uart.canReceive() > 0;
  }

  #pumpInput(): void {
    if (this.#input.length === 0) return;
    if (this.htif?.wantsInput) {
      this.htif.receive(this.#input.shift()!);
      return;
    }
    const n = Math.min(this.uart.canReceive(), this.#input.length);
    if (n > 0) this.uart.receive(Uint8Array.from(this.#input.splice(0, n)));
  }

  #onFinisher(event: FinisherEvent, hart: number): void {
    this.#pending ??= event.kind === "exit"
      ? { kind: "exit", code: event.code, cause: "guest-shutdown" }
      : { kind: "reset", cause: "guest-reset" };
    this.cpu.hart(hart).stopRequest = true;
  }

  #emitByte(byte: number): void {
    if (this.#outLen === this.#outBuf.length) this.flushOutput();
    this.#outBuf[this.#outLen++] = byte;
  }

  #emit(bytes: Uint8Array): void {
    for (const b of bytes) this.#emitByte(b);
  }

  /**
   * The firmware to copy at reset: the ROM's contents when there is a firmware ROM (which a
   * migration may have filled with the source's firmware), else the `-bios` image. A raw image
   * in the ROM ends at its last non-zero byte (the rest is the ROM's padding).
   */
  #firmwareBytes(bios: Uint8Array): Uint8Array {
    const rom = this.guestMemory.ramBlocks.find((b) => b.idstr === FIRMWARE_ROM_BLOCK_NAME);
    if (rom === undefined) return bios;
    const bytes = rom.bytes.slice();
    if (bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) return bytes;
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    return bytes.subarray(0, (end + 7) & ~7);
  }

  #loadImages(): {
    firmware: LoadedImage | undefined;
    kernel: LoadedImage | undefined;
    startAddr: bigint;
    initrd: { start: bigint; end: bigint } | undefined;
  } {
    const { kernel } = this.#options;
    const bios = this.#options.bios ?? "none";
    if (bios === "default") throw new Error("unreachable: createMachine resolves bios 'default'");
    let firmware: LoadedImage | undefined;
    let kernelStart = BigInt(VIRT_DRAM);
    if (bios !== "none") {
      firmware = loadImage(this.physicalMemory, this.#firmwareBytes(bios), { rawAddr: BigInt(VIRT_DRAM), what: "firmware (-bios)" });
      kernelStart = (firmware.endAddr + 0x1f_ffffn) & ~0x1f_ffffn;
    }
    let loaded: LoadedImage | undefined;
    if (kernel !== undefined) {
      loaded = loadImage(this.physicalMemory, kernel, { rawAddr: kernelStart, what: "kernel" });
      if (firmware !== undefined && loaded.lowAddr < firmware.endAddr && firmware.lowAddr < loaded.endAddr) {
        throw new RangeError(
          `kernel at 0x${loaded.lowAddr.toString(16)}..0x${loaded.endAddr.toString(16)} overlaps the firmware at ` +
            `0x${firmware.lowAddr.toString(16)}..0x${firmware.endAddr.toString(16)} (use -bios none for bare programs)`,
        );
      }
    }
    let initrd: { start: bigint; end: bigint } | undefined;
    const initrdBytes = this.#options.initrd;
    if (initrdBytes !== undefined) {
      if (loaded === undefined) throw new RangeError("-initrd needs a kernel (-kernel)");
      // QEMU's riscv_load_initrd: kernel load address + min(RAM / 2, 128 MiB).
      const ram = BigInt(this.ramSize);
      const start = loaded.lowAddr + (ram / 2n < 128n << 20n ? ram / 2n : 128n << 20n);
      if (this.physicalMemory.view(start, initrdBytes.length) === undefined) {
        throw new RangeError(`initrd: ${initrdBytes.length} bytes at 0x${start.toString(16)} do not fit in guest RAM`);
      }
      this.physicalMemory.write(start, initrdBytes);
      initrd = { start, end: start + BigInt(initrdBytes.length) };
    }
    const fdt = this.buildFdt(initrd);
    if (fdt.length > FDT_MAX_SIZE) throw new RangeError("device tree larger than 1 MiB");
    if (this.physicalMemory.view(this.fdtAddr, fdt.length) !== undefined) this.physicalMemory.write(this.fdtAddr, fdt);
    const startAddr = bios === "none" ? (loaded?.entry ?? BigInt(VIRT_DRAM)) : BigInt(VIRT_DRAM);
    const rom = buildResetVector({ startAddr, fdtAddr: this.fdtAddr, nextAddr: loaded?.lowAddr ?? 0n });
    this.physicalMemory.zero(MROM_BASE, MROM_SIZE);
    this.physicalMemory.write(MROM_BASE, rom);
    return { firmware, kernel: loaded, startAddr, initrd };
  }

  /** The device tree the guest gets (QEMU's `-M virt,dumpdtb=FILE` writes the same bytes). */
  buildFdt(initrd: { start: bigint; end: bigint } | undefined = this.initrdRange): Uint8Array {
    const o = this.#options;
    return buildVirtFdt({
      ramBase: VIRT_DRAM,
      ramSize: this.ramSize,
      harts: this.harts,
      // riscv,isa follows the CPU properties (-cpu rv64,c=off → rv64ima_...), as QEMU's.
      isa: isaString(this.cpu.isa(0)),
      ...(this.cpu.isa(0).mmu ? {} : { mmuType: "riscv,none" }),
      ...(o.bootargs === undefined ? {} : { bootargs: o.bootargs }),
      ...(initrd === undefined ? {} : { initrd: { start: Number(initrd.start), end: Number(initrd.end) } }),
      ...(o.rngSeed === undefined ? {} : { rngSeed: o.rngSeed }),
    });
  }

  #resetHarts(): void {
    const onReset = this.#options.onCpuReset;
    for (let i = 0; i < this.harts; i++) {
      onReset?.({ hart: i, line: `CPU Reset (CPU ${i})` });
      this.cpu.reset(i, BigInt(MROM_BASE));
      this.cpu.hart(i).stopRequest = false;
    }
    this.clint.reset();
  }
}
