# The pinned nightly for the release Wasm (scripts/build.sh) and fuzzing (scripts/fuzz.sh).
# Sourced; installs it (minimal profile + rust-src, ~10 s here) when missing. Bump the date
# deliberately: the release build depends on `-Cpanic=immediate-abort`, an unstable flag.
RISE_NIGHTLY=nightly-2026-10-30
if ! rustup run "$RISE_NIGHTLY" rustc --version >/dev/null 2>&1 \
  || [ ! -d "$(rustup run "$RISE_NIGHTLY" rustc --print sysroot)/lib/rustlib/src/rust" ]; then
  rustup toolchain install "$RISE_NIGHTLY" --profile minimal --component rust-src >&2
fi
export RISE_NIGHTLY
