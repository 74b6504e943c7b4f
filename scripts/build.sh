#!/usr/bin/env bash
# Release build of the worker into build/ (wrangler's [build] command).
# worker-build would download wasm-bindgen, wasm-opt and esbuild; point it at local copies.
# Skips the build when build/ is newer than every input, so repeated `wrangler dev`
# starts (the end-to-end tests start several) do not rerun wasm-bindgen and wasm-opt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/index_bg.wasm
if [ -f "$out" ] && [ -f build/worker/shim.mjs ] && [ -z "${FORCE_BUILD:-}" ] \
  && [ -z "$(find src config Cargo.toml Cargo.lock build.rs .cargo -newer "$out" -print -quit)" ]; then
  echo "build/ is up to date"
  exit 0
fi
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
worker-build --release
