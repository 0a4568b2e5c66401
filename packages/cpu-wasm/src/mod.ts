/**
 * @module
 * The RISC-V hart interpreter of FerryVM (RV64IMAC, Zicsr, Zifencei, Zicntr, M/S/U, Sv39/Sv48,
 * PMP) and its TypeScript wrapper. Extensions can be turned off per hart (CpuIsa, Cpu.setIsa).
 *
 * ```ts
 * import { Cpu, ExitReason } from "@ferryvm/cpu-wasm";
 * const memory = new WebAssembly.Memory({ initial: 64, maximum: 64, shared: true });
 * const cpu = Cpu.createSync({ memory, harts: 1, mmio: { read: () => undefined, write: () => false } });
 * cpu.setRegions([{ base: 0x8000_0000, size: 0x10_0000, hostOffset: 0x30_0000 }]);
 * cpu.reset(0, 0x8000_0000n);
 * if (cpu.run(0, 1000) === ExitReason.Htif) console.log("tohost written");
 * ```
 */
export * from "./cpu.ts";
export * from "./isa.ts";
export * from "./layout.ts";
export * from "./elf.ts";
export { benchLoop, type BenchLoopResult } from "./bench-loop.ts";
