#!/bin/sh
# Builds the btvirt LD_PRELOAD shim (btvirt-preload.c) with the system C compiler.
# Usage: build.sh [OUTPUT_DIR]   (default: $NEARMESH_BLE_EMULATOR_BUILD or /tmp/nearmesh-ble-emulator)
# Prints the path of the library. The file name carries a hash of the source, so a changed source
# (another branch, another checkout) gets its own build and an unchanged one is not rebuilt.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out_dir=${1:-${NEARMESH_BLE_EMULATOR_BUILD:-/tmp/nearmesh-ble-emulator}}
src="$here/btvirt-preload.c"
hash=$(sha256sum "$src" | cut -c1-16)
lib="$out_dir/btvirt-preload-$hash.so"
mkdir -p "$out_dir"
if [ ! -f "$lib" ]; then
  tmp="$lib.$$.tmp"
  "${CC:-cc}" -O2 -Wall -Wextra -Werror -fPIC -shared -o "$tmp" "$src" -ldl
  mv -f "$tmp" "$lib"  # atomic: parallel builds of the same source cannot see a half-written file
fi
echo "$lib"
