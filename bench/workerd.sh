#!/usr/bin/env bash
# The worker itself, without `wrangler dev`'s proxy and inspector: each worker runs in its
# own raw `workerd serve` (the binary wrangler ships) from a capnp config written here,
# with the bundle `wrangler deploy --dry-run` produces, text bindings for vars and
# secrets, and loopback outbound access to the instant fake STS/ECR. wrk drives it; the
# workerd process's CPU (utime + stime from /proc/PID/stat) and RSS are read before and
# after each run. Rounds alternate between the two workers.
#   bash bench/workerd.sh            (DURATION=10 CONNECTIONS=32 ROUNDS=3)
# Not part of the test command. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION="${DURATION:-10}"; CONNECTIONS="${CONNECTIONS:-32}"; ROUNDS="${ROUNDS:-3}"
FAKE_PORT=4699; OURS_PORT=8901; BASE_PORT=8902
WORKERD="$ROOT/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
WORK=target/bench-workerd
export CI=true WRANGLER_SEND_METRICS=false NO_COLOR=1
command -v wrk >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
(cd bench && { [ -d node_modules/aws4fetch ] || npm install --no-audit --no-fund; })
rm -rf "$WORK" && mkdir -p "$WORK/rust" "$WORK/js" "$WORK/floor"
npx wrangler deploy --dry-run --outdir "$WORK/rust" >/dev/null 2>&1
(cd bench/js-aws4fetch && "$ROOT/node_modules/.bin/wrangler" deploy --dry-run --outdir "$ROOT/$WORK/js" >/dev/null 2>&1)
(cd bench/js-trivial && "$ROOT/node_modules/.bin/wrangler" deploy --dry-run --outdir "$ROOT/$WORK/floor" >/dev/null 2>&1)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
node bench/fake-aws.mjs $FAKE_PORT >/dev/null 2>&1 & pids+=($!)

SECRET=$(head -c 32 /dev/urandom | base64)
TOKEN=$(cd bench && SECRET="$SECRET" node mint-token.mjs)

# capnp config for one worker: every module of its bundle, text bindings, loopback egress.
config() { # name dir port cache
  local name=$1 dir=$2 port=$3 cache=$4 modules=""
  for f in "$dir"/*; do
    case "$f" in
      *.wasm) modules+="(name = \"$(basename "$f")\", wasm = embed \"$(basename "$f")\"),";;
      *.js|*.mjs) modules+="(name = \"$(basename "$f")\", esModule = embed \"$(basename "$f")\"),";;
    esac
  done
  # The entry module first.
  local main=index.js; [ -f "$dir/shim.js" ] && main=shim.js
  modules="(name = \"$main\", esModule = embed \"$main\"),${modules//(name = \"$main\", esModule = embed \"$main\"),/}"
  cat > "$dir/config.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .w), (name = "net", network = (allow = ["public", "private", "local"])) ],
  sockets = [ (name = "http", address = "127.0.0.1:$port", http = (), service = "main") ],
);
const w :Workerd.Worker = (
  modules = [ $modules ],
  compatibilityDate = "2026-04-01",
  globalOutbound = "net",
  bindings = [
    (name = "RUN_MODE", text = "development"),
    (name = "RISE_JWT_SECRET", text = "$SECRET"),
    (name = "AWS_ACCESS_KEY_ID", text = "AKIABENCH"),
    (name = "AWS_SECRET_ACCESS_KEY", text = "bench-base-secret"),
    (name = "RISE_REGISTRY__TYPE", text = "ecr"),
    (name = "RISE_REGISTRY__REGION", text = "us-east-1"),
    (name = "RISE_REGISTRY__ACCOUNT_ID", text = "123456789012"),
    (name = "RISE_REGISTRY__REPO_PREFIX", text = "rise/"),
    (name = "RISE_REGISTRY__PUSH_ROLE_ARN", text = "arn:aws:iam::123456789012:role/rise-ecr-push"),
    (name = "RISE_REGISTRY__STS_ENDPOINT", text = "http://127.0.0.1:$FAKE_PORT/sts/"),
    (name = "RISE_REGISTRY__ECR_ENDPOINT", text = "http://127.0.0.1:$FAKE_PORT/ecr/"),
    (name = "RISE_CACHE__ENABLED", text = "$cache"),
    (name = "BENCH_AUDIT_LOG", text = "true"),
  ],
);
CAPNP
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

run() { # label dir port cache → one table row
  local label=$1 dir=$2 port=$3 cache=$4
  config "$label" "$dir" "$port" "$cache"
  local start; start=$(date +%s%N)
  (cd "$dir" && exec "$WORKERD" serve config.capnp >"$ROOT/$WORK/$label.log" 2>&1) & local pid=$!
  pids+=($pid)
  until curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
      "http://127.0.0.1:$port/registry/credentials?project=p0" | grep -q 200; do
    kill -0 $pid 2>/dev/null || { cat "$ROOT/$WORK/$label.log"; exit 1; }; sleep 0.01
  done
  local cold_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  local lua; lua=$(mktemp --suffix=.lua)
  printf 'local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format("GET", "/registry/credentials?project=p" .. (n %% 50), {["Authorization"] = "Bearer %s"})\nend\n' "$TOKEN" > "$lua"
  local pid_workerd; pid_workerd=$(pgrep -P $pid workerd || echo $pid)
  local c0; c0=$(cpu_ticks "$pid_workerd")
  local out; out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$lua" "http://127.0.0.1:$port" 2>&1)
  local c1; c1=$(cpu_ticks "$pid_workerd")
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local non2xx; non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}'); non2xx=${non2xx:-0}
  local us_per_req; us_per_req=$(awk -v t=$((c1 - c0)) -v n="$reqs" 'BEGIN {printf "%.0f", t * 10000 / n}')
  echo "| $label | cache $cache | $rps | $us_per_req | $(( $(rss_kib "$pid_workerd") / 1024 )) | $cold_ms | $non2xx |"
  kill $pid; wait $pid 2>/dev/null || true
}

echo "| worker | mode | req/s | CPU µs/request (workerd) | RSS MiB after | start → first 200 (ms) | non-2xx |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  run floor "$WORK/floor" $BASE_PORT true
  for cache in true false; do
    run rust "$WORK/rust" $OURS_PORT $cache
    run js "$WORK/js" $BASE_PORT $cache
  done
done
