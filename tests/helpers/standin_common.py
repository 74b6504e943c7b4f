"""Pieces shared by the cloud stand-ins (gcp_standin.py, azure_standin.py).

- `StandInServer`: a loopback HTTP(S) server that parses each request once, records it,
  and hands it to a route function; every answer is JSON.
- `fetch_issuer_key`: what Google STS and Microsoft Entra do with a federated token before
  trusting it: `{iss}/.well-known/openid-configuration` over HTTP, the `issuer` in it must be
  the token's `iss`, then the key named by the header's `kid` from `jwks_uri`.
- `RegistryTokenSigner`: signs Docker registry tokens (the distribution token spec) with a
  P-256 key whose self-signed certificate goes into the registry's `rootcertbundle`;
  docker-registry 2.8 follows the `x5c` header to it, so no `kid` lookup is needed.
"""
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import secrets
import ssl
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Request:
    """One request as received. `form` keeps repeated keys and their order (google-auth's
    field order is part of what the tests compare); `form_dict` is the last value per key."""
    method: str
    path: str
    query: list
    headers: dict
    body: bytes
    form: list = field(default_factory=list)
    received_at: float = field(default_factory=time.time)

    @property
    def form_dict(self):
        return dict(self.form)

    def form_all(self, key):
        return [v for k, v in self.form if k == key]

    def query_all(self, key):
        return [v for k, v in self.query if k == key]

    def query_one(self, key, default=None):
        values = self.query_all(key)
        return values[-1] if values else default

    def header(self, name, default=None):
        """Case-insensitive header lookup (HTTP header names are)."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default

    @property
    def media_type(self):
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def json(self):
        return json.loads(self.body.decode() or "null")


class StandInServer:
    """A ThreadingHTTPServer on 127.0.0.1 that routes every request to `route(req)`, which
    returns (status, JSON-able body[, extra headers]). Every request is kept in `requests`
    (the tests assert on what the broker sent, and that a cached answer sent nothing)."""

    def __init__(self, route, tls=False, name="stand-in"):
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
                    body = self._read_chunked()  # a streamed fetch body has no Content-Length
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                parsed = urllib.parse.urlsplit(self.path)
                req = Request(method=self.command, path=parsed.path,
                              query=urllib.parse.parse_qsl(parsed.query, keep_blank_values=True),
                              headers=dict(self.headers.items()), body=body)
                if req.media_type == "application/x-www-form-urlencoded":
                    req.form = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
                with outer.lock:
                    outer.requests.append(req)
                try:
                    answer = route(req)
                except Exception as err:  # noqa: BLE001 — a stand-in bug must show, not hang the broker
                    answer = (500, {"error": "standin_bug", "error_description": repr(err)})
                status, payload = answer[0], answer[1]
                extra = answer[2] if len(answer) > 2 else {}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _read_chunked(self):
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return body
                    body += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.ca_file = None
        if tls:
            # Official Azure clients refuse a non-https authority: serve TLS with a
            # throwaway certificate for 127.0.0.1 and hand its path to the client.
            cert_file, key_file = self_signed_tls_files()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.ca_file = cert_file
        scheme = "https" if tls else "http"
        self.port = self.server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.name = name
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self):
        with self.lock:
            return len(self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def self_signed_cert(key, common_name, ip=None, days=2):
    """A self-signed certificate for `key` (CA:TRUE, as `openssl req -x509` makes)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    return builder.sign(key, hashes.SHA256())


def self_signed_tls_files():
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed_cert(key, "127.0.0.1", ip="127.0.0.1")
    folder = tempfile.mkdtemp(prefix="standin-tls-")
    cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_file, key_file


class TokenRefused(Exception):
    """The federated token is not acceptable; `code` is the stand-in's machine name for
    why (tests assert on it), the message is what the cloud would say."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def fetch_issuer_key(token, issuer, algorithms, require_kid=True, trace=None):
    """Resolves the public key for a federated `token` from its issuer, the way Google STS
    and Entra do (no cache: each exchange fetches, so the tests see every fetch in `trace`).
    Returns (header, PyJWK)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as err:
        raise TokenRefused("malformed", f"Unable to parse the token: {err}") from err
    if header.get("alg") not in algorithms:
        raise TokenRefused("alg", f"'{header.get('alg')}' is not a supported signature algorithm; "
                                  f"supported: {', '.join(algorithms)}")
    kid = header.get("kid")
    if require_kid and not kid:
        raise TokenRefused("kid_missing", "The token header has no 'kid'")
    discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(discovery_url, timeout=10) as r:
            discovery = json.load(r)
    except Exception as err:  # noqa: BLE001 — unreachable issuer: the cloud's error, not a crash
        raise TokenRefused("discovery", f"Unable to fetch the OpenID configuration of {issuer}: {err}") from err
    if trace is not None:
        trace.append(discovery_url)
    if discovery.get("issuer") != issuer:
        raise TokenRefused("discovery_issuer", f"The discovery document names issuer "
                                               f"{discovery.get('issuer')!r}, not {issuer!r}")
    jwks_uri = discovery.get("jwks_uri")
    if not jwks_uri:
        raise TokenRefused("discovery", "The discovery document has no jwks_uri")
    try:
        with urllib.request.urlopen(jwks_uri, timeout=10) as r:
            jwks = jwt.PyJWKSet.from_dict(json.load(r))
    except Exception as err:  # noqa: BLE001
        raise TokenRefused("jwks", f"Unable to fetch the JWKS at {jwks_uri}: {err}") from err
    if trace is not None:
        trace.append(jwks_uri)
    candidates = [k for k in jwks.keys if not kid or k.key_id == kid]
    if not candidates:
        raise TokenRefused("kid_unknown", f"No key with kid {kid!r} in {jwks_uri}")
    return header, candidates


def verify_with_candidates(token, candidates, algorithm, **decode_args):
    """Signature (and PyJWT's claim checks) with the first candidate key that verifies."""
    last = None
    for candidate in candidates:
        try:
            return jwt.decode(token, candidate.key, algorithms=[algorithm], **decode_args)
        except jwt.InvalidSignatureError as err:
            last = err
    raise last or jwt.InvalidSignatureError("no key")


def parse_scope(scope):
    """`repository:NAME:a,b` → ("repository", NAME, [a, b]); NAME may itself contain ':'
    only with a port-like registry prefix, which Docker never sends, so split from both ends."""
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    return parts[0], ":".join(parts[1:-1]), [a for a in parts[-1].split(",") if a]


def basic_credentials(req):
    header = req.header("Authorization") or ""
    if not header.lower().startswith("basic "):
        return None
    try:
        username, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return username, password


def bearer(req):
    header = req.header("Authorization") or ""
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def opaque_token(prefix):
    return prefix + secrets.token_urlsafe(48)


class RegistryTokenSigner:
    """Signs registry (bearer) tokens for docker-registry 2.8 with `x5c`: the registry takes
    the leaf certificate from the header and checks it against its rootcertbundle."""

    def __init__(self, issuer, common_name="rise-standin-registry-tokens"):
        self.issuer = issuer
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self_signed_cert(self.key, common_name)
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()
        der = self.cert.public_bytes(serialization.Encoding.DER)
        self.x5c = [base64.b64encode(der).decode()]
        self.kid = hashlib.sha256(der).hexdigest()[:16]

    def write_cert(self, path):
        with open(path, "w") as f:
            f.write(self.cert_pem)
        return path

    def sign(self, claims):
        return jwt.encode(claims, self.key, algorithm="ES256",
                          headers={"kid": self.kid, "x5c": self.x5c, "typ": "JWT"})

    def verify(self, token, audience=None, issuer=None):
        """Checks a token this signer issued (used when one comes back as a password)."""
        options = {"require": ["exp", "iat"], "verify_aud": audience is not None}
        return jwt.decode(token, self.key.public_key(), algorithms=["ES256"], audience=audience,
                          issuer=issuer or self.issuer, options=options)

    def registry_token(self, subject, service, access, seconds=300):
        """A distribution token: `access` lists only granted actions; entries with none are
        dropped (distribution's token server convention), and the registry then answers 401
        insufficient_scope for what is missing."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": service, "iat": now, "nbf": now - 5,
                  "exp": now + seconds, "jti": secrets.token_hex(12),
                  "access": [a for a in access if a["actions"]]}
        return self.sign(claims), seconds


def utc_rfc3339(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
