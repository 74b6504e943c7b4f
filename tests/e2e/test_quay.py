"""Keyless Quay robot federation, end to end: the broker under `wrangler dev` with `[oidc]`
and `type = "quay"`, configured from vars only, against a strict stand-in of Quay
(tests/helpers/quay_standin.py): `GET /oauth2/federation/robot/token` verifies the broker's
token over discovery + JWKS (kid required, RS256/RS384 only, iat/exp, iss and the exact
subject of a federation entry of THAT robot) and answers a one-hour robot token; Quay's
Docker realm `/v2/auth` turns `{org}+{robot}` + that token into a registry token holding only
the robot's repository permissions. A Debian `docker-registry` trusts the stand-in's registry
tokens; `skopeo` pushes and pulls with exactly the username and password the broker returned.

The broker signs with es256_a first and rs256 second: Quay takes no ES256, so the tests
check the broker picked its RSA key."""
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
ORG = "rise"
CALLER_PROJECTS = ("my-app", "other-app")


def caller_token(secret, projects=CALLER_PROJECTS):
    now = int(time.time())
    return jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": "e2e-ci@example.com", "iat": now,
                       "exp": now + 600, "projects": list(projects)}, secret, algorithm="HS256")


@pytest.fixture(scope="module")
def world(secret, tmp_path_factory):
    from quay_standin import QuayStandIn
    tmp = tmp_path_factory.mktemp("quay")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    registry_port = free_port()
    host = f"127.0.0.1:{registry_port}"
    standin = QuayStandIn(host, {
        f"{ORG}+my_app_push": {"federation": [{"issuer": issuer, "subject": "project:my-app:push"}],
                               "permissions": {f"{ORG}/my-app": "write"}},
        # A trailing `/` on the configured issuer: Quay normalises it.
        f"{ORG}+my_app_pull": {"federation": [{"issuer": issuer + "/", "subject": "project:my-app:pull"}],
                               "permissions": {f"{ORG}/my-app": "read"}},
        # other-app's push robot holds write on its repository but is federated with
        # my-app's subject only: `project:other-app:push` matches none of ITS entries.
        f"{ORG}+other_app_push": {"federation": [{"issuer": issuer, "subject": "project:my-app:push"}],
                                  "permissions": {f"{ORG}/other-app": "write"}},
        # (no rise+other_app_pull robot at all)
    }, on_secret=remember_secret)  # every token it issues or receives: looked for in worker logs
    registry = registry_tools.DockerRegistry(
        tmp, registry_port, realm=standin.realm, service=host, issuer=standin.realm_issuer,
        cert_pem=standin.signer.cert_pem, log_path=ROOT / "target" / "e2e-docker-registry-quay.log")
    worker = None
    try:
        keys = ["es256_a", "rs256"]
        worker = Worker({
            "RISE_REGISTRY__TYPE": "quay",
            "RISE_REGISTRY__REGISTRY_URL": host,
            "RISE_REGISTRY__ORGANIZATION": ORG,
            "RISE_REGISTRY__QUAY_ENDPOINT": standin.url,
            "RISE_OIDC__ISSUER": issuer,
            "RISE_OIDC__SIGNING_KEYS": json.dumps([f"OIDC_KEY_{k.upper()}" for k in keys]),
        }, "quay", port=port, secrets={"RISE_JWT_SECRET": base64.b64encode(secret).decode(),
                                       **{f"OIDC_KEY_{k.upper()}": (KEYS / f"{k}.pem").read_text() for k in keys}})
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
    accepted = next(a for a in standin.accepted if a["token"] == password)
    basic = "Basic " + base64.b64encode(f"{accepted['robot']}:{accepted['jwt']}".encode()).decode()
    request = next(r for r in standin.federation_requests if r.header("Authorization") == basic)
    return accepted, request


def broker_jwks(world):
    with urllib.request.urlopen(world["issuer"] + "/.well-known/jwks.json", timeout=10) as r:
        return json.load(r)["keys"]


def test_answer_and_what_quay_saw(world, secret):
    standin = world["standin"]
    data = credentials(world, secret)
    creds = data["credentials"]
    assert data == {"credentials": {"registry_url": world["registry"], "username": f"{ORG}+my_app_push",
                                    "password": creds["password"], "expires_in": creds["expires_in"]},
                    "repository": f"{ORG}/my-app", "image": f"{world['registry']}/{ORG}/my-app",
                    "auth_method": "login_credentials"}
    accepted, request = exchange_for(standin, creds["password"])
    # The password is the Quay token, issued for this robot.
    issued = next(t for t in standin.robot_tokens if t["token"] == creds["password"])
    assert issued["robot"] == f"{ORG}+my_app_push"
    assert issued["claims"]["sub"] == f"{ORG}+my_app_push" and issued["claims"]["aud"] == world["registry"]
    expected = issued["claims"]["exp"] - 60 - time.time()
    assert expected - 3 <= creds["expires_in"] <= expected + 1, creds["expires_in"]

    # What Quay verified: the broker's RSA key (listed second), found through discovery.
    issuer = world["issuer"]
    assert accepted["fetched"] == [issuer + "/.well-known/openid-configuration", issuer + "/.well-known/jwks.json"]
    header, claims = accepted["header"], accepted["claims"]
    assert header["alg"] == "RS256"
    assert header["kid"] == next(k["kid"] for k in broker_jwks(world) if k["kty"] == "RSA")
    assert claims["iss"] == issuer and claims["sub"] == "project:my-app:push"
    assert "aud" not in claims  # DESIGN.md: `audience` (none) by default: no `aud` claim
    assert claims["iat"] <= time.time() + 1 and 0 < claims["exp"] - claims["iat"] <= 3600

    # The request: a GET with Basic `{org}+{robot}:{broker token}` and nothing else.
    assert request.method == "GET" and request.path == "/oauth2/federation/robot/token"
    assert request.query == [] and request.body == b""
    username, _, password = base64.b64decode(request.header("Authorization")[6:]).decode().partition(":")
    assert username == f"{ORG}+my_app_push" and password == accepted["jwt"]


def test_push_and_pull_back_byte_identical(world, secret):
    data = credentials(world, secret)
    creds, repository = data["credentials"], data["repository"]
    push(world["image"], world["registry"], repository, "v1", creds)
    pushed = inspect_raw(f"oci:{world['image']}:v1")
    assert inspect_raw(f"docker://{world['registry']}/{repository}:v1", creds) == pushed
    pull(world["registry"], repository, "v1", creds, world["tmp"] / "pulled")
    assert inspect_raw(f"oci:{world['tmp']}/pulled:v1") == pushed
    # skopeo presented the robot and the Quay token at Quay's realm, and got push.
    basic = "Basic " + base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    assert any(r.header("Authorization") == basic for r in world["standin"].realm_requests)
    grants = [t["access"] for t in world["standin"].registry_tokens if t["source"] == creds["password"]]
    assert {"type": "repository", "name": f"{ORG}/my-app", "actions": ["pull", "push"]} in sum(grants, [])


def test_other_projects_repositories_are_refused(world, secret):
    creds = credentials(world, secret)["credentials"]
    for repository in (f"{ORG}/other-app", f"{ORG}/my-app2", "other-org/my-app", "my-app"):
        result = push(world["image"], world["registry"], repository, "v1", creds, check=False)
        assert refused(result), (repository, result.stderr)


def test_pull_credentials_pull_but_cannot_push(world, secret):
    seed = credentials(world, secret)
    push(world["image"], world["registry"], f"{ORG}/my-app", "v2", seed["credentials"])
    data = credentials(world, secret, access="pull")
    creds = data["credentials"]
    assert creds["username"] == f"{ORG}+my_app_pull" and data["repository"] == f"{ORG}/my-app"
    accepted, request = exchange_for(world["standin"], creds["password"])
    assert accepted["robot"] == f"{ORG}+my_app_pull"
    assert accepted["claims"]["sub"] == "project:my-app:pull" and accepted["header"]["alg"] == "RS256"
    pull(world["registry"], f"{ORG}/my-app", "v2", creds, world["tmp"] / "pull-only")
    result = push(world["image"], world["registry"], f"{ORG}/my-app", "v3", creds, check=False)
    assert refused(result), result.stderr


@pytest.mark.parametrize("access, reason", [("push", "subject"), ("pull", "unknown_robot")])
def test_no_federation_for_the_project_is_upstream_denied(world, secret, access, reason):
    """other-app's push robot is federated for my-app's subject only; its pull robot does
    not exist. Quay answers 401, the broker 502 upstream_denied without any token text."""
    standin = world["standin"]
    issued, refused_before = len(standin.robot_tokens), len(standin.refused)
    status, _, body = get_credentials(world, secret, project="other-app", access=access)
    assert status == 502, body
    error = json.loads(body)
    assert set(error) >= {"error", "code"} and error["code"] == "upstream_denied"
    assert isinstance(error["error"], str) and error["error"]
    new = standin.refused[refused_before:]
    # One request: a denial is not retried.
    assert len(new) == 1 and new[0]["reason"] == reason and new[0]["status"] == 401, new
    # Quay's message is free text that may quote claims: the broker repeats neither it nor a token.
    assert "eyJ" not in body and new[0]["body"]["error"] not in body
    assert new[0]["robot"] == f"{ORG}+other_app_{access}"
    assert len(standin.robot_tokens) == issued


def test_a_second_identical_request_is_served_from_the_cache(world, secret):
    first = credentials(world, secret, access="pull")
    before = world["standin"].count()
    second = credentials(world, secret, access="pull")
    assert world["standin"].count() == before, "the cached answer made an upstream call"
    assert second["credentials"]["password"] == first["credentials"]["password"]


def test_the_stand_in_is_strict(world, secret):
    """Not vacuous: with the broker's kid and claims, the stand-in refuses ES256 (even with
    the broker's own published EC key), a missing kid, another RSA key, a missing iat, and a
    subject federated on another robot; and its realm refuses a robot token under another
    robot's name."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from standin_common import TokenRefused
    standin = world["standin"]
    jwks = broker_jwks(world)
    rsa_kid = next(k["kid"] for k in jwks if k["kty"] == "RSA")
    ec_kid = next(k["kid"] for k in jwks if k["kty"] == "EC")
    now = int(time.time())
    claims = {"iss": world["issuer"], "aud": world["registry"], "sub": "project:my-app:push",
              "iat": now, "exp": now + 300}
    rs256 = (KEYS / "rs256.pem").read_text()
    robot = standin.robots[f"{ORG}+my_app_push"]
    good = jwt.encode(claims, rs256, algorithm="RS256", headers={"kid": rsa_kid})
    assert standin.verify_federated_token(robot, good)[1]["sub"] == "project:my-app:push"
    no_iat = {k: v for k, v in claims.items() if k != "iat"}
    for token, target, reason in [
        (jwt.encode(claims, (KEYS / "es256_a.pem").read_text(), algorithm="ES256", headers={"kid": ec_kid}),
         robot, "alg"),
        (jwt.encode(claims, rs256, algorithm="RS256"), robot, "kid_missing"),
        (jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                    headers={"kid": rsa_kid}), robot, "signature"),
        (jwt.encode(no_iat, rs256, algorithm="RS256", headers={"kid": rsa_kid}), robot, "claims"),
        (good, standin.robots[f"{ORG}+my_app_pull"], "subject"),
        (jwt.encode({**claims, "iss": "https://elsewhere.example"}, rs256, algorithm="RS256",
                    headers={"kid": rsa_kid}), robot, "issuer"),
    ]:
        with pytest.raises(TokenRefused) as raised:
            standin.verify_federated_token(target, token)
        assert raised.value.code == reason

    creds = credentials(world, secret)["credentials"]
    scope = urllib.parse.urlencode({"service": world["registry"], "scope": f"repository:{ORG}/my-app:pull"})
    for username, expected in [(creds["username"], 200), (f"{ORG}+my_app_pull", 401), (f"{ORG}+other_app_push", 401)]:
        basic = base64.b64encode(f"{username}:{creds['password']}".encode()).decode()
        req = urllib.request.Request(f"{standin.realm}?{scope}", headers={"Authorization": f"Basic {basic}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, answer = r.status, json.load(r)
                remember_secret(answer["token"])
        except urllib.error.HTTPError as err:
            status = err.code
        assert status == expected, username
