"""Keyless JFrog Artifactory, end to end: the broker under `wrangler dev` with `[oidc]` and
`type = "artifactory"`, configured from vars only, against a strict stand-in of the JFrog
platform (tests/helpers/jfrog_standin.py): `POST /access/api/v1/oidc/token` verifies the
broker's token against the generic OIDC integration `rise-broker` over discovery + JWKS
(kid, RS256, exp, iss), picks the identity mapping the broker names
(`identity_mapping = "rise-{project}-{access}"`, whose claims must still match) and answers
an access token for the mapped user; Artifactory's Docker token endpoint
`/artifactory/api/docker/docker-local/v2/token` takes `<user>:<access token>` — the user
MUST be the one in the token's `sub` — and grants the user's permission on
`docker-local/<project>`. A Debian `docker-registry` trusts the stand-in's registry
tokens; `skopeo` pushes and pulls with exactly the username and password the broker
returned.

The broker signs with es256_a first and rs256 second; the tests check it picked the RSA key."""
import base64
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import jwt
import pytest

from conftest import ROOT, Worker, free_port, remember_secret

sys.path.insert(0, str(ROOT / "tests" / "helpers"))
import registry_tools  # noqa: E402
from registry_tools import inspect_raw, pull, push, refused  # noqa: E402

pytestmark = pytest.mark.skipif(registry_tools.tools_missing(),
                                reason="docker-registry, skopeo and umoci come from Debian (scripts/setup.sh test)")

KEYS = ROOT / "tests" / "fixtures" / "oidc"
PROVIDER = "rise-broker"
REPO_KEY = "docker-local"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
PUSH_SECONDS, PULL_SECONDS = 900, 600  # the mappings' token_spec.expires_in
CALLER_PROJECTS = ("my-app", "other-app")


def caller_token(secret, projects=CALLER_PROJECTS):
    now = int(time.time())
    return jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": "e2e-ci@example.com", "iat": now,
                       "exp": now + 600, "projects": list(projects)}, secret, algorithm="HS256")


def mapping(name, sub, seconds, priority=1):
    return {"name": name, "priority": priority, "claims": {"sub": sub},
            "token_spec": {"username": name, "expires_in": seconds}}


@pytest.fixture(scope="module")
def world(secret, tmp_path_factory):
    from jfrog_standin import JFrogStandIn
    tmp = tmp_path_factory.mktemp("artifactory")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    registry_port = free_port()
    host = f"127.0.0.1:{registry_port}"
    standin = JFrogStandIn(
        host,
        integrations={PROVIDER: {"issuer_url": issuer}},
        mappings={PROVIDER: [
            mapping("rise-my-app-push", "project:my-app:push", PUSH_SECONDS),
            mapping("rise-my-app-pull", "project:my-app:pull", PULL_SECONDS),
            # Misconfigured on purpose: other-app's pull mapping names my-app's subject, so
            # the mapping the broker forces does not match the token (no rise-other-app-push
            # mapping exists at all).
            mapping("rise-other-app-pull", "project:my-app:pull", PULL_SECONDS),
        ]},
        users={"rise-my-app-push": {f"{REPO_KEY}/my-app": "write"},
               "rise-my-app-pull": {f"{REPO_KEY}/my-app": "read"},
               "rise-other-app-pull": {f"{REPO_KEY}/other-app": "read"}},
        on_secret=remember_secret)  # every token it issues or receives: looked for in worker logs
    registry = registry_tools.DockerRegistry(
        tmp, registry_port, realm=standin.realm(REPO_KEY), service=host, issuer=standin.realm_issuer,
        cert_pem=standin.signer.cert_pem, log_path=ROOT / "target" / "e2e-docker-registry-artifactory.log")
    worker = None
    try:
        keys = ["es256_a", "rs256"]
        worker = Worker({
            "RISE_REGISTRY__TYPE": "artifactory",
            "RISE_REGISTRY__URL": standin.url,
            "RISE_REGISTRY__PROVIDER_NAME": PROVIDER,
            "RISE_REGISTRY__REGISTRY_URL": host,
            "RISE_REGISTRY__REPOSITORY": f"{REPO_KEY}/{{project}}",
            "RISE_REGISTRY__IDENTITY_MAPPING": "rise-{project}-{access}",
            "RISE_OIDC__ISSUER": issuer,
            "RISE_OIDC__SIGNING_KEYS": json.dumps([f"OIDC_KEY_{k.upper()}" for k in keys]),
        }, "artifactory", port=port, secrets={"RISE_JWT_SECRET": base64.b64encode(secret).decode(),
                                              **{f"OIDC_KEY_{k.upper()}": (KEYS / f"{k}.pem").read_text()
                                                 for k in keys}})
        yield {"standin": standin, "registry": host, "worker": worker, "tmp": tmp, "issuer": issuer,
               "image": registry_tools.oci_image(tmp)}
    finally:
        if worker is not None:
            worker.stop()
        registry.stop()
        standin.stop()


def get_credentials(world, secret, project="my-app", access="push"):
    query = f"project={project}" + ("" if access == "push" else f"&access={access}")
    return world["worker"].get(f"/registry/credentials?{query}", caller_token(secret))


def credentials(world, secret, **kwargs):
    status, _, body = get_credentials(world, secret, **kwargs)
    assert status == 200, body
    data = json.loads(body)
    remember_secret(data["credentials"]["password"])
    return data


def exchange_for(standin, password):
    """The verified exchange that issued `password`, and the request that carried it."""
    accepted = next(a for a in standin.accepted if a["access_token"] == password)
    request = next(r for r in standin.exchange_requests if r.body and r.json() == accepted["body"])
    return accepted, request


def broker_jwks(world):
    with urllib.request.urlopen(world["issuer"] + "/.well-known/jwks.json", timeout=10) as r:
        return json.load(r)["keys"]


def realm_status(world, username, password, scope):
    query = urllib.parse.urlencode({"service": world["registry"], "scope": scope})
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    req = urllib.request.Request(f"{world['standin'].realm(REPO_KEY)}?{query}",
                                 headers={"Authorization": f"Basic {basic}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = json.load(r)
            remember_secret(answer["token"])
            return r.status, answer
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def test_answer_and_what_jfrog_saw(world, secret):
    standin = world["standin"]
    data = credentials(world, secret)
    creds = data["credentials"]
    assert data == {"credentials": {"registry_url": world["registry"], "username": "rise-my-app-push",
                                    "password": creds["password"], "expires_in": creds["expires_in"]},
                    "repository": f"{REPO_KEY}/my-app", "image": f"{world['registry']}/{REPO_KEY}/my-app",
                    "auth_method": "login_credentials"}
    accepted, request = exchange_for(standin, creds["password"])
    issued = next(t for t in standin.access_tokens if t["access_token"] == creds["password"])
    # The username is the user part of the returned token's sub.
    assert issued["claims"]["sub"] == "jfac@01stand/users/rise-my-app-push"
    assert accepted["mapping"] == "rise-my-app-push"
    # expires_in from the answer's expires_in (the mapping's token_spec), less a minute.
    assert PUSH_SECONDS - 60 - 5 <= creds["expires_in"] <= PUSH_SECONDS - 60, creds["expires_in"]

    # What JFrog verified: the broker's RSA key (listed second), found through discovery.
    issuer = world["issuer"]
    assert accepted["fetched"] == [issuer + "/.well-known/openid-configuration", issuer + "/.well-known/jwks.json"]
    header, claims = accepted["header"], accepted["claims"]
    assert header["alg"] == "RS256"
    assert header["kid"] == next(k["kid"] for k in broker_jwks(world) if k["kty"] == "RSA")
    assert claims["iss"] == issuer and claims["sub"] == "project:my-app:push"
    assert claims["aud"] == standin.url  # default audience: the platform URL
    assert claims["iat"] <= time.time() + 1 and 0 < claims["exp"] - claims["iat"] <= 3600

    # The request: JSON, no Authorization header (as setup-jfrog-cli), the forced mapping.
    assert request.method == "POST" and request.media_type == "application/json"
    assert request.header("Authorization") is None and request.query == []
    assert request.json() == {"grant_type": GRANT_TYPE, "subject_token_type": ID_TOKEN_TYPE,
                              "subject_token": accepted["body"]["subject_token"], "provider_name": PROVIDER,
                              "identity_mapping_name": "rise-my-app-push"}


def test_push_and_pull_back_byte_identical(world, secret):
    data = credentials(world, secret)
    creds, repository = data["credentials"], data["repository"]
    push(world["image"], world["registry"], repository, "v1", creds)
    pushed = inspect_raw(f"oci:{world['image']}:v1")
    assert inspect_raw(f"docker://{world['registry']}/{repository}:v1", creds) == pushed
    pull(world["registry"], repository, "v1", creds, world["tmp"] / "pulled")
    assert inspect_raw(f"oci:{world['tmp']}/pulled:v1") == pushed
    # skopeo presented the returned username and access token at JFrog's docker token endpoint.
    basic = "Basic " + base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    assert any(r.header("Authorization") == basic for r in world["standin"].realm_requests)
    grants = sum((t["access"] for t in world["standin"].registry_tokens if t["source"] == creds["password"]), [])
    assert {"type": "repository", "name": f"{REPO_KEY}/my-app", "actions": ["pull", "push"]} in grants


def test_other_projects_repositories_are_refused(world, secret):
    creds = credentials(world, secret)["credentials"]
    for repository in (f"{REPO_KEY}/other-app", f"{REPO_KEY}/my-app2", "docker-remote/my-app", "my-app"):
        result = push(world["image"], world["registry"], repository, "v1", creds, check=False)
        assert refused(result), (repository, result.stderr)


def test_pull_credentials_pull_but_cannot_push(world, secret):
    seed = credentials(world, secret)
    push(world["image"], world["registry"], f"{REPO_KEY}/my-app", "v2", seed["credentials"])
    data = credentials(world, secret, access="pull")
    creds = data["credentials"]
    assert creds["username"] == "rise-my-app-pull" and data["repository"] == f"{REPO_KEY}/my-app"
    assert PULL_SECONDS - 60 - 5 <= creds["expires_in"] <= PULL_SECONDS - 60, creds["expires_in"]
    accepted, request = exchange_for(world["standin"], creds["password"])
    assert accepted["mapping"] == "rise-my-app-pull" and accepted["claims"]["sub"] == "project:my-app:pull"
    assert request.json()["identity_mapping_name"] == "rise-my-app-pull"
    pull(world["registry"], f"{REPO_KEY}/my-app", "v2", creds, world["tmp"] / "pull-only")
    result = push(world["image"], world["registry"], f"{REPO_KEY}/my-app", "v3", creds, check=False)
    assert refused(result), result.stderr


def test_only_the_tokens_own_user_is_accepted(world, secret):
    """JFrog refuses the access token under any other name ("Wrong username was used"):
    the broker's username is the one that works."""
    creds = credentials(world, secret)["credentials"]
    scope = f"repository:{REPO_KEY}/my-app:pull,push"
    status, answer = realm_status(world, creds["username"], creds["password"], scope)
    assert status == 200 and answer["expires_in"] == 3600
    for username in ("rise-my-app-pull", "admin", "jfac@01stand/users/rise-my-app-push"):
        status, answer = realm_status(world, username, creds["password"], scope)
        assert status == 401, username
        assert answer == {"errors": [{"code": "UNAUTHORIZED", "message": "Wrong username was used"}]}
    result = push(world["image"], world["registry"], f"{REPO_KEY}/my-app", "v9",
                  {"username": "admin", "password": creds["password"]}, check=False)
    assert refused(result), result.stderr


@pytest.mark.parametrize("access, reason", [("push", "mapping_unknown"), ("pull", "mapping_claims")])
def test_no_mapping_for_the_project_is_upstream_denied(world, secret, access, reason):
    """No `rise-other-app-push` mapping; `rise-other-app-pull` names another subject. JFrog
    answers 401, the broker 502 upstream_denied without any token text."""
    standin = world["standin"]
    issued, refused_before = len(standin.access_tokens), len(standin.refused)
    status, _, body = get_credentials(world, secret, project="other-app", access=access)
    assert status == 502, body
    error = json.loads(body)
    assert set(error) >= {"error", "code"} and error["code"] == "upstream_denied"
    assert isinstance(error["error"], str) and error["error"]
    new = standin.refused[refused_before:]
    # One request: a denial is not retried.
    assert len(new) == 1 and new[0]["reason"] == reason and new[0]["status"] == 401, new
    assert new[0]["body"]["errors"][0]["code"] == "UNAUTHORIZED"
    # JFrog's message is free text: the broker does not repeat it, nor any token.
    assert "eyJ" not in body and new[0]["body"]["errors"][0]["message"] not in body
    sent = standin.exchange_requests[-1].json()
    assert sent["identity_mapping_name"] == f"rise-other-app-{access}" and sent["provider_name"] == PROVIDER
    assert len(standin.access_tokens) == issued


def test_a_second_identical_request_is_served_from_the_cache(world, secret):
    first = credentials(world, secret, access="pull")
    before = world["standin"].count()
    second = credentials(world, secret, access="pull")
    assert world["standin"].count() == before, "the cached answer made an upstream call"
    assert second["credentials"]["password"] == first["credentials"]["password"]


def test_the_stand_in_is_strict(world, secret):
    """Not vacuous: with the broker's kid and claims, the stand-in refuses ES256 (even with
    the broker's own published EC key), a missing kid, another RSA key, a missing exp and
    another issuer; without a forced mapping it picks the highest-priority matching one."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from standin_common import TokenRefused
    standin = world["standin"]
    jwks = broker_jwks(world)
    rsa_kid = next(k["kid"] for k in jwks if k["kty"] == "RSA")
    ec_kid = next(k["kid"] for k in jwks if k["kty"] == "EC")
    now = int(time.time())
    claims = {"iss": world["issuer"], "aud": standin.url, "sub": "project:my-app:push", "iat": now,
              "exp": now + 300}
    rs256 = (KEYS / "rs256.pem").read_text()
    integration = standin.integrations[PROVIDER]
    good = jwt.encode(claims, rs256, algorithm="RS256", headers={"kid": rsa_kid})
    assert standin.verify_subject_token(integration, good)[1]["sub"] == "project:my-app:push"
    no_exp = {k: v for k, v in claims.items() if k != "exp"}
    for token, reason in [
        (jwt.encode(claims, (KEYS / "es256_a.pem").read_text(), algorithm="ES256", headers={"kid": ec_kid}), "alg"),
        (jwt.encode(claims, rs256, algorithm="RS256"), "kid_missing"),
        (jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                    headers={"kid": rsa_kid}), "signature"),
        (jwt.encode(no_exp, rs256, algorithm="RS256", headers={"kid": rsa_kid}), "claims"),
        (jwt.encode({**claims, "exp": now - 120}, rs256, algorithm="RS256", headers={"kid": rsa_kid}), "time"),
        (jwt.encode({**claims, "iss": "https://elsewhere.example"}, rs256, algorithm="RS256",
                    headers={"kid": rsa_kid}), "issuer"),
    ]:
        with pytest.raises(TokenRefused) as raised:
            standin.verify_subject_token(integration, token)
        assert raised.value.code == reason

    # Mapping choice without identity_mapping_name: claims must all match exactly; the
    # lowest priority number wins (rise-my-app-pull and rise-other-app-pull both match).
    pick = standin.pick_mapping
    assert pick(PROVIDER, {"sub": "project:my-app:push"})["name"] == "rise-my-app-push"
    assert pick(PROVIDER, {"sub": "project:my-app:pull"})["name"] == "rise-my-app-pull"
    standin.mappings[PROVIDER][2]["priority"] = 0
    try:
        assert pick(PROVIDER, {"sub": "project:my-app:pull"})["name"] == "rise-other-app-pull"
    finally:
        standin.mappings[PROVIDER][2]["priority"] = 1
    for sub in ("project:my-app:push ", "project:My-app:push", "project:my-app"):
        with pytest.raises(TokenRefused) as raised:
            pick(PROVIDER, {"sub": sub})
        assert raised.value.code == "no_mapping"
