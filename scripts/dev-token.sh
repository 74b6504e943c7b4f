#!/usr/bin/env bash
# Prints a dev token for the local broker: HS256, issuer "rise-dev", audience "rise",
# signed with RISE_JWT_SECRET from .dev.vars, valid for an hour.
#   scripts/dev-token.sh my-app [more projects…]
#   curl -H "Authorization: Bearer $(scripts/dev-token.sh my-app)" \
#        'http://127.0.0.1:8787/registry/credentials?project=my-app'
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .dev.vars ] || { echo "no .dev.vars: run scripts/dev.sh first" >&2; exit 1; }
bash scripts/setup.sh tokens >&2
secret=$(sed -n 's/^RISE_JWT_SECRET=//p' .dev.vars)
SECRET="$secret" SUB="${DEV_SUB:-dev@localhost}" .venv/bin/python - "$@" <<'PY'
import base64, os, sys, time
import jwt
key = base64.b64decode(os.environ["SECRET"])
now = int(time.time())
claims = {"iss": "rise-dev", "aud": "rise", "sub": os.environ["SUB"], "iat": now,
          "exp": now + 3600, "projects": sys.argv[1:]}
print(jwt.encode(claims, key, algorithm="HS256"))
PY
