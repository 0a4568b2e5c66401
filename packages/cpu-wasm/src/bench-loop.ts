/**
 * A CPU micro-benchmark: an integer loop (loads, stores, ALU, branches, some compressed
 * instructions) running in S-mode with Sv39 paging on 4 KiB pages. Used by apps/bench.
 */
import { Cpu } from "./cpu.ts";
import { CPU_HART_AREA_BASE, CPU_HART_BLOCK_SIZE, CSR_MEPC, CSR_MSTATUS, CSR_PMPADDR0, CSR_PMPCFG0, CSR_SATP } from "./layout.ts";
import * as A from "./rv-asm.ts";

export interface BenchLoopResult {
  /** Instructions executed per second. */
  ips: number;
  instructions: number;
  seconds: number;
}

const RAM_BASE = 0x8000_0000n;
const RAM_SIZE = 0x20_0000;
const CODE_VA = 0x4000_0000n;
const DATA_VA = 0x4010_0000n;
const ROOT = RAM_BASE + 0x1_0000n;

/** Runs the paged loop for about `instructions` instructions and reports the speed. */
export function benchLoop(options: { instructions?: number; wasm?: BufferSource } = {}): BenchLoopResult {
  const total = options.instructions ?? 200_000_000;
  const hostBase = CPU_HART_AREA_BASE + CPU_HART_BLOCK_SIZE;
  const pages = Math.ceil((hostBase + RAM_SIZE) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const cpu = Cpu.createSync({
    memory,
    harts: 1,
    mmio: { read: () => undefined, write: () => false },
    ...(options.wasm ? { wasm: options.wasm } : {}),
  });
  cpu.setRegions([{ base: Number(RAM_BASE), size: RAM_SIZE, hostOffset: hostBase }]);
  const mem = new DataView(memory.buffer, hostBase, RAM_SIZE);
  const put64 = (pa: bigint, v: bigint): void => mem.setBigUint64(Number(pa - RAM_BASE), v, true);
  const put = (pa: bigint, bytes: Uint8Array): void => new Uint8Array(memory.buffer, hostBase + Number(pa - RAM_BASE)).set(bytes);

  // Sv39 tables: root -> L1 -> L0, mapping 1 MiB of code+data pages at CODE_VA with 4 KiB leaves.
  const l1 = ROOT + 0x1000n, l0 = ROOT + 0x2000n;
  const codePa = RAM_BASE + 0x2_0000n;
  put64(ROOT + ((CODE_VA >> 30n) & 511n) * 8n, ((l1 >> 12n) << 10n) | 1n);
  put64(l1 + ((CODE_VA >> 21n) & 511n) * 8n, ((l0 >> 12n) << 10n) | 1n);
  for (let i = 0n; i < 512n; i++) {
    const flags = 1n | 2n | 4n | 8n | 64n | 128n; // V R W X A D
    put64(l0 + i * 8n, (((codePa + i * 0x1000n) >> 12n) << 10n) | flags);
  }

  // M-mode setup at RAM_BASE: open PMP, paging on, mret to the loop in S-mode.
  const boot = new A.Asm(RAM_BASE);
  boot.emit(...A.li(5, 0x3f_ffff_ffff_ffffn), A.csrrw(0, CSR_PMPADDR0, 5), A.addi(5, 0, 0x1f), A.csrrw(0, CSR_PMPCFG0, 5));
  boot.emit(...A.li(5, (8n << 60n) | (ROOT >> 12n)), A.csrrw(0, CSR_SATP, 5));
  boot.emit(...A.li(5, 0x1800n), A.csrrc(0, CSR_MSTATUS, 5), ...A.li(5, 0x800n), A.csrrs(0, CSR_MSTATUS, 5));
  boot.emit(...A.li(5, CODE_VA), A.csrrw(0, CSR_MEPC, 5), A.MRET);
  put(RAM_BASE, boot.bytes());

  // The loop: walk a 16 KiB array, checksum it, write back a mixed value; forever.
  const loop = new A.Asm(CODE_VA);
  loop.emit(...A.li(10, DATA_VA), ...A.li(11, 2048n), A.addi(12, 0, 0), A.addi(13, 0, 1));
  const outer = loop.here();
  loop.emit(A.addi(14, 10, 0), A.addi(15, 11, 0));
  const inner = loop.here();
  loop.emit(A.ld(5, 14, 0), A.op("add", 12, 12, 5), A.op("xor", 6, 12, 13));
  loop.emit16(A.C.slli(6, 3), A.C.addi(13, 1));
  loop.emit(A.srli(7, 6, 7), A.op("and", 7, 7, 13), A.sd(7, 14, 0), A.addiw(15, 15, -1));
  loop.emit16(A.C.addi(14, 8));
  loop.emit(A.bne(15, 0, Number(inner - loop.here())));
  loop.emit(A.jal(0, Number(outer - loop.here())));
  put(codePa, loop.bytes());

  cpu.reset(0, RAM_BASE);
  cpu.run(0, 10_000); // boot and warm up
  const slice = 10_000_000;
  const start = performance.now();
  let done = 0;
  while (done < total) {
    cpu.run(0, Math.min(slice, total - done));
    done += Number(cpu.hart(0).lastRetired);
  }
  const seconds = (performance.now() - start) / 1000;
  if (cpu.hart(0).priv !== 1) throw new Error(`benchmark loop left S-mode (mcause ${cpu.hart(0).csr("mcause")})`);
  return { ips: done / seconds, instructions: done, seconds };
}
