"""End-to-end ECR: the worker under `wrangler dev` against moto (signature checking on)
and against a scripted fake STS/ECR for throttling and timeouts."""
import base64
import json
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from conftest import ROOT, Worker, free_port

CREDS = "/registry/credentials?project=my-app"


class Moto:
    def __init__(self, keep_moto_expiry=False):
        self.port = free_port()
        args = [str(ROOT / ".venv/bin/python"), str(ROOT / "tests/helpers/moto_ecr.py"), "--port", str(self.port)]
        if keep_moto_expiry:
            args.append("--keep-moto-expiry")
        self.log = open(ROOT / "target" / f"e2e-moto-{self.port}.log", "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True, start_new_session=True)
        self.info = json.loads(self.proc.stdout.readline())
        self.endpoint = self.info["endpoint"] + "/"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def ecr_worker(name, secret, endpoint, akid, aws_secret, **extra):
    variables = {
        "RISE_JWT_SECRET": base64.b64encode(secret).decode(),
        "AWS_ACCESS_KEY_ID": akid,
        "AWS_SECRET_ACCESS_KEY": aws_secret,
        "RISE_REGISTRY__TYPE": "ecr",
        "RISE_REGISTRY__REGION": "us-east-1",
        "RISE_REGISTRY__ACCOUNT_ID": "123456789012",
        "RISE_REGISTRY__REPO_PREFIX": "rise/",
        "RISE_REGISTRY__PUSH_ROLE_ARN": "arn:aws:iam::123456789012:role/rise-ecr-push",
        "RISE_REGISTRY__STS_ENDPOINT": endpoint,
        "RISE_REGISTRY__ECR_ENDPOINT": endpoint,
    }
    variables.update(extra)
    return Worker(variables, name)


def token(secret, projects=("my-app",)):
    now = int(time.time())
    return jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": "e2e-ci@example.com", "iat": now,
                       "exp": now + 600, "projects": list(projects)}, secret, algorithm="HS256")


@pytest.fixture(scope="module")
def moto():
    m = Moto()
    yield m
    m.stop()


def test_moto_issues_scoped_credentials(moto, secret):
    w = ecr_worker("ecr-moto", secret, moto.endpoint, moto.info["access_key_id"], moto.info["secret_access_key"])
    try:
        before = time.time()
        status, headers, body = w.get(CREDS, token(secret))
        assert status == 200, body
        data = json.loads(body)
        creds = data["credentials"]
        assert creds["registry_url"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        assert creds["username"] == "AWS"
        assert creds["password"] == "123456789012-auth-token"  # what moto issues
        # Session: DurationSeconds=3600; ECR token (shimmed): 12 h → the session wins, minus 60 s.
        elapsed = int(time.time() - before) + 2
        assert 3540 - elapsed <= creds["expires_in"] <= 3540, creds
        assert data["repository"] == "rise/my-app"
        assert data["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/rise/my-app"
        assert data["auth_method"] == "login_credentials"
        logs = w.wait_for_log('"outcome":"issued"')
        assert '"subrequests":2' in logs
        # AWS's request ids (moto sends x-amzn-requestid) make it through the runtime.
        audit = next(json.loads(l[l.index("{"):]) for l in logs.splitlines() if '"outcome":"issued"' in l)
        assert len(audit["aws_request_ids"]) == 2 and all(audit["aws_request_ids"]), audit
        assert moto.info["secret_access_key"] not in logs and "123456789012-auth-token" not in logs
        # Another project: refused before any AWS call.
        status, _, body = w.get("/registry/credentials?project=other", token(secret))
        assert status == 403, body
    finally:
        w.stop()


def test_wrong_base_secret_is_a_mapped_502_without_leaks(moto, secret):
    wrong = "WRONGsecretWRONGsecretWRONGsecret0000000"
    w = ecr_worker("ecr-wrong", secret, moto.endpoint, moto.info["access_key_id"], wrong)
    try:
        status, _, body = w.get(CREDS, token(secret))
        assert status == 502, body
        parsed = json.loads(body)
        assert parsed["code"] == "upstream_denied"
        assert "sts:AssumeRole" in parsed["error"]
        for leaked in (wrong, moto.info["access_key_id"]):
            assert leaked not in body and leaked not in w.wait_for_log("upstream_denied")
    finally:
        w.stop()


def test_moto_fixed_2015_expiry_is_refused(secret):
    m = Moto(keep_moto_expiry=True)
    w = ecr_worker("ecr-expired", secret, m.endpoint, m.info["access_key_id"], m.info["secret_access_key"])
    try:
        status, _, body = w.get(CREDS, token(secret))
        assert status == 502, body
        assert json.loads(body)["code"] == "upstream_error"
        assert "auth-token" not in body
        assert "TokenAlreadyExpired" in w.wait_for_log("TokenAlreadyExpired")
    finally:
        w.stop()
        m.stop()


class FakeAws:
    """Scripted STS/ECR: `sts_plan` is a list of "throttle" | "ok" | "hang" used in order."""

    def __init__(self):
        self.sts_plan = []
        self.sts_attempts = 0
        self.ecr_attempts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/sts"):
                    outer.sts_attempts += 1
                    step = outer.sts_plan.pop(0) if outer.sts_plan else "ok"
                    if step == "hang":
                        time.sleep(30)
                        return
                    if step in ("stall-body", "stall-chunked", "huge-declared", "huge-chunked"):
                        return self.misbehave(step)
                    if step == "throttle":
                        return self.reply(400, "text/xml", "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                                          "<Message>Rate exceeded</Message></Error><RequestId>t-1</RequestId></ErrorResponse>")
                    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
                    return self.reply(200, "text/xml", f"""<AssumeRoleResponse><AssumeRoleResult>
<AssumedRoleUser><AssumedRoleId>A:x</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/p/x</Arn></AssumedRoleUser>
<Credentials><AccessKeyId>ASIAFAKE</AccessKeyId><SecretAccessKey>fake-secret</SecretAccessKey>
<SessionToken>fake-token</SessionToken><Expiration>{exp}</Expiration></Credentials>
</AssumeRoleResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></AssumeRoleResponse>""")
                outer.ecr_attempts += 1
                tok = base64.b64encode(b"AWS:fake-password").decode()
                return self.reply(200, "application/x-amz-json-1.1", json.dumps(
                    {"authorizationData": [{"authorizationToken": tok, "expiresAt": time.time() + 43200,
                                            "proxyEndpoint": "https://x"}]}))

            def misbehave(self, step):
                """Bodies the runtime's fetch must bound: headers then a stalled body; a valid
                answer padded past the broker's 256 KiB limit, with its length declared or
                sent chunked (without the limit, either would be read and accepted)."""
                exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
                padding = "<!--" + "a" * 300_000 + "-->"
                answer = (f"<AssumeRoleResponse>{padding}<AssumeRoleResult><AssumedRoleUser><AssumedRoleId>A:x</AssumedRoleId>"
                          f"<Arn>arn:aws:sts::123456789012:assumed-role/p/x</Arn></AssumedRoleUser><Credentials>"
                          f"<AccessKeyId>ASIAFAKE</AccessKeyId><SecretAccessKey>fake-secret</SecretAccessKey>"
                          f"<SessionToken>fake-token</SessionToken><Expiration>{exp}</Expiration></Credentials>"
                          f"</AssumeRoleResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>"
                          f"</AssumeRoleResponse>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                try:
                    if step == "huge-chunked":
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for i in range(0, len(answer), 16384):
                            chunk = answer[i:i + 16384]
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.write(b"0\r\n\r\n")
                    elif step == "huge-declared":
                        self.send_header("Content-Length", str(len(answer)))
                        self.end_headers()
                        self.wfile.write(answer)
                    elif step == "stall-chunked":
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        self.wfile.write(b"14\r\n<AssumeRoleResponse>\r\n")
                        self.wfile.flush()
                        time.sleep(30)
                    else:  # stall-body
                        self.send_header("Content-Length", "2000")
                        self.end_headers()
                        self.wfile.write(b"<AssumeRoleResponse>")
                        self.wfile.flush()
                        time.sleep(30)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the broker stopped reading: what these steps are for

            def reply(self, status, ctype, text):
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def fake_aws_worker(secret):
    fake = FakeAws()
    w = ecr_worker("ecr-fake", secret, fake.base + "/sts/", "AKIAFAKEBASE", "fake-base-secret",
                   RISE_REGISTRY__ECR_ENDPOINT=fake.base + "/ecr/",
                   RISE_REGISTRY__TIMEOUT_MS="1000", RISE_REGISTRY__MAX_ATTEMPTS="3",
                   # These tests are about each request's retries: no credential cache.
                   RISE_CACHE__ENABLED="false")
    yield fake, w
    w.stop()
    fake.server.shutdown()


def test_throttled_twice_then_success(fake_aws_worker, secret):
    fake, w = fake_aws_worker
    fake.sts_plan, fake.sts_attempts, fake.ecr_attempts = ["throttle", "throttle", "ok"], 0, 0
    status, _, body = w.get(CREDS, token(secret))
    assert status == 200, body
    assert fake.sts_attempts == 3 and fake.ecr_attempts == 1
    assert json.loads(body)["credentials"]["password"] == "fake-password"


def test_throttled_every_time_is_503_with_retry_after(fake_aws_worker, secret):
    fake, w = fake_aws_worker
    fake.sts_plan, fake.sts_attempts = ["throttle"] * 3, 0
    status, headers, body = w.get(CREDS, token(secret))
    assert status == 503, body
    assert json.loads(body)["code"] == "upstream_throttled"
    assert headers["Retry-After"] == "5"
    assert fake.sts_attempts == 3


def test_upstream_that_never_answers_is_504(fake_aws_worker, secret):
    fake, w = fake_aws_worker
    fake.sts_plan, fake.sts_attempts = ["hang"] * 3, 0
    status, _, body = w.get(CREDS, token(secret))
    assert status == 504, body
    assert json.loads(body)["code"] == "upstream_timeout"
    assert fake.sts_attempts == 3


def test_concurrent_first_requests_share_one_issuance_under_workerd(secret):
    """Single-flight inside workerd: followers must not be canceled as "hung" while they
    wait for another request's upstream calls, and upstream sees one AssumeRole."""
    from concurrent.futures import ThreadPoolExecutor

    fake = FakeAws()
    w = ecr_worker("ecr-flight", secret, fake.base + "/sts/", "AKIAFAKEBASE", "fake-base-secret",
                   RISE_REGISTRY__ECR_ENDPOINT=fake.base + "/ecr/")
    try:
        t = token(secret)
        with ThreadPoolExecutor(max_workers=40) as pool:
            results = list(pool.map(lambda _: w.get(CREDS, t), range(40)))
        statuses = [r[0] for r in results]
        assert statuses == [200] * 40, [r[2][:120] for r in results if r[0] != 200][:3]
        assert fake.sts_attempts == 1 and fake.ecr_attempts == 1
        assert len({json.loads(r[2])["credentials"]["password"] for r in results}) == 1
    finally:
        w.stop()
        fake.server.shutdown()


@pytest.mark.parametrize("step", ["stall-body", "stall-chunked"])
def test_a_body_that_stalls_after_the_headers_is_504(fake_aws_worker, secret, step):
    # The timeout covers reading the body (declared length or chunked), not just waiting
    # for the headers.
    fake, w = fake_aws_worker
    fake.sts_plan, fake.sts_attempts = [step] * 3, 0
    status, _, body = w.get(CREDS, token(secret))
    assert status == 504, body
    assert json.loads(body)["code"] == "upstream_timeout"
    assert fake.sts_attempts == 3


@pytest.mark.parametrize("step", ["huge-declared", "huge-chunked"])
def test_an_oversized_body_is_refused_without_a_retry(fake_aws_worker, secret, step):
    # Over 256 KiB: a declared length stops it before the body is read, an undeclared
    # one once the stream passes the limit; neither is an answer worth asking again for.
    fake, w = fake_aws_worker
    fake.sts_plan, fake.sts_attempts = [step], 0
    status, _, body = w.get(CREDS, token(secret))
    assert status == 502, body
    assert json.loads(body)["code"] == "upstream_error"
    assert fake.sts_attempts == 1
