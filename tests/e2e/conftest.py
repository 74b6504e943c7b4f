"""Starts real peers for the end-to-end tests: `wrangler dev` (workerd) running the
release build, and a local HTTP server standing in for an issuer's JWKS endpoint."""
import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# Every secret the tests hand to a worker or an upstream: none may appear in anything a
# worker writes (wrangler's stdout/stderr, captured in target/e2e-wrangler-*.log).
SECRETS = set()
# Vars and secrets that hold secret values (the rest are config or secret NAMES).
SECRET_NAMES = {"RISE_JWT_SECRET", "CORPUS_HS256", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


def remember_secret(value):
    """Registers a secret (and, for PEM keys and base64 keys, their recognisable parts)."""
    if isinstance(value, bytes):
        import base64 as b64
        for form in (b64.b64encode(value).decode(), b64.urlsafe_b64encode(value).decode().rstrip("="),
                     value.hex()):
            SECRETS.add(form)
        return
    if "PRIVATE KEY" in value:
        SECRETS.update(line for line in value.splitlines() if len(line) >= 40 and "-----" not in line)
    elif len(value) >= 12:
        SECRETS.add(value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    """One `wrangler dev` process on a free loopback port."""

    def __init__(self, variables: dict, name: str, wait_path: str = "/health", extra_args=(),
                 secrets: dict = None, port: int = None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = ROOT / "target" / f"e2e-wrangler-{name}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        # The env file holds the secrets (as .dev.vars would; multi-line values quoted);
        # an empty one keeps a developer's .dev.vars out of the test run.
        self.env_file = ROOT / "target" / f"e2e-{name}.env"
        self.env_file.write_text("".join(f'{k}="{v}"\n' for k, v in (secrets or {}).items()))
        for key, value in {**variables, **(secrets or {})}.items():
            if key in SECRET_NAMES or key.startswith("OIDC_KEY_"):
                remember_secret(value)
        cmd = [str(ROOT / "node_modules/.bin/wrangler"), "dev", "--ip", "127.0.0.1",
               "--port", str(self.port), "--env-file", str(self.env_file),
               "--show-interactive-dev-session=false", "--inspector-port", str(free_port())]
        # The development config unless a test says otherwise (RUN_MODE must be set).
        for key, value in {"RUN_MODE": "development", **variables}.items():
            cmd += ["--var", f"{key}:{value}"]
        cmd += list(extra_args)
        env = dict(os.environ, CI="true", WRANGLER_SEND_METRICS="false", NO_COLOR="1")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        self._wait_ready(wait_path)

    def _wait_ready(self, path, timeout=240):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wrangler exited: {self.log_path.read_text()[-3000:]}")
            try:
                # Any HTTP answer (a 500 from a misconfigured worker too) means it is up.
                self.get(path)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise RuntimeError(f"wrangler not ready: {self.log_path.read_text()[-3000:]}")

    def request(self, path, method="GET", token=None, headers=None):
        req = urllib.request.Request(self.base + path, method=method, headers=dict(headers or {}))
        if token is not None:
            remember_secret(token)
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read().decode()

    def get(self, path, token=None):
        return self.request(path, token=token)

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait_for_log(self, needle: str, timeout: float = 10) -> str:
        """wrangler prints the worker's log lines asynchronously: wait for one to arrive."""
        deadline = time.time() + timeout
        while needle not in self.logs() and time.time() < deadline:
            time.sleep(0.1)
        return self.logs()

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


class JwksServer:
    """Serves a mutable JWKS at /jwks and counts the fetches."""

    def __init__(self):
        self.jwks = {"keys": []}
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/jwks":
                    self.send_error(404)
                    return
                outer.hits += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="session", autouse=True)
def built():
    subprocess.run(["bash", "scripts/build.sh"], cwd=ROOT, check=True)


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_worker_output(built):
    """After the whole run: scan every byte the workers wrote for every secret used."""
    started = time.time()
    yield
    remember_secret("123456789012-auth-token")  # moto's ECR password, served to callers
    logs = [p for p in (ROOT / "target").glob("e2e-wrangler-*.log") if p.stat().st_mtime >= started]
    assert logs, "no worker output captured"
    leaks = []
    for path in logs:
        text = path.read_text(errors="replace")
        leaks += [f"{path.name}: {s[:6]}…" for s in SECRETS if s in text]
    assert not leaks, f"secrets in worker output: {leaks}"
    print(f"\nsecret scan: {len(SECRETS)} secrets, {len(logs)} worker logs "
          f"({sum(p.stat().st_size for p in logs)} bytes), no leak")


@pytest.fixture(scope="session")
def secret() -> bytes:
    return os.urandom(32)


@pytest.fixture(scope="session")
def jwks_server():
    server = JwksServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def corpus_keys():
    """Keys of the PyJWT corpus (tests/helpers/mint_tokens.py); tokens are minted per test
    with the real clock, since workerd's clock cannot be frozen."""
    import sys
    sys.path.insert(0, str(ROOT / "tests" / "helpers"))
    import mint_tokens
    return mint_tokens, mint_tokens.make_keys()


@pytest.fixture(scope="session")
def worker(secret, jwks_server, corpus_keys):
    _, keys = corpus_keys
    issuers = [
        {"issuer": "rise-dev", "audience": "rise", "hs256_secret": "RISE_JWT_SECRET"},
        # Key-set issuers grant by their own `projects` claim only when told to.
        {"issuer": jwks_server.url, "audience": "rise", "jwks_url": jwks_server.url + "/jwks",
         "claims_grant_access": True},
        {"issuer": "https://rise.test", "audience": "rise", "hs256_secret": "CORPUS_HS256"},
        {"issuer": "https://idp.test", "audience": "rise", "jwks": json.dumps(keys["jwks"]),
         "claims_grant_access": True},
    ]
    w = Worker({
        "RISE_JWT_SECRET": base64.b64encode(secret).decode(),
        "CORPUS_HS256": base64.b64encode(keys["hs_secret"]).decode(),
        "RISE_AUTH__ISSUERS": json.dumps(issuers),
        "RISE_AUTH__JWKS_MIN_REFETCH_SECONDS": "5",
    }, "main")
    yield w
    w.stop()
