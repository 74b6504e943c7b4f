"""The cloud stand-ins checked against the official clients: whatever google-auth,
azure-identity and azure-containerregistry send must be accepted by
tests/helpers/gcp_standin.py and azure_standin.py, and what the stand-ins must refuse is
refused through those same clients. This keeps the stand-ins honest in both directions:
test_gar.py and test_acr.py then compare what the broker sent with what these clients send
for the same inputs.

No broker here: a small loopback issuer serves discovery and JWKS for the fixture keys
(tests/fixtures/oidc), and the subject tokens are minted with PyJWT."""
import base64
import datetime
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "helpers"))
from standin_common import StandInServer  # noqa: E402

KEYS = ROOT / "tests" / "fixtures" / "oidc"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
TENANT = "5f0c7d8e-0000-4000-8000-00000000a11c"
CLIENT = "0d5e6f70-0000-4000-8000-0000000c11e7"
SERVICE_ACCOUNT = "rise-push-my-app@rise-gcp.iam.gserviceaccount.com"


class Issuer:
    """The broker's two discovery routes, for a fixed set of fixture keys (kid = file name)."""

    def __init__(self, names):
        self.keys = {name: (KEYS / f"{name}.pem").read_text() for name in names}
        jwks = []
        for name, pem in self.keys.items():
            public = serialization.load_pem_private_key(pem.encode(), None).public_key()
            rsa_key = name.startswith("rs")
            algorithm = jwt.algorithms.RSAAlgorithm if rsa_key else jwt.algorithms.ECAlgorithm
            jwk = json.loads(algorithm.to_jwk(public))
            jwk.update(kid=name, use="sig", alg="RS256" if rsa_key else "ES256")
            jwks.append(jwk)

        def route(req):
            if req.path == "/.well-known/openid-configuration":
                return 200, {"issuer": self.url, "jwks_uri": self.url + "/.well-known/jwks.json",
                             "id_token_signing_alg_values_supported": ["RS256", "ES256"]}
            if req.path == "/.well-known/jwks.json":
                return 200, {"keys": jwks}
            return 404, {}

        self.server = StandInServer(route, name="issuer")
        self.url = self.server.url

    def mint(self, name, aud, sub, lifetime=300, kid=True, iat_offset=0, iss=None, algorithm=None, **extra):
        now = int(time.time()) + iat_offset
        claims = {"iss": iss or self.url, "aud": aud, "sub": sub, "iat": now, "nbf": now, "exp": now + lifetime,
                  "jti": uuid.uuid4().hex, **extra}
        headers = {"kid": name} if kid else {}
        algorithm = algorithm or ("RS256" if name.startswith("rs") else "ES256")
        return jwt.encode(claims, self.keys[name], algorithm=algorithm, headers=headers)

    def stop(self):
        self.server.stop()


@pytest.fixture(scope="module")
def issuer():
    i = Issuer(["es256_a", "rs256"])
    yield i
    i.stop()


# ---- Google ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gcp(issuer):
    from gcp_standin import GcpStandIn
    standin = GcpStandIn(
        "424242424242", "rise-pool", {"rise-direct": {"issuer": issuer.url}}, "rise-gcp", "standin.test",
        {"my-app": {"principal://iam.googleapis.com/projects/424242424242/locations/global/workloadIdentityPools/"
                    "rise-pool/subject/project:my-app:pull": "reader"}},
        {SERVICE_ACCOUNT: ["principal://iam.googleapis.com/projects/424242424242/locations/global/"
                           "workloadIdentityPools/rise-pool/subject/project:my-app:push"]})
    yield standin
    standin.stop()


def google_exchange(gcp, subject_token, audience=None, scopes=(CLOUD_PLATFORM,)):
    from google.auth.transport.requests import Request
    from google.oauth2 import sts
    return sts.Client(gcp.url + "/v1/token").exchange_token(
        Request(), grant_type=TOKEN_EXCHANGE, subject_token=subject_token, subject_token_type=JWT_TYPE,
        audience=audience or gcp.provider_audience("rise-direct"), scopes=list(scopes),
        requested_token_type=ACCESS_TOKEN_TYPE)


@pytest.mark.parametrize("key", ["es256_a", "rs256"])
def test_google_auth_sts_exchange_is_accepted(gcp, issuer, key):
    audience = gcp.provider_audience("rise-direct")
    token = issuer.mint(key, audience, "project:my-app:push")
    answer = google_exchange(gcp, token)
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3599
    assert answer["issued_token_type"] == ACCESS_TOKEN_TYPE
    accepted = gcp.accepted[-1]
    assert accepted["access_token"] == answer["access_token"]
    assert accepted["member"].endswith("/workloadIdentityPools/rise-pool/subject/project:my-app:push")
    assert accepted["fetched"] == [issuer.url + "/.well-known/openid-configuration",
                                   issuer.url + "/.well-known/jwks.json"]
    assert accepted["header"]["kid"] == key
    # What google-auth sent: no Authorization, a form in its field order.
    sent = gcp.sts_requests[-1]
    assert sent.header("Authorization") is None
    assert sent.media_type == "application/x-www-form-urlencoded"
    assert [k for k, _ in sent.form] == ["grant_type", "audience", "scope", "requested_token_type",
                                         "subject_token", "subject_token_type"]
    # The audience with `https:` in front is the canonical name too.
    assert google_exchange(gcp, issuer.mint(key, "https:" + audience, "project:my-app:push"))["access_token"]


@pytest.mark.parametrize("case, reason, error", [
    ("wrong_aud", "aud", "invalid_grant"),
    ("no_kid", "kid_missing", "invalid_grant"),
    ("unknown_kid", "kid_unknown", "invalid_grant"),
    ("rs384", "alg", "invalid_grant"),
    ("foreign_issuer", "iss", "invalid_grant"),
    ("expired", "exp", "invalid_grant"),
    ("issued_in_future", "iat", "invalid_grant"),
    ("48h", "lifetime", "invalid_grant"),
    ("long_sub", "sub_length", "invalid_grant"),
    ("condition", "attribute_condition", "unauthorized_client"),
    ("forged", "signature", "invalid_grant"),
])
def test_google_sts_refusals(gcp, issuer, case, reason, error):
    from google.auth import exceptions
    audience = gcp.provider_audience("rise-direct")
    mint = issuer.mint
    token = {
        "wrong_aud": lambda: mint("rs256", "//iam.googleapis.com/projects/1/other", "project:my-app:push"),
        "no_kid": lambda: mint("rs256", audience, "project:my-app:push", kid=False),
        "unknown_kid": lambda: jwt.encode({"iss": issuer.url, "aud": audience, "sub": "project:x:push",
                                           "iat": int(time.time()), "exp": int(time.time()) + 60},
                                          issuer.keys["rs256"], algorithm="RS256", headers={"kid": "nope"}),
        "rs384": lambda: mint("rs256", audience, "project:my-app:push", algorithm="RS384"),
        "foreign_issuer": lambda: mint("rs256", audience, "project:my-app:push", iss=issuer.url + "/"),
        "expired": lambda: mint("rs256", audience, "project:my-app:push", iat_offset=-7200, lifetime=3600),
        "issued_in_future": lambda: mint("rs256", audience, "project:my-app:push", iat_offset=600),
        "48h": lambda: mint("rs256", audience, "project:my-app:push", lifetime=48 * 3600),
        "long_sub": lambda: mint("rs256", audience, "project:" + "a" * 120 + ":push"),
        "condition": lambda: mint("rs256", audience, "repo:my-app:push"),
        "forged": lambda: mint("rs256", audience, "project:my-app:push")[:-6] + "AAAAAA",
    }[case]()
    with pytest.raises(exceptions.OAuthError) as raised:
        google_exchange(gcp, token)
    assert json.loads(raised.value.args[1])["error"] == error
    assert gcp.refused[-1]["reason"] == reason


def test_google_sts_refuses_requests_google_would_refuse(gcp, issuer):
    token = issuer.mint("rs256", gcp.provider_audience("rise-direct"), "project:my-app:push")
    from google.auth import exceptions
    with pytest.raises(exceptions.OAuthError):  # a provider that does not exist
        google_exchange(gcp, token, audience=gcp.provider_audience("nope"))
    assert gcp.refused[-1]["body"]["error"] == "invalid_target"
    with pytest.raises(exceptions.OAuthError):  # not the scope Artifact Registry needs
        google_exchange(gcp, token, scopes=["https://www.googleapis.com/auth/devstorage.read_only"])
    # An Authorization header is refused (Google: "can cause the request to fail").
    form = {"grant_type": TOKEN_EXCHANGE, "audience": gcp.provider_audience("rise-direct"), "scope": CLOUD_PLATFORM,
            "requested_token_type": ACCESS_TOKEN_TYPE, "subject_token": token, "subject_token_type": JWT_TYPE}
    status, body = post_form(gcp.url + "/v1/token", form, {"Authorization": "Bearer x"})
    assert (status, body["error"]) == (400, "invalid_request")
    assert gcp.refused[-1]["reason"] == "authorization_header"
    status, _ = post_form(gcp.url + "/v1/token", form)
    assert status == 200


def post_form(url, form, headers=None):
    data = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def realm(url, username, password, scope, service="standin.test"):
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    query = urllib.parse.urlencode([("service", service), ("scope", scope)])
    req = urllib.request.Request(f"{url}?{query}", headers={"Authorization": "Basic " + basic})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_google_auth_impersonation_and_the_registry_realm(gcp, issuer):
    """google-auth's impersonated credentials against generateAccessToken; the realm grants
    through AR repository bindings only (direct principal or service account)."""
    from google.auth import exceptions, impersonated_credentials
    from google.auth.transport.requests import Request
    from google.oauth2 import credentials
    audience = gcp.provider_audience("rise-direct")
    push = google_exchange(gcp, issuer.mint("rs256", audience, "project:my-app:push"))["access_token"]
    pull = google_exchange(gcp, issuer.mint("es256_a", audience, "project:my-app:pull"))["access_token"]

    def impersonate(source, lifetime=900):
        creds = impersonated_credentials.Credentials(
            source_credentials=credentials.Credentials(source), target_principal=SERVICE_ACCOUNT,
            target_scopes=[CLOUD_PLATFORM], lifetime=lifetime,
            iam_endpoint_override=f"{gcp.url}/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken")
        creds.refresh(Request())
        return creds

    before = time.time()
    sa = impersonate(push)
    sent = gcp.iam_requests[-1]
    assert sent.header("Authorization") == f"Bearer {push}"
    assert sent.json()["lifetime"] == "900s" and sent.json()["scope"] == [CLOUD_PLATFORM]
    assert gcp.issued_sa_tokens[-1]["access_token"] == sa.token
    # google-auth keeps expiry as naive UTC, parsed from expireTime.
    assert abs(sa.expiry.replace(tzinfo=datetime.timezone.utc).timestamp() - before - 900) < 5
    with pytest.raises(exceptions.RefreshError):  # the pull principal holds no workloadIdentityUser
        impersonate(pull)
    assert gcp.refused[-1]["status"] == 403
    with pytest.raises(exceptions.RefreshError):  # beyond 3600 s without the org policy
        impersonate(push, lifetime=7200)

    # The realm: the reader principal gets pull only; the SA has no binding on my-app.
    scope = "repository:rise-gcp/my-app/my-app:pull,push"
    for username in ("oauth2accesstoken", "_token"):
        status, body = realm(gcp.url + "/token", username, pull, scope)
        assert status == 200, body
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        assert claims["access"] == [{"type": "repository", "name": "rise-gcp/my-app/my-app", "actions": ["pull"]}]
    status, body = realm(gcp.url + "/token", "oauth2accesstoken", sa.token, scope)
    assert jwt.decode(body["token"], options={"verify_signature": False})["access"] == []
    status, body = realm(gcp.url + "/token", "oauth2accesstoken", "ya29.not-issued-here", scope)
    assert status == 401


# ---- Azure -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def azure(issuer):
    from azure_standin import AzureStandIn
    standin = AzureStandIn(TENANT, "registry.standin.test", {
        CLIENT: {"federated_credentials": [{"issuer": issuer.url, "subject": "project:my-app:push",
                                            "audiences": ["api://AzureADTokenExchange"]}],
                 "repositories": {"my-app": "writer", "shared/": "reader"}},
    }, entra_tls=True)
    yield standin
    standin.stop()


def client_assertion_credential(azure, assertion):
    from azure.identity import ClientAssertionCredential
    return ClientAssertionCredential(TENANT, CLIENT, lambda: assertion, authority=azure.authority,
                                     connection_verify=azure.entra.ca_file)


def test_azure_identity_client_assertion_is_accepted(azure, issuer):
    assertion = issuer.mint("rs256", "api://AzureADTokenExchange", "project:my-app:push")
    token = client_assertion_credential(azure, assertion).get_token("https://containerregistry.azure.net/.default")
    assert token.token == azure.entra_tokens[-1]["access_token"]
    assert 3500 < token.expires_on - time.time() <= 3600
    sent = azure.entra_requests[-1]
    assert sent.path == f"/{TENANT}/oauth2/v2.0/token"
    assert sent.media_type == "application/x-www-form-urlencoded"
    assert sent.form_dict == {"client_assertion": assertion,
                              "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                              "client_id": CLIENT, "grant_type": "client_credentials",
                              "scope": "https://containerregistry.azure.net/.default"}
    accepted = azure.accepted[-1]
    assert accepted["claims"]["sub"] == "project:my-app:push" and accepted["header"]["kid"] == "rs256"
    assert accepted["fetched"][0] == issuer.url + "/.well-known/openid-configuration"


@pytest.mark.parametrize("case, reason", [
    ("es256", "alg"),  # Entra: "Only issuers that provide tokens signed using the RS256 algorithm"
    ("subject_case", "fic_subject"),  # exact, case-sensitive
    ("subject_wildcard", "fic_subject"),
    ("audience", "fic_audience"),
    ("two_audiences", "fic_audience"),
    ("issuer_slash", "fic_issuer"),  # exact string match of iss
    ("expired", "time"),
    ("no_kid", "kid_missing"),
    ("forged", "signature"),
])
def test_entra_refusals(azure, issuer, case, reason):
    from azure.core.exceptions import ClientAuthenticationError
    aud, sub = "api://AzureADTokenExchange", "project:my-app:push"
    assertion = {
        "es256": lambda: issuer.mint("es256_a", aud, sub),
        "subject_case": lambda: issuer.mint("rs256", aud, "Project:my-app:push"),
        "subject_wildcard": lambda: issuer.mint("rs256", aud, "project:my-app:*"),
        "audience": lambda: issuer.mint("rs256", "api://AzureADTokenExchange/", sub),
        "two_audiences": lambda: issuer.mint("rs256", [aud, "other"], sub),
        "issuer_slash": lambda: issuer.mint("rs256", aud, sub, iss=issuer.url + "/"),
        "expired": lambda: issuer.mint("rs256", aud, sub, iat_offset=-7200, lifetime=600),
        "no_kid": lambda: issuer.mint("rs256", aud, sub, kid=False),
        "forged": lambda: issuer.mint("rs256", aud, sub)[:-6] + "AAAAAA",
    }[case]()
    with pytest.raises(ClientAuthenticationError):
        client_assertion_credential(azure, assertion).get_token("https://containerregistry.azure.net/.default")
    assert azure.refused[-1]["reason"] == reason
    assert azure.refused[-1]["body"]["error_description"].startswith("AADSTS")


def test_entra_refuses_unknown_client_and_other_scopes(azure, issuer):
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientAssertionCredential
    assertion = issuer.mint("rs256", "api://AzureADTokenExchange", "project:my-app:push")
    stranger = ClientAssertionCredential(TENANT, str(uuid.uuid4()), lambda: assertion, authority=azure.authority,
                                         connection_verify=azure.entra.ca_file)
    with pytest.raises(ClientAuthenticationError):
        stranger.get_token("https://containerregistry.azure.net/.default")
    assert azure.refused[-1]["reason"] == "client_id"
    with pytest.raises(ClientAuthenticationError):
        client_assertion_credential(azure, assertion).get_token("https://management.azure.com/.default")
    assert azure.refused[-1]["reason"] == "scope"


class StaticCredential:
    """A TokenCredential handing out one fixed Entra token (the exchange client asks for one)."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken
        return AccessToken(self.token, int(time.time()) + 3000)


def acr_exchange_client(azure, entra_token):
    from azure.containerregistry._exchange_client import ACRExchangeClient
    return ACRExchangeClient(azure.acr_url, StaticCredential(entra_token),
                             credential_scopes=["https://containerregistry.azure.net/.default"])


def test_acr_exchange_client_refresh_and_access_tokens(azure, issuer):
    assertion = issuer.mint("rs256", "api://AzureADTokenExchange", "project:my-app:push")
    entra = client_assertion_credential(azure, assertion).get_token("https://containerregistry.azure.net/.default")
    client = acr_exchange_client(azure, entra.token)
    refresh = client.exchange_aad_token_for_refresh_token("registry.standin.test", tenant=TENANT)
    assert refresh == azure.refresh_tokens[-1]["refresh_token"]
    claims = jwt.decode(refresh, options={"verify_signature": False})
    assert claims["iss"] == "Azure Container Registry" and claims["aud"] == "registry.standin.test"
    assert claims["grant_type"] == "refresh_token" and claims["sub"] == CLIENT
    assert 3 * 3600 - 10 < claims["exp"] - time.time() <= 3 * 3600
    sent = azure.exchange_requests[-1]
    assert dict(sent.query) == {"api-version": "2021-07-01"}
    assert sent.form_dict == {"grant_type": "access_token", "service": "registry.standin.test", "tenant": TENANT,
                              "access_token": entra.token}

    def access(scope):
        token = client.exchange_refresh_token_for_access_token(refresh, service="registry.standin.test", scope=scope)
        return jwt.decode(token, options={"verify_signature": False})["access"]

    assert access("repository:my-app:pull,push") == [{"type": "repository", "name": "my-app",
                                                      "actions": ["pull", "push"]}]
    assert access("repository:My-App:pull") == [{"type": "repository", "name": "My-App", "actions": ["pull"]}]
    assert access("repository:shared/base:pull,push") == [{"type": "repository", "name": "shared/base",
                                                           "actions": ["pull"]}]
    assert access("repository:other-app:pull,push") == []
    assert azure.token_requests[-1].form_dict == {"service": "registry.standin.test",
                                                  "scope": "repository:other-app:pull,push",
                                                  "refresh_token": refresh, "grant_type": "refresh_token"}
    # Through the SDK's challenge path too (what a registry client does on a 401).
    token = client.get_acr_access_token(
        'Bearer realm="x",service="registry.standin.test",scope="repository:my-app:pull"')
    assert jwt.decode(token, options={"verify_signature": False})["access"][0]["actions"] == ["pull"]

    # The Docker realm: an access token reaches no further than its own access claim.
    scoped = client.exchange_refresh_token_for_access_token(refresh, service="registry.standin.test",
                                                            scope="repository:my-app:pull")
    url = azure.acr_url + "/oauth2/token"
    null = "00000000-0000-0000-0000-000000000000"
    status, body = realm(url, null, scoped, "repository:my-app:pull,push", service="registry.standin.test")
    assert status == 200
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["access"] == [
        {"type": "repository", "name": "my-app", "actions": ["pull"]}]
    status, body = realm(url, null, refresh, "repository:my-app:pull,push", service="registry.standin.test")
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["access"][0]["actions"] == [
        "pull", "push"]
    assert realm(url, "someone", refresh, "repository:my-app:pull", service="registry.standin.test")[0] == 401
    assert realm(url, null, entra.token, "repository:my-app:pull", service="registry.standin.test")[0] == 401
