/* An S-mode payload for OpenSBI fw_dynamic on QEMU's `virt` board (and FerryVM's): prints
   through the SBI console (legacy putchar; DBCN when the firmware has it), takes timer
   interrupts through sbi_set_timer, lists the virtio-mmio slots, reads and writes a virtio-blk
   disk (direct and indirect descriptors, completion by PLIC interrupt), reads virtio-rng,
   reads the goldfish RTC, and takes a UART receive interrupt through the PLIC. Then powers off
   through SBI SRST. The output is the same on FerryVM and on qemu-system-riscv64 7.2 with
   `-global virtio-mmio.force-legacy=false` (the test compares them).

   Disk expected: at least 4 sectors; sector 0 starts with a text line, the test checks the
   FNV-1a hash printed for sectors 0-1. Sector 2 is overwritten with a pattern and read back. */
#include <stdint.h>

typedef uint64_t u64;
typedef uint32_t u32;
typedef uint16_t u16;
typedef uint8_t u8;

#define MMIO32(a) (*(volatile u32 *)(uintptr_t)(a))
#define MMIO8(a) (*(volatile u8 *)(uintptr_t)(a))
#define csr_read(r) ({ u64 v_; asm volatile("csrr %0, " #r : "=r"(v_)); v_; })
#define csr_set(r, v) asm volatile("csrs " #r ", %0" ::"r"((u64)(v)))
#define csr_clear(r, v) asm volatile("csrc " #r ", %0" ::"r"((u64)(v)))
#define mb() asm volatile("fence iorw, iorw" ::: "memory")

struct sbiret { long error; long value; };

static struct sbiret sbi(u64 ext, u64 fid, u64 a0, u64 a1, u64 a2) {
  register u64 r0 asm("a0") = a0;
  register u64 r1 asm("a1") = a1;
  register u64 r2 asm("a2") = a2;
  register u64 r6 asm("a6") = fid;
  register u64 r7 asm("a7") = ext;
  asm volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r6), "r"(r7) : "memory");
  return (struct sbiret){(long)r0, (long)r1};
}

#define EXT_BASE 0x10
#define EXT_TIME 0x54494d45
#define EXT_SRST 0x53525354
#define EXT_DBCN 0x4442434e

/* ---- console ---- */
static void putc_(char c) { sbi(0x01, 0, (u8)c, 0, 0); }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putu(u64 v) {
  char b[24];
  int i = 0;
  do { b[i++] = '0' + v % 10; v /= 10; } while (v);
  while (i) putc_(b[--i]);
}
static void putx(u64 v) {
  puts_("0x");
  int started = 0;
  for (int s = 60; s >= 0; s -= 4) {
    int d = (v >> s) & 15;
    if (d || started || s == 0) { putc_("0123456789abcdef"[d]); started = 1; }
  }
}

static int failures;
static void check(const char *what, int ok) {
  puts_(ok ? "  ok   " : "  FAIL ");
  puts_(what);
  putc_('\n');
  if (!ok) failures++;
}

/* ---- interrupts ---- */
#define PLIC 0x0c000000UL
#define PLIC_CTX_S0 1 /* hart 0, S-mode */
#define UART 0x10000000UL
#define SIE_STIE (1UL << 5)
#define SIE_SEIE (1UL << 9)
#define SSTATUS_SIE (1UL << 1)

static volatile u64 timer_irqs, ext_irqs, last_source, source_irqs[11];
static volatile u32 virtio_isr_seen;
static volatile char uart_buf[16];
static volatile int uart_len;

static u64 rdtime(void) { return csr_read(time); }

/* Waits for an interrupt handler to make cond true, without losing a wake-up: the test runs
   with SIE clear, WFI wakes on a pending interrupt regardless, and setting SIE takes it. */
#define WAIT_FOR(cond)                         \
  do {                                         \
    for (;;) {                                 \
      csr_clear(sstatus, SSTATUS_SIE);         \
      if (cond) break;                         \
      asm volatile("wfi");                     \
      csr_set(sstatus, SSTATUS_SIE);           \
    }                                          \
    csr_set(sstatus, SSTATUS_SIE);             \
  } while (0)

u64 trap(u64 cause, u64 epc) {
  if (cause == ((1UL << 63) | 5)) {
    timer_irqs++;
    sbi(EXT_TIME, 0, (u64)-1, 0, 0);
  } else if (cause == ((1UL << 63) | 9)) {
    u32 src;
    while ((src = MMIO32(PLIC + 0x200004 + 0x1000 * PLIC_CTX_S0)) != 0) {
      ext_irqs++;
      last_source = src;
      if (src <= 10) source_irqs[src]++;
      if (src == 10) {
        while (MMIO8(UART + 5) & 1) {
          char c = MMIO8(UART);
          if (uart_len < 15) uart_buf[uart_len++] = c;
        }
      } else if (src >= 1 && src <= 8) {
        u64 base = 0x10001000UL + (src - 1) * 0x1000;
        u32 isr = MMIO32(base + 0x60);
        virtio_isr_seen |= isr;
        MMIO32(base + 0x64) = isr;
      }
      MMIO32(PLIC + 0x200004 + 0x1000 * PLIC_CTX_S0) = src;
    }
  } else {
    puts_("unexpected trap: scause ");
    putx(cause);
    puts_(" sepc ");
    putx(epc);
    putc_('\n');
    sbi(EXT_SRST, 0, 0, 1, 0);
  }
  return epc;
}

/* OpenSBI leaves the S context's threshold at 7 (everything masked); Linux sets 0, so do we. */
static void plic_enable(u32 src) {
  MMIO32(PLIC + 0x200000 + 0x1000 * PLIC_CTX_S0) = 0;
  MMIO32(PLIC + 4 * src) = 1;
  MMIO32(PLIC + 0x2000 + 0x80 * PLIC_CTX_S0 + 4 * (src / 32)) |= 1u << (src % 32);
}

/* ---- virtio-mmio ---- */
#define VIRTIO(n) (0x10001000UL + (n) * 0x1000UL)
#define V_MAGIC 0x000
#define V_VERSION 0x004
#define V_DEVICE_ID 0x008
#define V_DEVICE_FEATURES 0x010
#define V_DEVICE_FEATURES_SEL 0x014
#define V_DRIVER_FEATURES 0x020
#define V_DRIVER_FEATURES_SEL 0x024
#define V_QUEUE_SEL 0x030
#define V_QUEUE_NUM_MAX 0x034
#define V_QUEUE_NUM 0x038
#define V_GUEST_PAGE_SIZE 0x028
#define V_QUEUE_ALIGN 0x03c
#define V_QUEUE_PFN 0x040
#define V_QUEUE_READY 0x044
#define V_QUEUE_NOTIFY 0x050
#define V_STATUS 0x070
#define V_QUEUE_DESC 0x080
#define V_QUEUE_DRIVER 0x090
#define V_QUEUE_DEVICE 0x0a0
#define V_CONFIG 0x100
#define QSIZE 8

struct desc { u64 addr; u32 len; u16 flags; u16 next; };
struct avail { u16 flags; u16 idx; u16 ring[QSIZE]; u16 used_event; };
struct used_elem { u32 id; u32 len; };
struct used { u16 flags; u16 idx; struct used_elem ring[QSIZE]; u16 avail_event; };
struct vq {
  struct desc desc[QSIZE] __attribute__((aligned(16)));
  struct avail avail __attribute__((aligned(2)));
  struct used used __attribute__((aligned(4096))); /* legacy layout: used at the next page */
  u16 last_used;
  u32 index; /* the queue's number on its device */
};

static struct vq blk_q __attribute__((aligned(4096)));
static struct vq rng_q __attribute__((aligned(4096)));
static struct vq con_q __attribute__((aligned(4096)));
static struct desc indirect[3] __attribute__((aligned(16)));

/* Legacy (version 1) transport: QEMU 7.2's default (virtio-mmio.force-legacy=on). */
static int virtio_init_legacy(u64 base, struct vq *q, u32 want_lo) {
  u32 qi = q->index;
  MMIO32(base + V_STATUS) = 0;
  MMIO32(base + V_STATUS) = 1;
  MMIO32(base + V_STATUS) = 1 | 2;
  MMIO32(base + V_GUEST_PAGE_SIZE) = 4096;
  MMIO32(base + V_DEVICE_FEATURES_SEL) = 0;
  u32 lo = MMIO32(base + V_DEVICE_FEATURES);
  MMIO32(base + V_DRIVER_FEATURES_SEL) = 0;
  MMIO32(base + V_DRIVER_FEATURES) = lo & want_lo;
  MMIO32(base + V_QUEUE_SEL) = qi;
  if (MMIO32(base + V_QUEUE_NUM_MAX) < QSIZE) return -2;
  if (MMIO32(base + V_QUEUE_PFN) != 0) return -3;
  MMIO32(base + V_QUEUE_NUM) = QSIZE;
  MMIO32(base + V_QUEUE_ALIGN) = 4096;
  MMIO32(base + V_QUEUE_PFN) = (u32)((u64)(uintptr_t)q >> 12);
  MMIO32(base + V_STATUS) = 1 | 2 | 4;
  return 0;
}

static int virtio_init(u64 base, struct vq *q, u32 want_hi, u32 want_lo) {
  if (MMIO32(base + V_VERSION) == 1) return virtio_init_legacy(base, q, want_lo);
  MMIO32(base + V_STATUS) = 0;
  MMIO32(base + V_STATUS) = 1;
  MMIO32(base + V_STATUS) = 1 | 2;
  MMIO32(base + V_DEVICE_FEATURES_SEL) = 1;
  u32 hi = MMIO32(base + V_DEVICE_FEATURES);
  MMIO32(base + V_DEVICE_FEATURES_SEL) = 0;
  u32 lo = MMIO32(base + V_DEVICE_FEATURES);
  MMIO32(base + V_DRIVER_FEATURES_SEL) = 1;
  MMIO32(base + V_DRIVER_FEATURES) = hi & want_hi;
  MMIO32(base + V_DRIVER_FEATURES_SEL) = 0;
  MMIO32(base + V_DRIVER_FEATURES) = lo & want_lo;
  MMIO32(base + V_STATUS) = 1 | 2 | 8;
  if (!(MMIO32(base + V_STATUS) & 8)) return -1;
  MMIO32(base + V_QUEUE_SEL) = q->index;
  if (MMIO32(base + V_QUEUE_NUM_MAX) < QSIZE) return -2;
  MMIO32(base + V_QUEUE_NUM) = QSIZE;
  u64 d = (u64)(uintptr_t)q->desc, a = (u64)(uintptr_t)&q->avail, u = (u64)(uintptr_t)&q->used;
  MMIO32(base + V_QUEUE_DESC) = (u32)d;
  MMIO32(base + V_QUEUE_DESC + 4) = d >> 32;
  MMIO32(base + V_QUEUE_DRIVER) = (u32)a;
  MMIO32(base + V_QUEUE_DRIVER + 4) = a >> 32;
  MMIO32(base + V_QUEUE_DEVICE) = (u32)u;
  MMIO32(base + V_QUEUE_DEVICE + 4) = u >> 32;
  MMIO32(base + V_QUEUE_READY) = 1;
  MMIO32(base + V_STATUS) = 1 | 2 | 8 | 4;
  return 0;
}

/* Makes descriptor `head` available and waits until the device returns it and its
   interrupt (PLIC source `src`) has been taken. */
static u32 virtio_submit(u64 base, struct vq *q, u16 head, u32 src) {
  u64 irqs = source_irqs[src];
  q->avail.ring[q->avail.idx % QSIZE] = head;
  mb();
  q->avail.idx++;
  mb();
  MMIO32(base + V_QUEUE_NOTIFY) = q->index;
#ifdef DEBUG
  for (volatile int i = 0; i < 1000000; i++) {}
  puts_("dbg sip "); putx(csr_read(sip)); puts_(" sie "); putx(csr_read(sie)); puts_(" pend "); putx(MMIO32(PLIC + 0x1000));
  puts_(" en "); putx(MMIO32(PLIC + 0x2080)); puts_(" thr "); putx(MMIO32(PLIC + 0x201000)); puts_(" isr "); putx(MMIO32(base + 0x60)); putc_('\n');
#endif
  WAIT_FOR(*(volatile u16 *)&q->used.idx != q->last_used && source_irqs[src] != irqs);
  mb();
  u32 len = q->used.ring[q->last_used % QSIZE].len;
  q->last_used++;
  return len;
}

static int find_device(u32 id) {
  for (int n = 7; n >= 0; n--)
    if (MMIO32(VIRTIO(n) + V_MAGIC) == 0x74726976 && MMIO32(VIRTIO(n) + V_DEVICE_ID) == id) return n;
  return -1;
}

static u32 fnv1a(const u8 *p, u32 n) {
  u32 h = 2166136261u;
  for (u32 i = 0; i < n; i++) { h ^= p[i]; h *= 16777619u; }
  return h;
}

static u8 sectors[1024] __attribute__((aligned(16)));
static u8 pattern[512] __attribute__((aligned(16)));
static u8 blk_status;
static struct { u32 type; u32 ioprio; u64 sector; } blk_hdr;
static u8 rng_buf[32];

static void blk_test(void) {
  int n = find_device(2);
  if (n < 0) { check("virtio-blk present", 0); return; }
  u64 base = VIRTIO(n);
  puts_("virtio-blk: slot ");
  putu(n);
  puts_(", version ");
  putu(MMIO32(base + V_VERSION));
  puts_(", capacity ");
  putu(MMIO32(base + V_CONFIG) | ((u64)MMIO32(base + V_CONFIG + 4) << 32));
  puts_(" sectors, blk_size ");
  putu(MMIO32(base + V_CONFIG + 20));
  putc_('\n');
  plic_enable(n + 1);
  /* VERSION_1 (32) and INDIRECT_DESC (28); FLUSH (9) */
  check("virtio-blk features accepted", virtio_init(base, &blk_q, 1, (1u << 28) | (1u << 9)) == 0);

  /* read sectors 0-1: header, data, status in three chained descriptors */
  blk_hdr.type = 0;
  blk_hdr.sector = 0;
  blk_status = 0xff;
  blk_q.desc[0] = (struct desc){(u64)(uintptr_t)&blk_hdr, 16, 1, 1};
  blk_q.desc[1] = (struct desc){(u64)(uintptr_t)sectors, 1024, 1 | 2, 2};
  blk_q.desc[2] = (struct desc){(u64)(uintptr_t)&blk_status, 1, 2, 0};
  virtio_isr_seen = 0;
  u32 len = virtio_submit(base, &blk_q, 0, n + 1);
  check("read: status OK", blk_status == 0);
  check("read: used length is data + status", len == 1025);
  check("read: completion interrupt with InterruptStatus bit 0", virtio_isr_seen == 1);
  puts_("read: \"");
  for (int i = 0; i < 64 && sectors[i] >= ' ' && sectors[i] < 127; i++) putc_(sectors[i]);
  puts_("\" fnv1a ");
  putx(fnv1a(sectors, 1024));
  putc_('\n');

  /* write sector 2 through an indirect table */
  for (int i = 0; i < 512; i++) pattern[i] = (u8)(i * 7 + 3);
  blk_hdr.type = 1;
  blk_hdr.sector = 2;
  blk_status = 0xff;
  indirect[0] = (struct desc){(u64)(uintptr_t)&blk_hdr, 16, 1, 1};
  indirect[1] = (struct desc){(u64)(uintptr_t)pattern, 512, 1, 2};
  indirect[2] = (struct desc){(u64)(uintptr_t)&blk_status, 1, 2, 0};
  blk_q.desc[3] = (struct desc){(u64)(uintptr_t)indirect, sizeof indirect, 4, 0};
  virtio_submit(base, &blk_q, 3, n + 1);
  check("write (indirect descriptors): status OK", blk_status == 0);

  /* flush */
  blk_hdr.type = 4;
  blk_hdr.sector = 0;
  blk_status = 0xff;
  blk_q.desc[0] = (struct desc){(u64)(uintptr_t)&blk_hdr, 16, 1, 2};
  virtio_submit(base, &blk_q, 0, n + 1);
  check("flush: status OK", blk_status == 0);

  /* read sector 2 back */
  blk_hdr.type = 0;
  blk_hdr.sector = 2;
  blk_status = 0xff;
  blk_q.desc[0] = (struct desc){(u64)(uintptr_t)&blk_hdr, 16, 1, 1};
  blk_q.desc[1] = (struct desc){(u64)(uintptr_t)sectors, 512, 1 | 2, 2};
  virtio_submit(base, &blk_q, 0, n + 1);
  int same = blk_status == 0;
  for (int i = 0; i < 512; i++) same &= sectors[i] == pattern[i];
  check("read back: the written sector", same);

  /* a read past the end fails with IOERR */
  blk_hdr.sector = MMIO32(base + V_CONFIG);
  blk_status = 0xff;
  virtio_submit(base, &blk_q, 0, n + 1);
  check("read past the end: IOERR", blk_status == 1);

  /* an unknown request type: UNSUPP */
  blk_hdr.type = 0x77;
  blk_hdr.sector = 0;
  blk_status = 0xff;
  virtio_submit(base, &blk_q, 0, n + 1);
  check("unknown request: UNSUPP", blk_status == 2);
}

static void rng_test(void) {
  int n = find_device(4);
  if (n < 0) { check("virtio-rng present", 0); return; }
  puts_("virtio-rng: slot ");
  putu(n);
  putc_('\n');
  plic_enable(n + 1);
  check("virtio-rng features accepted", virtio_init(VIRTIO(n), &rng_q, 1, 0) == 0);
  rng_q.desc[0] = (struct desc){(u64)(uintptr_t)rng_buf, sizeof rng_buf, 2, 0};
  u32 len = virtio_submit(VIRTIO(n), &rng_q, 0, n + 1);
  int nonzero = 0;
  for (unsigned i = 0; i < sizeof rng_buf; i++) nonzero |= rng_buf[i];
  check("rng: bytes returned", len > 0 && len <= sizeof rng_buf);
  check("rng: not all zero", nonzero != 0);
}

static void console_test(void) {
  int n = find_device(3);
  if (n < 0) { check("virtio-console present", 0); return; }
  u64 base = VIRTIO(n);
  puts_("virtio-console: slot ");
  putu(n);
  puts_(", max_nr_ports ");
  putu(MMIO32(base + V_CONFIG + 4));
  putc_('\n');
  plic_enable(n + 1);
  con_q.index = 1; /* transmitq0 */
  /* VERSION_1; EMERG_WRITE (2) */
  check("virtio-console features accepted", virtio_init(base, &con_q, 1, 1u << 2) == 0);
  static const char msg[] = "hello through virtio-console transmitq0\n";
  con_q.desc[0] = (struct desc){(u64)(uintptr_t)msg, sizeof msg - 1, 0, 0};
  virtio_submit(base, &con_q, 0, n + 1);
  check("virtio-console: transmit buffer returned", con_q.last_used == 1);
  MMIO32(base + V_CONFIG + 8) = '!'; /* emerg_wr */
  MMIO32(base + V_CONFIG + 8) = '\n';
}

int main(u64 hartid, u64 fdt) {
  puts_("virt: S-mode payload on hart ");
  putu(hartid);
  putc_('\n');
  check("FDT address in a1 (128 MiB: 0x87e00000)", fdt == 0x87e00000UL);
  check("FDT magic", *(volatile u32 *)(uintptr_t)fdt == 0xedfe0dd0);

  /* SBI console: DBCN (SBI 2.0) when present */
  if (sbi(EXT_BASE, 3, EXT_DBCN, 0, 0).value) {
    static const char m[] = "dbcn: console write\n";
    sbi(EXT_DBCN, 0, sizeof m - 1, (u64)(uintptr_t)m, 0);
  } else {
    puts_("dbcn: not offered by this firmware\n");
  }

  /* timer interrupts through sbi_set_timer (the first call cancels any stale deadline:
     stimecmp is 0 after reset, which Sstc would report as pending) */
  sbi(EXT_TIME, 0, (u64)-1, 0, 0);
  csr_set(sie, SIE_STIE);
  csr_set(sstatus, SSTATUS_SIE);
  for (int i = 0; i < 3; i++) {
    u64 before = timer_irqs;
    u64 deadline = rdtime() + 20000; /* 2 ms */
    sbi(EXT_TIME, 0, deadline, 0, 0);
    WAIT_FOR(timer_irqs != before);
#ifdef DEBUG
    puts_("dbg i "); putu(i); puts_(" irqs "); putu(timer_irqs); puts_(" now-deadline "); putx(rdtime() - deadline); putc_('\n');
#endif
    if (rdtime() < deadline) { check("timer fired no earlier than asked", 0); break; }
  }
#ifdef DEBUG
  puts_("dbg timer_irqs "); putu(timer_irqs); putc_('\n');
#endif
  check("three timer interrupts", timer_irqs == 3);

  /* virtio slots as the board lists them */
  puts_("virtio-mmio slots:");
  for (int n = 0; n < 8; n++) {
    putc_(' ');
    putu(MMIO32(VIRTIO(n) + V_DEVICE_ID));
  }
  putc_('\n');

  csr_set(sie, SIE_SEIE);
  blk_test();
  rng_test();
  console_test();

  /* goldfish RTC: ns since 1970, after 2020 */
  u32 lo = MMIO32(0x101000);
  u32 hi = MMIO32(0x101004);
  u64 ns = ((u64)hi << 32) | lo;
  check("rtc: wall-clock time after 2020", ns > 1577836800ULL * 1000000000ULL);

  /* UART receive interrupt through the PLIC */
  plic_enable(10);
  MMIO8(UART + 1) = 1; /* IER: ERBFI */
  puts_("uart: waiting for input\n");
  WAIT_FOR(uart_len != 0);
  puts_("uart: irq ");
  putu(last_source);
  puts_(" got '");
  putc_(uart_buf[0]);
  puts_("'\n");
  check("uart: received through PLIC source 10", last_source == 10);

  puts_(failures ? "virt: FAILED\n" : "virt: all passed\n");
  sbi(EXT_SRST, 0, 0, failures ? 1 : 0, 0);
  return 0;
}
