"""The broker as a Docker registry token server, end to end: Debian's `docker-registry`
(distribution 2.8) with `auth.token` pointing its realm at the broker under `wrangler
dev` and its `rootcertbundle` at the certificate of the broker's signing key; an OCI
image built offline with `umoci`; `skopeo` logging in with the credentials
`/registry/credentials` returned and pushing/pulling."""
import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest

from conftest import ROOT, Worker, free_port, remember_secret

KEY = ROOT / "tests" / "fixtures" / "oidc" / "es256_a.pem"
SERVICE = "registry.test"
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("docker-registry", "skopeo", "umoci")),
    reason="docker-registry, skopeo and umoci come from Debian (scripts/setup.sh test)")


def run(*cmd, stdin=None, check=True):
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd}: {result.stderr[-2000:]}")
    return result


@pytest.fixture(scope="module")
def world(secret, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("registry")
    cert = tmp / "broker.crt"
    run("openssl", "req", "-x509", "-key", str(KEY), "-subj", "/CN=rise-broker-test", "-days", "2",
        "-out", str(cert))
    broker_port, registry_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{broker_port}"
    (tmp / "config.yml").write_text(json.dumps({
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(tmp / "data")}},
        "http": {"addr": f"127.0.0.1:{registry_port}", "secret": os.urandom(16).hex()},
        "auth": {"token": {"realm": f"{issuer}/registry/token", "service": SERVICE,
                           "issuer": issuer, "rootcertbundle": str(cert)}},
    }))
    registry_log = open(ROOT / "target" / "e2e-docker-registry.log", "w")
    registry = subprocess.Popen(["docker-registry", "serve", str(tmp / "config.yml")],
                                stdout=registry_log, stderr=subprocess.STDOUT, start_new_session=True)
    worker = Worker({
        "RISE_REGISTRY__TYPE": "registry_token",
        "RISE_REGISTRY__REGISTRY_URL": f"127.0.0.1:{registry_port}",
        "RISE_REGISTRY__NAMESPACE": "rise-apps",
        "RISE_REGISTRY__SERVICE": SERVICE,
        "RISE_REGISTRY__CERTIFICATE_CHAIN": "RISE_REGISTRY_CERT",
        "RISE_OIDC__ISSUER": issuer,
        "RISE_OIDC__SIGNING_KEYS": '["OIDC_KEY_REGISTRY"]',
    }, "registry-token", port=broker_port, secrets={
        "RISE_JWT_SECRET": base64.b64encode(secret).decode(),
        "OIDC_KEY_REGISTRY": KEY.read_text(),
        "RISE_REGISTRY_CERT": cert.read_text(),
    })
    for _ in range(100):  # the registry answers /v2/ with 401 once it is up
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{registry_port}/v2/", timeout=2)
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.1)
    image = tmp / "oci"
    run("umoci", "init", "--layout", str(image))
    run("umoci", "new", "--image", f"{image}:v1")
    run("umoci", "unpack", "--rootless", "--image", f"{image}:v1", str(tmp / "bundle"))
    (tmp / "bundle" / "rootfs" / "hello.txt").write_text(f"hello from {os.urandom(8).hex()}\n")
    run("umoci", "repack", "--image", f"{image}:v1", str(tmp / "bundle"))
    yield {"worker": worker, "registry": f"127.0.0.1:{registry_port}", "image": image, "tmp": tmp,
           "issuer": issuer}
    worker.stop()
    os.killpg(registry.pid, 9)
    registry.wait()
    registry_log.close()


def dev_token(secret, projects=("my-app",)):
    now = int(time.time())
    return jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": "e2e@example.com", "iat": now,
                       "exp": now + 600, "projects": list(projects)}, secret, algorithm="HS256")


def credentials(world, secret, access="push"):
    status, _, body = world["worker"].get(f"/registry/credentials?project=my-app&access={access}",
                                          dev_token(secret))
    assert status == 200, body
    data = json.loads(body)
    assert data["auth_method"] == "login_credentials"
    assert data["repository"] == "rise-apps/my-app"
    assert data["image"] == f"{world['registry']}/rise-apps/my-app"
    assert 3500 <= data["credentials"]["expires_in"] <= 3600
    remember_secret(data["credentials"]["password"])  # for the final scan of worker output
    return data["credentials"]


def login(world, creds, name):
    authfile = world["tmp"] / f"auth-{name}.json"
    run("skopeo", "login", "--tls-verify=false", "--authfile", str(authfile), "-u", creds["username"],
        "--password-stdin", world["registry"], stdin=creds["password"])
    return authfile


def copy(authfile, src, dest, check=True):
    return run("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
               "--authfile", str(authfile), src, dest, check=check)


def test_push_own_repository_and_pull_back_byte_identical(world, secret):
    authfile = login(world, credentials(world, secret), "push")
    target = f"docker://{world['registry']}/rise-apps/my-app:v1"
    copy(authfile, f"oci:{world['image']}:v1", target)
    pushed = run("skopeo", "inspect", "--raw", f"oci:{world['image']}:v1").stdout
    remote = run("skopeo", "inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile), target).stdout
    assert remote == pushed
    copy(authfile, target, f"oci:{world['tmp']}/pulled:v1")
    assert run("skopeo", "inspect", "--raw", f"oci:{world['tmp']}/pulled:v1").stdout == pushed
    logs = world["worker"].wait_for_log('"event":"registry_token"')
    assert f'"scopes":["repository:rise-apps/my-app:pull,push"]' in logs


def test_other_projects_repository_is_refused_by_the_registry(world, secret):
    authfile = login(world, credentials(world, secret), "other")
    for repo in ("rise-apps/other", "rise-apps/my-app2", "rise-apps/my-app/nested", "library/alpine"):
        result = copy(authfile, f"oci:{world['image']}:v1", f"docker://{world['registry']}/{repo}:v1",
                      check=False)
        assert result.returncode != 0, repo
        assert "unauthorized" in result.stderr.lower() or "denied" in result.stderr.lower(), result.stderr


def test_pull_only_credentials_pull_but_cannot_push(world, secret):
    push = login(world, credentials(world, secret), "seed")
    copy(push, f"oci:{world['image']}:v1", f"docker://{world['registry']}/rise-apps/my-app:v2")
    pull = login(world, credentials(world, secret, access="pull"), "pull")
    copy(pull, f"docker://{world['registry']}/rise-apps/my-app:v2", f"oci:{world['tmp']}/pull-only:v2")
    result = copy(pull, f"oci:{world['image']}:v1", f"docker://{world['registry']}/rise-apps/my-app:v3",
                  check=False)
    assert result.returncode != 0
    assert "unauthorized" in result.stderr.lower() or "denied" in result.stderr.lower(), result.stderr


def token_request(world, username, password, query=f"service={SERVICE}&scope=repository:rise-apps/my-app:pull"):
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    return world["worker"].request(f"/registry/token?{query}", headers={"Authorization": f"Basic {basic}"})


def test_expired_and_tampered_login_secrets_get_401(world, secret):
    creds = credentials(world, secret)
    status, _, body = token_request(world, creds["username"], creds["password"])
    assert status == 200, body
    token = json.loads(body)["token"]
    assert json.loads(body)["access_token"] == token
    # Tampered: one character of the signature changed.
    head, payload, sig = creds["password"].split(".")
    tampered = f"{head}.{payload}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"
    for username, password, code in [
        (creds["username"], tampered, "invalid_token"),
        ("someone-else", creds["password"], "invalid_token"),
        (creds["username"], "not-a-jwt", "invalid_token"),
    ]:
        status, headers, body = token_request(world, username, password)
        assert status == 401, body
        assert json.loads(body)["code"] == code
        assert headers["WWW-Authenticate"].startswith("Basic realm=")
    # Expired: a login secret made with the same key, its exp in the past.
    claims = jwt.decode(creds["password"], options={"verify_signature": False})
    claims.update(iat=claims["iat"] - 7200, nbf=claims["nbf"] - 7200, exp=int(time.time()) - 600)
    kid = jwt.get_unverified_header(creds["password"])["kid"]
    expired = jwt.encode(claims, KEY.read_text(), algorithm="ES256", headers={"kid": kid})
    status, _, body = token_request(world, creds["username"], expired)
    assert (status, json.loads(body)["code"]) == (401, "token_expired"), body
    # No credentials at all, a wrong service, hostile scopes: clean answers.
    status, headers, body = world["worker"].request(f"/registry/token?service={SERVICE}")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic realm=")
    status, _, body = token_request(world, creds["username"], creds["password"], "service=evil.test")
    assert (status, json.loads(body)["code"]) == (400, "invalid_service")
    status, _, body = token_request(world, creds["username"], creds["password"],
                                    f"service={SERVICE}&scope=repository:%22;rm%20-rf:pull")
    assert (status, json.loads(body)["code"]) == (400, "invalid_scope")


def test_a_tampered_registry_token_is_refused_by_the_registry(world, secret):
    creds = credentials(world, secret)
    status, _, body = token_request(world, creds["username"], creds["password"])
    assert status == 200, body
    token = json.loads(body)["token"]
    remember_secret(token)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["x5c"] and header["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == SERVICE and claims["iss"] == world["issuer"]
    assert claims["access"] == [{"type": "repository", "name": "rise-apps/my-app", "actions": ["pull"]}]
    url = f"http://{world['registry']}/v2/rise-apps/my-app/tags/list"

    def registry_status(bearer):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"})) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code

    assert registry_status(token) in (200, 404)  # accepted (404: nothing pushed under v-tags yet)
    # Widen the access claim, keep the signature: refused.
    head, _, sig = token.split(".")
    claims["access"][0]["name"] = "rise-apps/other"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert registry_status(f"{head}.{forged_payload}.{sig}") == 401


def test_login_script_logs_skopeo_in_and_the_action_logs_in_and_out(world, secret):
    """Issue 9: scripts/registry-login.sh against the broker logs skopeo into the registry
    (password on stdin, never printed), fails with the broker's message otherwise; the
    GitHub action's main step does the same from a GitHub-style OIDC token endpoint, masks
    the password first, and its post step logs out."""
    import http.server
    import threading
    authfile = world["tmp"] / "script-auth.json"
    env = dict(os.environ, RISE_BROKER_URL=world["worker"].base, RISE_TOKEN=dev_token(secret),
               RISE_LOGIN_TOOL="skopeo", RISE_LOGIN_ARGS=f"--tls-verify=false --authfile {authfile}")
    result = subprocess.run(["bash", str(ROOT / "scripts/registry-login.sh"), "my-app"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "skopeo logged in to " + world["registry"] in result.stdout
    assert "valid 3600 s" in result.stdout or "valid 3599 s" in result.stdout, result.stdout
    assert f"image={world['registry']}/rise-apps/my-app" in result.stdout
    assert json.loads(authfile.read_text())["auths"][world["registry"]]
    copy(authfile, f"oci:{world['image']}:v1", f"docker://{world['registry']}/rise-apps/my-app:script")
    password = base64.b64decode(json.loads(authfile.read_text())["auths"][world["registry"]]["auth"]).decode()
    password = password.split(":", 1)[1]
    assert password not in result.stdout + result.stderr
    # A project the caller may not use: the broker's message, exit 1, nothing logged in.
    refused = subprocess.run(["bash", str(ROOT / "scripts/registry-login.sh"), "other"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "HTTP 403, forbidden" in refused.stderr and "not allowed" in refused.stderr

    # The action: a stand-in for GitHub's OIDC token endpoint hands out a dev token.
    token = dev_token(secret)

    class Oidc(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            # The auth scheme is case-insensitive (RFC 9110 §11.1); the token is not.
            scheme, _, credential = self.headers["Authorization"].partition(" ")
            assert (scheme.lower(), credential) == ("bearer", "runtime-token")
            body = json.dumps({"value": token}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Oidc)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    action_auth = world["tmp"] / "action-auth.json"
    state, output = world["tmp"] / "state", world["tmp"] / "output"
    env = dict(os.environ, ACTIONS_ID_TOKEN_REQUEST_URL=f"http://127.0.0.1:{server.server_address[1]}/token?x=1",
               ACTIONS_ID_TOKEN_REQUEST_TOKEN="runtime-token", GITHUB_STATE=str(state), GITHUB_OUTPUT=str(output),
               **{"INPUT_BROKER-URL": world["worker"].base, "INPUT_PROJECT": "my-app", "INPUT_ACCESS": "push",
                  "INPUT_AUDIENCE": "rise", "INPUT_LOGIN-TOOL": "skopeo",
                  "INPUT_LOGIN-ARGS": f"--tls-verify=false --authfile {action_auth}"})
    main = subprocess.run(["node", str(ROOT / "action/main.js")], env=env, capture_output=True, text=True,
                          timeout=60)
    server.shutdown()
    assert main.returncode == 0, main.stdout + main.stderr
    lines = main.stdout.splitlines()
    action_password = base64.b64decode(
        json.loads(action_auth.read_text())["auths"][world["registry"]]["auth"]).decode().split(":", 1)[1]
    assert lines[0] == f"::add-mask::{token}"
    assert lines[1] == f"::add-mask::{action_password}", "the password is masked before anything else"
    assert sum(action_password in line for line in lines) == 1
    assert f"image={world['registry']}/rise-apps/my-app" in output.read_text()
    post_env = dict(os.environ, **{f"STATE_{k}": v for k, v in
                                   (line.split("=", 1) for line in state.read_text().splitlines())})
    post = subprocess.run(["node", str(ROOT / "action/post.js")], env=post_env, capture_output=True, text=True,
                          timeout=60)
    assert post.returncode == 0 and "logged skopeo out" in post.stdout, post.stdout + post.stderr
    assert world["registry"] not in json.loads(action_auth.read_text()).get("auths", {})
