#!/usr/bin/env bash
# The production deploy, short of uploading: `wrangler deploy --dry-run --env production`
# builds the bundle as `wrangler deploy --env production` would, then checks that
#  - the worker module and the Wasm are there,
#  - the production environment binds RUN_MODE=production (the broker refuses to run
#    without a mode, and production.toml is chosen by it),
#  - the upload (all modules, gzip) stays under the Workers Free plan's 3 MiB limit.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/deploy-dry-run
rm -rf "$out" && mkdir -p "$out"
log=target/deploy-dry-run.log
CI=true WRANGLER_SEND_METRICS=false npx wrangler deploy --dry-run --env production --outdir "$out" >"$log" 2>&1 \
  || { cat "$log"; echo "[deploy] dry run failed" >&2; exit 1; }
wasm=$(find "$out" -name '*.wasm' | head -1)
[ -n "$wasm" ] || { cat "$log"; echo "[deploy] no .wasm in the bundle" >&2; exit 1; }
[ -n "$(find "$out" -maxdepth 1 \( -name '*.js' -o -name '*.mjs' \) -print -quit)" ] \
  || { echo "[deploy] no worker module in the bundle" >&2; exit 1; }
grep -Eq 'RUN_MODE.*"?production"?' "$log" \
  || { cat "$log"; echo "[deploy] the production environment does not bind RUN_MODE=production" >&2; exit 1; }
total=$(find "$out" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.mjs' \) -exec cat {} + | gzip -9 | wc -c)
limit=$((3 * 1024 * 1024))
echo "[deploy] bundle: $(wc -c <"$wasm") B wasm; all modules $total B gzip (Free plan limit $limit B)"
[ "$total" -lt "$limit" ] || { echo "[deploy] bundle over the Free plan limit" >&2; exit 1; }
