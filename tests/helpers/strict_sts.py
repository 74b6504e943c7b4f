"""A strict stand-in for AWS STS `AssumeRoleWithWebIdentity`, in front of moto.

moto does not validate web identity tokens (and with IAM enforcement on it answers an
unsigned AssumeRoleWithWebIdentity with a 500), so this server does what AWS documents:
the token's `iss` must be a registered OIDC provider; its discovery document (fetched
from the issuer over HTTP) must name the same issuer; the key named by `kid` comes from
the document's `jwks_uri`; signature (RS256/ES256 only), `aud` among the provider's
client IDs, `exp`, `iat` and `sub` are checked with PyJWT. Anything else is answered
with AWS's `InvalidIdentityToken` error. A valid token gets real session credentials:
this server calls moto's (signed) AssumeRole on the role with the caller's session
policy, and answers in the `AssumeRoleWithWebIdentityResponse` shape.
"""
import json
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.session
import jwt

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def error_xml(code, message):
    return (f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>strict-sts-err</RequestId></ErrorResponse>")


class StrictSts:
    def __init__(self, moto_endpoint, access_key_id, secret_access_key, providers):
        """providers: {issuer URL: [client IDs]} — the IAM OIDC providers of the account."""
        self.providers = providers
        self.tokens = []  # every WebIdentityToken received, valid or not
        self.accepted = []  # verified claims of the accepted ones
        self.issued = []  # the session credentials handed out
        self.forms = []  # every request's form, as received (the session policy among it)
        self.sts = botocore.session.get_session().create_client(
            "sts", region_name="us-east-1", endpoint_url=moto_endpoint,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                status, body = outer.handle(form, has_signature="Authorization" in self.headers)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("x-amzn-RequestId", "strict-sts-1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, token):
        """Raises with AWS's reason when the token would be refused."""
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        if issuer not in self.providers:
            raise ValueError("No OpenIDConnect provider found in your account for " + str(issuer))
        with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", timeout=10) as r:
            discovery = json.load(r)
        if discovery.get("issuer") != issuer:
            raise ValueError("discovery document names another issuer")
        key = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False).get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=["RS256", "ES256"], audience=self.providers[issuer],
                          issuer=issuer, options={"require": ["exp", "iat", "sub", "aud", "iss"]})

    def handle(self, form, has_signature):
        if form.get("Action") != "AssumeRoleWithWebIdentity":
            return 400, error_xml("InvalidAction", "only AssumeRoleWithWebIdentity is served here")
        if has_signature:
            return 400, error_xml("InvalidParameterValue", "AssumeRoleWithWebIdentity is not signed")
        token = form.get("WebIdentityToken", "")
        self.tokens.append(token)
        self.forms.append(dict(form))
        try:
            claims = self.verify(token)
        except Exception as err:  # noqa: BLE001 — every failure is AWS's InvalidIdentityToken
            return 400, error_xml("InvalidIdentityToken", type(err).__name__)
        self.accepted.append(claims)
        params = {"RoleArn": form["RoleArn"], "RoleSessionName": form["RoleSessionName"],
                  "DurationSeconds": int(form.get("DurationSeconds", 3600))}
        if "Policy" in form:
            params["Policy"] = form["Policy"]
        creds = self.sts.assume_role(**params)["Credentials"]
        self.issued.append(creds)
        source = claims.get("https://aws.amazon.com/source_identity", "")
        return 200, f"""<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>{claims["sub"]}</SubjectFromWebIdentityToken>
    <Audience>{claims["aud"]}</Audience>
    <AssumedRoleUser><Arn>{form["RoleArn"].replace(":iam:", ":sts:").replace(":role/", ":assumed-role/")}/{form["RoleSessionName"]}</Arn><AssumedRoleId>AROAWEBID:{form["RoleSessionName"]}</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{creds["AccessKeyId"]}</AccessKeyId>
      <SecretAccessKey>{creds["SecretAccessKey"]}</SecretAccessKey>
      <SessionToken>{creds["SessionToken"]}</SessionToken>
      <Expiration>{creds["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")}</Expiration>
    </Credentials>
    <SourceIdentity>{source}</SourceIdentity>
    <Provider>{claims["iss"]}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>strict-sts-1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""

    def stop(self):
        self.server.shutdown()
