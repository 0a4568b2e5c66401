#!/bin/sh
# Rebuilds guests/virt/virt.elf (needs Debian's gcc-riscv64-unknown-elf). Run from anywhere.
set -eu
cd "$(dirname "$0")"
CC=${CROSS:-riscv64-unknown-elf-}gcc
$CC -march=rv64imac_zicsr_zifencei -mabi=lp64 -mcmodel=medany -O2 -g0 -Wall -ffreestanding \
  -fno-builtin -nostdlib -nostartfiles -fno-pic -fno-common -fno-stack-protector -static \
  -Wl,--no-relax -Wl,--build-id=none -Wl,--no-warn-rwx-segments -Tlink.ld \
  ${EXTRA:-} -o virt.elf crt.S virt.c
