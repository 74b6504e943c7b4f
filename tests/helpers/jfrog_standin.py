"""A strict stand-in for the JFrog platform's OIDC token exchange and Artifactory's Docker
token endpoint, written from shared/spec/PROVIDERS.md §3 (JFrog REST "OIDC Token Exchange",
setup-jfrog-cli `oidc-utils.ts`, the `jfrog/platform` Terraform provider's OIDC
configuration and identity mapping resources), not from the broker.

- `POST /access/api/v1/oidc/token`, JSON
  `{"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
    "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
    "subject_token": <JWT>, "provider_name": <integration>, "identity_mapping_name"?: <mapping>,
    "project_key"?, "include_reference_token"?}` (setup-jfrog-cli's GitHub-only fields are
  accepted too; anything else is refused). `provider_name` must name a configured generic
  OIDC integration; the JWT is verified against that integration's `issuer_url`: `iss`
  equal to it, discovery + `jwks_uri` fetched from it, `kid` naming a key there, RS256
  (the algorithms JFrog accepts are UNCONFIRMED: the stand-in takes RS256 only, the strict
  reading), `exp` required and not past. `aud` is not checked (the Terraform provider calls
  the integration's `audience` "informational").
  The identity mapping: the one named by `identity_mapping_name` when given (its
  `claims_json` must still match: a forced mapping is not a way around its claims — JFrog's
  exact behaviour here is not documented, this is the strict reading), else the
  highest-priority mapping (lowest `priority` number, as JFrog orders them) whose
  `claims_json` entries ALL equal the token's claims exactly.
  Answer: `{"access_token": <JWT signed here, sub "jfac@01stand/users/<token_spec.username>">,
  "expires_in": <token_spec.expires_in>, "token_type": "Bearer",
  "scope": "applied-permissions/user"}`. Errors: `{"errors": [{"code", "message"}]}`,
  401 UNAUTHORIZED for a refused token or no mapping, 400 BAD_REQUEST for a malformed body.
- `GET /artifactory/api/docker/<repo-key>/v2/token?service=&scope=` (the realm the
  docker-registry points at) with Basic `<user>:<access token>`: the token must be one
  issued here and unexpired, and the username MUST be the user part of its `sub`
  (else 401 "Wrong username was used", setup-jfrog-cli issue #146). Grants per the user's
  permission targets on repository path prefixes (`"docker-local/my-app": "write"` →
  pull,push on `docker-local/my-app` and below; `"read"` → pull), only for names inside
  `<repo-key>/`. Answer `{"token", "expires_in": 3600}` (JFrog KB), signed with
  `RegistryTokenSigner` (x5c) so the docker-registry trusts it.
"""
import secrets
import threading
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from standin_common import (RegistryTokenSigner, StandInServer, TokenRefused, basic_credentials,
                            fetch_issuer_key, parse_scope, verify_with_candidates)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
SERVICE_ID = "jfac@01stand"  # the Access service id in `iss` and in `sub`
ALGORITHMS = ("RS256",)
CLOCK_SKEW = 30
REGISTRY_TOKEN_SECONDS = 3600  # the KB's docker token example
ACCESS_SCOPE = "applied-permissions/user"
PERMISSIONS = {"write": ("pull", "push"), "read": ("pull",)}  # read+deploy / read
OPTIONAL_FIELDS = {"identity_mapping_name", "project_key", "include_reference_token",
                   # setup-jfrog-cli's GitHub-only additions (PROVIDERS.md §3a)
                   "gh_job_id", "gh_run_id", "gh_repo", "application_key"}
REQUIRED_FIELDS = ("grant_type", "subject_token_type", "subject_token", "provider_name")


def jfrog_error(status, code, message):
    return status, {"errors": [{"code": code, "message": message}]}


def token_user(sub):
    """setup-jfrog-cli `extractTokenUser`."""
    if sub.startswith("jfrt@") or "/users/" in sub:
        return sub.rsplit("/", 1)[-1]
    return sub


class JFrogStandIn:
    def __init__(self, service, integrations, mappings, users, on_secret=None):
        """
        service: the docker-registry's `service` (aud of registry tokens).
        integrations: {provider_name: {"issuer_url": ...}} (generic OIDC integrations).
        mappings: {provider_name: [{"name", "priority", "claims": {claim: value},
                                    "token_spec": {"username", "expires_in"}}]}
        users: {username: {"<repo-key>/<path prefix>": "write"|"read"}}
        on_secret: called with every token issued here and every subject token received.
        """
        for provider, items in mappings.items():
            assert provider in integrations, provider
            for m in items:
                # JFrog warns a mapping without claims lets anyone in: the stand-in takes none.
                assert m["claims"], f"mapping {m['name']} has no claims"
                assert m["token_spec"]["username"] in users, m["token_spec"]["username"]
        self.service = service
        self.integrations = integrations
        self.mappings = mappings
        self.users = users
        self.on_secret = on_secret or (lambda secret: None)
        self.lock = threading.Lock()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.signer = RegistryTokenSigner("jfrog-standin-docker", common_name="rise-standin-jfrog")
        self.realm_issuer = self.signer.issuer
        # Verified exchanges: {"provider", "mapping", "header", "claims", "fetched", "body", "access_token"}
        self.accepted = []
        self.refused = []  # {"path", "status", "body", "reason"}
        self.access_tokens = []  # {"access_token", "claims", "user", "mapping", "subject_token"}
        self.registry_tokens = []  # {"token", "user", "access", "source"}
        self.server = StandInServer(self.route, name="jfrog")
        self.url = self.server.url

    def realm(self, repo_key):
        return f"{self.url}/artifactory/api/docker/{repo_key}/v2/token"

    # ---- recorded requests ------------------------------------------------------------
    @property
    def exchange_requests(self):
        return [r for r in self.server.requests if r.path == "/access/api/v1/oidc/token"]

    @property
    def realm_requests(self):
        return [r for r in self.server.requests if r.path.startswith("/artifactory/api/docker/")]

    def count(self):
        return self.server.count()

    def _refuse(self, req, answer, reason):
        with self.lock:
            self.refused.append({"path": req.path, "status": answer[0], "body": answer[1], "reason": reason})
        return answer

    def route(self, req):
        if req.path == "/access/api/v1/oidc/token":
            if req.method != "POST":
                return self._refuse(req, jfrog_error(405, "METHOD_NOT_ALLOWED", "Method Not Allowed"), "method")
            return self.exchange(req)
        parts = req.path.strip("/").split("/")
        if (req.method == "GET" and len(parts) == 6 and parts[:3] == ["artifactory", "api", "docker"]
                and parts[4:] == ["v2", "token"]):
            return self.docker_token(req, parts[3])
        return self._refuse(req, jfrog_error(404, "NOT_FOUND", f"No route {req.method} {req.path}"), "route")

    # ---- OIDC token exchange -----------------------------------------------------------
    def exchange(self, req):
        if req.media_type != "application/json":
            return self._refuse(req, jfrog_error(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be JSON"),
                                "content_type")
        try:
            body = req.json()
        except ValueError:
            return self._refuse(req, jfrog_error(400, "BAD_REQUEST", "Malformed JSON"), "json")
        if not isinstance(body, dict):
            return self._refuse(req, jfrog_error(400, "BAD_REQUEST", "Malformed request"), "json")
        if isinstance(body.get("subject_token"), str):
            self.on_secret(body["subject_token"])  # a bearer credential while it lives
        for key in REQUIRED_FIELDS:
            if not isinstance(body.get(key), str) or not body[key]:
                return self._refuse(req, jfrog_error(400, "BAD_REQUEST", f"'{key}' is required"), "missing_" + key)
        extra = set(body) - set(REQUIRED_FIELDS) - OPTIONAL_FIELDS
        if extra:
            return self._refuse(req, jfrog_error(400, "BAD_REQUEST", f"Unknown fields {sorted(extra)}"),
                                "extra_fields")
        if body["grant_type"] != GRANT_TYPE:
            return self._refuse(req, jfrog_error(400, "BAD_REQUEST", "Unsupported grant_type"), "grant_type")
        if body["subject_token_type"] != ID_TOKEN_TYPE:
            return self._refuse(req, jfrog_error(400, "BAD_REQUEST", "Unsupported subject_token_type"),
                                "subject_token_type")
        provider = body["provider_name"]
        integration = self.integrations.get(provider)
        if integration is None:
            return self._refuse(req, jfrog_error(401, "UNAUTHORIZED", f"OIDC provider '{provider}' not found"),
                                "provider")
        try:
            header, claims, fetched = self.verify_subject_token(integration, body["subject_token"])
            mapping = self.pick_mapping(provider, claims, body.get("identity_mapping_name"))
        except TokenRefused as err:
            return self._refuse(req, jfrog_error(401, "UNAUTHORIZED", str(err)), err.code)
        spec = mapping["token_spec"]
        now = int(time.time())
        access_claims = {"ver": "2", "sub": f"{SERVICE_ID}/users/{spec['username']}", "scp": ACCESS_SCOPE,
                         "aud": "*@*", "iss": SERVICE_ID, "iat": now, "exp": now + spec["expires_in"],
                         "jti": secrets.token_hex(16)}
        access_token = jwt.encode(access_claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        with self.lock:
            self.accepted.append({"provider": provider, "mapping": mapping["name"], "header": header,
                                  "claims": claims, "fetched": fetched, "body": body,
                                  "access_token": access_token})
            self.access_tokens.append({"access_token": access_token, "claims": access_claims,
                                       "user": spec["username"], "mapping": mapping["name"],
                                       "subject_token": body["subject_token"]})
        self.on_secret(access_token)
        return 200, {"access_token": access_token, "expires_in": spec["expires_in"], "token_type": "Bearer",
                     "scope": ACCESS_SCOPE}

    def verify_subject_token(self, integration, token):
        issuer = integration["issuer_url"]
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as err:
            raise TokenRefused("malformed", f"Failed to parse token: {err}") from err
        if unverified.get("iss") != issuer:
            raise TokenRefused("issuer", "Token issuer does not match the OIDC provider")
        fetched = []
        header, candidates = fetch_issuer_key(token, issuer, ALGORITHMS, require_kid=True, trace=fetched)
        try:
            claims = verify_with_candidates(token, candidates, "RS256", issuer=issuer, leeway=CLOCK_SKEW,
                                            options={"verify_aud": False, "require": ["iss", "exp"]})
        except jwt.InvalidSignatureError as err:
            raise TokenRefused("signature", "Token signature verification failed") from err
        except jwt.ExpiredSignatureError as err:
            raise TokenRefused("time", "Token expired") from err
        except jwt.PyJWTError as err:
            raise TokenRefused("claims", f"Token validation failed: {err}") from err
        return header, claims, fetched

    def pick_mapping(self, provider, claims, name=None):
        def matches(m):
            return all(k in claims and claims[k] == v for k, v in m["claims"].items())

        items = self.mappings.get(provider, [])
        if name is not None:
            named = [m for m in items if m["name"] == name]
            if not named:
                raise TokenRefused("mapping_unknown", f"Identity mapping '{name}' not found")
            if not matches(named[0]):
                raise TokenRefused("mapping_claims", "Token claims do not match the identity mapping")
            return named[0]
        candidates = sorted((m for m in items if matches(m)), key=lambda m: m["priority"])
        if not candidates:
            raise TokenRefused("no_mapping", "No identity mapping matches the token's claims")
        return candidates[0]

    # ---- Docker token endpoint ---------------------------------------------------------
    def access_token_claims(self, token):
        try:
            claims = jwt.decode(token, self.key.public_key(), algorithms=["RS256"], issuer=SERVICE_ID,
                                options={"verify_aud": False, "require": ["sub", "exp", "iat"]})
        except jwt.PyJWTError:
            return None
        with self.lock:
            known = any(t["access_token"] == token for t in self.access_tokens)
        return claims if known else None

    def allowed(self, user, name):
        held = set()
        for prefix, permission in self.users.get(user, {}).items():
            if name == prefix or name.startswith(prefix.rstrip("/") + "/"):
                held |= set(PERMISSIONS[permission])
        return held

    def docker_token(self, req, repo_key):
        challenge = {"WWW-Authenticate": 'Basic realm="Artifactory Realm"'}
        creds = basic_credentials(req)
        if creds is None:
            return self._refuse(req, (*jfrog_error(401, "UNAUTHORIZED", "Authentication is required"), challenge),
                                "basic")
        username, token = creds
        claims = self.access_token_claims(token)
        if claims is None:
            return self._refuse(req, (*jfrog_error(401, "UNAUTHORIZED", "Bad credentials"), challenge), "password")
        user = token_user(claims["sub"])
        if username != user:
            return self._refuse(req, (*jfrog_error(401, "UNAUTHORIZED", "Wrong username was used"), challenge),
                                "username")
        if req.query_one("service") != self.service:
            return self._refuse(req, jfrog_error(400, "BAD_REQUEST", "Unknown service"), "service")
        access = []
        for scope in req.query_all("scope"):
            for item in scope.split(" "):
                parsed = parse_scope(item)
                if parsed is None or parsed[0] != "repository":
                    continue
                _, name, actions = parsed
                held = self.allowed(user, name) if name.startswith(repo_key + "/") else set()
                access.append({"type": "repository", "name": name, "actions": [a for a in actions if a in held]})
        registry_token, seconds = self.signer.registry_token(user, self.service, access,
                                                             seconds=REGISTRY_TOKEN_SECONDS)
        with self.lock:
            self.registry_tokens.append({"token": registry_token, "user": user,
                                         "access": [a for a in access if a["actions"]], "source": token})
        self.on_secret(registry_token)
        return 200, {"token": registry_token, "expires_in": seconds}

    def stop(self):
        self.server.stop()
