/* Sv48: four-level translation, 512 GiB pages. */
#define LEVELS 4
const char test_name[] = "vm-sv48";
#include "vm.h"
