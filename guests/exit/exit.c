/* Ends through the sifive_test finisher with the code in `exit_code` (patchable; default 42:
   (42 << 16) | 0x3333), after one line on the UART. Checks that a machine passes the code on. */
#include "harness.h"

const char test_name[] = "exit";

volatile uint64_t exit_code __attribute__((section(".data"))) = 42;

int main(void) {
  printf_("exit: leaving with code %u\n", exit_code);
  return (int)exit_code;
}
