#!/usr/bin/env bash
# cargo-fuzz over the parsers hostile input reaches: the token path, JWKS documents, STS
# XML, ECR JSON, the vars overlay, the query string, and the Google and Azure token answers. Seed corpora live in
# fuzz/corpus/<target> (committed); new inputs found by a run stay there too.
#   FUZZ_SECONDS=60 scripts/fuzz.sh            # every target, 60 s each
#   FUZZ_SECONDS=10 scripts/fuzz.sh query      # one target
# Installs the pinned nightly (scripts/nightly.sh) and cargo-fuzz when missing. Prints
# executions per target; a crash fails the script and leaves its input in fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
seconds="${FUZZ_SECONDS:-60}"
# shellcheck source=scripts/nightly.sh
source scripts/nightly.sh
rise_have_nightly || { echo "fuzz: $RISE_NIGHTLY is not installed" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(token jwks sts_xml ecr_json vars_overlay query gar_json acr_json artifactory_json gitlab_json harbor_json)
cargo "+$RISE_NIGHTLY" fuzz build >/dev/null
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" target
  corpus="fuzz/corpus/$target"
  if [ -n "${FUZZ_CORPUS_COPY:-}" ]; then  # smoke runs leave the committed corpus alone
    rm -rf "target/fuzz-corpus/$target" && mkdir -p target/fuzz-corpus
    cp -r "$corpus" "target/fuzz-corpus/$target"
    corpus="target/fuzz-corpus/$target"
  fi
  log="target/fuzz-$target.log"
  # -rss_limit_mb: well under an isolate's 128 MB times a margin for ASan.
  if ! cargo "+$RISE_NIGHTLY" fuzz run "$target" "$corpus" -- \
      -max_total_time="$seconds" -rss_limit_mb=1024 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "[fuzz] $target FAILED (input in fuzz/artifacts/$target)" >&2
    exit 1
  fi
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "[fuzz] $target: ${execs:-?} executions in ${seconds}s, no crash"
done
