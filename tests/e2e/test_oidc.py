"""Keyless AWS end to end: the broker under `wrangler dev` with `[oidc]` and
`credentials = "web_identity"` and no AWS secret at all. A strict STS stand-in verifies
the broker's tokens the way AWS does (discovery → JWKS → signature, iss, aud, exp) and
gets real session credentials from moto (signatures enforced); ECR GetAuthorizationToken
goes to moto signed with that session. Independent verifiers (PyJWT's PyJWKClient and
`jose` in Node) read the broker's own discovery document; key rotation; an unpublished
key; no private key material in anything the worker wrote."""
import base64
import json
import subprocess
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import ROOT, Worker, free_port
from test_ecr import Moto, token

KEYS = ROOT / "tests" / "fixtures" / "oidc"
AUDIENCE = "sts.amazonaws.com"
CREDS = "/registry/credentials?project=my-app"


def pem(name):
    return (KEYS / f"{name}.pem").read_text()


def keyless_worker(name, port, secret, sts_endpoint, ecr_endpoint, keys, extra=None):
    secrets = {"RISE_JWT_SECRET": base64.b64encode(secret).decode()}
    secrets.update({f"OIDC_KEY_{k.upper()}": pem(k) for k in keys})
    variables = {
        "RISE_REGISTRY__TYPE": "ecr",
        "RISE_REGISTRY__REGION": "us-east-1",
        "RISE_REGISTRY__ACCOUNT_ID": "123456789012",
        "RISE_REGISTRY__REPO_PREFIX": "rise/",
        "RISE_REGISTRY__PUSH_ROLE_ARN": "arn:aws:iam::123456789012:role/rise-ecr-push",
        "RISE_REGISTRY__STS_ENDPOINT": sts_endpoint,
        "RISE_REGISTRY__ECR_ENDPOINT": ecr_endpoint,
        "RISE_REGISTRY__CREDENTIALS": "web_identity",
        "RISE_CACHE__ENABLED": "false",
        "RISE_OIDC__ISSUER": f"http://127.0.0.1:{port}",
        "RISE_OIDC__SIGNING_KEYS": json.dumps([f"OIDC_KEY_{k.upper()}" for k in keys]),
        **(extra or {}),
    }
    assert not any(k.startswith("AWS_") for k in list(variables) + list(secrets))
    return Worker(variables, name, secrets=secrets, port=port)


def jose_verify(issuer, audience, tok):
    result = subprocess.run(["node", str(ROOT / "tests/helpers/verify_oidc.mjs"), issuer, audience, tok],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout, result.stderr


def pyjwt_verify(issuer, audience, tok):
    with __import__("urllib.request").request.urlopen(issuer + "/.well-known/openid-configuration") as r:
        discovery = json.load(r)
    assert discovery["issuer"] == issuer
    key = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False).get_signing_key_from_jwt(tok)
    return jwt.decode(tok, key.key, algorithms=discovery["id_token_signing_alg_values_supported"],
                      audience=audience, issuer=issuer, options={"require": ["exp", "iat", "sub"]})


def assert_no_private_material(*texts):
    private = [pem(k) for k in ("es256_a", "es256_b", "rs256")]
    for text in texts:
        assert "PRIVATE KEY" not in text
        assert '"d":' not in text
        for key in private:
            body = "".join(key.strip().splitlines()[1:-1])
            for i in range(0, len(body) - 40, 40):  # no 40-character run of any key
                assert body[i:i + 40] not in text.replace("\n", "")


@pytest.fixture(scope="module")
def moto():
    m = Moto()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def port():
    return free_port()


@pytest.fixture(scope="module")
def sts(moto, port):
    from strict_sts import StrictSts
    s = StrictSts(moto.endpoint, moto.info["access_key_id"], moto.info["secret_access_key"],
                  {f"http://127.0.0.1:{port}": [AUDIENCE]})
    yield s
    s.stop()


import sys  # noqa: E402
sys.path.insert(0, str(ROOT / "tests" / "helpers"))


def test_keyless_issuance_rotation_and_independent_verifiers(moto, sts, port, secret):
    issuer = f"http://127.0.0.1:{port}"
    texts = []
    # 1. One key: issue against the strict STS and moto.
    w = keyless_worker("oidc-a", port, secret, sts.endpoint, moto.endpoint, ["es256_a"])
    try:
        status, headers, body = w.get("/.well-known/openid-configuration")
        assert status == 200 and headers["Cache-Control"] == "public, max-age=300", (status, headers)
        discovery = json.loads(body)
        assert discovery["issuer"] == issuer
        assert discovery["jwks_uri"] == issuer + "/.well-known/jwks.json"
        assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]
        status, _, body = w.get(CREDS, token(secret))
        assert status == 200, body
        creds = json.loads(body)["credentials"]
        assert creds["password"] == "123456789012-auth-token"  # moto's, via the web identity session
        assert len(sts.accepted) == 1, sts.tokens
        claims = sts.accepted[0]
        assert claims["sub"] == "project:my-app:push"
        assert claims["https://aws.amazon.com/source_identity"] == "e2e-ci@example.com"
        token_a = sts.tokens[-1]
        status, _, body = w.get("/registry/credentials?project=my-app&access=pull", token(secret))
        assert status == 200, body
        assert sts.accepted[-1]["sub"] == "project:my-app:pull"
        texts += [w.get("/.well-known/jwks.json")[2], w.wait_for_log('"outcome":"issued"')]
    finally:
        w.stop()

    # 2. Rotation, step one: the next key is published second; the first still signs.
    w = keyless_worker("oidc-ab", port, secret, sts.endpoint, moto.endpoint, ["es256_a", "rs256"])
    try:
        jwks = json.loads(w.get("/.well-known/jwks.json")[2])
        assert [k["alg"] for k in jwks["keys"]] == ["ES256", "RS256"]
        assert pyjwt_verify(issuer, AUDIENCE, token_a)["sub"] == "project:my-app:push"
        code, out, err = jose_verify(issuer, AUDIENCE, token_a)
        assert code == 0, err
        assert json.loads(out)["claims"]["sub"] == "project:my-app:push"
    finally:
        w.stop()

    # 3. Swap: the new key signs, the old one is still published.
    w = keyless_worker("oidc-ba", port, secret, sts.endpoint, moto.endpoint, ["rs256", "es256_a"])
    try:
        status, _, body = w.get(CREDS, token(secret))
        assert status == 200, body
        token_b = sts.tokens[-1]
        assert jwt.get_unverified_header(token_b)["alg"] == "RS256"
        for tok in (token_a, token_b):  # both verify against what is published now
            assert pyjwt_verify(issuer, AUDIENCE, tok)["iss"] == issuer
            code, _, err = jose_verify(issuer, AUDIENCE, tok)
            assert code == 0, err
        # A token signed by a key the broker never published is refused by both.
        rogue = ec.generate_private_key(ec.SECP256R1())
        forged = jwt.encode({"iss": issuer, "aud": AUDIENCE, "sub": "project:my-app:push",
                             "iat": int(time.time()), "exp": int(time.time()) + 300},
                            rogue, algorithm="ES256",
                            headers={"kid": json.loads(w.get("/.well-known/jwks.json")[2])["keys"][1]["kid"]})
        with pytest.raises(jwt.InvalidSignatureError):
            pyjwt_verify(issuer, AUDIENCE, forged)
        code, _, err = jose_verify(issuer, AUDIENCE, forged)
        assert code == 1 and "signature" in err.lower(), err
        # …and by the strict STS: no credentials for it.
        assert sts.handle({"Action": "AssumeRoleWithWebIdentity", "WebIdentityToken": forged,
                           "RoleArn": "arn:aws:iam::123456789012:role/rise-ecr-push",
                           "RoleSessionName": "x"}, has_signature=False)[0] == 400
        # A wrong audience is refused too.
        code, _, _ = jose_verify(issuer, "someone-else", token_b)
        assert code == 1
        texts += [w.get("/.well-known/jwks.json")[2], w.get("/.well-known/openid-configuration")[2],
                  w.wait_for_log('"outcome":"issued"')]
    finally:
        w.stop()
    assert_no_private_material(*texts)
    from conftest import remember_secret
    for creds in sts.issued:  # the web identity sessions: checked by the final scan
        remember_secret(creds["SecretAccessKey"])
        remember_secret(creds["SessionToken"])
    for tok in sts.tokens:
        remember_secret(tok)
    for tok in sts.tokens:  # the minted tokens never reach a log line
        assert tok not in "".join(texts)


def test_create_on_push_session_policy_as_sts_receives_it(moto, sts, port, secret):
    """Issue 21: with `create_on_push` the push session policy gains exactly
    `ecr:CreateRepository` + `ecr:TagResource` on the same exact repository ARN; pull is
    unchanged; without it nothing changes. Byte for byte as the strict STS stand-in
    received it, against the fixtures parliament checks (tests/helpers/check_policies.py)."""
    fixtures = ROOT / "tests" / "fixtures" / "policies"
    for create_on_push, push_fixture in [("true", "session_push_create_on_push"),
                                         ("false", "session_push")]:
        w = keyless_worker(f"oidc-cop-{create_on_push}", port, secret, sts.endpoint, moto.endpoint,
                           ["es256_a"], {"RISE_REGISTRY__CREATE_ON_PUSH": create_on_push})
        try:
            status, _, body = w.get(CREDS, token(secret))
            assert status == 200, body
            assert sts.forms[-1]["Policy"] == (fixtures / f"{push_fixture}.json").read_text()
            status, _, body = w.get(CREDS + "&access=pull", token(secret))
            assert status == 200, body
            assert sts.forms[-1]["Policy"] == (fixtures / "session_pull.json").read_text()
        finally:
            w.stop()


def test_bad_key_secret_is_named_never_shown(secret):
    port = free_port()
    w = keyless_worker("oidc-bad", port, secret, "http://127.0.0.1:9/", "http://127.0.0.1:9/", ["rsa1024"])
    try:
        for path in ("/.well-known/jwks.json", "/.well-known/openid-configuration", "/health", CREDS):
            status, _, body = w.get(path, token(secret))
            assert status == 500, body
            data = json.loads(body)
            assert data["code"] == "misconfigured"
            assert "OIDC_KEY_RSA1024" in data["error"] and "2048" in data["error"]
        assert_no_private_material(body, w.logs())
        assert "PRIVATE" not in pem("rsa1024")[40:] or pem("rsa1024")[40:80] not in w.logs()
    finally:
        w.stop()
