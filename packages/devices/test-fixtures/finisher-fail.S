# Fails through the sifive_test finisher with code 3.
#include "common.h"
  .section .text.init
  .globl _start
_start:
  FINISH_FAIL(3)
