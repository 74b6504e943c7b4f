"""A strict stand-in for Quay (quay.io / Red Hat Quay >= 3.13) robot account federation and
Quay's Docker token realm, written from shared/spec/PROVIDERS.md §4 (quay/quay
`endpoints/oauth/robot_identity_federation.py`, `util/security/federated_robot_auth.py`,
`oauth/oidc.py`), not from the broker.

- `GET /oauth2/federation/robot/token` with `Authorization: Basic base64("{org}+{robot}:{JWT}")`.
  The robot must exist and have federation entries `[{"issuer", "subject"}]`; the JWT's
  `iss` must equal an entry's issuer (a trailing `/` on either side is ignored); Quay then
  fetches `{iss}/.well-known/openid-configuration` and its `jwks_uri`, requires a `kid`
  header naming a key there, accepts RS256 or RS384 only (no ES256), requires `iat` and
  `exp` (30 s clock skew, as Quay's JWT_CLOCK_SKEW_SECONDS), does not check `nbf` nor
  `aud` (the federation API takes no audiences), and requires `sub` to be EXACTLY one of
  the subjects configured for THAT robot with that issuer.
  Answer: `200 {"token": "<JWT>"}`, a JWT signed here (RS256, the instance key) with
  `aud = SERVER_HOSTNAME`, `sub = {org}+{robot}`, `exp = now + 3600`
  (TMP_ROBOT_TOKEN_VALIDITY_LIFETIME_S). Failures: `401 {"error": "..."}`.
- `GET /v2/auth?service=&scope=` (Quay's realm path) with Basic `{org}+{robot}:{Quay token}`:
  the password must be a token issued here whose `sub` is the username and whose `aud` is
  SERVER_HOSTNAME (`verify_robot` for a JWT password); the registry token grants only the
  robot's repository permissions (write/admin → pull,push; read → pull). Registry tokens
  are signed with `RegistryTokenSigner` (x5c), which the docker-registry trusts.

The robot token endpoint and the realm are one server, as on quay.io; SERVER_HOSTNAME is
the registry host the clients log in to (the docker-registry's host:port in the tests).
"""
import secrets
import threading
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from standin_common import (RegistryTokenSigner, StandInServer, TokenRefused, basic_credentials,
                            fetch_issuer_key, parse_scope, verify_with_candidates)

ALLOWED_ALGORITHMS = ("RS256", "RS384")  # oauth/oidc.py
JWT_CLOCK_SKEW_SECONDS = 30
ROBOT_TOKEN_SECONDS = 60 * 60  # TMP_ROBOT_TOKEN_VALIDITY_LIFETIME_S
QUAY_ISSUER = "quay"  # the `iss` of tokens minted with Quay's instance keys
ROLES = {"admin": ("pull", "push"), "write": ("pull", "push"), "read": ("pull",)}


def normalise_issuer(issuer):
    return issuer.rstrip("/") if isinstance(issuer, str) else issuer


class QuayStandIn:
    def __init__(self, server_hostname, robots, on_secret=None):
        """
        server_hostname: Quay's SERVER_HOSTNAME: `aud` of the robot tokens and the registry
            `service` (the docker-registry's host:port).
        robots: {"{org}+{short}": {"federation": [{"issuer", "subject"}],
                                   "permissions": {"{org}/{repo}": "read"|"write"|"admin"}}}
        on_secret: called with every token issued here and every federated JWT received.
        """
        for name, robot in robots.items():
            org, plus, short = name.partition("+")
            assert org and plus and short, f"robot {name!r} is not {{org}}+{{short}}"
            entries = [(normalise_issuer(e["issuer"]), e["subject"]) for e in robot["federation"]]
            assert len(entries) == len(set(entries)), f"duplicate federation entries for {name}"  # Quay refuses
            assert all(set(e) == {"issuer", "subject"} for e in robot["federation"]), "issuer+subject only"
        self.server_hostname = server_hostname
        self.robots = robots
        self.on_secret = on_secret or (lambda secret: None)
        self.lock = threading.Lock()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.signer = RegistryTokenSigner(QUAY_ISSUER, common_name="rise-standin-quay")
        # Verified exchanges: {"robot", "header", "claims", "fetched", "jwt", "token"}
        self.accepted = []
        self.refused = []  # {"path", "status", "body", "reason", "robot"}
        self.robot_tokens = []  # {"token", "robot", "claims", "jwt"}
        self.registry_tokens = []  # {"token", "robot", "access", "source"}
        self.server = StandInServer(self.route, name="quay")
        self.url = self.server.url
        self.realm = self.url + "/v2/auth"
        self.realm_issuer = QUAY_ISSUER

    # ---- recorded requests ------------------------------------------------------------
    @property
    def federation_requests(self):
        return [r for r in self.server.requests if r.path == "/oauth2/federation/robot/token"]

    @property
    def realm_requests(self):
        return [r for r in self.server.requests if r.path == "/v2/auth"]

    def count(self):
        return self.server.count()

    def _refuse(self, req, answer, reason, robot=None):
        with self.lock:
            self.refused.append({"path": req.path, "status": answer[0], "body": answer[1], "reason": reason,
                                 "robot": robot})
        return answer

    def route(self, req):
        if req.path == "/oauth2/federation/robot/token":
            if req.method != "GET":  # a Flask route with the default methods
                return self._refuse(req, (405, {"error": "Method Not Allowed"}), "method")
            return self.federation(req)
        if req.path == "/v2/auth" and req.method == "GET":
            return self.registry_auth(req)
        return self._refuse(req, (404, {"error": "Not Found"}), "route")

    # ---- robot federation --------------------------------------------------------------
    def federation(self, req):
        creds = basic_credentials(req)
        if creds is None:
            return self._refuse(req, (401, {"error": "No auth header" if not req.header("Authorization")
                                            else "Invalid basic auth header"}), "basic")
        username, token = creds
        if token:
            self.on_secret(token)  # a bearer credential while it lives
        org, plus, short = username.partition("+")
        if not (org and plus and short):
            return self._refuse(req, (401, {"error": "Invalid robot"}), "not_robot", username)
        robot = self.robots.get(username)
        if robot is None:
            return self._refuse(req, (401, {"error": f"Could not find robot with username: {username}"}),
                                "unknown_robot", username)
        try:
            header, claims, fetched = self.verify_federated_token(robot, token)
        except TokenRefused as err:
            return self._refuse(req, (401, {"error": str(err)}), err.code, username)
        now = int(time.time())
        quay_claims = {"iss": QUAY_ISSUER, "aud": self.server_hostname, "sub": username, "iat": now,
                       "nbf": now, "exp": now + ROBOT_TOKEN_SECONDS, "jti": secrets.token_hex(12)}
        quay_token = jwt.encode(quay_claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        with self.lock:
            self.accepted.append({"robot": username, "header": header, "claims": claims, "fetched": fetched,
                                  "jwt": token, "token": quay_token})
            self.robot_tokens.append({"token": quay_token, "robot": username, "claims": quay_claims, "jwt": token})
        self.on_secret(quay_token)
        return 200, {"token": quay_token}

    def verify_federated_token(self, robot, token):
        """Quay's `verify_federated_robot_jwt_token` + `OIDCLoginService.decode_user_jwt`.
        Returns (header, claims, fetched URLs); raises TokenRefused."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as err:
            raise TokenRefused("malformed", f"Invalid token: {err}") from err
        issuer = unverified.get("iss")
        if not issuer or not isinstance(issuer, str):
            raise TokenRefused("no_issuer", "Token does not contain issuer")
        if not robot.get("federation"):
            raise TokenRefused("no_federation", "Robot does not have federated login configured")
        subjects = [e["subject"] for e in robot["federation"]
                    if normalise_issuer(e["issuer"]) == normalise_issuer(issuer)]
        if not subjects:
            raise TokenRefused("issuer", f"issuer {issuer} not configured for this robot")
        fetched = []
        try:
            header, candidates = fetch_issuer_key(token, issuer, ALLOWED_ALGORITHMS, require_kid=True,
                                                  trace=fetched)
        except TokenRefused as err:
            raise TokenRefused(err.code, f"Invalid token: {err}") from err
        try:
            claims = verify_with_candidates(
                token, candidates, header["alg"], issuer=issuer, leeway=JWT_CLOCK_SKEW_SECONDS,
                options={"verify_aud": False, "verify_nbf": False, "require": ["iat", "exp"]})
        except jwt.InvalidSignatureError as err:
            raise TokenRefused("signature", "Invalid token: Signature verification failed") from err
        except jwt.ExpiredSignatureError as err:
            raise TokenRefused("time", "Invalid token: Signature has expired") from err
        except jwt.PyJWTError as err:
            raise TokenRefused("claims", f"Invalid token: {err}") from err
        if claims.get("sub") not in subjects:
            raise TokenRefused("subject", "Token does not match robot")
        return header, claims, fetched

    # ---- Docker token realm ------------------------------------------------------------
    def verify_robot_token(self, username, token):
        """`verify_robot` with a JWT password: signed here, aud SERVER_HOSTNAME, sub = username."""
        try:
            claims = jwt.decode(token, self.key.public_key(), algorithms=["RS256"], audience=self.server_hostname,
                                issuer=QUAY_ISSUER, options={"require": ["exp", "iat", "sub", "aud"]})
        except jwt.PyJWTError:
            return None
        return claims if claims["sub"] == username else None

    def registry_auth(self, req):
        unauthorized = (401, {"errors": [{"code": "UNAUTHORIZED", "message": "Invalid username or password"}]},
                        {"WWW-Authenticate": f'Basic realm="{self.realm}"'})
        creds = basic_credentials(req)
        if creds is None:
            return self._refuse(req, unauthorized, "basic")
        username, token = creds
        robot = self.robots.get(username)
        if robot is None or self.verify_robot_token(username, token) is None:
            return self._refuse(req, unauthorized, "password", username)
        if req.query_one("service") != self.server_hostname:
            return self._refuse(req, (400, {"errors": [{"code": "INVALID_SERVICE",
                                                        "message": "service is not this Quay"}]}), "service", username)
        access = []
        for scope in req.query_all("scope"):
            for item in scope.split(" "):
                parsed = parse_scope(item)
                if parsed is None or parsed[0] != "repository":
                    continue
                _, name, actions = parsed
                held = set(ROLES.get(robot["permissions"].get(name), ()))
                access.append({"type": "repository", "name": name, "actions": [a for a in actions if a in held]})
        registry_token, seconds = self.signer.registry_token(username, self.server_hostname, access)
        granted = [a for a in access if a["actions"]]
        with self.lock:
            self.registry_tokens.append({"token": registry_token, "robot": username, "access": granted,
                                         "source": token})
        self.on_secret(registry_token)
        return 200, {"token": registry_token, "expires_in": seconds}

    def stop(self):
        self.server.stop()
