"""End-to-end: real HTTP against the release build under `wrangler dev` (workerd)."""
import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import Worker

CREDS = "/registry/credentials"


def dev_token(secret, exp_in=3600, **claims):
    now = int(time.time())
    body = {"iss": "rise-dev", "aud": "rise", "sub": "e2e@example.com", "iat": now, "exp": now + exp_in,
            "projects": ["my-app"]}
    body.update(claims)
    return jwt.encode(body, secret, algorithm="HS256")


def assert_error(resp, status, code):
    got_status, headers, body = resp
    assert got_status == status, body
    assert headers.get("Content-Type") == "application/json"
    parsed = json.loads(body)
    assert parsed["code"] == code, body
    assert set(parsed) == {"error", "code"}
    return headers


def test_health(worker):
    status, headers, body = worker.get("/health")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"status": "ok", "provider": "docker", "version": "0.1.0"}


def test_valid_token_gets_docker_answer(worker, secret):
    status, headers, body = worker.get(CREDS + "?project=my-app", dev_token(secret))
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {
        "credentials": {"registry_url": "localhost:5000", "username": "", "password": ""},
        "repository": "rise-apps/my-app",
        "image": "localhost:5000/rise-apps/my-app",
        "auth_method": "client_auth",
    }


def test_expired_token(worker, secret):
    headers = assert_error(worker.get(CREDS + "?project=my-app", dev_token(secret, exp_in=-3600)), 401, "token_expired")
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]


def test_alg_none_token(worker):
    now = int(time.time())
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    token = enc({"alg": "none", "typ": "JWT"}) + "." + enc(
        {"iss": "rise-dev", "aud": "rise", "exp": now + 600, "projects": ["my-app"]}) + "."
    headers = assert_error(worker.get(CREDS + "?project=my-app", token), 401, "invalid_token")
    assert headers["WWW-Authenticate"].startswith("Bearer ")


def test_wrong_project_is_forbidden(worker, secret):
    a = worker.get(CREDS + "?project=other-app", dev_token(secret))
    b = worker.get(CREDS + "?project=my-app2", dev_token(secret))
    assert_error(a, 403, "forbidden")
    assert a[2] == b[2]


def test_missing_token(worker):
    headers = assert_error(worker.get(CREDS + "?project=my-app"), 401, "missing_token")
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]


@pytest.mark.parametrize("query,code", [
    ("project=*", "invalid_project"),
    ("project=%3F", "invalid_project"),
    ("project=%22my-app%22", "invalid_project"),
    ("project=%27x%27", "invalid_project"),
    ("project=a%2Fb", "invalid_project"),
    ("project=..", "invalid_project"),
    ("project=My-App", "invalid_project"),
    ("project=%C3%BCber", "invalid_project"),
    ("project=" + "a" * 64, "invalid_project"),
    ("project=a&project=b", "invalid_project"),
    ("project=", "missing_project"),
    ("", "missing_project"),
    ("project=my-app&access=root", "invalid_access"),
])
def test_hostile_queries_are_400(worker, secret, query, code):
    # A valid token: the 400 must win anyway.
    assert_error(worker.get(CREDS + "?" + query, dev_token(secret)), 400, code)


def test_unknown_path_and_method(worker):
    assert_error(worker.get("/nope"), 404, "not_found")
    headers = assert_error(worker.request(CREDS + "?project=my-app", method="POST"), 405, "method_not_allowed")
    assert headers["Allow"] == "GET"
    headers = assert_error(worker.request("/health", method="DELETE"), 405, "method_not_allowed")
    assert headers["Allow"] == "GET"


def test_no_token_or_secret_in_logs(worker, secret):
    token = dev_token(secret)
    worker.get(CREDS + "?project=my-app", token)
    worker.get(CREDS + "?project=nope", token)
    logs = worker.wait_for_log('"project":"nope"')
    assert '"event":"registry_credentials"' in logs
    assert token not in logs and token.split(".")[2] not in logs
    assert base64.b64encode(secret).decode() not in logs


def test_corpus_through_workerd(worker, corpus_keys):
    """Every PyJWT-minted case, valid and hostile, over real HTTP."""
    mint_tokens, keys = corpus_keys
    corpus = mint_tokens.mint(keys, int(time.time()))
    failures = []
    for case in corpus["cases"]:
        status, _, body = worker.get(CREDS + "?project=my-app", case["token"])
        want = {"ok": 200}.get(case["expect"], 401)
        code = json.loads(body).get("code") if status != 200 else "ok"
        expect = "missing_token" if case["token"] == "" else case["expect"]
        if status != want or code != expect:
            failures.append(f"{case['name']}: {status} {code}, expected {expect}")
    assert not failures, failures


def test_jwks_rotation_against_a_local_server(worker, jwks_server):
    iss = jwks_server.url

    def key_pair(kid):
        key = ec.generate_private_key(ec.SECP256R1())
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        public.update(kid=kid, use="sig", alg="ES256")
        return key, public

    def token(key, kid):
        now = int(time.time())
        return jwt.encode({"iss": iss, "aud": "rise", "sub": "ci", "exp": now + 600, "projects": ["my-app"]},
                          key, algorithm="ES256", headers={"kid": kid})

    key_a, jwk_a = key_pair("a")
    key_b, jwk_b = key_pair("b")
    jwks_server.jwks = {"keys": [jwk_a]}
    assert worker.get(CREDS + "?project=my-app", token(key_a, "a"))[0] == 200
    assert worker.get(CREDS + "?project=my-app", token(key_a, "a"))[0] == 200
    assert jwks_server.hits == 1
    # Rotation: the issuer now publishes only b. Inside the 5 s refetch interval the new
    # kid (and a flood of random ones) is refused without fetching again.
    jwks_server.jwks = {"keys": [jwk_b]}
    assert_error(worker.get(CREDS + "?project=my-app", token(key_b, "b")), 401, "invalid_token")
    for i in range(10):
        assert_error(worker.get(CREDS + "?project=my-app", token(key_b, f"random-{i}")), 401, "invalid_token")
    assert jwks_server.hits == 1
    time.sleep(5.5)
    assert worker.get(CREDS + "?project=my-app", token(key_b, "b"))[0] == 200
    assert jwks_server.hits == 2


def test_misconfigured_worker_names_the_key(secret):
    w = Worker({
        "RISE_JWT_SECRET": base64.b64encode(secret).decode(),
        "RISE_REGISTRY__TYPE": "ecr",
        "RISE_REGISTRY__REGION": "us-east-1",
        "RISE_REGISTRY__ACCOUNT_ID": "123456789012",
    }, "misconfigured", wait_path="/health")
    try:
        for path in ["/health", CREDS + "?project=my-app"]:
            status, _, body = w.get(path, dev_token(secret))
            assert status == 500, body
            parsed = json.loads(body)
            assert parsed["code"] == "misconfigured"
            assert "registry.push_role_arn" in parsed["error"]
    finally:
        w.stop()


def test_concurrent_cold_jwks_fetch_is_shared_under_workerd(secret):
    """A cold isolate, 20 concurrent requests for a remote-JWKS issuer: one fetch, and
    the requests that wait for it are not canceled by workerd as hung."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import JwksServer

    server = JwksServer()
    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public.update(kid="k", use="sig", alg="ES256")
    server.jwks = {"keys": [public]}
    issuers = [{"issuer": server.url, "audience": "rise", "jwks_url": server.url + "/jwks",
                "claims_grant_access": True}]
    w = Worker({"RISE_JWT_SECRET": base64.b64encode(secret).decode(), "RISE_AUTH__ISSUERS": json.dumps(issuers)},
               "cold-jwks")
    try:
        now = int(time.time())
        token = jwt.encode({"iss": server.url, "aud": "rise", "sub": "ci", "exp": now + 600, "projects": ["my-app"]},
                           key, algorithm="ES256", headers={"kid": "k"})
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(lambda _: w.get(CREDS + "?project=my-app", token)[0], range(20)))
        assert statuses == [200] * 20
        assert server.hits == 1
    finally:
        w.stop()
        server.stop()


def test_vars_from_wrangler_toml_reach_the_config(secret, tmp_path):
    """`[vars]` in a wrangler config — including a TOML table/array value, which the
    worker receives as a JS object — override the embedded config."""
    from conftest import ROOT

    config = ROOT / "target" / "e2e-wrangler-vars.toml"
    config.write_text(f'''name = "rise-registry-broker-e2e"
main = "../build/worker/shim.mjs"
compatibility_date = "2026-04-01"

[vars]
RISE_REGISTRY__REGISTRY_URL = "registry.example.com"
RISE_REGISTRY__NAMESPACE = "from-wrangler-toml"
RISE_JWT_SECRET = "{base64.b64encode(secret).decode()}"
RISE_AUTH__ISSUERS = [{{ issuer = "toml-issuer", audience = "rise", hs256_secret = "RISE_JWT_SECRET" }}]
''')
    w = Worker({}, "vars-toml", extra_args=["--config", str(config)])
    try:
        now = int(time.time())
        token = jwt.encode({"iss": "toml-issuer", "aud": "rise", "sub": "t", "exp": now + 600, "projects": ["my-app"]},
                           secret, algorithm="HS256")
        status, _, body = w.get(CREDS + "?project=my-app", token)
        assert status == 200, body
        assert json.loads(body)["image"] == "registry.example.com/from-wrangler-toml/my-app"
        # The embedded dev issuer was replaced whole by the [vars] list.
        assert w.get(CREDS + "?project=my-app", dev_token(secret))[0] == 401
    finally:
        w.stop()


def test_every_other_method_is_405_whatever_the_runtime_calls_it(worker, secret):
    """Issue 11: the worker crate turns methods it does not know into GET; the broker
    reads the raw method. Sent with raw method strings over a plain socket client."""
    import http.client
    token = dev_token(secret)
    methods = ["QUERY", "PROPFIND", "SEARCH", "MKCOL", "LOCK", "POST", "PUT", "DELETE", "PATCH",
               "OPTIONS", "HEAD"]
    for path in (CREDS + "?project=my-app", "/health"):
        for method in methods:
            conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=30)
            conn.request(method, path, headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            body = resp.read().decode()
            conn.close()
            assert resp.status == 405, (method, path, resp.status, body)
            assert resp.getheader("Allow") == "GET", method
            if method != "HEAD":
                assert json.loads(body)["code"] == "method_not_allowed", (method, body)
                assert "password" not in body
    # CONNECT never reaches the worker: workerd refuses it itself ("Incoming CONNECT on a
    # worker not supported") with its own plain-text 500. Nothing is issued.
    conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=30)
    conn.request("CONNECT", CREDS + "?project=my-app", headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    body = resp.read().decode()
    conn.close()
    assert resp.status == 500 and "password" not in body and "registry_url" not in body, body
    assert "CONNECT on a worker not supported" in worker.wait_for_log("CONNECT on a worker")


def _workerd_peak_rss_kib(worker):
    """VmHWM (peak resident set) of the workerd processes under this wrangler dev."""
    import os
    import subprocess
    pids = subprocess.run(["pgrep", "-g", str(worker.proc.pid), "-f", "workerd"],
                          capture_output=True, text=True).stdout.split()
    peak = 0
    for pid in pids:
        try:
            status = open(f"/proc/{pid}/status").read()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    assert peak > 0, "no workerd process found"
    return peak


def test_a_gzip_bomb_behind_jwks_url_is_refused_without_inflating_it(secret):
    """Issue 20: a JWKS endpoint answering a 200 MiB body gzipped to ~200 KB, with
    `Content-Length` the compressed size. The runtime decodes gzip on read, so a one-call
    read would buffer all 200 MiB (and copy it into Wasm memory) before the size check.
    The broker must stream it, stop at its limit, answer the documented 502, and keep
    serving; workerd's peak memory must not grow by anything near the decoded size."""
    import threading
    import zlib
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    chunk = b" " * (1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(200)) + compressor.flush()
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(bomb)))
            self.end_headers()
            try:
                self.wfile.write(bomb)
            except OSError:
                pass  # the broker walked away: what it should do

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    issuers = [{"issuer": "rise-dev", "audience": "rise", "hs256_secret": "RISE_JWT_SECRET"},
               {"issuer": url, "audience": "rise", "jwks_url": url + "/jwks", "claims_grant_access": True}]
    w = Worker({"RISE_JWT_SECRET": base64.b64encode(secret).decode(), "RISE_AUTH__ISSUERS": json.dumps(issuers)},
               "gzip-bomb")
    try:
        assert w.get(CREDS + "?project=my-app", dev_token(secret))[0] == 200
        before = _workerd_peak_rss_kib(w)
        key = ec.generate_private_key(ec.SECP256R1())
        now = int(time.time())
        token = jwt.encode({"iss": url, "aud": "rise", "sub": "ci", "exp": now + 600, "projects": ["my-app"]},
                           key, algorithm="ES256", headers={"kid": "unknown"})
        assert_error(w.get(CREDS + "?project=my-app", token), 502, "upstream_error")
        assert hits, "the JWKS endpoint was asked"
        # Still serving, and the isolate did not inflate the body.
        assert w.get(CREDS + "?project=my-app", dev_token(secret))[0] == 200
        grown_mib = (_workerd_peak_rss_kib(w) - before) / 1024
        assert grown_mib < 64, f"workerd peak memory grew {grown_mib:.0f} MiB"
    finally:
        w.stop()
        server.shutdown()
