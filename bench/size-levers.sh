#!/usr/bin/env bash
# The build-level size levers on the current source, each alone and in combination:
# panics (stable vs pinned nightly with panic=immediate-abort), the name section (kept, as
# worker-build's own wasm-opt run keeps it, vs stripped) and binaryen's -Oz. Prints the
# shipped index_bg.wasm raw and gzip -9 for every combination, then restores the default
# build. Code-level levers (WebCrypto, the url crate, serde_path_to_error) are source
# changes: their measured deltas are in bench/README.md.
#   bash bench/size-levers.sh        (~5 min after the first build of each toolchain)
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'FORCE_BUILD=1 bash scripts/build.sh >/dev/null 2>&1' EXIT
echo "| panics | name section | wasm-opt | raw bytes | gzip -9 bytes |"
echo "|---|---|---|---|---|"
for toolchain in stable nightly; do
  for names in kept stripped; do
    for opt in none -Oz; do
      keep=""; [ $names = kept ] && keep=1
      args=""; [ $opt = -Oz ] && args=-Oz
      RISE_WASM_TOOLCHAIN=$toolchain RISE_WASM_KEEP_NAMES=$keep WASM_OPT_ARGS=$args \
        FORCE_BUILD=1 bash scripts/build.sh >/dev/null 2>&1
      panics="stable (panic messages formatted)"; [ $toolchain = nightly ] && panics="immediate-abort (nightly)"
      echo "| $panics | $names | $opt | $(stat -c %s build/index_bg.wasm) | $(gzip -9c build/index_bg.wasm | wc -c) |"
    done
  done
done
