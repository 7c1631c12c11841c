#!/usr/bin/env bash
# Split a folder into parts that device calls can carry (64 MiB a call, the working tree included):
# a tar in PARTS_DIR/part_NN, the first FIRST_MIB large (it rides with the wheels of the first call),
# the others MIB, and their SHA-256 in PARTS_DIR/parts.sha256 (checked by device.sh unpack).
# usage: tools/lease/pack.sh SRC_DIR PARTS_DIR [FIRST_MIB=12] [MIB=52]
#        tools/lease/pack.sh stage PARTS_DIR N     put part N (and the sums) into .lease/ to be carried
set -euo pipefail
if [[ $1 == stage ]]; then
  top=$(git rev-parse --show-toplevel); rm -rf "$top/.lease"; mkdir -p "$top/.lease"
  # the part is linked (50 MiB), the sums copied: a later write to .lease must not reach PARTS_DIR
  ln "$2/part_$(printf %02d "$3")" "$top/.lease/" 2>/dev/null || cp "$2/part_$(printf %02d "$3")" "$top/.lease/"
  cp "$2/parts.sha256" "$top/.lease/"
  ls -la "$top/.lease"; exit 0
fi
src=$1 parts=$2 first=${3:-12} size=${4:-52}
rm -rf "$parts"; mkdir -p "$parts"
tar -C "$(dirname "$src")" -cf "$parts/all.tar" "$(basename "$src")"
head -c $((first << 20)) "$parts/all.tar" > "$parts/part_00"
tail -c +$(((first << 20) + 1)) "$parts/all.tar" | split -b $((size << 20)) -d -a 2 --numeric-suffixes=1 - "$parts/part_"
sha256sum < "$parts/all.tar" | cut -d' ' -f1 > "$parts/parts.sha256"
rm "$parts/all.tar"; ls -la "$parts"
