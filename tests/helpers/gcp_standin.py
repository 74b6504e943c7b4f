"""A strict stand-in for Google Cloud's side of keyless Artifact Registry access, written from
shared/spec/PROVIDERS.md §1 (Google's documents and google-auth), not from the broker:

- Security Token Service, `POST /v1/token`: the RFC 8693 token exchange of Workload Identity
  Federation. The subject token is verified as Google does for an OIDC provider: discovery and
  JWKS fetched from the provider's issuer over HTTP, `kid` required, RS256/ES256 only, `aud`
  the provider's canonical name (with or without `https:`) or an allowed audience, `iat` in
  the past, `exp` in the future and < 48 h after `iat`, `sub` (mapped to `google.subject`)
  ≤ 127 bytes, then the attribute condition `assertion.sub.startsWith('project:')`. The
  federated principal is `principal://iam.googleapis.com/projects/N/locations/global/
  workloadIdentityPools/P/subject/<sub>`.
- IAM Credentials, `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`: the
  caller's principal needs roles/iam.workloadIdentityUser on the service account.
- Artifact Registry's Docker token realm, `GET /token` (and `/v2/token`), for a Debian
  `docker-registry` with token auth: Basic auth with any username (Google ignores it, see
  §1b) and an access token issued here; actions granted only through IAM bindings on the
  Artifact Registry repository (`{gcp_project}/{repository}/{image…}` → `{repository}`;
  writer → pull,push; reader → pull).

Everything received is kept (`requests`, and per endpoint `sts_requests`, `iam_requests`,
`realm_requests`); each verified subject token in `accepted` (header, claims, the URLs
fetched); every token issued here, and every subject token received, is passed to
`on_secret` (the e2e tests register them for the final scan of worker output).
"""
import re
import threading
import time
import urllib.parse

import jwt

from standin_common import (RegistryTokenSigner, StandInServer, TokenRefused, basic_credentials, bearer,
                            fetch_issuer_key, opaque_token, parse_scope, utc_rfc3339,
                            verify_with_candidates)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
REQUESTED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPES = ("urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token")
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
ROLES = {"writer": ("pull", "push"), "reader": ("pull",)}
# Google's limits (PROVIDERS.md §1a/§1c).
MAX_SUBJECT_BYTES = 127
MAX_ASSERTION_LIFETIME = 48 * 3600
CLOCK_SKEW = 60
STS_EXPIRES_IN = 3599
MAX_SA_LIFETIME = 3600
IAM_PATH = re.compile(r"^/v1/projects/-/serviceAccounts/(?P<sa>[^/]+):generateAccessToken$")


def sts_error(error, description, status=400):
    return status, {"error": error, "error_description": description}


def iam_error(code, status, message):
    return code, {"error": {"code": code, "message": message, "status": status}}


class GcpStandIn:
    def __init__(self, project_number, pool, providers, gcp_project, service, repository_bindings,
                 service_account_bindings=None, on_secret=None, attribute_prefix="project:"):
        """
        providers: {provider id: {"issuer": URL, "allowed_audiences": [..] (optional)}} — OIDC
            providers of workload identity pool `pool` in project number `project_number`.
        gcp_project: the project holding the Artifact Registry repositories.
        service: the `service` docker-registry names in its challenge.
        repository_bindings: {AR repository: {member: "writer"|"reader"}}; members are
            `principal://…/subject/<sub>` (see `principal()`) or `serviceAccount:<email>`.
        service_account_bindings: {SA email: [members holding roles/iam.workloadIdentityUser]}.
        """
        self.project_number = str(project_number)
        self.pool = pool
        self.providers = providers
        self.gcp_project = gcp_project
        self.service = service
        self.repository_bindings = repository_bindings
        self.service_account_bindings = service_account_bindings or {}
        self.on_secret = on_secret or (lambda secret: None)  # called with every token issued or received
        self.attribute_prefix = attribute_prefix
        self.lock = threading.Lock()
        # access token → {"member": IAM member, "expires": epoch, "scopes": [...]}
        self.tokens = {}
        # Verified subject tokens: {"header", "claims", "fetched" (discovery and JWKS URLs),
        # "provider", "subject_token", "access_token", "member", "issued_at"}
        self.accepted = []
        self.refused = []  # {"status", "body", "reason"} of every STS/IAM refusal
        # {"service_account", "lifetime", "access_token", "member" (the caller), "expire_time"}
        self.issued_sa_tokens = []
        # The registry tokens' issuer: docker-registry's auth.token.issuer must equal it.
        self.realm_issuer = "artifactregistry-standin"
        self.signer = RegistryTokenSigner(self.realm_issuer)
        self.server = StandInServer(self.route, name="gcp")
        self.url = self.server.url

    # ---- identities -------------------------------------------------------------------
    def pool_name(self):
        return f"projects/{self.project_number}/locations/global/workloadIdentityPools/{self.pool}"

    def provider_audience(self, provider):
        """The provider's canonical name, as the STS `audience` field names it."""
        return f"//iam.googleapis.com/{self.pool_name()}/providers/{provider}"

    def principal(self, subject):
        return f"principal://iam.googleapis.com/{self.pool_name()}/subject/{subject}"

    # ---- routing ----------------------------------------------------------------------
    def route(self, req):
        if req.path == "/v1/token":
            return self.sts(req) if req.method == "POST" else sts_error("invalid_request", "POST only", 405)
        match = IAM_PATH.match(req.path)
        if match:
            if req.method != "POST":
                return iam_error(405, "METHOD_NOT_ALLOWED", "POST only")
            return self.generate_access_token(req, urllib.parse.unquote(match["sa"]))
        if req.path in ("/token", "/v2/token") and req.method == "GET":
            return self.realm(req)
        return 404, {"error": {"code": 404, "message": f"no route {req.method} {req.path}", "status": "NOT_FOUND"}}

    @property
    def requests(self):
        return self.server.requests

    def requests_to(self, path_prefix):
        return [r for r in self.server.requests if r.path.startswith(path_prefix)]

    @property
    def sts_requests(self):
        return self.requests_to("/v1/token")

    @property
    def iam_requests(self):
        return [r for r in self.server.requests if IAM_PATH.match(r.path)]

    @property
    def realm_requests(self):
        return [r for r in self.server.requests if r.path in ("/token", "/v2/token")]

    def _refuse(self, answer, reason=None):
        """Keeps every refusal (with the stand-in's own reason code) for the tests."""
        with self.lock:
            self.refused.append({"status": answer[0], "body": answer[1], "reason": reason})
        return answer

    # ---- STS ----------------------------------------------------------------------------
    def sts(self, req):
        # "do not send the Authorization HTTP header … using the header can cause the
        # request to fail" — here it always does.
        if req.header("Authorization") is not None:
            return self._refuse(sts_error("invalid_request", "The Authorization header must not be sent to "
                                                             "the token exchange endpoint"),
                                reason="authorization_header")
        if req.media_type != "application/x-www-form-urlencoded":
            return self._refuse(sts_error("invalid_request",
                                          f"Unsupported Content-Type {req.header('Content-Type')!r}"),
                                reason="content_type")
        form = req.form_dict
        if form.get("subject_token"):
            self.on_secret(form["subject_token"])  # a bearer credential while it lives
        if len(form) != len(req.form):
            return self._refuse(sts_error("invalid_request", "Repeated form fields"))
        for key in ("grant_type", "audience", "scope", "requested_token_type", "subject_token",
                    "subject_token_type"):
            if not form.get(key):
                return self._refuse(sts_error("invalid_request", f"Missing required field {key}"))
        if form["grant_type"] != GRANT_TYPE:
            return self._refuse(sts_error("unsupported_grant_type", f"Invalid grant_type {form['grant_type']!r}"))
        if form["requested_token_type"] != REQUESTED_TOKEN_TYPE:
            return self._refuse(sts_error("invalid_request", "Invalid requested_token_type"))
        if form["subject_token_type"] not in SUBJECT_TOKEN_TYPES:
            return self._refuse(sts_error("invalid_request", "Invalid subject_token_type"))
        if CLOUD_PLATFORM not in form["scope"].split(" "):
            return self._refuse(sts_error("invalid_scope", "The scope must include " + CLOUD_PLATFORM))
        extra = set(form) - {"grant_type", "audience", "scope", "requested_token_type", "subject_token",
                             "subject_token_type", "options"}
        if extra:
            return self._refuse(sts_error("invalid_request", f"Unknown fields {sorted(extra)}"))
        provider = next((p for p in self.providers if self.provider_audience(p) == form["audience"]), None)
        if provider is None:
            return self._refuse(sts_error(
                "invalid_target", 'The target service indicated by the "audience" parameters is invalid. '
                                  "This might either be because the pool or provider is disabled or deleted "
                                  "or because it doesn't exist."))
        try:
            header, claims, fetched = self.verify_subject_token(provider, form["subject_token"])
        except TokenRefused as err:
            error = "unauthorized_client" if err.code == "attribute_condition" else "invalid_grant"
            return self._refuse(sts_error(error, str(err)), reason=err.code)
        access_token = opaque_token("ya29.d.standin-sts-")
        member = self.principal(claims["sub"])
        with self.lock:
            self.tokens[access_token] = {"member": member, "expires": time.time() + STS_EXPIRES_IN,
                                         "scopes": form["scope"].split(" ")}
            self.accepted.append({"header": header, "claims": claims, "fetched": fetched, "provider": provider,
                                  "subject_token": form["subject_token"], "access_token": access_token,
                                  "member": member, "issued_at": time.time()})
        self.on_secret(access_token)
        return 200, {"access_token": access_token, "issued_token_type": REQUESTED_TOKEN_TYPE,
                     "token_type": "Bearer", "expires_in": STS_EXPIRES_IN}

    def verify_subject_token(self, provider, token):
        """Returns (header, claims, URLs fetched) or raises TokenRefused with Google's reason."""
        config = self.providers[provider]
        issuer = config["issuer"]
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as err:
            raise TokenRefused("malformed", f"Unable to parse the ID Token: {err}") from err
        if unverified.get("iss") != issuer:
            raise TokenRefused("iss", f"The issuer in ID Token {unverified.get('iss')!r} does not match "
                                      f"the expected value {issuer!r}.")
        fetched = []
        header, candidates = fetch_issuer_key(token, issuer, ("RS256", "ES256"), require_kid=True, trace=fetched)
        audiences = config.get("allowed_audiences") or [
            self.provider_audience(provider), "https:" + self.provider_audience(provider)]
        try:
            claims = verify_with_candidates(
                token, candidates, header["alg"], audience=audiences, issuer=issuer, leeway=CLOCK_SKEW,
                options={"require": ["iss", "aud", "sub", "iat", "exp"]})
        except jwt.InvalidAudienceError as err:
            raise TokenRefused("aud", "The audience in ID Token does not match the expected audience.") from err
        except jwt.ExpiredSignatureError as err:
            raise TokenRefused("exp", "The ID Token has expired.") from err
        except jwt.ImmatureSignatureError as err:  # iat (or nbf) ahead of the clock
            raise TokenRefused("iat", "The ID Token is issued in the future.") from err
        except jwt.InvalidSignatureError as err:
            raise TokenRefused("signature", "Invalid ID Token signature.") from err
        except jwt.PyJWTError as err:
            raise TokenRefused("claims", f"Invalid ID Token: {err}") from err
        # iat must be in the past (PyJWT only checks it is an integer); exp < 48 h after iat.
        now = time.time()
        if claims["iat"] > now + CLOCK_SKEW:
            raise TokenRefused("iat", "The ID Token is issued in the future.")
        if claims["exp"] - claims["iat"] >= MAX_ASSERTION_LIFETIME:
            raise TokenRefused("lifetime", "The ID Token lifetime must be less than 48 hours.")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise TokenRefused("sub", "The ID Token has no subject.")
        if len(claims["sub"].encode()) > MAX_SUBJECT_BYTES:
            raise TokenRefused("sub_length", "The size of mapped attribute google.subject exceeds the "
                                             f"{MAX_SUBJECT_BYTES} bytes limit.")
        if not claims["sub"].startswith(self.attribute_prefix):
            raise TokenRefused("attribute_condition", "The given credential is rejected by the attribute "
                                                      "condition.")
        return header, claims, fetched

    # ---- IAM Credentials ------------------------------------------------------------------
    def generate_access_token(self, req, service_account):
        token = bearer(req)
        with self.lock:
            entry = self.tokens.get(token) if token else None
        if entry is None or entry["expires"] < time.time():
            return self._refuse(iam_error(401, "UNAUTHENTICATED", "Request had invalid authentication "
                                                                  "credentials. Expected OAuth 2 access token."))
        if req.media_type != "application/json":
            return self._refuse(iam_error(400, "INVALID_ARGUMENT", "Expected a JSON body"))
        try:
            body = req.json()
        except ValueError:
            return self._refuse(iam_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
        if not isinstance(body, dict) or set(body) - {"scope", "lifetime", "delegates"}:
            return self._refuse(iam_error(400, "INVALID_ARGUMENT", "Unknown fields in the request body"))
        scope = body.get("scope")
        if not isinstance(scope, list) or not scope or not all(isinstance(s, str) for s in scope):
            return self._refuse(iam_error(400, "INVALID_ARGUMENT", "Scope required."))
        if body.get("delegates"):
            return self._refuse(iam_error(400, "INVALID_ARGUMENT", "This stand-in serves no delegation chains"))
        lifetime = body.get("lifetime", "3600s")
        match = re.fullmatch(r"(\d+)(?:\.\d+)?s", lifetime) if isinstance(lifetime, str) else None
        if not match:
            return self._refuse(iam_error(400, "INVALID_ARGUMENT", f"Invalid value for lifetime: {lifetime!r}"))
        seconds = int(match[1])
        if not 1 <= seconds <= MAX_SA_LIFETIME:
            return self._refuse(iam_error(400, "INVALID_ARGUMENT", "The lifetime must be at most 3600s "
                                                                   "without the lifetime-extension policy."))
        if entry["member"] not in self.service_account_bindings.get(service_account, []):
            # Google answers the same for a missing SA ("or it may not exist").
            return self._refuse(iam_error(403, "PERMISSION_DENIED",
                                          "Permission 'iam.serviceAccounts.getAccessToken' denied on resource "
                                          "(or it may not exist)."), reason="workload_identity_user")
        access_token = opaque_token("ya29.c.standin-sa-")
        expires = int(time.time()) + seconds
        with self.lock:
            self.tokens[access_token] = {"member": "serviceAccount:" + service_account, "expires": expires,
                                         "scopes": scope}
            self.issued_sa_tokens.append({"service_account": service_account, "lifetime": lifetime,
                                          "access_token": access_token, "member": entry["member"],
                                          "expire_time": expires})
        self.on_secret(access_token)
        return 200, {"accessToken": access_token, "expireTime": utc_rfc3339(expires)}

    # ---- Docker token realm ----------------------------------------------------------------
    def actions_for(self, member, repository_path):
        """Actions `member` holds on a Docker repository path through AR repository IAM."""
        parts = repository_path.split("/")
        if len(parts) < 3 or parts[0] != self.gcp_project:
            return set()
        role = self.repository_bindings.get(parts[1], {}).get(member)
        return set(ROLES.get(role, ()))

    def realm(self, req):
        unauthorized = (401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication failed"}]},
                        {"WWW-Authenticate": 'Basic realm="Artifact Registry"'})
        creds = basic_credentials(req)
        if creds is None:
            return unauthorized
        # Any username: Google reads only the password (oauth2accesstoken, _token, … all work).
        with self.lock:
            entry = self.tokens.get(creds[1])
        if entry is None or entry["expires"] < time.time() or CLOUD_PLATFORM not in entry["scopes"]:
            return unauthorized
        if req.query_one("service") != self.service:
            return 400, {"errors": [{"code": "INVALID_REQUEST", "message": "unknown service"}]}
        access = []
        for scope in req.query_all("scope"):
            for item in scope.split(" "):
                parsed = parse_scope(item)
                if parsed is None or parsed[0] != "repository":
                    continue
                _, name, actions = parsed
                held = self.actions_for(entry["member"], name)
                access.append({"type": "repository", "name": name,
                               "actions": [a for a in actions if a in held]})
        token, seconds = self.signer.registry_token(entry["member"], self.service, access)
        self.on_secret(token)
        return 200, {"token": token, "access_token": token, "expires_in": seconds,
                     "issued_at": utc_rfc3339(time.time())}

    def stop(self):
        self.server.stop()

