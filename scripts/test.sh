#!/usr/bin/env bash
# Runs every test: formatting and lints, native `cargo test`, wasm-bindgen tests in Node
# and in headless Chromium, the IaC checks, the production dry-run deploy, the end-to-end
# tests against `wrangler dev` (with moto, docker-registry + skopeo, schemathesis), and a
# short fuzz run of every cargo-fuzz target.
# Installs what is missing first (scripts/setup.sh test); a second run skips that.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "setup"
bash scripts/setup.sh test

step "cargo fmt --check / clippy"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings
cargo clippy -p docker-credential-rise --all-targets -- -D warnings

step "mint a fresh JWT corpus with PyJWT"
mkdir -p target
.venv/bin/python tests/helpers/mint_tokens.py target/jwt-corpus.json
export JWT_CORPUS="$PWD/target/jwt-corpus.json"

step "native tests"
cargo test

step "docker-credential-rise: unit and binary tests, release build for the end-to-end tests"
cargo test -p docker-credential-rise
cargo build --release -p docker-credential-rise

# Debug info off: smaller test modules for the JS engines, faster links.
export CARGO_PROFILE_DEV_DEBUG=0
step "wasm32 tests in Node"
cargo test --target wasm32-unknown-unknown --test wasm_node

step "wasm32 tests in headless Chromium"
CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" \
  cargo test --target wasm32-unknown-unknown --no-default-features --test wasm_browser

step "infrastructure as code: cfn-lint on infra/aws.yaml, parliament on every IAM policy document, the Terraform (python-hcl2 + checkov)"
.venv/bin/cfn-lint infra/aws.yaml
.venv/bin/python tests/helpers/check_policies.py
.venv/bin/python tests/helpers/check_terraform.py

step "production deploy, dry run: bundle, RUN_MODE binding, Free plan size"
bash scripts/check-deploy.sh

step "end-to-end: release build under wrangler dev"
.venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider

step "fuzz smoke: every cargo-fuzz target for ${FUZZ_SECONDS:-10} s (scripts/fuzz.sh)"
# A copy of the seed corpora, so a CI run never rewrites the committed ones.
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" FUZZ_CORPUS_COPY=1 bash scripts/fuzz.sh

step "the test command left every tracked file as it was"
# (A stale lock file, a formatter, a test writing into the tree would show here.)
git diff --exit-code --stat
