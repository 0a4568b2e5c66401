/** CSR numbers (privileged spec 1.12, chapter 2). Valid AssemblyScript and TypeScript. */
export const CSR_CYCLE = 0xc00;
export const CSR_TIME = 0xc01;
export const CSR_INSTRET = 0xc02;
export const CSR_HPMCOUNTER3 = 0xc03;
export const CSR_HPMCOUNTER31 = 0xc1f;

export const CSR_SSTATUS = 0x100;
export const CSR_SIE = 0x104;
export const CSR_STVEC = 0x105;
export const CSR_SCOUNTEREN = 0x106;
export const CSR_SENVCFG = 0x10a;
export const CSR_SSCRATCH = 0x140;
export const CSR_SEPC = 0x141;
export const CSR_SCAUSE = 0x142;
export const CSR_STVAL = 0x143;
export const CSR_SIP = 0x144;
export const CSR_STIMECMP = 0x14d;
export const CSR_SATP = 0x180;

export const CSR_MVENDORID = 0xf11;
export const CSR_MARCHID = 0xf12;
export const CSR_MIMPID = 0xf13;
export const CSR_MHARTID = 0xf14;
export const CSR_MCONFIGPTR = 0xf15;
export const CSR_MSTATUS = 0x300;
export const CSR_MISA = 0x301;
export const CSR_MEDELEG = 0x302;
export const CSR_MIDELEG = 0x303;
export const CSR_MIE = 0x304;
export const CSR_MTVEC = 0x305;
export const CSR_MCOUNTEREN = 0x306;
export const CSR_MENVCFG = 0x30a;
export const CSR_MCOUNTINHIBIT = 0x320;
export const CSR_MHPMEVENT3 = 0x323;
export const CSR_MHPMEVENT31 = 0x33f;
export const CSR_MSCRATCH = 0x340;
export const CSR_MEPC = 0x341;
export const CSR_MCAUSE = 0x342;
export const CSR_MTVAL = 0x343;
export const CSR_MIP = 0x344;
export const CSR_PMPCFG0 = 0x3a0;
export const CSR_PMPCFG2 = 0x3a2;
export const CSR_PMPADDR0 = 0x3b0;
export const CSR_PMPADDR15 = 0x3bf;
export const CSR_MCYCLE = 0xb00;
export const CSR_MINSTRET = 0xb02;
export const CSR_MHPMCOUNTER3 = 0xb03;
export const CSR_MHPMCOUNTER31 = 0xb1f;

/** mstatus fields. */
export const MSTATUS_SIE = 0x2;
export const MSTATUS_MIE = 0x8;
export const MSTATUS_SPIE = 0x20;
export const MSTATUS_UBE = 0x40;
export const MSTATUS_MPIE = 0x80;
export const MSTATUS_SPP = 0x100;
export const MSTATUS_MPP = 0x1800;
export const MSTATUS_FS = 0x6000;
export const MSTATUS_MPRV = 0x20000;
export const MSTATUS_SUM = 0x40000;
export const MSTATUS_MXR = 0x80000;
export const MSTATUS_TVM = 0x100000;
export const MSTATUS_TW = 0x200000;
export const MSTATUS_TSR = 0x400000;

/** Interrupt numbers (mip/mie bits) and exception causes. */
export const IRQ_S_SOFT = 1;
export const IRQ_M_SOFT = 3;
export const IRQ_S_TIMER = 5;
export const IRQ_M_TIMER = 7;
export const IRQ_S_EXT = 9;
export const IRQ_M_EXT = 11;

export const EXCP_INST_ADDR_MIS = 0;
export const EXCP_INST_ACCESS_FAULT = 1;
export const EXCP_ILLEGAL_INST = 2;
export const EXCP_BREAKPOINT = 3;
export const EXCP_LOAD_ADDR_MIS = 4;
export const EXCP_LOAD_ACCESS_FAULT = 5;
export const EXCP_STORE_AMO_ADDR_MIS = 6;
export const EXCP_STORE_AMO_ACCESS_FAULT = 7;
export const EXCP_U_ECALL = 8;
export const EXCP_S_ECALL = 9;
export const EXCP_M_ECALL = 11;
export const EXCP_INST_PAGE_FAULT = 12;
export const EXCP_LOAD_PAGE_FAULT = 13;
export const EXCP_STORE_PAGE_FAULT = 15;
