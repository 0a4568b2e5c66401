/**
 * The hart state: fixed offsets inside a hart block (packages/memory layout: HART_BLOCK_SIZE
 * bytes per hart). Everything architectural lives here so TypeScript can view, save and
 * restore it. The soft TLBs follow the state in the same block. Valid AssemblyScript and
 * TypeScript.
 *
 * ```
 * 0x0000  x0..x31            u64 x 32
 * 0x0100  f0..f31            u64 x 32 (reserved for F/D)
 * 0x0200  pc                 u64
 * 0x0208  priv               u32 (0 U, 1 S, 3 M)
 * 0x020c  fcsr               u32 (reserved for F/D)
 * 0x0210  CSRs               u64 each, see below
 * 0x0380  LR reservation, CLINT/PLIC inputs, run control
 * 0x0400  mhpmcounter3..18, then mhpmevent3..31 from 0x0480
 * 0x1000  TLBs: fetch, load, store; TLB_ENTRIES entries of 16 bytes each (tag u64, delta u64)
 * ```
 */
export const H_X = 0x000;
export const H_F = 0x100;
export const H_PC = 0x200;
export const H_PRIV = 0x208;
export const H_FCSR = 0x20c;

export const H_MSTATUS = 0x210;
export const H_MISA = 0x218;
export const H_MEDELEG = 0x220;
export const H_MIDELEG = 0x228;
export const H_MIE = 0x230;
export const H_MIP = 0x238;
export const H_MTVEC = 0x240;
export const H_MSCRATCH = 0x248;
export const H_MEPC = 0x250;
export const H_MCAUSE = 0x258;
export const H_MTVAL = 0x260;
export const H_MCOUNTEREN = 0x268;
export const H_STVEC = 0x270;
export const H_SSCRATCH = 0x278;
export const H_SEPC = 0x280;
export const H_SCAUSE = 0x288;
export const H_STVAL = 0x290;
export const H_SCOUNTEREN = 0x298;
export const H_SATP = 0x2a0;
export const H_MENVCFG = 0x2a8;
export const H_SENVCFG = 0x2b0;
export const H_MCYCLE = 0x2b8;
export const H_MINSTRET = 0x2c0;
export const H_MHARTID = 0x2c8;
/** Sstc's stimecmp (see H_STIMER_ARMED). */
export const H_STIMECMP = 0x2d0;
export const H_PMPCFG0 = 0x2d8;
export const H_PMPCFG2 = 0x2e0;
/** pmpaddr0..15, u64 each. */
export const H_PMPADDR = 0x300;

/** LR reservation: address, the value LR loaded, valid flag (u32). */
export const H_LR_ADDR = 0x380;
export const H_LR_VALUE = 0x388;
export const H_LR_VALID = 0x390;
/** CLINT mtimecmp for this hart; the CPU derives MTIP = mtime >= mtimecmp. */
export const H_MTIMECMP = 0x398;
/** u32: MSIP/MEIP/SEIP driven by devices (CLINT msip, PLIC), ORed into mip. */
export const H_MIP_EXTERNAL = 0x3a0;
/** u32: set by another thread; the hart drops its store TLB at the next check. */
export const H_FLUSH_REQUEST = 0x3a4;
/** u32: set during an MMIO call; run() returns EXIT_STOP after the current instruction. */
export const H_STOP_REQUEST = 0x3a8;
/** u32: 1 while the hart waits in WFI. */
export const H_WFI = 0x3ac;
/** u64: MMIO data slot for mmio_read/mmio_write. */
export const H_MMIO_DATA = 0x3b0;
/** u64: pages this hart made dirty through the store slow path. */
export const H_DIRTY_PAGES = 0x3b8;
/** u64: instructions retired by the last run() call. */
export const H_LAST_RETIRED = 0x3c0;
/** mcountinhibit (stored; counting is not inhibited). */
export const H_MCOUNTINHIBIT = 0x3c8;
/**
 * u32: 1 while the supervisor timer is armed: stimecmp was written with a time still to come;
 * STIP is set once mtime reaches it (QEMU 7.2's stimer, with or without menvcfg.STCE).
 */
export const H_STIMER_ARMED = 0x3d0;
/**
 * u32: the extensions this hart runs WITHOUT (ISA_OFF_* bits; 0 = the full RV64IMAC CPU).
 * Configuration, not architectural state: set by TypeScript before the hart runs, kept by
 * resetHart, and reflected in misa.
 */
export const H_ISA_OFF = 0x3d4;
/** mhpmcounter3..18 (QEMU 7.2's 16 programmable counters; 19..31 do not exist), u64 each. */
export const H_MHPMCOUNTER = 0x400;
/** mhpmevent3..31, u64 each (all exist on QEMU 7.2). */
export const H_MHPMEVENT = 0x480;
/** Number of programmable counters, mhpmcounter3 onwards. */
export const HPM_COUNTERS = 16;

/**
 * Scratch of run() while it runs (not architectural, not saved, meaningless between calls):
 * i32 instructions left in the chunk when it stopped early, i32 instructions of the chunk
 * already added to minstret, u32 why the inner loop stopped (an instruction's switch key or
 * K_DONE/K_FETCH), u32 that instruction (or one pre-fetched by the slow path), u64 the pc of
 * the pre-fetched instruction.
 */
export const H_RUN_REST = 0xf00;
export const H_RUN_COUNTED = 0xf04;
export const H_RUN_KEY = 0xf08;
export const H_RUN_INSN = 0xf0c;
export const H_RUN_PRE_PC = 0xf10;

export const HART_STATE_SIZE = 0x1000;

export const TLB_ENTRIES = 1024;
export const TLB_ENTRY_SIZE = 16;
export const H_TLB_FETCH = 0x1000;
export const H_TLB_LOAD = H_TLB_FETCH + TLB_ENTRIES * TLB_ENTRY_SIZE;
export const H_TLB_STORE = H_TLB_LOAD + TLB_ENTRIES * TLB_ENTRY_SIZE;
export const HART_BLOCK_USED = H_TLB_STORE + TLB_ENTRIES * TLB_ENTRY_SIZE;

/** H_ISA_OFF bits: each one turns an extension (QEMU's CPU property of that name) off. */
export const ISA_OFF_M = 1;
export const ISA_OFF_A = 2;
export const ISA_OFF_C = 4;
export const ISA_OFF_S = 8;
export const ISA_OFF_U = 16;
export const ISA_OFF_ZIFENCEI = 32;
export const ISA_OFF_ZICSR = 64;
export const ISA_OFF_SSTC = 128;
export const ISA_OFF_MMU = 256;
export const ISA_OFF_PMP = 512;

/** run() exit reasons. */
export const EXIT_BUDGET = 0;
export const EXIT_WFI = 1;
export const EXIT_HTIF = 2;
export const EXIT_STOP = 3;

export const PRV_U = 0;
export const PRV_S = 1;
export const PRV_M = 3;
