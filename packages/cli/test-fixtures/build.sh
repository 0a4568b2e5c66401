#!/bin/sh
# Rebuilds the committed fixtures (Debian's gcc-riscv64-unknown-elf):
#   cd packages/cli/test-fixtures && sh build.sh
set -e
riscv64-unknown-elf-gcc -march=rv64imac_zicsr -mabi=lp64 -nostdlib -nostartfiles -static \
  -Wl,--build-id=none -Wl,--no-warn-rwx-segments -T ../../devices/test-fixtures/link.ld \
  -o guest-error.elf guest-error.S
