#!/usr/bin/env bash
# Runs the broker locally under `wrangler dev` (workerd) on the embedded default config:
# docker provider at localhost:5000, the "rise-dev" HS256 issuer. Installs what is missing.
#   PORT=8787 scripts/dev.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
if [ ! -f .dev.vars ]; then
  echo "RISE_JWT_SECRET=$(head -c 32 /dev/urandom | base64)" > .dev.vars
  echo "[dev] wrote .dev.vars with a fresh RISE_JWT_SECRET (gitignored)"
fi
echo "[dev] get a token: scripts/dev-token.sh my-app"
export WRANGLER_SEND_METRICS=false
exec npx wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --var RUN_MODE:development
