#!/bin/sh
# Rebuilds the committed test fixtures (needs Debian's gcc-riscv64-unknown-elf):
#   cd packages/devices/test-fixtures && sh build.sh
set -e
CC="riscv64-unknown-elf-gcc -march=rv64imac_zicsr -mabi=lp64 -nostdlib -nostartfiles -static \
  -Wl,--build-id=none -Wl,--no-warn-rwx-segments -T link.ld"
for s in *.S; do
  case "$s" in rvtest-p.S|sbi-hello.S) continue;; esac
  $CC -o "${s%.S}.elf" "$s"
done
$CC -DFAIL_AT=0 -o rvtest-p-pass.elf rvtest-p.S
$CC -DFAIL_AT=3 -o rvtest-p-fail.elf rvtest-p.S
riscv64-unknown-elf-gcc -march=rv64imac_zicsr -mabi=lp64 -nostdlib -nostartfiles -static \
  -Wl,--build-id=none -Wl,--no-warn-rwx-segments -T link-s.ld -o sbi-hello.elf sbi-hello.S
riscv64-unknown-elf-objcopy -O binary sbi-hello.elf sbi-hello.bin
