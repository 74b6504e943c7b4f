#!/usr/bin/env bash
# Rewrites tests/fixtures/botocore/*.json with botocore's current answers for the STS/ECR
# requests the broker builds (needs the .venv from `scripts/setup.sh test`).
set -euo pipefail
cd "$(dirname "$0")/.."
BOTOCORE_GOLDEN=write cargo test --test it golden_files_agree_with_live_botocore -- --nocapture
git status --short tests/fixtures/botocore
