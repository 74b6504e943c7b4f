#!/usr/bin/env bash
# Log a container tool in with what the broker issues for one project.
#
#   RISE_BROKER_URL=https://broker.example.com RISE_TOKEN=<bearer JWT> \
#     scripts/registry-login.sh my-app [push|pull]
#
# RISE_LOGIN_TOOL   docker | podman | skopeo | buildah (default: the first one installed)
# RISE_LOGIN_ARGS   extra arguments for `<tool> login` (e.g. --authfile F, --tls-verify=false)
# RISE_MASK=1       print `::add-mask::<password>` first (GitHub Actions hides it in logs)
#
# The token goes to curl through its config on stdin and the password to the tool on
# stdin: neither is ever on a command line (visible in `ps`) or echoed. For
# `login_credentials` it logs in and says for how long; for `client_auth` (docker
# provider) there is nothing to log in to; any error prints the broker's message and
# exits 1. Prints `registry=`, `image=`, `expires_in=` lines (and appends them to
# $GITHUB_OUTPUT when set).
set -euo pipefail
set +x
project="${1:?usage: registry-login.sh PROJECT [push|pull]}"
access="${2:-push}"
: "${RISE_BROKER_URL:?set RISE_BROKER_URL to the broker URL}"
: "${RISE_TOKEN:?set RISE_TOKEN to a bearer token the broker accepts}"
tool="${RISE_LOGIN_TOOL:-}"
if [ -z "$tool" ]; then
  for candidate in docker podman skopeo buildah; do
    command -v "$candidate" >/dev/null 2>&1 && { tool=$candidate; break; }
  done
fi
[ -n "$tool" ] || { echo "registry-login: none of docker, podman, skopeo, buildah is installed" >&2; exit 1; }

body=$(mktemp)
trap 'rm -f "$body"' EXIT
status=$(printf 'header = "Authorization: Bearer %s"\n' "$RISE_TOKEN" \
  | curl -sS -K - -o "$body" -w '%{http_code}' \
      "${RISE_BROKER_URL%/}/registry/credentials?project=${project}&access=${access}") \
  || { echo "registry-login: could not reach ${RISE_BROKER_URL}" >&2; exit 1; }

# A field of the answer by dotted path ("credentials.password"); "" when absent.
# (python3 is on every CI runner and Debian box; jq is not.)
field() {
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    d = d.get(key) if isinstance(d, dict) else None
print("" if d is None else d)' "$body" "$1"
}
if [ "$status" != 200 ]; then
  echo "registry-login: the broker refused (HTTP $status, $(field code)): $(field error)" >&2
  exit 1
fi
method=$(field auth_method)
registry=$(field credentials.registry_url)
image=$(field image)
if [ "$method" = client_auth ]; then
  echo "registry-login: ${registry} uses your own registry login (client_auth); nothing to do"
else
  password=$(field credentials.password)
  username=$(field credentials.username)
  expires_in=$(field credentials.expires_in)
  [ "${RISE_MASK:-}" = 1 ] && echo "::add-mask::${password}"
  # shellcheck disable=SC2086  # RISE_LOGIN_ARGS is a list of arguments on purpose
  printf '%s' "$password" | "$tool" login ${RISE_LOGIN_ARGS:-} --username "$username" --password-stdin "$registry" >/dev/null \
    || { echo "registry-login: $tool login to $registry failed" >&2; exit 1; }
  unset password
  until=$(date -u -d "+${expires_in:-0} seconds" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "in ${expires_in}s")
  echo "registry-login: $tool logged in to ${registry} as ${username}; valid ${expires_in} s (until ${until})"
fi
{
  echo "registry=${registry}"
  echo "image=${image}"
  echo "expires_in=${expires_in:-}"
} | tee -a "${GITHUB_OUTPUT:-/dev/null}"
