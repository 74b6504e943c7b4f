#!/usr/bin/env bash
# Benchmark: the Rust/Wasm broker vs. a hand-written JS worker (aws4fetch + jose), both
# under `wrangler dev` (workerd) on loopback against an instant fake STS/ECR, driven by
# wrk; plus bundle sizes (ours, the JS baseline, an AWS SDK v3 worker) and upstream call
# counts. Not part of the test command. Writes bench/results.md.
#   bash bench/run.sh            (DURATION=10 CONNECTIONS=32 ROUNDS=2 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION="${DURATION:-10}"; CONNECTIONS="${CONNECTIONS:-32}"; ROUNDS="${ROUNDS:-2}"
FAKE_PORT=4599; OURS_PORT=8801; BASE_PORT=8802
OUT=bench/results.md
export CI=true WRANGLER_SEND_METRICS=false NO_COLOR=1

bash scripts/setup.sh run >/dev/null
command -v wrk >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
(cd bench && { [ -d node_modules/aws4fetch ] || npm install --no-audit --no-fund; })
bash scripts/build.sh >/dev/null

size() { printf '%s B raw / %s B gzip -9' "$(cat "$@" | wc -c)" "$(cat "$@" | gzip -9 | wc -c)"; }
bundle() { # wrangler's own bundle of a JS worker (esbuild), as it would be uploaded
  local dir=$1 out; out=$(mktemp -d)
  (cd "$dir" && "$ROOT/node_modules/.bin/wrangler" deploy --dry-run --outdir "$out" >/dev/null 2>&1)
  size "$out"/*.js
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done; }
trap cleanup EXIT

setsid node bench/fake-aws.mjs $FAKE_PORT & pids+=($!)
SECRET=$(head -c 32 /dev/urandom | base64)
TOKEN=$(cd bench && SECRET="$SECRET" node mint-token.mjs)
env_file=$(mktemp); printf 'RISE_JWT_SECRET=%s\nAWS_ACCESS_KEY_ID=AKIABENCH\nAWS_SECRET_ACCESS_KEY=bench-base-secret\n' "$SECRET" > "$env_file"
vars=(--var RUN_MODE:development --var RISE_REGISTRY__TYPE:ecr --var RISE_REGISTRY__REGION:us-east-1 --var RISE_REGISTRY__ACCOUNT_ID:123456789012
      --var RISE_REGISTRY__REPO_PREFIX:rise/ --var RISE_REGISTRY__PUSH_ROLE_ARN:arn:aws:iam::123456789012:role/rise-ecr-push
      --var RISE_REGISTRY__STS_ENDPOINT:http://127.0.0.1:$FAKE_PORT/sts/ --var RISE_REGISTRY__ECR_ENDPOINT:http://127.0.0.1:$FAKE_PORT/ecr/)

start() { # dir port cache
  local dir=$1 port=$2 cache=$3
  # setsid makes the worker its own process group, so stop_workers can end all of it.
  setsid bash -c 'cd "$1" && shift && exec "$@"' _ "$dir" "$ROOT/node_modules/.bin/wrangler" dev --ip 127.0.0.1 \
     --port "$port" --inspector-port "$((port + 1000))" --env-file "$env_file" --show-interactive-dev-session=false "${vars[@]}" \
     --var "RISE_CACHE__ENABLED:$cache" > "$ROOT/target/bench-$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 240); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.5; done
  echo "worker on $port did not start" >&2; exit 1
}
stop_workers() {
  for p in "${pids[@]:1}"; do kill -- -"$p" 2>/dev/null || true; done
  pids=("${pids[0]}")
  for port in $OURS_PORT $BASE_PORT; do
    for _ in $(seq 1 40); do curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1 || break; sleep 0.25; done
  done
}

load() { # port → "rps p50 p99"
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$1/registry/credentials?project=p0" | awk '
    /Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
    END {print rps, p50, p99, (bad==""?0:bad)}'
}

mkdir -p target
{
echo "# Benchmark results"
echo
echo "Command: \`bash bench/run.sh\` (DURATION=$DURATION s, CONNECTIONS=$CONNECTIONS, ROUNDS=$ROUNDS), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores."
echo
echo "## Bundle sizes"
echo
echo "| worker | size |"
echo "|---|---|"
echo "| Rust/Wasm broker (build/index_bg.wasm + build/index.js) | $(size build/index_bg.wasm build/index.js) |"
echo "| — of which index_bg.wasm | $(size build/index_bg.wasm) |"
echo "| JS, aws4fetch + jose (wrangler bundle) | $(bundle bench/js-aws4fetch) |"
echo "| JS, AWS SDK v3 client-sts + client-ecr + jose (wrangler bundle) | $(bundle bench/js-sdk) |"
echo
} > "$OUT"

for cache in true false; do
  start . $OURS_PORT $cache
  start bench/js-aws4fetch $BASE_PORT $cache
  load $OURS_PORT >/dev/null; load $BASE_PORT >/dev/null   # warm up both isolates
  {
  echo "## Load, cache $( [ $cache = true ] && echo 'hit' || echo 'disabled (every request: verify + AssumeRole + GetAuthorizationToken)')"
  echo
  echo "| round | worker | req/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|"
  } >> "$OUT"
  ratios=()
  for round in $(seq 1 "$ROUNDS"); do
    read -r o_rps o_p50 o_p99 o_bad < <(load $OURS_PORT)
    read -r b_rps b_p50 b_p99 b_bad < <(load $BASE_PORT)
    echo "| $round | rust/wasm | $o_rps | $o_p50 | $o_p99 | $o_bad |" >> "$OUT"
    echo "| $round | js aws4fetch+jose | $b_rps | $b_p50 | $b_p99 | $b_bad |" >> "$OUT"
    ratios+=("$(awk -v a="$o_rps" -v b="$b_rps" 'BEGIN{printf "%.2f", a/b}')")
  done
  printf '\nThroughput ratio rust/js per round: %s\n\n' "${ratios[*]}" >> "$OUT"
  stop_workers
done

start . $OURS_PORT true
curl -sf -X POST "http://127.0.0.1:$FAKE_PORT/reset" >/dev/null
first=$(node bench/burst.mjs "http://127.0.0.1:$OURS_PORT" "$TOKEN" 100 1 100)
c1=$(curl -sf "http://127.0.0.1:$FAKE_PORT/counts")
stop_workers; start . $OURS_PORT true
curl -sf -X POST "http://127.0.0.1:$FAKE_PORT/reset" >/dev/null
many=$(node bench/burst.mjs "http://127.0.0.1:$OURS_PORT" "$TOKEN" 10000 50 50)
c2=$(curl -sf "http://127.0.0.1:$FAKE_PORT/counts")
{
echo "## Upstream calls (rust/wasm, cache on, fresh isolate each)"
echo
echo "- 100 concurrent first requests, one project: responses $first; upstream $(echo "$c1" | node -e 'const c=JSON.parse(require("fs").readFileSync(0));console.log(`AssumeRole ${c.sts}, GetAuthorizationToken ${c.ecr}`)')"
echo "- 10,000 requests over 50 projects (50 concurrent): responses $many; upstream $(echo "$c2" | node -e 'const c=JSON.parse(require("fs").readFileSync(0));const v=Object.values(c.per_project);console.log(`AssumeRole ${c.sts}, GetAuthorizationToken ${c.ecr}, projects ${v.length}, max AssumeRole per project ${Math.max(...v)}`)')"
} >> "$OUT"
cat "$OUT"
