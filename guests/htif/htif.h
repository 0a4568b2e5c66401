/* Shared bits of the HTIF guests: the tohost/fromhost mailboxes in .tohost (8-byte symbols:
   QEMU's HTIF checks the symbol size). */
#define HTIF_MAILBOXES                 \
  .pushsection .tohost, "aw", @progbits; \
  .align 6; .globl tohost; .type tohost, @object; .size tohost, 8; tohost: .dword 0; \
  .align 6; .globl fromhost; .type fromhost, @object; .size fromhost, 8; fromhost: .dword 0; \
  .popsection
