#!/usr/bin/env bash
# Release build of the worker into build/ (wrangler's [build] command).
#
# - worker-build would download wasm-bindgen, wasm-opt and esbuild; point it at local copies.
# - A pinned nightly builds std with `panic=immediate-abort`: a panic traps at once (the
#   shim's panic recovery resets the instance, as for any trap) instead of formatting a
#   message, which takes the panic and most formatting machinery out of the Wasm. Only
#   this release build uses it; tests and clippy run on stable. Its own target dir keeps
#   the stable builds' caches intact.
# - wasm-opt runs here, not in worker-build (which forces `--debuginfo` and so ships the
#   name section): `--strip-debug` only — measured, binaryen's -O/-Os/-Oz passes make
#   this module smaller raw but *larger* gzipped (bench/README.md, size levers).
#
# Skips the build when build/ is newer than every input, so repeated `wrangler dev`
# starts (the end-to-end tests start several) do not rerun wasm-bindgen and wasm-opt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/index_bg.wasm
if [ -f "$out" ] && [ -f build/worker/shim.mjs ] && [ -z "${FORCE_BUILD:-}" ] \
  && [ -z "$(find src config Cargo.toml Cargo.lock build.rs .cargo scripts/build.sh -newer "$out" -print -quit)" ]; then
  echo "build/ is up to date"
  exit 0
fi
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
# shellcheck source=scripts/nightly.sh
source scripts/nightly.sh
if [ "${RISE_WASM_TOOLCHAIN:-nightly}" != stable ] && ! rise_have_nightly; then
  echo "warning: $RISE_NIGHTLY unavailable: building on stable (panic messages kept, ~10 % larger Wasm)" >&2
  RISE_WASM_TOOLCHAIN=stable
fi
if [ "${RISE_WASM_TOOLCHAIN:-nightly}" = stable ]; then
  # Also the size-lever table's "panics" lever switched off (bench/size-levers.sh).
  CARGO_TARGET_DIR="$PWD/target/worker-stable" worker-build --release
else
  RUSTUP_TOOLCHAIN="$RISE_NIGHTLY" \
    CARGO_TARGET_DIR="$PWD/target/worker" \
    CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort" \
    worker-build --release
fi
# RISE_WASM_KEEP_NAMES=1 keeps function names for profiling (PROFILE=1 bench/workerd.sh).
strip=--strip-debug; [ -n "${RISE_WASM_KEEP_NAMES:-}" ] && strip=--debuginfo
"$WASM_OPT_BIN" "$out" -o "$out.tmp" $strip ${WASM_OPT_ARGS:-} \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling
mv "$out.tmp" "$out"
