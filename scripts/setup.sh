#!/usr/bin/env bash
# Installs what the broker needs and skips what is already there at the right version.
#   scripts/setup.sh run    — enough to build and run the worker (wrangler dev)
#   scripts/setup.sh test   — plus Chromium/ChromeDriver and the Python test helpers
# Safe to run again: a second run only checks versions.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

WORKER_BUILD_VERSION=0.8.7
# wasm-bindgen-cli must match the crate version in Cargo.lock exactly.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3}' Cargo.lock)

apt_missing=()
need_apt() { dpkg -s "$1" >/dev/null 2>&1 || apt_missing+=("$1"); }
# worker-build links OpenSSL (native-tls) when built from source.
command -v worker-build >/dev/null 2>&1 || { need_apt pkg-config; need_apt libssl-dev; }
if [ "$mode" = test ]; then
  need_apt chromium
  need_apt chromium-driver
  # A real registry (distribution 2.8, token auth) and client for the registry_token tests.
  need_apt docker-registry
  need_apt skopeo
  need_apt umoci
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  log "apt: installing ${apt_missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_missing[@]}"
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup: adding wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The pinned nightly (minimal profile + rust-src) the release Wasm is built with
# (scripts/build.sh: panic=immediate-abort) and the fuzz smoke runs on.
# shellcheck source=scripts/nightly.sh
source scripts/nightly.sh
if [ "$mode" = test ] && ! rise_have_nightly; then
  echo "setup: $RISE_NIGHTLY is required for the test command (release build, fuzzing)" >&2
  exit 1
fi

if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$WORKER_BUILD_VERSION" ]; then
  log "cargo: installing worker-build $WORKER_BUILD_VERSION (several minutes on 2 cores)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  log "cargo: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (several minutes on 2 cores)"
  # Its published lock file pins a crate version the registry no longer serves;
  # fall back to a fresh resolution when --locked fails to resolve.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --locked \
    || cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm: installing wrangler, esbuild, binaryen from package-lock.json"
  npm ci --no-audit --no-fund
fi

if [ "$mode" = test ] || [ "$mode" = tokens ]; then
  if [ ! -x .venv/bin/python ]; then
    log "python: creating .venv"
    python3 -m venv .venv
  fi
  if .venv/bin/python -m pip install --disable-pip-version-check --dry-run -r tests/requirements.txt 2>/dev/null | grep -q "Would install"; then
    log "pip: installing tests/requirements.txt into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
  fi
fi
if [ "$mode" = test ]; then
  # checkov (tests/helpers/check_terraform.py) in its own venv: its pins conflict with
  # tests/requirements.txt (packaging<24, boto3 1.35).
  [ -x .venv-checkov/bin/python ] || python3 -m venv .venv-checkov
  if .venv-checkov/bin/python -m pip install --disable-pip-version-check --dry-run -r tests/requirements-checkov.txt 2>/dev/null | grep -q "Would install"; then
    log "pip: installing checkov into .venv-checkov (~1 min)"
    .venv-checkov/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements-checkov.txt
  fi
fi
log "ready ($mode)"
