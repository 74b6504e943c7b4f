#!/usr/bin/env bash
# Local ECR mode: the moto AWS emulator on loopback with signature checking on (IAM user,
# access key, push role and repository rise/my-app created first), and `wrangler dev`
# running the ECR provider against it. Then:
#   curl -H "Authorization: Bearer $(scripts/dev-token.sh my-app)" \
#        'http://127.0.0.1:8787/registry/credentials?project=my-app'
#   PORT=8787 MOTO_PORT=4566 scripts/dev-ecr.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh tokens
moto_port="${MOTO_PORT:-4566}"
[ -f .dev.vars ] || echo "RISE_JWT_SECRET=$(head -c 32 /dev/urandom | base64)" > .dev.vars
mkdir -p target
env_file=target/dev-ecr.env
.venv/bin/python tests/helpers/moto_ecr.py --port "$moto_port" --env-file "$env_file.aws" > target/moto.json 2> target/moto.log &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do [ -s target/moto.json ] && break; sleep 0.5; done
[ -s target/moto.json ] || { echo "moto did not start; see target/moto.log" >&2; exit 1; }
echo "[dev-ecr] moto on http://127.0.0.1:$moto_port (signatures enforced)"
# Secrets (from .dev.vars and the moto user's key) go to an env file, not the command line.
cat .dev.vars "$env_file.aws" > "$env_file"
export WRANGLER_SEND_METRICS=false
npx wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --env-file "$env_file" \
  --var RUN_MODE:development \
  --var RISE_REGISTRY__TYPE:ecr --var RISE_REGISTRY__REGION:us-east-1 \
  --var RISE_REGISTRY__ACCOUNT_ID:123456789012 --var RISE_REGISTRY__REPO_PREFIX:rise/ \
  --var RISE_REGISTRY__PUSH_ROLE_ARN:arn:aws:iam::123456789012:role/rise-ecr-push \
  --var "RISE_REGISTRY__STS_ENDPOINT:http://127.0.0.1:$moto_port/" \
  --var "RISE_REGISTRY__ECR_ENDPOINT:http://127.0.0.1:$moto_port/"
