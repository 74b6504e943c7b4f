"""GitLab Container Registry, end to end (issue 21): the broker under `wrangler dev` with
`type = "gitlab"`, configured from vars only, holding `GITLAB_TOKEN` (a service account's
`api` token, Maintainer of the projects it serves), against a strict GitLab stand-in
(tests/helpers/gitlab_standin.py, written from PROVIDERS.md §11–12 part A): the project
deploy-token API with its permission, field and error rules, the project listing, and the
registry realm `/jwt/auth`, which takes a deploy token's `username:token` only for image
paths of the token's own project and DROPS denied actions (still 200, as GitLab does).
A Debian `docker-registry` trusts the stand-in's registry tokens; `skopeo` pushes and pulls
with exactly the username and password the broker returned.

The broker maps Rise project P to GitLab project `rise-group/P` (`project_path`), asks for
2-hour deploy tokens (`token_hours = 2`), and runs its scheduled sweeper under
`wrangler dev --test-scheduled` (`GET /__scheduled`)."""
import base64
import datetime
import json
import os
import re
import sys
import time
import urllib.error
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

GROUP = "rise-group"
BOT = "rise-broker-bot"  # the service account whose token the broker holds
TOKEN_HOURS = 2
NAME_PREFIX = "rise-broker-"
CRON = "*/30+*+*+*+*"
FAULTS = ("fault-401", "fault-503", "fault-retry", "fault-429", "fault-notoken", "fault-expiry")
# Rise project → the bot's role on rise-group/<project> (None: not a member; the project is
# private, so GitLab answers 404 as for one that does not exist).
ROLES = {"my-app": 40, "other-app": 40, "cache-app": 40, "dev-only": 30, "secret-app": None,
         **{f: 40 for f in FAULTS}}
CALLER_PROJECTS = tuple(ROLES) + ("missing-app",)


def caller_token(secret, projects=CALLER_PROJECTS):
    now = int(time.time())
    return jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": "e2e-ci@example.com", "iat": now,
                       "exp": now + 600, "projects": list(projects)}, secret, algorithm="HS256")


def gitlab_worker(name, secret, standin, registry_host, gitlab_token=None):
    secrets = {"RISE_JWT_SECRET": base64.b64encode(secret).decode()}
    if gitlab_token is not None:
        secrets["GITLAB_TOKEN"] = gitlab_token
    return Worker({
        "RISE_REGISTRY__TYPE": "gitlab",
        "RISE_REGISTRY__URL": standin.url,
        "RISE_REGISTRY__REGISTRY_URL": registry_host,
        "RISE_REGISTRY__PROJECT_PATH": f"{GROUP}/{{project}}",
        "RISE_REGISTRY__TOKEN_HOURS": str(TOKEN_HOURS),
    }, name, secrets=secrets, extra_args=["--test-scheduled"])


@pytest.fixture(scope="module")
def world(secret, tmp_path_factory):
    from gitlab_standin import MAINTAINER, GitLabStandIn
    tmp = tmp_path_factory.mktemp("gitlab")
    gitlab_token = "glpat-" + base64.urlsafe_b64encode(os.urandom(15)).decode()
    remember_secret(gitlab_token)  # a worker secret: looked for in every worker log
    projects = {f"{GROUP}/{p}": {"members": {BOT: role} if role else {}} for p, role in ROLES.items()}
    projects[f"{GROUP}/secret-app"]["members"]["someone"] = MAINTAINER
    standin = GitLabStandIn(projects, {BOT: {"tokens": {gitlab_token: {"scopes": ["api"]}}}},
                            on_secret=remember_secret)  # every deploy token and registry JWT
    registry_port = free_port()
    registry = registry_tools.DockerRegistry(
        tmp, registry_port, realm=standin.realm, service=standin.service, issuer=standin.realm_issuer,
        cert_pem=standin.signer.cert_pem, log_path=ROOT / "target" / "e2e-docker-registry-gitlab.log")
    worker = None
    try:
        worker = gitlab_worker("gitlab", secret, standin, registry.host, gitlab_token)
        yield {"standin": standin, "registry": registry.host, "worker": worker, "tmp": tmp,
               "gitlab_token": gitlab_token, "image": registry_tools.oci_image(tmp)}
    finally:
        if worker is not None:
            worker.stop()
        registry.stop()
        standin.stop()


def get_credentials(world, secret, project="my-app", access="push", worker=None):
    query = f"project={project}" + ("" if access == "push" else f"&access={access}")
    return (worker or world["worker"]).get(f"/registry/credentials?{query}", caller_token(secret))


def credentials(world, secret, **kwargs):
    status, _, body = get_credentials(world, secret, **kwargs)
    assert status == 200, body
    data = json.loads(body)
    remember_secret(data["credentials"]["password"])
    return data


def issued(standin, password):
    """The deploy token the broker handed out, and the POST that created it."""
    record = standin.deploy_token_by_secret(password)
    assert record is not None, "the password is no deploy token the stand-in issued"
    created = next(c for c in standin.created if c["record"]["id"] == record["id"])
    return record, created["request"]


def posts(standin, project):
    return standin.calls_for("POST", "deploy_tokens", f"{GROUP}/{project}")


def error_of(body):
    error = json.loads(body)
    assert set(error) >= {"error", "code"} and isinstance(error["error"], str) and error["error"], error
    assert "gldt-" not in body and "glpat-" not in body and "eyJ" not in body, body
    return error


def realm_access(world, username, password, scope):
    query = urllib.parse.urlencode({"service": "container_registry", "scope": scope})
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    req = urllib.request.Request(f"{world['standin'].realm}?{query}", headers={"Authorization": f"Basic {basic}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            token = json.load(r)["token"]
    except urllib.error.HTTPError as err:
        return err.code, None
    remember_secret(token)
    access = jwt.decode(token, options={"verify_signature": False})["access"]
    return 200, [(a["name"], a["actions"]) for a in access]


def check_deploy_token_request(world, request, project, access, started, finished):
    """What GitLab received: the URL-encoded project path, the broker's token in PRIVATE-TOKEN,
    JSON with exactly name, scopes and expires_at (RFC 3339 UTC, now + token_hours)."""
    assert request.method == "POST"
    assert request.path == f"/api/v4/projects/{GROUP}%2F{project}/deploy_tokens", request.path
    assert request.header("PRIVATE-TOKEN") == world["gitlab_token"]
    assert request.media_type == "application/json"
    body = request.json()
    assert set(body) == {"name", "scopes", "expires_at"}, body
    # `rise-broker-{project}-{access}-{expiry, epoch seconds}-{8 hex}`: the expiry asked for
    # travels in the name, so the sweeper can honour it where GitLab keeps only the day.
    named = re.fullmatch(rf"{NAME_PREFIX}{re.escape(project)}-{access}-(\d+)-[0-9a-f]{{8}}", body["name"])
    assert named, body["name"]
    want = ["read_registry", "write_registry"] if access == "push" else ["read_registry"]
    assert sorted(body["scopes"]) == want and len(body["scopes"]) == len(want), body["scopes"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", body["expires_at"]), body["expires_at"]
    expires = datetime.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
    assert int(named.group(1)) == int(expires), (body["name"], body["expires_at"])
    assert started + TOKEN_HOURS * 3600 - 5 <= expires <= finished + TOKEN_HOURS * 3600 + 5, body["expires_at"]
    return body


def check_expires_in(record, creds, started, finished):
    """`expires_in` is the deploy token's remaining life (from `expires_at`) less 60 s."""
    expires = record["expires_at"].timestamp()
    assert expires - finished - 60 - 2 <= creds["expires_in"] <= expires - started - 60 + 1, \
        (creds["expires_in"], expires - finished)


# ---- issuing ---------------------------------------------------------------------------
def test_answer_and_the_deploy_token_gitlab_created(world, secret):
    standin = world["standin"]
    started = time.time()
    data = credentials(world, secret)
    finished = time.time()
    creds = data["credentials"]
    assert data == {"credentials": {"registry_url": world["registry"], "username": creds["username"],
                                    "password": creds["password"], "expires_in": creds["expires_in"]},
                    "repository": f"{GROUP}/my-app", "image": f"{world['registry']}/{GROUP}/my-app",
                    "auth_method": "login_credentials"}
    record, request = issued(standin, creds["password"])
    assert record["project"] == f"{GROUP}/my-app" and record["creator"] == BOT
    assert creds["username"] == record["username"] == f"gitlab+deploy-token-{record['id']}"
    assert creds["password"].startswith("gldt-")
    assert record["scopes"] == ["read_registry", "write_registry"] and not record["revoked"]
    assert isinstance(creds["expires_in"], int)
    assert TOKEN_HOURS * 3600 - 60 - 30 <= creds["expires_in"] <= TOKEN_HOURS * 3600 - 60, creds["expires_in"]
    # The POST may come from an earlier (cached) request: bound it by the record's creation.
    check_deploy_token_request(world, request, "my-app", "push", request.received_at - 2, request.received_at + 2)
    check_expires_in(record, creds, started, finished)


def test_push_and_pull_back_at_the_project_and_below_it(world, secret):
    data = credentials(world, secret)
    creds = data["credentials"]
    image, host = world["image"], world["registry"]
    pushed = inspect_raw(f"oci:{image}:v1")
    for repository in (data["repository"], f"{data['repository']}/sub/image"):
        push(image, host, repository, "v1", creds)
        assert inspect_raw(f"docker://{host}/{repository}:v1", creds) == pushed
    pull(host, f"{data['repository']}/sub/image", "v1", creds, world["tmp"] / "pulled")
    assert inspect_raw(f"oci:{world['tmp']}/pulled:v1") == pushed
    # skopeo presented exactly the deploy token's username:token at GitLab's realm.
    basic = "Basic " + base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    assert any(r.header("Authorization") == basic for r in world["standin"].realm_requests)
    assert {f"{GROUP}/my-app", f"{GROUP}/my-app/sub/image"} <= world["standin"].container_repositories


def test_other_gitlab_projects_are_refused(world, secret):
    creds = credentials(world, secret)["credentials"]
    for repository in (f"{GROUP}/other-app", f"{GROUP}/cache-app", f"{GROUP}/my-app2", "other-group/my-app",
                       f"{GROUP}/other-app/my-app"):
        result = push(world["image"], world["registry"], repository, "v1", creds, check=False)
        assert refused(result), (repository, result.stderr)
    # GitLab's way of saying no: 200 and a token whose `access` lacks what was denied.
    assert realm_access(world, creds["username"], creds["password"], f"repository:{GROUP}/other-app:pull,push") \
        == (200, [])


def test_pull_credentials_pull_but_cannot_push(world, secret):
    seed = credentials(world, secret)["credentials"]
    push(world["image"], world["registry"], f"{GROUP}/my-app", "v2", seed)
    started = time.time()
    data = credentials(world, secret, access="pull")
    finished = time.time()
    creds = data["credentials"]
    assert data["repository"] == f"{GROUP}/my-app" and creds["password"] != seed["password"]
    record, request = issued(world["standin"], creds["password"])
    assert record["scopes"] == ["read_registry"] and creds["username"] == record["username"]
    check_deploy_token_request(world, request, "my-app", "pull", request.received_at - 2, request.received_at + 2)
    check_expires_in(record, creds, started, finished)
    pull(world["registry"], f"{GROUP}/my-app", "v2", creds, world["tmp"] / "pull-only")
    result = push(world["image"], world["registry"], f"{GROUP}/my-app", "v3", creds, check=False)
    assert refused(result), result.stderr
    assert realm_access(world, creds["username"], creds["password"], f"repository:{GROUP}/my-app:push,pull") \
        == (200, [(f"{GROUP}/my-app", ["pull"])])


def test_only_the_deploy_tokens_own_username_works(world, secret):
    creds = credentials(world, secret)["credentials"]
    other = credentials(world, secret, access="pull")["credentials"]
    scope = f"repository:{GROUP}/my-app:pull"
    assert realm_access(world, creds["username"], creds["password"], scope)[0] == 200
    for username in ("gitlab-ci-token", BOT, other["username"], creds["username"].upper()):
        assert realm_access(world, username, creds["password"], scope) == (401, None), username
    result = push(world["image"], world["registry"], f"{GROUP}/my-app", "v9",
                  {"username": BOT, "password": creds["password"]}, check=False)
    assert refused(result), result.stderr


def test_a_second_request_is_served_from_the_cache(world, secret):
    standin = world["standin"]
    assert posts(standin, "cache-app") == []
    first = credentials(world, secret, project="cache-app", access="pull")
    assert len(posts(standin, "cache-app")) == 1
    before = standin.count()
    second = credentials(world, secret, project="cache-app", access="pull")
    assert standin.count() == before, "the cached answer made a GitLab call"
    assert second["credentials"]["password"] == first["credentials"]["password"]
    assert second["credentials"]["username"] == first["credentials"]["username"]
    assert second["credentials"]["expires_in"] <= first["credentials"]["expires_in"]
    # push is another (project, access): its own deploy token, then cached too.
    pushing = credentials(world, secret, project="cache-app")
    credentials(world, secret, project="cache-app")
    assert len(posts(standin, "cache-app")) == 2
    assert pushing["credentials"]["password"] != first["credentials"]["password"]
    assert len(standin.tokens_of(f"{GROUP}/cache-app")) == 2


# ---- GitLab refusing, failing, or answering badly ----------------------------------------
def test_not_maintainer_is_upstream_denied_without_retry(world, secret):
    standin = world["standin"]
    status, _, body = get_credentials(world, secret, project="dev-only")
    assert status == 502, body
    assert error_of(body)["code"] == "upstream_denied"
    calls = posts(standin, "dev-only")
    assert [c["status"] for c in calls] == [403], calls
    assert standin.tokens_of(f"{GROUP}/dev-only") == []


@pytest.mark.parametrize("project", ["secret-app", "missing-app"])
def test_project_not_found_is_a_502_without_retry(world, secret, project):
    """404: no such project, or a private one the token's user is not a member of (GitLab
    does not tell them apart)."""
    status, _, body = get_credentials(world, secret, project=project)
    assert status == 502, body
    assert error_of(body)["code"] in ("upstream_denied", "upstream_error")
    assert [c["status"] for c in posts(world["standin"], project)] == [404]


def test_gitlab_401_is_upstream_denied_not_retried_not_cached(world, secret):
    standin = world["standin"]
    standin.script("POST", "deploy_tokens", f"{GROUP}/fault-401", [(401, {"message": "401 Unauthorized"})])
    status, _, body = get_credentials(world, secret, project="fault-401")
    assert status == 502, body
    assert error_of(body)["code"] == "upstream_denied"
    assert len(posts(standin, "fault-401")) == 1, "a denial must not be retried"
    # Not cached: the next request asks GitLab again (and now succeeds).
    credentials(world, secret, project="fault-401")
    assert len(posts(standin, "fault-401")) == 2


def test_gitlab_503_three_times_is_upstream_error_after_three_attempts(world, secret):
    standin = world["standin"]
    standin.script("POST", "deploy_tokens", f"{GROUP}/fault-503",
                   [(503, {"message": "503 Service Unavailable"})] * 3)
    status, _, body = get_credentials(world, secret, project="fault-503")
    assert status == 502, body
    assert error_of(body)["code"] == "upstream_error"
    calls = posts(standin, "fault-503")
    assert len(calls) == 3 and all(c["scripted"] for c in calls), [c["status"] for c in calls]
    assert standin.tokens_of(f"{GROUP}/fault-503") == []


def test_gitlab_5xx_once_then_created(world, secret):
    standin = world["standin"]
    standin.script("POST", "deploy_tokens", f"{GROUP}/fault-retry", [(502, {"message": "502 Bad Gateway"})])
    data = credentials(world, secret, project="fault-retry")
    assert [c["status"] for c in posts(standin, "fault-retry")] == [502, 201]
    record, _ = issued(standin, data["credentials"]["password"])
    assert len(standin.tokens_of(f"{GROUP}/fault-retry")) == 1 and record["project"] == f"{GROUP}/fault-retry"


def test_gitlab_429_is_upstream_throttled_with_retry_after(world, secret):
    standin = world["standin"]
    standin.script("POST", "deploy_tokens", f"{GROUP}/fault-429",
                   [(429, {"message": "Retry later"}, {"Retry-After": "30"})] * 3)
    status, headers, body = get_credentials(world, secret, project="fault-429")
    assert status == 503, body
    assert error_of(body)["code"] == "upstream_throttled"
    retry_after = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) > 0, headers
    assert 1 <= len(posts(standin, "fault-429")) <= 3


def test_a_201_without_token_is_upstream_error(world, secret):
    """GitLab created something but the answer carries no `token`: unusable, and not asked
    again (each retried POST would leave one more deploy token behind)."""
    standin = world["standin"]
    standin.script("POST", "deploy_tokens", f"{GROUP}/fault-notoken", [(201, {
        "id": 9001, "name": "rise-broker-fault-notoken-push-00000000", "username": "gitlab+deploy-token-9001",
        "expires_at": "2030-01-01T00:00:00.000Z", "scopes": ["read_registry", "write_registry"],
        "revoked": False, "expired": False})])
    status, _, body = get_credentials(world, secret, project="fault-notoken")
    assert status == 502, body
    assert error_of(body)["code"] == "upstream_error"
    assert len(posts(standin, "fault-notoken")) == 1


@pytest.mark.parametrize("expires_at", ["already past", None], ids=["past", "null"])
def test_a_201_whose_expiry_is_past_or_absent_is_upstream_error(world, secret, expires_at):
    """`expires_at` already past: dead on arrival. `expires_at: null`: GitLab made a token
    that NEVER expires (PROVIDERS.md §A2: "Does not expire if no value is provided") — not
    a short-lived credential, and one the sweeper never deletes. Neither is handed out."""
    standin = world["standin"]
    if expires_at:
        expires_at = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z")
    before = len(posts(standin, "fault-expiry"))
    token = "gldt-" + os.urandom(10).hex()
    remember_secret(token)
    standin.script("POST", "deploy_tokens", f"{GROUP}/fault-expiry", [(201, {
        "id": 9002, "name": "rise-broker-fault-expiry-push-00000000", "username": "gitlab+deploy-token-9002",
        "expires_at": expires_at, "scopes": ["read_registry", "write_registry"], "revoked": False,
        "expired": False, "token": token})])
    status, _, body = get_credentials(world, secret, project="fault-expiry")
    assert status == 502, body
    assert error_of(body)["code"] == "upstream_error"
    assert len(posts(standin, "fault-expiry")) == before + 1


def test_missing_gitlab_token_is_500_naming_it_and_gitlab_is_never_called(world, secret):
    standin = world["standin"]
    before = standin.count()
    worker = gitlab_worker("gitlab-no-token", secret, standin, world["registry"])
    try:
        for path, token in (("/registry/credentials?project=my-app", caller_token(secret)), ("/health", None)):
            status, _, body = worker.get(path, token)
            assert status == 500, (path, body)
            error = error_of(body)
            assert error["code"] == "misconfigured" and "GITLAB_TOKEN" in error["error"], error
        status, _, _ = worker.get(f"/__scheduled?cron={CRON}")
        time.sleep(2)
        assert standin.count() == before, [r.path for r in standin.requests[before:]]
    finally:
        worker.stop()


# ---- the sweeper -------------------------------------------------------------------------
def sweep(world, since_log):
    """Runs the scheduled handler once; returns its `sweep` log line (a JSON object)."""
    worker = world["worker"]
    status, _, body = worker.get(f"/__scheduled?cron={CRON}")
    assert status == 200, body
    deadline = time.time() + 30
    while time.time() < deadline:
        lines = [line for line in worker.logs()[since_log:].splitlines() if '"event":"sweep"' in line]
        if lines:
            return json.loads(lines[-1][lines[-1].index("{"):])
        time.sleep(0.2)
    raise AssertionError("no sweep log line: " + worker.logs()[since_log:][-3000:])


def deleted_count(line):
    """`deleted` of a sweep line: top level (the brief's contract) or in `report`
    (docs/operations.md §8); the line is the gitlab provider's and did not fail."""
    assert line["provider"] == "gitlab" and line.get("outcome", "ok") == "ok", line
    return line["deleted"] if "deleted" in line else line["report"]["deleted"]


def yesterday():
    return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1, hours=1)


def test_sweeper_deletes_only_the_brokers_expired_tokens(world, secret):
    standin = world["standin"]
    credentials(world, secret)  # the broker's own live token exists too
    now = datetime.datetime.now(datetime.timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if now - midnight < datetime.timedelta(seconds=20):
        time.sleep(20)
        now = datetime.datetime.now(datetime.timezone.utc)
    earlier_today = max(midnight + datetime.timedelta(seconds=10), now - datetime.timedelta(hours=1))
    add = standin.add_deploy_token
    my, other, dev = f"{GROUP}/my-app", f"{GROUP}/other-app", f"{GROUP}/dev-only"
    gone = {
        # GitLab lists it with "expired": true
        "expired": add(my, NAME_PREFIX + "my-app-push-deadbeef", ["read_registry", "write_registry"], yesterday()),
        # expired an hour ago, but GitLab's `expired` flag compares dates: still false
        "expired today": add(other, NAME_PREFIX + "other-app-push-0badc0de", ["read_registry"], earlier_today),
        # revoked by hand before its expiry (PROVIDERS: unusable; the broker's contract deletes it)
        "revoked": add(other, NAME_PREFIX + "other-app-pull-12345678", ["read_registry"],
                       now + datetime.timedelta(hours=3), revoked=True),
    }
    kept = {
        "someone else's": add(my, "someone-else", ["read_registry"], yesterday()),
        "live": add(my, NAME_PREFIX + "my-app-pull-cafef00d", ["read_registry"], now + datetime.timedelta(hours=3)),
        "never expires": add(my, NAME_PREFIX + "my-app-push-f0000000", ["read_registry"], None),
        "similar prefix": add(other, "rise-brokers-ci", ["read_registry"], yesterday()),
        "prefix inside": add(other, "ci-rise-broker-x", ["read_registry"], yesterday()),
        "not maintained": add(dev, NAME_PREFIX + "dev-only-push-aaaaaaaa", ["read_registry"], yesterday()),
    }
    assert standin.entity(gone["expired"])["expired"] is True
    assert standin.entity(gone["expired today"])["expired"] is False
    live_before = {t["id"] for p in standin.projects for t in standin.tokens_of(p)} - {r["id"] for r in gone.values()}
    deleted_before, calls_before = len(standin.deleted), len(standin.calls)

    line = sweep(world, len(world["worker"].logs()))
    deleted = {d["id"] for d in standin.deleted[deleted_before:]}
    assert deleted == {r["id"] for r in gone.values()}, (
        {n: r["id"] in deleted for n, r in {**gone, **kept}.items()})
    remaining = {t["id"] for p in standin.projects for t in standin.tokens_of(p)}
    assert remaining == live_before, "a token the sweeper must keep is gone"
    assert deleted_count(line) == len(gone), line

    sweep_calls = standin.calls[calls_before:]
    listings = [c for c in sweep_calls if c["kind"] == "projects"]
    assert listings and all(c["request"].query_one("min_access_level") == "40" for c in listings)
    for call in sweep_calls:
        assert call["request"].header("PRIVATE-TOKEN") == world["gitlab_token"], call["request"].path
        assert call["method"] in ("GET", "DELETE"), call["method"]
        assert call["status"] < 400, (call["method"], call["request"].path, call["status"])
    assert not [c for c in sweep_calls if c["project"] == dev], "the sweeper touched a project it does not maintain"


def report_of(line):
    return line.get("report", line)


def test_sweeper_follows_the_project_pages(world, secret):
    """GitLab pages its project list (X-Total-Pages): an expired broker token in the oldest
    project, listed last, is found too — in the first run, or, when that run stops at its
    bound and says `truncated`, in one of the runs after it (each run lists page 1 and a
    window of the other pages starting at a random page: 12 runs miss the last page with
    probability 2^-12). Nothing else is deleted; afterwards a run deletes nothing."""
    standin = world["standin"]
    target = standin.add_deploy_token(f"{GROUP}/my-app", NAME_PREFIX + "my-app-pull-abcdef01", ["read_registry"],
                                      yesterday())
    deleted_before = len(standin.deleted)
    runs = []
    standin.projects_max_per_page = 2  # 9 maintained projects: 5 pages, my-app (the oldest) on the last
    try:
        for _ in range(12):
            calls_before = len(standin.calls)
            line = sweep(world, len(world["worker"].logs()))
            pages = [c["request"].query_one("page") for c in standin.calls[calls_before:] if c["kind"] == "projects"]
            runs.append((pages, line))
            if len(standin.deleted) > deleted_before:
                break
            assert report_of(line).get("truncated") is True, ("a run that did not reach the last page must "
                                                              "say truncated", runs)
    finally:
        standin.projects_max_per_page = 100
    assert [d["id"] for d in standin.deleted[deleted_before:]] == [target["id"]], runs
    assert sum(deleted_count(line) for _, line in runs) == 1, runs
    assert all("1" in pages for pages, _ in runs), runs  # the newest projects every run
    line = sweep(world, len(world["worker"].logs()))
    assert deleted_count(line) == 0 and len(standin.deleted) == deleted_before + 1, line


def test_sweeper_reaches_every_maintained_project_over_several_runs(world, secret):
    """A group with more projects than one run's budget (45 calls: one listing + a token
    list per project): runs must not all stop at the same newest projects. An expired
    broker token in the OLDEST project (listed last) is deleted within a few runs."""
    standin = world["standin"]
    for n in range(45):  # newer than every other project: listed before them
        standin.add_project(f"{GROUP}/bulk-{n:02d}", {BOT: 40})
    target = standin.add_deploy_token(f"{GROUP}/my-app", NAME_PREFIX + "my-app-push-0ddba11a", ["read_registry"],
                                      yesterday())
    deleted_before = len(standin.deleted)
    lines = []
    for _ in range(10):  # each run reaches the target with p ≈ 44/54 (rotated order)
        lines.append(sweep(world, len(world["worker"].logs())))
        if len(standin.deleted) > deleted_before:
            break
        assert report_of(lines[-1]).get("truncated") is True, lines
    assert [d["id"] for d in standin.deleted[deleted_before:]] == [target["id"]], lines
