"""Issue 9: schemathesis (PyPI) against `wrangler dev`, driven by docs/openapi.json, with
its response-conformance checks: no 5xx on generated input, every status, content type,
header and body as documented, other methods answered 405 with `Allow`."""
import base64
import json
import os
import subprocess
import time

import jwt

from conftest import ROOT, Worker, free_port, remember_secret

CHECKS = os.environ.get("SCHEMATHESIS_CHECKS") or ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "unsupported_method",
    "allow_header_conformance", "missing_required_header", "ignored_auth",
])


def schemathesis(base, header, *filters):
    result = subprocess.run(
        [str(ROOT / ".venv/bin/schemathesis"), "run", str(ROOT / "docs/openapi.json"),
         "--url", base, "--checks", CHECKS, "--header", header, *filters,
         "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "60"), "--seed", "1",
         "--request-timeout", "20", "--no-color"],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "generated" in result.stdout, report
    return result.stdout


def test_schemathesis_finds_no_nonconforming_answer(secret):
    """Every operation exists on one worker: the registry_token provider with [oidc].
    The bearer-token operations are run with a bearer token, the token endpoint with the
    Basic login secret the broker issued."""
    port = free_port()
    key = (ROOT / "tests" / "fixtures" / "oidc" / "es256_a.pem").read_text()
    w = Worker({"RISE_OIDC__ISSUER": f"http://127.0.0.1:{port}", "RISE_OIDC__SIGNING_KEYS": '["OIDC_KEY_API"]',
                "RISE_REGISTRY__TYPE": "registry_token", "RISE_REGISTRY__REGISTRY_URL": "registry.test:5000",
                "RISE_REGISTRY__NAMESPACE": "rise-apps", "RISE_REGISTRY__SERVICE": "registry.test"},
               "openapi", port=port,
               secrets={"RISE_JWT_SECRET": base64.b64encode(secret).decode(), "OIDC_KEY_API": key})
    try:
        now = int(time.time())
        token = jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": "schemathesis", "iat": now,
                            "exp": now + 1800, "projects": ["my-app", "a", "0"]}, secret, algorithm="HS256")
        remember_secret(token)
        schemathesis(w.base, f"Authorization: Bearer {token}", "--exclude-path", "/registry/token")
        status, _, body = w.get("/registry/credentials?project=my-app", token)
        assert status == 200, body
        creds = json.loads(body)["credentials"]
        remember_secret(creds["password"])
        basic = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
        schemathesis(w.base, f"Authorization: Basic {basic}", "--include-path", "/registry/token")
    finally:
        w.stop()
