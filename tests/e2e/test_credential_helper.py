"""docker-credential-rise end to end (issue 22): the broker under `wrangler dev` with the
`registry_token` provider in front of Debian's `docker-registry`, and `skopeo` whose only
configuration is a containers auth file holding `{"credHelpers": {"<registry>": "rise"}}`
— no credentials of its own — with the helper built by `cargo build --release -p
docker-credential-rise` first on its PATH. Each token source, the not-found fallback, a
stand-in for GitHub Actions' OIDC token endpoint, and scans of HOME and of every output for
the secrets. podman or buildah as a second client where installed."""
import base64
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import jwt
import pytest

from conftest import ROOT, Worker, free_port, remember_secret

HELPER = ROOT / "target" / "release" / "docker-credential-rise"
KEY = ROOT / "tests" / "fixtures" / "oidc" / "es256_a.pem"
SERVICE = "registry.test"
NOT_FOUND = "credentials not found in native keychain\n"
RUNTIME_TOKEN = "ghs-runtime-request-" + os.urandom(8).hex()
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("docker-registry", "skopeo", "umoci")),
    reason="docker-registry, skopeo and umoci come from Debian (scripts/setup.sh test)")


def run(*cmd, stdin=None, check=True, env=None):
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=180, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd[:3]}…: {result.stdout[-1000:]} {result.stderr[-2000:]}")
    return result


def caller_token(secret, projects=("my-app",), lifetime=600):
    """A dev-issuer (HS256) caller token; `lifetime` < 0 gives an expired one."""
    now = int(time.time())
    token = jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": "helper-e2e@example.com",
                        "iat": min(now, now + lifetime) - 60, "exp": now + lifetime,
                        "projects": list(projects)}, secret, algorithm="HS256")
    remember_secret(token)
    return token


@pytest.fixture(scope="module")
def world(secret, tmp_path_factory):
    assert HELPER.is_file(), (
        f"{HELPER} is missing: build it with `cargo build --release -p docker-credential-rise` "
        "(scripts/test.sh does, before the end-to-end tests)")
    tmp = tmp_path_factory.mktemp("credential-helper")
    cert = tmp / "broker.crt"
    run("openssl", "req", "-x509", "-key", str(KEY), "-subj", "/CN=rise-broker-test", "-days", "2",
        "-out", str(cert))
    broker_port, registry_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{broker_port}"
    (tmp / "config.yml").write_text(json.dumps({
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(tmp / "data")}},
        "http": {"addr": f"127.0.0.1:{registry_port}", "secret": os.urandom(16).hex()},
        "auth": {"token": {"realm": f"{issuer}/registry/token", "service": SERVICE,
                           "issuer": issuer, "rootcertbundle": str(cert)}},
    }))
    registry_log = open(ROOT / "target" / "e2e-docker-registry-credential-helper.log", "w")
    registry = subprocess.Popen(["docker-registry", "serve", str(tmp / "config.yml")],
                                stdout=registry_log, stderr=subprocess.STDOUT, start_new_session=True)
    worker = Worker({
        "RISE_REGISTRY__TYPE": "registry_token",
        "RISE_REGISTRY__REGISTRY_URL": f"127.0.0.1:{registry_port}",
        "RISE_REGISTRY__NAMESPACE": "rise-apps",
        "RISE_REGISTRY__SERVICE": SERVICE,
        "RISE_REGISTRY__CERTIFICATE_CHAIN": "RISE_REGISTRY_CERT",
        "RISE_OIDC__ISSUER": issuer,
        "RISE_OIDC__SIGNING_KEYS": '["OIDC_KEY_REGISTRY"]',
    }, "credential-helper", port=broker_port, secrets={
        "RISE_JWT_SECRET": base64.b64encode(secret).decode(),
        "OIDC_KEY_REGISTRY": KEY.read_text(),
        "RISE_REGISTRY_CERT": cert.read_text(),
    })
    for _ in range(100):  # the registry answers /v2/ with 401 once it is up
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{registry_port}/v2/", timeout=2)
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.1)
    image = tmp / "oci"
    run("umoci", "init", "--layout", str(image))
    run("umoci", "new", "--image", f"{image}:v1")
    run("umoci", "unpack", "--rootless", "--image", f"{image}:v1", str(tmp / "bundle"))
    (tmp / "bundle" / "rootfs" / "hello.txt").write_text(f"hello from {os.urandom(8).hex()}\n")
    run("umoci", "repack", "--image", f"{image}:v1", str(tmp / "bundle"))
    # The helper on PATH under its own name only (not the rest of target/release).
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker-credential-rise").symlink_to(HELPER)
    yield {"worker": worker, "registry": f"127.0.0.1:{registry_port}", "image": image, "tmp": tmp,
           "bin": bin_dir}
    worker.stop()
    os.killpg(registry.pid, 9)
    registry.wait()
    registry_log.close()


def client_env(world, home: Path, **settings):
    """A client's environment: a fresh HOME holding nothing but a containers auth file with
    the `credHelpers` entry, the helper first on PATH, and no RISE_* or ACTIONS_* variable
    but those given (None leaves one out)."""
    (home / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
    auth = home / "auth.json"
    auth.write_text(json.dumps({"credHelpers": {world["registry"]: "rise"}}))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("RISE_", "ACTIONS_", "REGISTRY_AUTH_FILE", "DOCKER_CONFIG"))}
    env.update(PATH=f"{world['bin']}{os.pathsep}{os.environ['PATH']}", HOME=str(home),
               XDG_RUNTIME_DIR=str(home / "run"), XDG_CONFIG_HOME=str(home / "config"),
               REGISTRY_AUTH_FILE=str(auth), RISE_BROKER_URL=world["worker"].base,
               RISE_PROJECT="my-app")
    for key, value in settings.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def helper(env, *args, stdin=""):
    return subprocess.run([str(HELPER), *args], input=stdin, env=env, capture_output=True,
                          text=True, timeout=60)


def copy(env, src, dest, check=True):
    return run("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", src, dest,
               env=env, check=check)


def denied(result):
    text = result.stderr.lower()
    return result.returncode != 0 and ("unauthorized" in text or "denied" in text)


def issued_password(world, env):
    """What the helper hands a client for the registry (remembered as a secret)."""
    result = helper(env, "get", stdin=world["registry"])
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["ServerURL"] == world["registry"]
    remember_secret(answer["Secret"])
    return answer["Secret"]


def files_holding(home: Path, secrets):
    return [str(p) for p in home.rglob("*") if p.is_file()
            and any(s in p.read_bytes().decode("utf-8", "replace") for s in secrets)]


def test_skopeo_pushes_and_pulls_with_only_a_cred_helpers_entry(world, secret, tmp_path):
    token = caller_token(secret)
    home = tmp_path / "home"
    env = client_env(world, home, RISE_TOKEN=token)
    target = f"docker://{world['registry']}/rise-apps/my-app:helper"
    pushed = copy(env, f"oci:{world['image']}:v1", target)
    local = run("skopeo", "inspect", "--raw", f"oci:{world['image']}:v1").stdout
    remote = run("skopeo", "inspect", "--raw", "--tls-verify=false", target, env=env).stdout
    assert remote == local
    pulled = copy(env, target, f"oci:{world['tmp']}/helper-pulled:v1")
    # The client stored nothing: its auth file is as written, HOME holds no secret.
    assert json.loads((home / "auth.json").read_text()) == {"credHelpers": {world["registry"]: "rise"}}
    password = issued_password(world, env)
    for result in (pushed, pulled):
        assert password not in result.stdout + result.stderr
        assert token not in result.stdout + result.stderr
    assert files_holding(home, [password, token]) == []
    logs = world["worker"].wait_for_log('"event":"registry_token"')
    assert '"scopes":["repository:rise-apps/my-app:pull,push"]' in logs


def test_another_projects_repository_is_refused(world, secret, tmp_path):
    env = client_env(world, tmp_path / "home", RISE_TOKEN=caller_token(secret))
    for repo in ("rise-apps/other", "rise-apps/my-app2", "library/alpine"):
        result = copy(env, f"oci:{world['image']}:v1", f"docker://{world['registry']}/{repo}:v1",
                      check=False)
        assert denied(result), (repo, result.stderr)
    # Asking for a project the token does not grant: the broker's refusal, through skopeo.
    env = client_env(world, tmp_path / "home-other", RISE_TOKEN=caller_token(secret),
                     RISE_PROJECT="other")
    result = copy(env, f"oci:{world['image']}:v1", f"docker://{world['registry']}/rise-apps/other:v1",
                  check=False)
    assert result.returncode != 0
    assert "rise broker refused: forbidden: " in result.stderr, result.stderr


def test_pull_only_pulls_but_cannot_push(world, secret, tmp_path):
    token = caller_token(secret)
    push_env = client_env(world, tmp_path / "home-push", RISE_TOKEN=token)
    copy(push_env, f"oci:{world['image']}:v1", f"docker://{world['registry']}/rise-apps/my-app:seed")
    pull_env = client_env(world, tmp_path / "home-pull", RISE_TOKEN=token, RISE_ACCESS="pull")
    copy(pull_env, f"docker://{world['registry']}/rise-apps/my-app:seed", f"oci:{world['tmp']}/pull-only:v1")
    result = copy(pull_env, f"oci:{world['image']}:v1", f"docker://{world['registry']}/rise-apps/my-app:nope",
                  check=False)
    assert denied(result), result.stderr
    logs = world["worker"].wait_for_log('"scopes":["repository:rise-apps/my-app:pull"]')
    assert '"scopes":["repository:rise-apps/my-app:pull"]' in logs


class GitHubTokenEndpoint:
    """Stands in for GitHub Actions' OIDC token endpoint: checks the request token and the
    audience, answers `{"value": <caller JWT>}`."""

    def __init__(self, token):
        self.hits = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                outer.hits.append((self.headers.get("Authorization"), query))
                scheme, _, credential = (self.headers.get("Authorization") or "").partition(" ")
                good = (scheme.lower() == "bearer" and credential == RUNTIME_TOKEN
                        and query.get("audience") == ["rise"] and query.get("api-version") == ["2.0"])
                body = json.dumps({"count": 1, "value": token} if good else {"message": "Bad credentials"})
                self.send_response(200 if good else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token?api-version=2.0"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def test_github_actions_oidc_token_endpoint(world, secret, tmp_path):
    remember_secret(RUNTIME_TOKEN)
    endpoint = GitHubTokenEndpoint(caller_token(secret))
    try:
        home = tmp_path / "home"
        env = client_env(world, home, ACTIONS_ID_TOKEN_REQUEST_URL=endpoint.url,
                         ACTIONS_ID_TOKEN_REQUEST_TOKEN=RUNTIME_TOKEN)
        result = copy(env, f"oci:{world['image']}:v1", f"docker://{world['registry']}/rise-apps/my-app:gha")
        assert endpoint.hits, "the helper never asked GitHub's endpoint"
        assert all(auth == f"Bearer {RUNTIME_TOKEN}" for auth, _ in endpoint.hits)
        assert RUNTIME_TOKEN not in result.stdout + result.stderr
        assert files_holding(home, [RUNTIME_TOKEN]) == []
        # Another audience: GitHub's endpoint refuses, and the helper says so (and no token).
        bad = helper(dict(env, RISE_AUDIENCE="elsewhere"), "get", stdin=world["registry"])
        assert bad.returncode == 1
        assert "OIDC token request to 127.0.0.1 failed: HTTP 401" in bad.stdout, bad.stdout
        assert RUNTIME_TOKEN not in bad.stdout + bad.stderr
    finally:
        endpoint.stop()


def test_token_file_and_token_command(world, secret, tmp_path):
    token = caller_token(secret)
    token_file = tmp_path / "token"
    token_file.write_text(f"\n  {token}\n")
    for settings in ({"RISE_TOKEN_FILE": str(token_file)},
                     {"RISE_TOKEN_COMMAND": f"cat '{token_file}'"},
                     # RISE_TOKEN first: a broken file behind it is never read.
                     {"RISE_TOKEN": token, "RISE_TOKEN_FILE": "/nonexistent"}):
        env = client_env(world, tmp_path / "home", **settings)
        issued_password(world, env)
    env = client_env(world, tmp_path / "home", RISE_TOKEN_COMMAND="echo nope >&2; exit 3")
    result = helper(env, "get", stdin=world["registry"])
    assert (result.returncode, result.stdout) == (
        1, "docker-credential-rise: RISE_TOKEN_COMMAND failed (exit status: 3)\n")


def test_another_registry_host_is_not_found(world, secret, tmp_path):
    env = client_env(world, tmp_path / "home", RISE_TOKEN=caller_token(secret))
    for server_url in ("registry.example.com", "https://index.docker.io/v1/",
                       world["registry"].replace("127.0.0.1", "localhost")):
        result = helper(env, "get", stdin=server_url)
        assert (result.returncode, result.stdout) == (1, NOT_FOUND), server_url
    # Every form of the right host is found.
    for server_url in (world["registry"], f"https://{world['registry']}", f"http://{world['registry']}/"):
        result = helper(env, "get", stdin=server_url + "\n")
        assert result.returncode == 0, result.stdout
        assert json.loads(result.stdout)["ServerURL"] == server_url


def test_an_expired_caller_token_names_token_expired(world, secret, tmp_path):
    expired = caller_token(secret, lifetime=-600)
    env = client_env(world, tmp_path / "home", RISE_TOKEN=expired)
    result = helper(env, "get", stdin=world["registry"])
    assert result.returncode == 1
    assert result.stdout.startswith("rise broker refused: token_expired: "), result.stdout
    assert len(result.stdout.splitlines()) == 1
    assert expired not in result.stdout + result.stderr
    pushed = copy(env, f"oci:{world['image']}:v1", f"docker://{world['registry']}/rise-apps/my-app:late",
                  check=False)
    assert pushed.returncode != 0 and "token_expired" in pushed.stderr, pushed.stderr
    assert expired not in pushed.stdout + pushed.stderr


def test_store_keeps_nothing_under_home(world, secret, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = client_env(world, home, RISE_TOKEN=caller_token(secret))
    before = sorted(str(p) for p in home.rglob("*"))
    stored = "store-secret-" + os.urandom(12).hex()
    remember_secret(stored)
    result = helper(env, "store", stdin=json.dumps(
        {"ServerURL": world["registry"], "Username": "someone", "Secret": stored}))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert (helper(env, "erase", stdin=world["registry"]).returncode, helper(env, "list").stdout) == (0, "{}\n")
    assert sorted(str(p) for p in home.rglob("*")) == before, "store or erase created files"
    # A real client's login goes through `store` too: skopeo says it logged in, and nothing
    # of the password lands anywhere under HOME.
    password = issued_password(world, env)
    username = json.loads(helper(env, "get", stdin=world["registry"]).stdout)["Username"]
    login = run("skopeo", "login", "--tls-verify=false", "--username", username, "--password-stdin",
                world["registry"], stdin=password, env=env, check=False)
    assert login.returncode == 0, login.stderr
    assert files_holding(home, [stored, password]) == []
    assert json.loads((home / "auth.json").read_text()) == {"credHelpers": {world["registry"]: "rise"}}


def test_the_action_writes_the_cred_helpers_entry_instead_of_logging_in(world, secret, tmp_path):
    """action.yml with `credential-helper: true`: no login, a `credHelpers` entry in the
    docker config and the containers auth file, the settings in GITHUB_ENV; skopeo then pushes
    with only those; the post step takes the entries out again."""
    remember_secret(RUNTIME_TOKEN)
    endpoint = GitHubTokenEndpoint(caller_token(secret))
    try:
        home = tmp_path / "home"
        env = client_env(world, home, ACTIONS_ID_TOKEN_REQUEST_URL=endpoint.url,
                         ACTIONS_ID_TOKEN_REQUEST_TOKEN=RUNTIME_TOKEN, RISE_BROKER_URL=None,
                         RISE_PROJECT=None)
        (home / "auth.json").unlink()
        files = {name: tmp_path / name for name in ("github_env", "github_output", "github_state")}
        inputs = {"INPUT_BROKER-URL": world["worker"].base, "INPUT_PROJECT": "my-app", "INPUT_ACCESS": "push",
                  "INPUT_AUDIENCE": "rise", "INPUT_CREDENTIAL-HELPER": "true"}
        action_env = dict(env, GITHUB_ENV=str(files["github_env"]), GITHUB_OUTPUT=str(files["github_output"]),
                          GITHUB_STATE=str(files["github_state"]), **inputs)
        main = run("node", str(ROOT / "action/main.js"), env=action_env, check=False)
        assert main.returncode == 0, main.stdout + main.stderr
        entry = {"credHelpers": {world["registry"]: "rise"}}
        assert json.loads((home / "auth.json").read_text()) == entry
        assert json.loads((home / ".docker" / "config.json").read_text()) == entry
        exported = dict(line.split("=", 1) for line in files["github_env"].read_text().splitlines())
        assert exported == {"RISE_BROKER_URL": world["worker"].base, "RISE_PROJECT": "my-app",
                            "RISE_ACCESS": "push", "RISE_AUDIENCE": "rise"}
        assert f"image={world['registry']}/rise-apps/my-app" in files["github_output"].read_text()
        # A later step: the exported settings and the runner's OIDC variables, nothing else.
        copy(dict(env, **exported), f"oci:{world['image']}:v1",
             f"docker://{world['registry']}/rise-apps/my-app:action-helper")
        state = dict(line.split("=", 1) for line in files["github_state"].read_text().splitlines())
        post = run("node", str(ROOT / "action/post.js"), env=dict(env, **{f"STATE_{k}": v for k, v in state.items()}))
        assert "taken out" in post.stdout, post.stdout
        assert json.loads((home / "auth.json").read_text()) == {}
        # Without the helper on PATH the step fails and says what is missing.
        no_helper = dict(action_env, PATH=os.environ["PATH"].replace(f"{world['bin']}{os.pathsep}", ""))
        if not shutil.which("docker-credential-rise", path=no_helper["PATH"]):
            failed = run("node", str(ROOT / "action/main.js"), env=no_helper, check=False)
            assert failed.returncode == 1 and "needs docker-credential-rise on PATH" in failed.stdout
    finally:
        endpoint.stop()


def test_podman_or_buildah_as_a_second_client(world, secret, tmp_path):
    tool = next((t for t in ("buildah", "podman") if shutil.which(t)), None)
    if tool is None:
        pytest.skip("neither buildah nor podman is installed")
    env = client_env(world, tmp_path / "home", RISE_TOKEN=caller_token(secret))
    storage = ["--root", str(tmp_path / "storage"), "--runroot", str(tmp_path / "runroot"),
               "--storage-driver", "vfs"]
    pulled = run(tool, *storage, "pull", f"oci:{world['image']}:v1", env=env)
    image_id = pulled.stdout.strip().splitlines()[-1]
    target = f"docker://{world['registry']}/rise-apps/my-app:{tool}"
    run(tool, *storage, "push", "--tls-verify=false", image_id, target, env=env)
    refused = run(tool, *storage, "push", "--tls-verify=false", image_id,
                  f"docker://{world['registry']}/rise-apps/other:{tool}", env=env, check=False)
    assert denied(refused), refused.stderr
    assert json.loads((tmp_path / "home" / "auth.json").read_text()) == {
        "credHelpers": {world["registry"]: "rise"}}
