# The pinned nightly for the release Wasm (scripts/build.sh) and fuzzing (scripts/fuzz.sh).
# Sourced: installs it (minimal profile + rust-src, ~10 s here) when missing and defines
# `rise_have_nightly`. An install that fails (no route to static.rust-lang.org) is not
# fatal here: build.sh then falls back to stable with a warning (a larger Wasm, same
# behaviour), and the callers that cannot do without it (fuzzing, the test setup) stop.
# Bump the date deliberately: the release build uses `-Cpanic=immediate-abort`, an
# unstable flag.
RISE_NIGHTLY=nightly-2026-10-30
export RISE_NIGHTLY
rise_have_nightly() {
  rustup run "$RISE_NIGHTLY" rustc --version >/dev/null 2>&1 \
    && [ -d "$(rustup run "$RISE_NIGHTLY" rustc --print sysroot)/lib/rustlib/src/rust" ]
}
rise_have_nightly \
  || rustup toolchain install "$RISE_NIGHTLY" --profile minimal --component rust-src >&2 \
  || echo "warning: could not install $RISE_NIGHTLY" >&2
