"""A strict stand-in for Microsoft Entra ID and an Azure Container Registry, written from
shared/spec/PROVIDERS.md §2 (Entra and ACR documents, azure-identity, azure-containerregistry),
not from the broker. Two loopback servers in one object, as in Azure the authority and the
registry are different hosts (a request sent to the wrong one fails):

- Entra (`authority`): `POST /{tenant}/oauth2/v2.0/token`, client credentials with a
  `client_assertion` (workload identity federation). The `client_id` must be a configured
  identity (user-assigned managed identity); the assertion must match one of its federated
  identity credentials (FIC) {issuer, subject, audiences}: `iss` equal to the FIC issuer
  (exact string), discovery + JWKS fetched from that issuer over HTTP, `kid` naming a key
  there, RS256 ONLY, valid signature, `aud` exactly `api://AzureADTokenExchange`, `exp`/`iat`
  (and `nbf` if present) in range, `sub` EXACTLY the FIC subject (case-sensitive, no
  wildcards). Answers an access token (a JWT signed here, aud https://containerregistry.azure.net,
  oid/appid = client id).
- ACR (`acr_url`): `POST /oauth2/exchange` (Entra token → ACR refresh token, 3 h),
  `POST /oauth2/token` (refresh token + `scope` → ACR access token, 75 min, whose `access`
  claim holds only what the scope asks AND the identity's ABAC role assignment allows),
  and `GET /oauth2/token`, the Docker token realm a `docker-registry` points at (Basic
  `00000000-0000-0000-0000-000000000000:<ACR refresh or access token>`).

ACR tokens are signed with a key whose self-signed certificate is in the registry's
`rootcertbundle` (`x5c` header), so an ACR access token is a valid bearer token for the
docker-registry — as on a real registry, where they are the same thing.

Error bodies follow Entra (`{"error","error_description","error_codes"}`) and ACR
(`{"errors":[{"code","message"}]}`). Which AADSTS code Entra picks for each FIC mismatch has
changed over time (400 invalid_request AADSTS70021 in 2022; 401 invalid_client AADSTS7002xx
since): the stand-in answers 401 invalid_client; the exact numbers are not part of any test.
"""
import secrets
import threading
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from standin_common import (RegistryTokenSigner, StandInServer, TokenRefused, basic_credentials,
                            fetch_issuer_key, parse_scope, verify_with_candidates)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FIC_AUDIENCE = "api://AzureADTokenExchange"
ACR_RESOURCE = "https://containerregistry.azure.net"
ACR_SCOPE = ACR_RESOURCE + "/.default"
ACR_ISSUER = "Azure Container Registry"
NULL_GUID = "00000000-0000-0000-0000-000000000000"
ENTRA_EXPIRES_IN = 3599
REFRESH_SECONDS = 3 * 3600  # "valid for 3 hours" (ACR authentication doc)
ACCESS_SECONDS = 75 * 60  # the example access token's span in Azure/acr's AAD-OAuth.md
CLOCK_SKEW = 60
ROLES = {"writer": ("pull", "push"), "reader": ("pull",)}


def entra_error(status, error, code, message):
    return status, {"error": error, "error_description": f"AADSTS{code}: {message}", "error_codes": [code],
                    "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                    "trace_id": secrets.token_hex(8), "correlation_id": secrets.token_hex(8)}


def acr_error(status, code, message):
    return status, {"errors": [{"code": code, "message": message}]}


class AzureStandIn:
    def __init__(self, tenant_id, login_server, identities, on_secret=None, entra_tls=False):
        """
        login_server: the registry's login server (host:port), the `service` of every ACR call.
        identities: {client_id: {"federated_credentials": [{"issuer", "subject", "audiences"}],
                                 "repositories": {repository: "writer"|"reader"}}}
            A repository key ending in "/" is a prefix (ABAC StringStartsWithIgnoreCase);
            otherwise the name must match (StringEqualsIgnoreCase).
        on_secret: called with every token issued here and every client assertion received.
        entra_tls: serve Entra over https (azure-identity refuses an http authority; the
            broker may use http on loopback, so the e2e tests leave it off).
        """
        self.tenant_id = tenant_id
        self.login_server = login_server
        self.identities = identities
        self.on_secret = on_secret or (lambda secret: None)  # called with every token issued or received
        self.lock = threading.Lock()
        # Verified assertions: {"header", "claims", "fetched" (discovery and JWKS URLs),
        # "client_id", "assertion"}
        self.accepted = []
        self.refused = []  # {"server", "status", "body", "reason"}
        # What was issued, each with the credential it was issued for (the tests walk the chain
        # back from the password the broker handed out).
        self.entra_tokens = []  # {"access_token", "client_id", "assertion"}
        self.refresh_tokens = []  # {"refresh_token", "client_id", "entra_token"}
        # {"access_token", "claims", "source" (refresh or access token presented),
        #  "via": "token" (POST /oauth2/token) or "realm" (GET /oauth2/token)}
        self.access_tokens = []
        self.entra_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.entra_kid = secrets.token_hex(8)
        self.signer = RegistryTokenSigner(ACR_ISSUER, common_name="rise-standin-acr")
        self.entra = StandInServer(self.route_entra, tls=entra_tls, name="entra")
        self.acr = StandInServer(self.route_acr, name="acr")
        self.authority = self.entra.url
        self.acr_url = self.acr.url
        self.realm_issuer = ACR_ISSUER

    # ---- recorded requests ------------------------------------------------------------
    @property
    def entra_requests(self):
        return self.entra.requests

    @property
    def exchange_requests(self):
        return [r for r in self.acr.requests if r.path == "/oauth2/exchange"]

    @property
    def token_requests(self):
        return [r for r in self.acr.requests if r.path == "/oauth2/token" and r.method == "POST"]

    @property
    def realm_requests(self):
        return [r for r in self.acr.requests if r.path == "/oauth2/token" and r.method == "GET"]

    def count(self):
        return self.entra.count() + self.acr.count()

    def _refuse(self, server, answer, reason):
        with self.lock:
            self.refused.append({"server": server, "status": answer[0], "body": answer[1], "reason": reason})
        return answer

    def _issue(self, bucket, record, secret):
        with self.lock:
            bucket.append(record)
        self.on_secret(secret)

    # ---- Entra ---------------------------------------------------------------------------
    def route_entra(self, req):
        parts = req.path.strip("/").split("/")
        if req.method != "POST" or len(parts) != 4 or parts[1:] != ["oauth2", "v2.0", "token"]:
            return self._refuse("entra", entra_error(404, "invalid_request", 90000,
                                                     f"No route {req.method} {req.path}"), "route")
        if parts[0] != self.tenant_id:
            return self._refuse("entra", entra_error(400, "invalid_request", 90002,
                                                     f"Tenant '{parts[0]}' not found."), "tenant")
        if req.media_type != "application/x-www-form-urlencoded":
            return self._refuse("entra", entra_error(400, "invalid_request", 900144,
                                                     "The request body must contain the following "
                                                     "parameter: 'grant_type'."), "content_type")
        form = req.form_dict
        if form.get("client_assertion"):
            self.on_secret(form["client_assertion"])  # a bearer credential while it lives
        if len(form) != len(req.form):
            return self._refuse("entra", entra_error(400, "invalid_request", 90014,
                                                     "Repeated parameters."), "repeated")
        for key in ("grant_type", "client_id", "scope"):
            if not form.get(key):
                return self._refuse("entra", entra_error(400, "invalid_request", 900144,
                                                         f"The request body must contain the following "
                                                         f"parameter: '{key}'."), "missing_" + key)
        if form["grant_type"] != "client_credentials":
            return self._refuse("entra", entra_error(400, "unsupported_grant_type", 70003,
                                                     "The app requested an unsupported grant type."),
                                "grant_type")
        identity = self.identities.get(form["client_id"])
        if identity is None:
            return self._refuse("entra", entra_error(400, "unauthorized_client", 700016,
                                                     f"Application with identifier '{form['client_id']}' "
                                                     f"was not found in the directory '{self.tenant_id}'."),
                                "client_id")
        # Client credentials take exactly one resource's /.default; the broker asks for
        # ACR-scoped tokens (registries may be set to accept nothing else).
        if form["scope"] != ACR_SCOPE:
            return self._refuse("entra", entra_error(400, "invalid_scope", 1002012,
                                                     f"The provided value for scope {form['scope']} is not "
                                                     f"valid."), "scope")
        if not form.get("client_assertion"):
            return self._refuse("entra", entra_error(401, "invalid_client", 7000218,
                                                     "The request body must contain the following parameter: "
                                                     "'client_assertion' or 'client_secret'."), "assertion_missing")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return self._refuse("entra", entra_error(400, "invalid_request", 50027,
                                                     "Invalid client_assertion_type."), "assertion_type")
        extra = set(form) - {"grant_type", "client_id", "scope", "client_assertion", "client_assertion_type",
                             "claims", "client_info"}
        if extra:
            return self._refuse("entra", entra_error(400, "invalid_request", 900144,
                                                     f"Unexpected parameters {sorted(extra)}."), "extra_fields")
        try:
            header, claims, fetched = self.verify_assertion(identity, form["client_assertion"])
        except TokenRefused as err:
            status, error, code = ASSERTION_ERRORS.get(err.code, (401, "invalid_client", 700027))
            return self._refuse("entra", entra_error(status, error, code, str(err)), err.code)
        with self.lock:
            self.accepted.append({"header": header, "claims": claims, "fetched": fetched,
                                  "client_id": form["client_id"], "assertion": form["client_assertion"]})
        now = int(time.time())
        token = jwt.encode({
            "aud": ACR_RESOURCE, "iss": f"https://sts.windows.net/{self.tenant_id}/", "iat": now, "nbf": now,
            "exp": now + ENTRA_EXPIRES_IN, "appid": form["client_id"], "appidacr": "2",
            "idtyp": "app", "oid": form["client_id"], "sub": form["client_id"], "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(16), "ver": "1.0"},
            self.entra_key, algorithm="RS256", headers={"kid": self.entra_kid, "typ": "JWT"})
        self._issue(self.entra_tokens, {"access_token": token, "client_id": form["client_id"],
                                        "assertion": form["client_assertion"]}, token)
        return 200, {"token_type": "Bearer", "expires_in": ENTRA_EXPIRES_IN, "ext_expires_in": ENTRA_EXPIRES_IN,
                     "access_token": token}

    def verify_assertion(self, identity, assertion):
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as err:
            raise TokenRefused("malformed", f"The client assertion is not a valid JWT: {err}") from err
        issuer = unverified.get("iss")
        fics = [f for f in identity["federated_credentials"] if f["issuer"] == issuer]
        if not fics:
            raise TokenRefused("fic_issuer", f"No matching federated identity record found for presented "
                                             f"assertion issuer '{issuer}'.")
        fetched = []
        try:
            header, candidates = fetch_issuer_key(assertion, issuer, ("RS256",), require_kid=True, trace=fetched)
        except TokenRefused as err:
            if err.code in ("discovery", "discovery_issuer", "jwks"):
                raise TokenRefused("issuer_unreachable", f"Request to External OIDC endpoint failed: {err}") from err
            raise
        try:
            claims = verify_with_candidates(
                assertion, candidates, "RS256", issuer=issuer, leeway=CLOCK_SKEW,
                options={"verify_aud": False, "require": ["iss", "sub", "aud", "exp", "iat"]})
        except jwt.InvalidSignatureError as err:
            raise TokenRefused("signature", "Client assertion contains an invalid signature.") from err
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as err:
            raise TokenRefused("time", "Client assertion is not within its valid time range.") from err
        except jwt.PyJWTError as err:
            raise TokenRefused("claims", f"Client assertion failed signature validation: {err}") from err
        if claims["iat"] > time.time() + CLOCK_SKEW:
            raise TokenRefused("time", "Client assertion is not within its valid time range.")
        # FICs "support a single audience": the assertion's aud must be exactly it.
        aud = claims["aud"]
        aud = aud[0] if isinstance(aud, list) and len(aud) == 1 else aud
        fics = [f for f in fics if f["audiences"] == [aud]]
        if aud != FIC_AUDIENCE or not fics:
            raise TokenRefused("fic_audience", f"No matching federated identity record found for presented "
                                               f"assertion audience '{claims['aud']}'.")
        if not any(f["subject"] == claims["sub"] for f in fics):
            raise TokenRefused("fic_subject", "No matching federated identity record found for presented assertion. "
                                              f"Assertion Issuer: '{issuer}'. Assertion Subject: '{claims['sub']}'. "
                                              f"Assertion Audience: '{claims['aud']}'.")
        return header, claims, fetched

    def verify_entra_token(self, token):
        claims = jwt.decode(token, self.entra_key.public_key(), algorithms=["RS256"], audience=ACR_RESOURCE,
                            issuer=f"https://sts.windows.net/{self.tenant_id}/",
                            options={"require": ["exp", "tid", "oid"]})
        if claims["tid"] != self.tenant_id or claims["oid"] not in self.identities:
            raise jwt.InvalidTokenError("unknown tenant or identity")
        return claims

    # ---- ACR -----------------------------------------------------------------------------
    def route_acr(self, req):
        # The Python SDK adds ?api-version=2021-07-01, the documented curl does not: both work.
        if req.path == "/oauth2/exchange" and req.method == "POST":
            return self.exchange(req)
        if req.path == "/oauth2/token" and req.method == "POST":
            return self.token(req)
        if req.path == "/oauth2/token" and req.method == "GET":
            return self.realm(req)
        return self._refuse("acr", acr_error(404, "NOT_FOUND", f"No route {req.method} {req.path}"), "route")

    def exchange(self, req):
        if req.media_type != "application/x-www-form-urlencoded":
            return self._refuse("acr", acr_error(400, "UNSUPPORTED", "form body expected"), "content_type")
        form = req.form_dict
        if form.get("grant_type") != "access_token":
            # access_token_refresh_token and refresh_token are deprecated (AAD-OAuth.md).
            return self._refuse("acr", acr_error(400, "UNSUPPORTED", "grant_type must be access_token"),
                                "grant_type")
        if form.get("service") != self.login_server:
            return self._refuse("acr", acr_error(400, "INVALID_SERVICE",
                                                 f"service {form.get('service')!r} is not this registry"), "service")
        try:
            claims = self.verify_entra_token(form.get("access_token", ""))
        except jwt.PyJWTError as err:
            return self._refuse("acr", acr_error(401, "UNAUTHORIZED", f"invalid access token: {err}"), "access_token")
        if form.get("tenant") not in (None, claims["tid"]):
            return self._refuse("acr", acr_error(401, "UNAUTHORIZED", "tenant mismatch"), "tenant")
        now = int(time.time())
        client_id = claims["oid"]
        refresh = self.signer.sign({
            "jti": secrets.token_hex(12), "sub": client_id, "nbf": now - 5, "exp": now + REFRESH_SECONDS, "iat": now,
            "iss": ACR_ISSUER, "aud": self.login_server, "version": "1.0", "grant_type": "refresh_token",
            "tenant": self.tenant_id, "permissions": {"actions": ["read", "write"]}, "roles": []})
        self._issue(self.refresh_tokens, {"refresh_token": refresh, "client_id": client_id,
                                          "entra_token": form["access_token"]}, refresh)
        return 200, {"refresh_token": refresh}

    def _token_claims(self, token):
        """Claims of an ACR token issued here, or None."""
        try:
            return self.signer.verify(token, audience=self.login_server, issuer=ACR_ISSUER)
        except jwt.PyJWTError:
            return None

    def allowed(self, client_id, name):
        """Actions the identity's (ABAC-conditioned) role assignments allow on a repository."""
        held = set()
        for repository, role in self.identities.get(client_id, {}).get("repositories", {}).items():
            lowered, wanted = repository.lower(), name.lower()
            if wanted == lowered or (lowered.endswith("/") and wanted.startswith(lowered)):
                held |= set(ROLES[role])
        return held

    def _grant(self, scopes, held_for):
        access = []
        for scope in scopes:
            for item in scope.split(" "):
                parsed = parse_scope(item)
                if parsed is None or parsed[0] != "repository":
                    continue
                _, name, actions = parsed
                held = held_for(name)
                access.append({"type": "repository", "name": name, "actions": [a for a in actions if a in held]})
        return [a for a in access if a["actions"]]

    def _access_token(self, client_id, access, via, source, not_after=None):
        now = int(time.time())
        exp = now + ACCESS_SECONDS if not_after is None else min(now + ACCESS_SECONDS, not_after)
        claims = {"jti": secrets.token_hex(12), "sub": client_id, "nbf": now - 5, "exp": exp, "iat": now,
                  "iss": ACR_ISSUER, "aud": self.login_server, "version": "1.0", "grant_type": "access_token",
                  "tenant": self.tenant_id, "access": access}
        token = self.signer.sign(claims)
        self._issue(self.access_tokens, {"access_token": token, "claims": claims, "via": via, "source": source},
                    token)
        return token

    def token(self, req):
        if req.media_type != "application/x-www-form-urlencoded":
            return self._refuse("acr", acr_error(400, "UNSUPPORTED", "form body expected"), "content_type")
        form = req.form_dict
        if form.get("grant_type") != "refresh_token":
            return self._refuse("acr", acr_error(400, "UNSUPPORTED", "grant_type must be refresh_token"),
                                "grant_type")
        if form.get("service") != self.login_server:
            return self._refuse("acr", acr_error(400, "INVALID_SERVICE", "service is not this registry"), "service")
        scopes = req.form_all("scope")
        if not scopes:
            return self._refuse("acr", acr_error(400, "INVALID_SCOPE", "scope required"), "scope")
        claims = self._token_claims(form.get("refresh_token", ""))
        if claims is None or claims.get("grant_type") != "refresh_token" or claims["sub"] not in self.identities:
            return self._refuse("acr", acr_error(401, "UNAUTHORIZED", "invalid refresh token"), "refresh_token")
        access = self._grant(scopes, lambda name: self.allowed(claims["sub"], name))
        return 200, {"access_token": self._access_token(claims["sub"], access, "token", form["refresh_token"])}

    def realm(self, req):
        unauthorized = acr_error(401, "UNAUTHORIZED", "authentication required")
        unauthorized = (*unauthorized, {"WWW-Authenticate": f'Basic realm="{self.acr_url}/oauth2/token"'})
        creds = basic_credentials(req)
        # The null GUID tells ACR the password is one of its own tokens, not a token password.
        if creds is None or creds[0] != NULL_GUID:
            return self._refuse("acr", unauthorized, "basic")
        if req.query_one("service") != self.login_server:
            return self._refuse("acr", acr_error(400, "INVALID_SERVICE", "service is not this registry"), "service")
        claims = self._token_claims(creds[1])
        if claims is None or claims["sub"] not in self.identities:
            return self._refuse("acr", unauthorized, "password")
        if claims.get("grant_type") == "refresh_token":
            def held_for(name):
                return self.allowed(claims["sub"], name)
            not_after = None
        elif claims.get("grant_type") == "access_token":
            # An access token reaches no further than its own access claim (and the
            # identity's current roles): the intersection with what is asked.
            granted = {a["name"]: set(a["actions"]) for a in claims.get("access", [])}

            def held_for(name):
                return granted.get(name, set()) & self.allowed(claims["sub"], name)
            not_after = claims["exp"]
        else:
            return self._refuse("acr", unauthorized, "grant_type")
        access = self._grant(req.query_all("scope"), held_for)
        return 200, {"access_token": self._access_token(claims["sub"], access, "realm", creds[1], not_after)}

    def stop(self):
        self.entra.stop()
        self.acr.stop()


# TokenRefused.code → (HTTP status, OAuth error, AADSTS code) as Entra answers them.
ASSERTION_ERRORS = {
    "malformed": (401, "invalid_client", 50027),
    "alg": (401, "invalid_client", 5002738),
    "kid_missing": (401, "invalid_client", 5002738),
    "kid_unknown": (401, "invalid_client", 700027),
    "issuer_unreachable": (400, "invalid_request", 50166),
    "signature": (401, "invalid_client", 700027),
    "time": (401, "invalid_client", 700024),
    "claims": (401, "invalid_client", 700027),
    "fic_issuer": (401, "invalid_client", 700211),
    "fic_audience": (401, "invalid_client", 700212),
    "fic_subject": (401, "invalid_client", 70021),
}
