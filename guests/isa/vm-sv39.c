/* Sv39: three-level translation. */
#define LEVELS 3
const char test_name[] = "vm-sv39";
#include "vm.h"
