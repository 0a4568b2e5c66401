#!/bin/sh
# Rebuilds the committed test fixtures (needs Debian's gcc-riscv64-unknown-elf):
#   cd packages/devices/test-fixtures && sh build.sh
set -e
for s in *.S; do
  riscv64-unknown-elf-gcc -march=rv64imac_zicsr -mabi=lp64 -nostdlib -nostartfiles -static \
    -Wl,--build-id=none -Wl,--no-warn-rwx-segments -T link.ld -o "${s%.S}.elf" "$s"
done
