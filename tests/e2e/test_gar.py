"""Keyless Google Artifact Registry, end to end: the broker under `wrangler dev` with `[oidc]`
and `type = "gar"`, configured from vars only, against a strict stand-in of Google STS, IAM
Credentials and Artifact Registry's token realm (tests/helpers/gcp_standin.py), which
verifies the broker's tokens over discovery + JWKS as Google does. A Debian `docker-registry`
trusts the stand-in's registry tokens; `skopeo` pushes and pulls with exactly the username
and password the broker returned.

Two brokers share the stand-in (one workload identity pool, one OIDC provider per broker
issuer): direct federation signing ES256 (the first of es256_a + rs256), and service-account
impersonation signing RS256 with `token_seconds = 900`. What the broker sent is compared with
what google-auth sends for the same inputs (the official client as oracle)."""
import base64
import json
import sys
import time
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
PROJECT_NUMBER = "424242424242"
POOL = "rise-pool"
GCP_PROJECT = "rise-gcp"
LOCATION = "europe-west1"
SERVICE = "artifactregistry.standin.test"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
PROVIDERS = {"direct": "rise-direct", "sa": "rise-sa"}
# google-auth's sts.Client.exchange_token field order (empty fields dropped).
STS_FIELDS = ["grant_type", "audience", "scope", "requested_token_type", "subject_token", "subject_token_type"]
STS_FORM = {
    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
    "scope": CLOUD_PLATFORM,
    "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
    "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
}
SA_TOKEN_SECONDS = 900


def provider_path(name):
    return f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{POOL}/providers/{name}"


def audience(name):
    return "//iam.googleapis.com/" + provider_path(name)


def principal(sub):
    return f"principal://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/" \
           f"{POOL}/subject/{sub}"


def service_account(access, project):
    return f"rise-{access}-{project}@{GCP_PROJECT}.iam.gserviceaccount.com"


def caller_token(secret, projects=("my-app", "other-app")):
    now = int(time.time())
    return jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": "e2e-ci@example.com", "iat": now,
                       "exp": now + 600, "projects": list(projects)}, secret, algorithm="HS256")


def gar_worker(name, port, secret, standin, registry, keys, **extra):
    variables = {
        "RISE_REGISTRY__TYPE": "gar",
        "RISE_REGISTRY__LOCATION": LOCATION,
        "RISE_REGISTRY__GCP_PROJECT": GCP_PROJECT,
        "RISE_REGISTRY__WORKLOAD_IDENTITY_PROVIDER": provider_path(PROVIDERS[name]),
        "RISE_REGISTRY__REGISTRY_URL": registry.host,
        "RISE_REGISTRY__STS_ENDPOINT": standin.url,
        "RISE_REGISTRY__IAMCREDENTIALS_ENDPOINT": standin.url,
        "RISE_OIDC__ISSUER": f"http://127.0.0.1:{port}",
        "RISE_OIDC__SIGNING_KEYS": json.dumps([f"OIDC_KEY_{k.upper()}" for k in keys]),
        **{f"RISE_REGISTRY__{k.upper()}": v for k, v in extra.items()},
    }
    secrets = {"RISE_JWT_SECRET": base64.b64encode(secret).decode(),
               **{f"OIDC_KEY_{k.upper()}": (KEYS / f"{k}.pem").read_text() for k in keys}}
    return Worker(variables, f"gar-{name}", secrets=secrets, port=port)


@pytest.fixture(scope="module")
def world(secret, tmp_path_factory):
    from gcp_standin import GcpStandIn
    tmp = tmp_path_factory.mktemp("gar")
    ports = {"direct": free_port(), "sa": free_port()}
    standin = GcpStandIn(
        PROJECT_NUMBER, POOL,
        {PROVIDERS[n]: {"issuer": f"http://127.0.0.1:{p}"} for n, p in ports.items()},
        GCP_PROJECT, SERVICE,
        repository_bindings={
            # Direct access: the federated principals hold AR roles on the repository.
            "my-app": {principal("project:my-app:push"): "writer", principal("project:my-app:pull"): "reader"},
            "other-app": {principal("project:other-app:push"): "writer"},
            # Impersonation: only the service accounts do (so only their tokens push here).
            "rise-my-app": {"serviceAccount:" + service_account("push", "my-app"): "writer",
                            "serviceAccount:" + service_account("pull", "my-app"): "reader"},
        },
        service_account_bindings={
            service_account("push", "my-app"): [principal("project:my-app:push")],
            service_account("pull", "my-app"): [principal("project:my-app:pull")],
        },
        on_secret=remember_secret)  # each token it issues or receives: looked for in worker logs
    registry = registry_tools.DockerRegistry(
        tmp, free_port(), realm=standin.url + "/token", service=SERVICE, issuer=standin.realm_issuer,
        cert_pem=standin.signer.cert_pem, log_path=ROOT / "target" / "e2e-docker-registry-gar.log")
    workers = {}
    try:
        workers["direct"] = gar_worker("direct", ports["direct"], secret, standin, registry, ["es256_a", "rs256"])
        workers["sa"] = gar_worker("sa", ports["sa"], secret, standin, registry, ["rs256"],
                                   service_account=f"rise-{{access}}-{{project}}@{GCP_PROJECT}.iam.gserviceaccount.com",
                                   token_seconds=str(SA_TOKEN_SECONDS), repository="rise-{project}")
        yield {"standin": standin, "registry": registry.host, "workers": workers, "tmp": tmp,
               "image": registry_tools.oci_image(tmp), "issuers": {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}}
    finally:
        for w in workers.values():
            w.stop()
        registry.stop()
        standin.stop()


def get_credentials(world, secret, project="my-app", access="push", worker="direct"):
    query = f"project={project}" + ("" if access == "push" else f"&access={access}")
    return world["workers"][worker].get(f"/registry/credentials?{query}", caller_token(secret))


def credentials(world, secret, **kwargs):
    status, _, body = get_credentials(world, secret, **kwargs)
    assert status == 200, body
    data = json.loads(body)
    remember_secret(data["credentials"]["password"])
    return data


def accepted_for(standin, password):
    """The verified exchange that issued `password` (direct federation)."""
    matches = [a for a in standin.accepted if a["access_token"] == password]
    assert len(matches) == 1, "the password is not an access token the stand-in issued"
    return matches[0]


def broker_jwks(world, worker):
    with urllib.request.urlopen(world["issuers"][worker] + "/.well-known/jwks.json", timeout=10) as r:
        return json.load(r)["keys"]


def test_direct_federation_answer_and_what_google_saw(world, secret):
    data = credentials(world, secret)
    standin = world["standin"]
    creds = data["credentials"]
    repository = f"{GCP_PROJECT}/my-app/my-app"
    assert data == {"credentials": {"registry_url": world["registry"], "username": "oauth2accesstoken",
                                    "password": creds["password"], "expires_in": creds["expires_in"]},
                    "repository": repository, "image": f"{world['registry']}/{repository}",
                    "auth_method": "login_credentials"}
    exchange = accepted_for(standin, creds["password"])
    # expires_in = STS expires_in (3599) − 60 s, less the time since it was issued (cache).
    expected = 3599 - 60 - (time.time() - exchange["issued_at"])
    assert expected - 3 <= creds["expires_in"] <= expected + 1, creds["expires_in"]

    # The stand-in found the key through the broker's discovery document and JWKS.
    issuer = world["issuers"]["direct"]
    assert exchange["fetched"] == [issuer + "/.well-known/openid-configuration", issuer + "/.well-known/jwks.json"]
    header, claims = exchange["header"], exchange["claims"]
    assert header["alg"] == "ES256", "the first signing key (es256_a) signs"
    assert header["kid"] in [k["kid"] for k in broker_jwks(world, "direct")]
    assert claims["iss"] == issuer
    assert claims["aud"] == audience(PROVIDERS["direct"])
    assert claims["sub"] == "project:my-app:push"
    assert exchange["member"] == principal("project:my-app:push")
    assert claims["iat"] <= time.time() + 1 and claims["nbf"] <= time.time() + 1
    assert 0 < claims["exp"] - claims["iat"] <= 3600 and claims["jti"]

    # The request itself: no Authorization header, a form in google-auth's field order.
    sent = next(r for r in standin.sts_requests if r.form_dict.get("subject_token") == exchange["subject_token"])
    assert sent.header("Authorization") is None
    assert sent.media_type == "application/x-www-form-urlencoded"
    assert [k for k, _ in sent.form] == STS_FIELDS
    assert sent.form_dict == {**STS_FORM, "audience": audience(PROVIDERS["direct"]),
                              "subject_token": exchange["subject_token"]}


def test_push_and_pull_back_byte_identical(world, secret):
    data = credentials(world, secret)
    creds, repository = data["credentials"], data["repository"]
    push(world["image"], world["registry"], repository, "v1", creds)
    pushed = inspect_raw(f"oci:{world['image']}:v1")
    assert inspect_raw(f"docker://{world['registry']}/{repository}:v1", creds) == pushed
    pull(world["registry"], repository, "v1", creds, world["tmp"] / "pulled")
    assert inspect_raw(f"oci:{world['tmp']}/pulled:v1") == pushed
    # The realm saw Basic oauth2accesstoken:<the password>, for this repository only.
    scopes = [r.query_one("scope") for r in world["standin"].realm_requests
              if r.header("Authorization") == "Basic " + base64.b64encode(
                  f"oauth2accesstoken:{creds['password']}".encode()).decode()]
    assert f"repository:{repository}:pull,push" in scopes, scopes


def test_other_projects_repositories_are_refused(world, secret):
    creds = credentials(world, secret)["credentials"]
    for repository in (f"{GCP_PROJECT}/other-app/other-app", f"{GCP_PROJECT}/other-app/my-app",
                       f"{GCP_PROJECT}/rise-my-app/my-app", "another-gcp/my-app/my-app"):
        result = push(world["image"], world["registry"], repository, "v1", creds, check=False)
        assert refused(result), (repository, result.stderr)


def test_pull_credentials_pull_but_cannot_push(world, secret):
    seed = credentials(world, secret)
    push(world["image"], world["registry"], seed["repository"], "v2", seed["credentials"])
    data = credentials(world, secret, access="pull")
    assert data["repository"] == seed["repository"]
    exchange = accepted_for(world["standin"], data["credentials"]["password"])
    assert exchange["claims"]["sub"] == "project:my-app:pull"
    assert exchange["member"] == principal("project:my-app:pull")
    pull(world["registry"], data["repository"], "v2", data["credentials"], world["tmp"] / "pull-only")
    result = push(world["image"], world["registry"], data["repository"], "v3", data["credentials"], check=False)
    assert refused(result), result.stderr


def test_a_second_identical_request_is_served_from_the_cache(world, secret):
    first = credentials(world, secret, access="pull")
    before = world["standin"].server.count()
    second = credentials(world, secret, access="pull")
    assert world["standin"].server.count() == before, "the cached answer made an upstream call"
    assert second["credentials"]["password"] == first["credentials"]["password"]
    assert second["credentials"]["expires_in"] <= first["credentials"]["expires_in"]


def test_the_stand_in_trusts_only_the_brokers_published_keys(world, secret):
    """Not vacuous: a token with the broker's kid, iss and aud but signed by another key is
    refused; the same claims signed with the broker's own key (the fixture) are accepted."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from standin_common import TokenRefused
    standin = world["standin"]
    kid = next(k["kid"] for k in broker_jwks(world, "direct") if k["kty"] == "EC")
    now = int(time.time())
    claims = {"iss": world["issuers"]["direct"], "aud": audience(PROVIDERS["direct"]), "sub": "project:my-app:push",
              "iat": now, "nbf": now, "exp": now + 300}
    good = jwt.encode(claims, (KEYS / "es256_a.pem").read_text(), algorithm="ES256", headers={"kid": kid})
    assert standin.verify_subject_token(PROVIDERS["direct"], good)[1]["sub"] == "project:my-app:push"
    rogue = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid})
    with pytest.raises(TokenRefused) as raised:
        standin.verify_subject_token(PROVIDERS["direct"], rogue)
    assert raised.value.code == "signature"
    # The other provider's issuer is not this one's.
    with pytest.raises(TokenRefused):
        standin.verify_subject_token(PROVIDERS["sa"], good)


def test_service_account_impersonation(world, secret):
    standin = world["standin"]
    data = credentials(world, secret, worker="sa")
    creds = data["credentials"]
    repository = f"{GCP_PROJECT}/rise-my-app/my-app"
    assert data["repository"] == repository and data["image"] == f"{world['registry']}/{repository}"
    assert creds["username"] == "oauth2accesstoken" and creds["registry_url"] == world["registry"]
    issued = next(t for t in standin.issued_sa_tokens if t["access_token"] == creds["password"])
    assert issued["service_account"] == service_account("push", "my-app")
    assert issued["lifetime"] == f"{SA_TOKEN_SECONDS}s"
    assert issued["member"] == principal("project:my-app:push")
    expected = issued["expire_time"] - 60 - time.time()
    assert expected - 3 <= creds["expires_in"] <= expected + 1, creds["expires_in"]
    # generateAccessToken carried the STS token of this broker's exchange (RS256, provider rise-sa).
    sent = next(r for r in standin.iam_requests if issued["service_account"] in urllib.parse.unquote(r.path))
    sts_token = sent.header("Authorization").removeprefix("Bearer ")
    exchange = accepted_for(standin, sts_token)
    assert exchange["provider"] == PROVIDERS["sa"] and exchange["header"]["alg"] == "RS256"
    assert exchange["claims"]["aud"] == audience(PROVIDERS["sa"])
    assert exchange["claims"]["iss"] == world["issuers"]["sa"]
    assert sent.media_type == "application/json"
    body = sent.json()
    assert body["lifetime"] == f"{SA_TOKEN_SECONDS}s" and CLOUD_PLATFORM in body["scope"]
    assert not body.get("delegates")
    # Only the service account holds a role on rise-my-app: pushing proves its token is the password.
    push(world["image"], world["registry"], repository, "v1", creds)
    pull_data = credentials(world, secret, worker="sa", access="pull")
    assert next(t for t in standin.issued_sa_tokens if t["access_token"] == pull_data["credentials"]["password"]
                )["service_account"] == service_account("pull", "my-app")
    result = push(world["image"], world["registry"], repository, "v2", pull_data["credentials"], check=False)
    assert refused(result), result.stderr


def test_service_account_without_workload_identity_user_is_an_error(world, secret):
    standin = world["standin"]
    status, _, body = get_credentials(world, secret, project="other-app", worker="sa")
    # The cloud refused the broker: a 502 with one of docs/api.md's upstream codes.
    assert status == 502, body
    error = json.loads(body)
    assert error["code"] in ("upstream_denied", "upstream_error") and isinstance(error["error"], str)
    refusal = standin.refused[-1]
    assert (refusal["status"], refusal["reason"]) == (403, "workload_identity_user")
    for issued in standin.accepted:  # no token of the stand-in's in the error
        assert issued["access_token"] not in body and issued["subject_token"] not in body


def test_requests_match_google_auth(world, secret):
    """google-auth (the reference client) sends the same STS form and the same
    generateAccessToken call for the same inputs: compared field by field."""
    from google.auth import impersonated_credentials
    from google.auth.transport.requests import Request
    from google.oauth2 import credentials as oauth2_credentials
    from google.oauth2 import sts
    from standin_common import StandInServer, utc_rfc3339
    standin = world["standin"]
    credentials(world, secret)  # at least one direct exchange
    credentials(world, secret, worker="sa")
    capture = StandInServer(lambda req: (200, {
        "access_token": "ya29.capture", "issued_token_type": STS_FORM["requested_token_type"],
        "token_type": "Bearer", "expires_in": 3599, "accessToken": "ya29.capture",
        "expireTime": utc_rfc3339(time.time() + 900)}), name="capture")
    try:
        assert {e["provider"] for e in standin.accepted} == set(PROVIDERS.values())
        for exchange in standin.accepted:  # every exchange either broker made
            broker = next(r for r in standin.sts_requests if r.form_dict.get("subject_token") == exchange["subject_token"])
            sts.Client(capture.url + "/v1/token").exchange_token(
                Request(), grant_type=STS_FORM["grant_type"], subject_token=exchange["subject_token"],
                subject_token_type=STS_FORM["subject_token_type"], audience=audience(exchange["provider"]),
                scopes=[CLOUD_PLATFORM], requested_token_type=STS_FORM["requested_token_type"])
            oracle = capture.requests[-1]
            assert broker.path == oracle.path == "/v1/token"
            assert broker.form == oracle.form, "same fields, same values, same order"
            assert broker.media_type == oracle.media_type
            assert broker.header("Authorization") is None and oracle.header("Authorization") is None

        assert standin.iam_requests
        for broker in standin.iam_requests:
            sa = urllib.parse.unquote(broker.path).split("/serviceAccounts/")[1].split(":")[0]
            source = broker.header("Authorization").removeprefix("Bearer ")
            oracle_creds = impersonated_credentials.Credentials(
                source_credentials=oauth2_credentials.Credentials(source), target_principal=sa,
                target_scopes=[CLOUD_PLATFORM], lifetime=SA_TOKEN_SECONDS,
                iam_endpoint_override=f"{capture.url}/v1/projects/-/serviceAccounts/{sa}:generateAccessToken")
            oracle_creds.refresh(Request())
            oracle = capture.requests[-1]
            assert urllib.parse.unquote(broker.path) == oracle.path
            assert broker.header("Authorization") == oracle.header("Authorization")
            assert broker.media_type == oracle.media_type == "application/json"

            def normalized(body):  # google-auth sends "delegates": null; absent and [] mean the same
                return {k: v for k, v in body.items() if not (k == "delegates" and not v)}
            assert normalized(broker.json()) == normalized(oracle.json())
    finally:
        capture.stop()
