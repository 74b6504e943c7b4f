"""Keyless Azure Container Registry, end to end: the broker under `wrangler dev` with `[oidc]`
and `type = "acr"`, configured from vars only, against a strict stand-in of Microsoft Entra
and an ACR token service (tests/helpers/azure_standin.py). Entra verifies the broker's
client assertion over discovery + JWKS against user-assigned identities' federated identity
credentials (RS256 only, exact subject); ACR exchanges the Entra token for a refresh token,
then for a repository-scoped access token limited by the identity's ABAC role assignment.
A Debian `docker-registry` takes the stand-in's ACR tokens; `skopeo` pushes and pulls with
exactly the username and password the broker returned.

Two brokers share the stand-in: `client_ids` per project with `scope_to_repository` (the
default), signing keys es256_a + rs256 (so the first RSA key must sign); and one `client_id`
with `scope_to_repository = false` and a namespace, signing with rs256 alone. What the broker
sent is compared with azure-identity and azure-containerregistry (the official clients)."""
import base64
import json
import sys
import time
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
TENANT = "72f988bf-0000-4000-8000-0000000e2e00"
NULL_GUID = "00000000-0000-0000-0000-000000000000"
FIC_AUDIENCE = "api://AzureADTokenExchange"
ACR_SCOPE = "https://containerregistry.azure.net/.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# User-assigned managed identities (client ids), one per (project, access) as PROVIDERS.md §2c
# suggests; lib-app has a push identity only (the broker narrows it for pull requests).
MY_APP_PUSH = "1a1a1a1a-0000-4000-8000-00000000a001"
MY_APP_PULL = "2b2b2b2b-0000-4000-8000-00000000a002"
LIB_APP_PUSH = "3c3c3c3c-0000-4000-8000-00000000a003"
CALLER_PROJECTS = ("my-app", "other-app", "lib-app")
NAMESPACE = "apps"  # the second broker's


def caller_token(secret, projects=CALLER_PROJECTS):
    now = int(time.time())
    return jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": "e2e-ci@example.com", "iat": now,
                       "exp": now + 600, "projects": list(projects)}, secret, algorithm="HS256")


def fic(issuer, subject):
    return {"issuer": issuer, "subject": subject, "audiences": [FIC_AUDIENCE]}


def acr_worker(name, port, secret, standin, registry, keys, **extra):
    variables = {
        "RISE_REGISTRY__TYPE": "acr",
        "RISE_REGISTRY__REGISTRY_URL": registry.host,
        "RISE_REGISTRY__TENANT_ID": TENANT,
        "RISE_REGISTRY__AUTHORITY": standin.authority,
        "RISE_REGISTRY__ACR_ENDPOINT": standin.acr_url,
        "RISE_OIDC__ISSUER": f"http://127.0.0.1:{port}",
        "RISE_OIDC__SIGNING_KEYS": json.dumps([f"OIDC_KEY_{k.upper()}" for k in keys]),
        **{f"RISE_REGISTRY__{k.upper()}": v for k, v in extra.items()},
    }
    secrets = {"RISE_JWT_SECRET": base64.b64encode(secret).decode(),
               **{f"OIDC_KEY_{k.upper()}": (KEYS / f"{k}.pem").read_text() for k in keys}}
    return Worker(variables, f"acr-{name}", secrets=secrets, port=port)


@pytest.fixture(scope="module")
def world(secret, tmp_path_factory):
    from azure_standin import AzureStandIn
    tmp = tmp_path_factory.mktemp("acr")
    ports = {"scoped": free_port(), "refresh": free_port()}
    issuers = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    registry_port = free_port()
    login_server = f"127.0.0.1:{registry_port}"
    standin = AzureStandIn(TENANT, login_server, {
        MY_APP_PUSH: {"federated_credentials": [fic(issuers["scoped"], "project:my-app:push"),
                                                fic(issuers["refresh"], "project:my-app:push")],
                      "repositories": {"my-app": "writer", f"{NAMESPACE}/my-app": "writer"}},
        MY_APP_PULL: {"federated_credentials": [fic(issuers["scoped"], "project:my-app:pull")],
                      "repositories": {"my-app": "reader"}},
        LIB_APP_PUSH: {"federated_credentials": [fic(issuers["scoped"], "project:lib-app:push"),
                                                 fic(issuers["scoped"], "project:lib-app:pull")],
                       "repositories": {"lib-app": "writer"}},
    }, on_secret=remember_secret)  # each token it issues or receives: looked for in worker logs
    registry = registry_tools.DockerRegistry(
        tmp, registry_port, realm=standin.acr_url + "/oauth2/token", service=login_server,
        issuer=standin.realm_issuer, cert_pem=standin.signer.cert_pem,
        log_path=ROOT / "target" / "e2e-docker-registry-acr.log")
    workers = {}
    try:
        workers["scoped"] = acr_worker("scoped", ports["scoped"], secret, standin, registry, ["es256_a", "rs256"],
                                       client_ids=json.dumps({"my-app": {"push": MY_APP_PUSH, "pull": MY_APP_PULL},
                                                              "lib-app": {"push": LIB_APP_PUSH}}))
        # Without narrowing the broker requires an identity per (project, access): a single
        # `client_id` (or a push identity serving pull) is refused at config load, since the
        # refresh token reaches whatever the identity can. `other-app` maps to my-app's
        # identities, whose federated credentials name only my-app's subjects.
        ids = {"push": MY_APP_PUSH, "pull": MY_APP_PULL}
        workers["refresh"] = acr_worker("refresh", ports["refresh"], secret, standin, registry, ["rs256"],
                                        client_ids=json.dumps({"my-app": ids, "other-app": ids}),
                                        scope_to_repository="false", namespace=NAMESPACE)
        yield {"standin": standin, "registry": login_server, "workers": workers, "tmp": tmp, "issuers": issuers,
               "image": registry_tools.oci_image(tmp)}
    finally:
        for w in workers.values():
            w.stop()
        registry.stop()
        standin.stop()


def get_credentials(world, secret, project="my-app", access="push", worker="scoped"):
    query = f"project={project}" + ("" if access == "push" else f"&access={access}")
    return world["workers"][worker].get(f"/registry/credentials?{query}", caller_token(secret))


def credentials(world, secret, **kwargs):
    status, _, body = get_credentials(world, secret, **kwargs)
    assert status == 200, body
    data = json.loads(body)
    remember_secret(data["credentials"]["password"])
    return data


def chain(standin, password):
    """Walks back from an ACR access token the broker returned to the requests that made it:
    {access, refresh, entra, assertion (verified), entra_request, exchange_request, token_request}."""
    access = next(a for a in standin.access_tokens if a["access_token"] == password and a["via"] == "token")
    refresh = next(r for r in standin.refresh_tokens if r["refresh_token"] == access["source"])
    return {"access": access, "refresh": refresh, **entra_chain(standin, refresh),
            "token_request": next(r for r in standin.token_requests
                                  if r.form_dict.get("refresh_token") == refresh["refresh_token"])}


def entra_chain(standin, refresh):
    entra = next(e for e in standin.entra_tokens if e["access_token"] == refresh["entra_token"])
    return {"entra": entra,
            "assertion": next(a for a in standin.accepted if a["assertion"] == entra["assertion"]),
            "entra_request": next(r for r in standin.entra_requests
                                  if r.form_dict.get("client_assertion") == entra["assertion"]),
            "exchange_request": next(r for r in standin.exchange_requests
                                     if r.form_dict.get("access_token") == entra["access_token"])}


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def broker_jwks(world, worker):
    with urllib.request.urlopen(world["issuers"][worker] + "/.well-known/jwks.json", timeout=10) as r:
        return json.load(r)["keys"]


def test_scoped_answer_and_what_entra_and_acr_saw(world, secret):
    standin = world["standin"]
    data = credentials(world, secret)
    creds = data["credentials"]
    assert data == {"credentials": {"registry_url": world["registry"], "username": NULL_GUID,
                                    "password": creds["password"], "expires_in": creds["expires_in"]},
                    "repository": "my-app", "image": f"{world['registry']}/my-app",
                    "auth_method": "login_credentials"}
    links = chain(standin, creds["password"])
    access = links["access"]["claims"]
    assert access["sub"] == MY_APP_PUSH
    assert access["access"] == [{"type": "repository", "name": "my-app", "actions": ["pull", "push"]}]
    expected = access["exp"] - 60 - time.time()
    assert expected - 3 <= creds["expires_in"] <= expected + 1, creds["expires_in"]

    # Entra: the push identity, the broker's RS256 key (not the ES256 key listed first),
    # found through the broker's discovery document.
    issuer = world["issuers"]["scoped"]
    assertion = links["assertion"]
    assert assertion["client_id"] == MY_APP_PUSH
    assert assertion["fetched"] == [issuer + "/.well-known/openid-configuration", issuer + "/.well-known/jwks.json"]
    header, claims = assertion["header"], assertion["claims"]
    assert header["alg"] == "RS256"
    assert header["kid"] == next(k["kid"] for k in broker_jwks(world, "scoped") if k["kty"] == "RSA")
    assert claims["iss"] == issuer and claims["aud"] == FIC_AUDIENCE and claims["sub"] == "project:my-app:push"
    assert claims["iat"] <= time.time() + 1 and 0 < claims["exp"] - claims["iat"] <= 3600

    entra = links["entra_request"]
    assert entra.path == f"/{TENANT}/oauth2/v2.0/token"
    assert entra.media_type == "application/x-www-form-urlencoded"
    assert entra.header("Authorization") is None
    assert entra.form_dict == {"client_assertion": links["entra"]["assertion"], "client_assertion_type": ASSERTION_TYPE,
                               "client_id": MY_APP_PUSH, "grant_type": "client_credentials", "scope": ACR_SCOPE}

    exchange = links["exchange_request"]
    assert exchange.media_type == "application/x-www-form-urlencoded"
    assert set(dict(exchange.query)) <= {"api-version"}
    assert exchange.form_dict == {"grant_type": "access_token", "service": world["registry"], "tenant": TENANT,
                                  "access_token": links["entra"]["access_token"]}
    token = links["token_request"]
    assert token.media_type == "application/x-www-form-urlencoded"
    assert token.form_all("scope") == ["repository:my-app:pull,push"]
    assert token.form_dict == {"service": world["registry"], "scope": "repository:my-app:pull,push",
                               "refresh_token": links["refresh"]["refresh_token"], "grant_type": "refresh_token"}


def test_push_and_pull_back_byte_identical(world, secret):
    data = credentials(world, secret)
    creds, repository = data["credentials"], data["repository"]
    push(world["image"], world["registry"], repository, "v1", creds)
    pushed = inspect_raw(f"oci:{world['image']}:v1")
    assert inspect_raw(f"docker://{world['registry']}/{repository}:v1", creds) == pushed
    pull(world["registry"], repository, "v1", creds, world["tmp"] / "pulled")
    assert inspect_raw(f"oci:{world['tmp']}/pulled:v1") == pushed
    # skopeo presented the null GUID and the broker's access token at the realm.
    basic = "Basic " + base64.b64encode(f"{NULL_GUID}:{creds['password']}".encode()).decode()
    assert any(r.header("Authorization") == basic for r in world["standin"].realm_requests)


def test_other_projects_repositories_are_refused(world, secret):
    creds = credentials(world, secret)["credentials"]
    for repository in ("other-app", "my-app2", "lib-app", f"{NAMESPACE}/my-app", "my-app/nested"):
        result = push(world["image"], world["registry"], repository, "v1", creds, check=False)
        assert refused(result), (repository, result.stderr)


def test_pull_credentials_pull_but_cannot_push(world, secret):
    seed = credentials(world, secret)
    push(world["image"], world["registry"], "my-app", "v2", seed["credentials"])
    data = credentials(world, secret, access="pull")
    links = chain(world["standin"], data["credentials"]["password"])
    assert links["assertion"]["client_id"] == MY_APP_PULL
    assert links["assertion"]["claims"]["sub"] == "project:my-app:pull"
    assert links["token_request"].form_all("scope") == ["repository:my-app:pull"]
    assert links["access"]["claims"]["access"] == [{"type": "repository", "name": "my-app", "actions": ["pull"]}]
    pull(world["registry"], "my-app", "v2", data["credentials"], world["tmp"] / "pull-only")
    result = push(world["image"], world["registry"], "my-app", "v3", data["credentials"], check=False)
    assert refused(result), result.stderr


def test_push_identity_serving_pull_is_narrowed_to_pull(world, secret):
    """lib-app has no pull identity: its push identity (a writer) serves pull requests, and
    the repository scope keeps those credentials to pull."""
    push_data = credentials(world, secret, project="lib-app")
    push(world["image"], world["registry"], "lib-app", "v1", push_data["credentials"])
    data = credentials(world, secret, project="lib-app", access="pull")
    links = chain(world["standin"], data["credentials"]["password"])
    assert links["assertion"]["client_id"] == LIB_APP_PUSH
    assert links["assertion"]["claims"]["sub"] == "project:lib-app:pull"
    assert links["token_request"].form_all("scope") == ["repository:lib-app:pull"]
    pull(world["registry"], "lib-app", "v1", data["credentials"], world["tmp"] / "lib-pull")
    result = push(world["image"], world["registry"], "lib-app", "v2", data["credentials"], check=False)
    assert refused(result), result.stderr


def test_project_without_identity_is_refused_before_any_upstream_call(world, secret):
    before = world["standin"].count()
    status, _, body = get_credentials(world, secret, project="other-app")
    assert status == 403, body
    error = json.loads(body)
    assert error["code"] == "forbidden" and isinstance(error["error"], str) and error["error"]
    assert world["standin"].count() == before


def test_a_second_identical_request_is_served_from_the_cache(world, secret):
    first = credentials(world, secret, access="pull")
    before = world["standin"].count()
    second = credentials(world, secret, access="pull")
    assert world["standin"].count() == before, "the cached answer made an upstream call"
    assert second["credentials"]["password"] == first["credentials"]["password"]


def test_refresh_token_when_not_scoped_to_the_repository(world, secret):
    standin = world["standin"]
    token_calls = len(standin.token_requests)
    data = credentials(world, secret, worker="refresh")
    creds = data["credentials"]
    assert data["repository"] == f"{NAMESPACE}/my-app"
    assert data["image"] == f"{world['registry']}/{NAMESPACE}/my-app"
    assert creds["username"] == NULL_GUID and creds["registry_url"] == world["registry"]
    refresh = next(r for r in standin.refresh_tokens if r["refresh_token"] == creds["password"])
    assert refresh["client_id"] == MY_APP_PUSH
    claims = claims_of(creds["password"])
    assert claims["grant_type"] == "refresh_token" and claims["iss"] == "Azure Container Registry"
    assert claims["aud"] == world["registry"]
    expected = claims["exp"] - 60 - time.time()
    assert expected - 3 <= creds["expires_in"] <= expected + 1, creds["expires_in"]
    assert len(standin.token_requests) == token_calls, "no /oauth2/token call without scope_to_repository"
    links = entra_chain(standin, refresh)
    assert links["assertion"]["claims"]["iss"] == world["issuers"]["refresh"]
    assert links["assertion"]["header"]["alg"] == "RS256"
    push(world["image"], world["registry"], f"{NAMESPACE}/my-app", "v1", creds)
    result = push(world["image"], world["registry"], "other-app", "v1", creds, check=False)
    assert refused(result), result.stderr


def test_federated_subject_must_match_exactly(world, secret):
    """An identity federated for my-app only: Entra refuses `project:other-app:push` (no FIC
    with that subject), and the broker answers an error without any token in it."""
    standin = world["standin"]
    issued = len(standin.entra_tokens)
    status, _, body = get_credentials(world, secret, project="other-app", worker="refresh")
    # The cloud refused the broker: a 502 with one of docs/api.md's upstream codes.
    assert status == 502, body
    error = json.loads(body)
    assert error["code"] in ("upstream_denied", "upstream_error") and isinstance(error["error"], str)
    assert standin.refused[-1]["reason"] == "fic_subject"
    assert len(standin.entra_tokens) == issued
    assert "eyJ" not in body


def test_the_stand_in_trusts_only_the_brokers_rsa_key(world, secret):
    """Not vacuous: with the broker's kid and claims, a token signed by another key is
    refused, and so is one signed ES256 with the broker's own published EC key."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from standin_common import TokenRefused
    standin = world["standin"]
    jwks = broker_jwks(world, "scoped")
    now = int(time.time())
    claims = {"iss": world["issuers"]["scoped"], "aud": FIC_AUDIENCE, "sub": "project:my-app:push",
              "iat": now, "nbf": now, "exp": now + 300}
    identity = standin.identities[MY_APP_PUSH]
    rsa_kid = next(k["kid"] for k in jwks if k["kty"] == "RSA")
    ec_kid = next(k["kid"] for k in jwks if k["kty"] == "EC")
    good = jwt.encode(claims, (KEYS / "rs256.pem").read_text(), algorithm="RS256", headers={"kid": rsa_kid})
    assert standin.verify_assertion(identity, good)[1]["sub"] == "project:my-app:push"
    for token, reason in [
        (jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                    headers={"kid": rsa_kid}), "signature"),
        (jwt.encode(claims, (KEYS / "es256_a.pem").read_text(), algorithm="ES256", headers={"kid": ec_kid}), "alg"),
    ]:
        with pytest.raises(TokenRefused) as raised:
            standin.verify_assertion(identity, token)
        assert raised.value.code == reason


def test_requests_match_azure_identity_and_azure_containerregistry(world, secret):
    """The official clients, given the same inputs the broker had (its assertion, client id,
    tenant, Entra token, refresh token, scope), send the same requests: compared field by field."""
    from azure.containerregistry._exchange_client import ACRExchangeClient
    from azure.core.credentials import AccessToken
    from azure.identity import ClientAssertionCredential
    from standin_common import StandInServer
    standin = world["standin"]
    links = chain(standin, credentials(world, secret)["credentials"]["password"])

    def answer(req):
        if req.path.endswith("/oauth2/v2.0/token"):
            return 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": "capture-entra-token"}
        if req.path == "/oauth2/exchange":
            return 200, {"refresh_token": links["refresh"]["refresh_token"]}
        return 200, {"access_token": links["access"]["access_token"]}

    entra_capture = StandInServer(answer, tls=True, name="entra-capture")  # azure-identity wants https
    acr_capture = StandInServer(answer, name="acr-capture")
    try:
        ClientAssertionCredential(TENANT, links["entra"]["client_id"], lambda: links["entra"]["assertion"],
                                  authority=entra_capture.url, connection_verify=entra_capture.ca_file,
                                  ).get_token(ACR_SCOPE)
        oracle, broker = entra_capture.requests[-1], links["entra_request"]
        assert broker.path == oracle.path
        assert broker.form_dict == oracle.form_dict
        assert broker.media_type == oracle.media_type

        class Fixed:  # the Entra token the broker exchanged
            def get_token(self, *scopes, **kwargs):
                return AccessToken(links["entra"]["access_token"], int(time.time()) + 3000)

        client = ACRExchangeClient(acr_capture.url, Fixed(), credential_scopes=[ACR_SCOPE])
        client.exchange_aad_token_for_refresh_token(world["registry"], tenant=TENANT)
        oracle, broker = acr_capture.requests[-1], links["exchange_request"]
        assert broker.path == oracle.path == "/oauth2/exchange"  # the SDK adds ?api-version: either works
        assert broker.form_dict == oracle.form_dict
        assert broker.media_type == oracle.media_type
        client.exchange_refresh_token_for_access_token(links["refresh"]["refresh_token"], service=world["registry"],
                                                       scope="repository:my-app:pull,push")
        oracle, broker = acr_capture.requests[-1], links["token_request"]
        assert broker.path == oracle.path == "/oauth2/token"
        assert broker.form_dict == oracle.form_dict
        assert broker.form_all("scope") == oracle.form_all("scope")
        assert broker.media_type == oracle.media_type
    finally:
        entra_capture.stop()
        acr_capture.stop()
