"""Harbor robot accounts, end to end: the broker under `wrangler dev --test-scheduled` with
`type = "harbor"`, configured from vars only, against a strict stand-in of Harbor's API and
token service (tests/helpers/harbor_standin.py, written from PROVIDERS.md §5 and Harbor's
handlers). The broker holds a SYSTEM robot (`HARBOR_USERNAME`/`HARBOR_PASSWORD`) whose
permissions name my-app and other-app (robot create/list/delete/read, repository pull/push),
so Harbor's robot-creates-robot rule applies: every robot the broker asks for must be a
subset of those permissions, resource, action AND effect. The broker creates one
project-level robot per (project, access), caches it, and its scheduled handler deletes
its own robots once expired.

A Debian `docker-registry` trusts the stand-in's registry tokens (realm
`<stand-in>/service/token`, Harbor's token service, which grants everything the caller may
do on the requested repository's project); `skopeo` pushes and pulls with exactly the
username and password the broker returned. The robot-create body the stand-in received is
validated against the `RobotCreate` schema of Harbor's own swagger
(tests/fixtures/harbor/swagger.yaml, goharbor/harbor@c50c7ddd)."""
import base64
import copy
import json
import re
import sys
import time

import jwt
import pytest

from conftest import ROOT, Worker, remember_secret

sys.path.insert(0, str(ROOT / "tests" / "helpers"))
import registry_tools  # noqa: E402
from registry_tools import inspect_raw, pull, push, refused  # noqa: E402

pytestmark = pytest.mark.skipif(registry_tools.tools_missing(),
                                reason="docker-registry, skopeo and umoci come from Debian (scripts/setup.sh test)")

CALLER_PROJECTS = ("my-app", "other-app", "third-app", "ghost-app")
PROJECTS = {"my-app": {"id": 2}, "other-app": {"id": 3},
            # exists in Harbor, but the broker's robot has no permission on it
            "third-app": {"id": 4}}
CREATOR = "rise-creator"  # the system robot: logs in as robot$rise-creator
CRON = "*/30+*+*+*+*"
NAME_PREFIX = "rise-broker-"
# `rise-broker-<project>-<access>-<8 hex>`; the broker may put its intended expiry (epoch
# seconds) before the nonce (src/registry/sweep.rs `minted_name`, shared with GitLab).
ROBOT_NAME = r"rise-broker-{project}-{access}-(?:[0-9]+-)?[0-9a-f]{{8}}"
ROBOT_DAYS = 1


def creator_permissions(project):
    return {"kind": "project", "namespace": project, "access": [
        {"resource": resource, "action": action} for resource, action in
        [("robot", "create"), ("robot", "list"), ("robot", "delete"), ("robot", "read"),
         ("repository", "pull"), ("repository", "push")]]}


def caller_token(secret, projects=CALLER_PROJECTS):
    now = int(time.time())
    return jwt.encode({"iss": "rise-dev", "aud": "rise", "sub": "e2e-ci@example.com", "iat": now,
                       "exp": now + 600, "projects": list(projects)}, secret, algorithm="HS256")


def env_value(value):
    """`wrangler dev --env-file` runs dotenv-expand over the file: `$name` would be
    replaced by an (empty) variable, so a literal `$` is written `\\$`."""
    return value.replace("$", "\\$")


def harbor_worker(name, secret, standin, registry_host, username=None, password=None, extra_args=()):
    secrets = {"RISE_JWT_SECRET": base64.b64encode(secret).decode()}
    if username is not None:
        secrets["HARBOR_USERNAME"] = env_value(username)
    if password is not None:
        remember_secret(password)
        secrets["HARBOR_PASSWORD"] = env_value(password)
    return Worker({
        "RISE_REGISTRY__TYPE": "harbor",
        "RISE_REGISTRY__URL": standin.url,
        "RISE_REGISTRY__REGISTRY_URL": registry_host,
        "RISE_REGISTRY__HARBOR_PROJECT": "{project}",
        "RISE_REGISTRY__REPOSITORY": "{project}",
        "RISE_REGISTRY__ROBOT_DAYS": str(ROBOT_DAYS),
    }, name, secrets=secrets, extra_args=list(extra_args))


@pytest.fixture(scope="module")
def world(secret, tmp_path_factory):
    from harbor_standin import HarborStandIn, generate_secret
    tmp = tmp_path_factory.mktemp("harbor")
    creator_secret = generate_secret()
    remember_secret(creator_secret)
    standin = HarborStandIn(PROJECTS, robots={CREATOR: {
        "secret": creator_secret, "permissions": [creator_permissions("my-app"), creator_permissions("other-app")]}},
        on_secret=remember_secret)  # every robot secret and registry token: looked for in worker logs
    from conftest import free_port
    registry_port = free_port()
    host = f"127.0.0.1:{registry_port}"
    registry = registry_tools.DockerRegistry(
        tmp, registry_port, realm=standin.realm, service=standin.service, issuer=standin.realm_issuer,
        cert_pem=standin.signer.cert_pem, log_path=ROOT / "target" / "e2e-docker-registry-harbor.log")
    worker = None
    try:
        worker = harbor_worker("harbor", secret, standin, host, username="robot$" + CREATOR,
                               password=creator_secret, extra_args=["--test-scheduled"])
        yield {"standin": standin, "registry": host, "worker": worker, "tmp": tmp, "creator_secret": creator_secret,
               "image": registry_tools.oci_image(tmp)}
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


def created_for(standin, password):
    """The create call (request, body, robot record) that issued `password`."""
    return next(c for c in standin.created if c["robot"]["secret"] == password)


def creator_basic(world):
    return "Basic " + base64.b64encode(f"robot${CREATOR}:{world['creator_secret']}".encode()).decode()


def error_of(body):
    error = json.loads(body)
    assert set(error) >= {"error", "code"} and isinstance(error["error"], str) and error["error"], error
    return error


# ---- issuing ------------------------------------------------------------------------------
def test_answer_and_the_robot_harbor_created(world, secret):
    standin = world["standin"]
    data = credentials(world, secret)
    creds = data["credentials"]
    created = created_for(standin, creds["password"])
    robot, request, body = created["robot"], created["request"], created["body"]
    assert data == {"credentials": {"registry_url": world["registry"], "username": robot["login"],
                                    "password": creds["password"], "expires_in": creds["expires_in"]},
                    "repository": "my-app/my-app", "image": f"{world['registry']}/my-app/my-app",
                    "auth_method": "login_credentials"}
    assert re.fullmatch(r"robot\$my-app\+" + ROBOT_NAME.format(project="my-app", access="push"), creds["username"]), \
        creds["username"]
    expected = robot["expires_at"] - 60 - time.time()
    assert expected - 3 <= creds["expires_in"] <= expected + 1, creds["expires_in"]
    assert ROBOT_DAYS * 86400 - 120 <= creds["expires_in"] <= ROBOT_DAYS * 86400, creds["expires_in"]

    # The request: POST /api/v2.0/robots, JSON, Basic of the system robot, no query.
    assert request.method == "POST" and request.path == "/api/v2.0/robots" and request.query == []
    assert request.media_type == "application/json"
    assert request.header("Authorization") == creator_basic(world)
    # The body, field by field (the access list compared as a set: its order means nothing).
    body = copy.deepcopy(body)
    access = body["permissions"][0].pop("access")
    assert sorted(access, key=lambda a: a["action"]) == [{"resource": "repository", "action": "pull"},
                                                         {"resource": "repository", "action": "push"}]
    assert body == {"name": creds["username"][len("robot$my-app+"):],
                    "description": "rise registry broker: my-app push", "level": "project",
                    "duration": ROBOT_DAYS, "disable": False,
                    "permissions": [{"kind": "project", "namespace": "my-app"}]}
    assert robot["creator_type"] == "robot" and robot["creator_ref"] == standin.robot_named("robot$" + CREATOR)["id"]


def test_create_bodies_validate_against_harbors_swagger(world, secret):
    """Every robot-create body the stand-in received, against `RobotCreate` of Harbor's
    own OpenAPI document with `$ref`s resolved and no property beyond the schema's."""
    import jsonschema
    from harbor_standin import inline_schema, load_definitions
    credentials(world, secret)
    credentials(world, secret, access="pull")
    schema = inline_schema(load_definitions(), "RobotCreate", strict=True)
    validator = jsonschema.Draft4Validator(schema)
    bodies = [json.loads(r.body) for r in world["standin"].api_requests("POST", "/robots")]
    assert len(bodies) >= 2
    for body in bodies:
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, (body, errors)
    # Not vacuous: the resolved schema reaches Access, and refuses what Harbor does not define.
    assert schema["properties"]["permissions"]["items"]["properties"]["access"]["items"]["properties"].keys() \
        == {"resource", "action", "effect"}
    sample = bodies[0]
    for bad in ({**sample, "ttl": 1}, {**sample, "duration": "1"},
                {**sample, "permissions": [{**sample["permissions"][0], "scope": "x"}]},
                {**sample, "permissions": [{**sample["permissions"][0],
                                            "access": [{"resource": "repository", "verb": "pull"}]}]}):
        assert list(validator.iter_errors(bad)), bad


def test_push_and_pull_back_byte_identical(world, secret):
    data = credentials(world, secret)
    creds, repository = data["credentials"], data["repository"]
    push(world["image"], world["registry"], repository, "v1", creds)
    pushed = inspect_raw(f"oci:{world['image']}:v1")
    assert inspect_raw(f"docker://{world['registry']}/{repository}:v1", creds) == pushed
    pull(world["registry"], repository, "v1", creds, world["tmp"] / "pulled")
    assert inspect_raw(f"oci:{world['tmp']}/pulled:v1") == pushed
    # skopeo presented the robot at Harbor's token service and got pull and push.
    grants = [t["access"] for t in world["standin"].registry_tokens if t["username"] == creds["username"]]
    assert {"type": "repository", "name": "my-app/my-app", "actions": ["pull", "push"]} in sum(grants, [])


def test_other_projects_repositories_are_refused(world, secret):
    creds = credentials(world, secret)["credentials"]
    for repository in ("other-app/other-app", "other-app/my-app", "third-app/my-app", "my-app2/my-app"):
        result = push(world["image"], world["registry"], repository, "v1", creds, check=False)
        assert refused(result), (repository, result.stderr)


def test_pull_credentials_pull_but_cannot_push(world, secret):
    seed = credentials(world, secret)
    push(world["image"], world["registry"], "my-app/my-app", "v2", seed["credentials"])
    data = credentials(world, secret, access="pull")
    creds = data["credentials"]
    assert data["repository"] == "my-app/my-app"
    assert re.fullmatch(r"robot\$my-app\+" + ROBOT_NAME.format(project="my-app", access="pull"), creds["username"]), \
        creds
    assert creds["username"] != seed["credentials"]["username"]
    body = created_for(world["standin"], creds["password"])["body"]
    assert body["permissions"] == [{"kind": "project", "namespace": "my-app",
                                    "access": [{"resource": "repository", "action": "pull"}]}]
    assert body["description"] == "rise registry broker: my-app pull"
    pull(world["registry"], "my-app/my-app", "v2", creds, world["tmp"] / "pull-only")
    result = push(world["image"], world["registry"], "my-app/my-app", "v3", creds, check=False)
    assert refused(result), result.stderr


def test_a_second_request_creates_no_second_robot(world, secret):
    standin = world["standin"]
    first = credentials(world, secret, project="other-app")
    robots = len(standin.robots_in("other-app"))
    before = standin.count()
    second = credentials(world, secret, project="other-app")
    assert standin.count() == before, "the cached answer made an upstream call"
    assert second["credentials"]["password"] == first["credentials"]["password"]
    assert second["credentials"]["username"] == first["credentials"]["username"]
    assert len(standin.robots_in("other-app")) == robots
    assert len([c for c in standin.created if c["body"]["permissions"][0]["namespace"] == "other-app"
                and c["body"]["description"].endswith(" push")]) == 1


@pytest.mark.parametrize("project, reason", [("third-app", "robot_create_permission"),
                                             ("ghost-app", "robot_create_permission")])
def test_harbor_refusing_the_create_is_upstream_denied(world, secret, project, reason):
    """The system robot has no permission on third-app; ghost-app does not exist in Harbor,
    which a robot caller sees as the same 403 (Harbor checks permissions before looking the
    project up). One call, no retry, Harbor's message not repeated."""
    standin = world["standin"]
    posts, refused_before = len(standin.api_requests("POST", "/robots")), len(standin.refused)
    status, _, body = get_credentials(world, secret, project=project)
    assert status == 502, body
    assert error_of(body)["code"] == "upstream_denied"
    new = standin.refused[refused_before:]
    assert [(r["status"], r["reason"]) for r in new] == [(403, reason)], new
    assert len(standin.api_requests("POST", "/robots")) == posts + 1
    assert not [r for r in standin.robots.values() if r["project_id"] == PROJECTS.get(project, {}).get("id")]


def test_harbor_401_is_upstream_denied_without_retry(world, secret):
    """A wrong HARBOR_PASSWORD: Harbor authenticates nobody and answers 401 UNAUTHORIZED."""
    standin = world["standin"]
    wrong = "Wrong0password0for0the0robot00"
    worker = harbor_worker("harbor-wrong-password", secret, standin, world["registry"],
                           username="robot$" + CREATOR, password=wrong)
    try:
        basic_wrong = "Basic " + base64.b64encode(f"robot${CREATOR}:{wrong}".encode()).decode()
        status, _, body = get_credentials(world, secret, worker=worker)
        assert status == 502, body
        assert error_of(body)["code"] == "upstream_denied"
        sent = [r for r in standin.requests if r.header("Authorization") == basic_wrong]
        assert [(r.method, r.path) for r in sent] == [("POST", "/api/v2.0/robots")], "retried or another call"
        assert standin.refused[-1]["status"] == 401 and standin.refused[-1]["reason"] == "unauthenticated"
    finally:
        worker.stop()


@pytest.mark.parametrize("missing", ["HARBOR_PASSWORD", "HARBOR_USERNAME"])
def test_missing_harbor_secret_is_500_naming_it_and_harbor_is_never_called(world, secret, missing):
    standin = world["standin"]
    before = standin.count()
    kwargs = {"username": "robot$" + CREATOR, "password": world["creator_secret"]}
    kwargs[missing.split("_")[1].lower()] = None
    worker = harbor_worker(f"harbor-no-{missing.lower()}", secret, standin, world["registry"],
                           extra_args=["--test-scheduled"], **kwargs)
    try:
        for path, token in (("/registry/credentials?project=my-app", caller_token(secret)), ("/health", None)):
            status, _, body = worker.get(path, token)
            assert status == 500, (path, body)
            error = error_of(body)
            assert error["code"] == "misconfigured" and missing in error["error"], error
            assert world["creator_secret"] not in body, body
        worker.get(f"/__scheduled?cron={CRON}")
        time.sleep(2)
        assert standin.count() == before, [(r.method, r.path) for r in standin.requests[before:]]
    finally:
        worker.stop()


# ---- the sweeper -----------------------------------------------------------------------------
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


def full_access(project, actions=("pull", "push")):
    return [{"kind": "project", "namespace": project,
             "access": [{"resource": "repository", "action": a} for a in actions]}]


def test_sweeper_deletes_only_the_brokers_expired_robots(world, secret):
    standin = world["standin"]
    credentials(world, secret)  # the broker's own live robot exists too
    now = int(time.time())
    seed = standin.seed_robot
    gone = {
        "expired": seed("my-app", NAME_PREFIX + "my-app-push-deadbeef", now - 3600, full_access("my-app")),
        "expired, other project": seed("other-app", NAME_PREFIX + "other-app-pull-0badc0de", now - 5,
                                       full_access("other-app", ("pull",))),
    }
    kept = {
        "expired, not ours": seed("my-app", "ci-pusher", now - 3600, full_access("my-app")),
        "live": seed("my-app", NAME_PREFIX + "my-app-pull-cafef00d", now + 3 * 3600, full_access("my-app", ("pull",))),
        "never expires": seed("my-app", NAME_PREFIX + "my-app-push-f0000000", -1, full_access("my-app")),
        "similar prefix": seed("other-app", "rise-brokers-ci", now - 3600, full_access("other-app")),
        "prefix inside": seed("other-app", "ci-rise-broker-x", now - 3600, full_access("other-app")),
    }
    with standin.lock:
        before = set(standin.robots)
    deleted_before, requests_before, refused_before = len(standin.deleted), standin.count(), len(standin.refused)

    line = sweep(world, len(world["worker"].logs()))
    deleted = {r["id"] for r in standin.deleted[deleted_before:]}
    assert deleted == {r["id"] for r in gone.values()}, {n: r["id"] in deleted for n, r in {**gone, **kept}.items()}
    with standin.lock:
        assert set(standin.robots) == before - deleted, "a robot the sweeper must keep is gone"
    assert line["provider"] == "harbor" and line["outcome"] == "ok", line
    assert isinstance(line.get("report"), dict), line

    calls = standin.requests[requests_before:]
    assert calls and all(r.header("Authorization") == creator_basic(world) for r in calls)
    assert {r.method for r in calls} <= {"GET", "DELETE"}
    projects = [r for r in calls if r.path == "/api/v2.0/projects"]
    assert projects and projects[0].query_one("page") in (None, "1")
    assert all(int(r.query_one("page_size", "10")) <= 100 for r in projects)
    listings = [r for r in calls if r.path == "/api/v2.0/robots" and r.method == "GET"]
    assert {r.query_one("q") for r in listings} == {"Level=project,ProjectID=2", "Level=project,ProjectID=3"}, \
        [r.query for r in listings]
    deletes = [r.path for r in calls if r.method == "DELETE"]
    assert sorted(deletes) == sorted(f"/api/v2.0/robots/{r['id']}" for r in gone.values())
    assert standin.refused[refused_before:] == [], "the sweep made a call Harbor refused"

    # The deleted robot no longer logs in at the token service; the kept live one does.
    expired = gone["expired"]
    remember_secret(expired["secret"])
    result = pull(world["registry"], "my-app/my-app", "v1", {"username": expired["login"],
                                                             "password": expired["secret"]},
                  world["tmp"] / "gone", check=False)
    assert refused(result), result.stderr


def test_sweeper_reads_the_second_page_of_projects_and_stays_bounded(world, secret):
    """Harbor pages its project list at most 100 per page (`X-Total-Count`, and
    `Link: <…>; rel="next"`). With 100 public projects besides my-app and other-app (a robot
    is shown every public project) there are two pages: the broker reads page 2, and the
    whole run stays within Workers' 50 subrequests per invocation (free plan) although
    there are more projects than that — the listings it cannot do (403 on projects it has
    no permission on) are not fatal."""
    standin = world["standin"]
    names = [f"public-{i:03d}" for i in range(100)]
    for i, name in enumerate(names):
        standin.add_project(name, 1000 + i, public=True)
    try:
        requests_before = standin.count()
        line = sweep(world, len(world["worker"].logs()))
        calls = standin.requests[requests_before:]
        pages = [(r.query_one("page"), r.query_one("page_size")) for r in calls if r.path == "/api/v2.0/projects"]
        assert pages == [("1", "100"), ("2", "100")], pages
        assert len(calls) <= 50, len(calls)
        assert line["provider"] == "harbor" and line["outcome"] == "ok", line
    finally:
        for name in names:
            standin.remove_project(name)


def test_sweeper_survives_a_public_project_it_cannot_list(world, secret):
    """A real Harbor has `library` (id 1, public by default). Harbor lists public projects
    to a robot whose permissions name only some projects, but listing the robots of one it
    has no permission on is 403: the broker must carry on with the projects it maintains."""
    standin = world["standin"]
    standin.add_project("library", 1, public=True)
    try:
        target = standin.seed_robot("my-app", NAME_PREFIX + "my-app-pull-00c0ffee", int(time.time()) - 60,
                                    full_access("my-app", ("pull",)))
        deleted_before, refused_before = len(standin.deleted), len(standin.refused)
        sweep(world, len(world["worker"].logs()))
        deleted = standin.deleted[deleted_before:]
        assert target["id"] in [r["id"] for r in deleted]
        assert all("+rise-broker-" in r["login"] and 0 <= r["expires_at"] <= time.time() for r in deleted), deleted
        assert any(r["reason"] == "robot_list_permission" for r in standin.refused[refused_before:]), \
            "not vacuous: the library listing was refused"
    finally:
        standin.remove_project("library")


def test_sweeper_never_deletes_a_robot_that_never_expires(world, secret):
    """`expires_at` -1 means never (the contract: never deleted), even when the robot's
    name carries an expiry in the broker's own format that has passed — someone made the
    robot permanent on purpose (Harbor's PUT /robots/{id} with `duration: -1`)."""
    standin = world["standin"]
    past = int(time.time()) - 86400
    kept = [standin.seed_robot("my-app", f"{NAME_PREFIX}my-app-push-{past}-0d15ea5e", -1, full_access("my-app")),
            standin.seed_robot("my-app", f"{NAME_PREFIX}my-app-pull-{past}-0ddba11a", int(time.time()) + 86400,
                               full_access("my-app", ("pull",)))]
    deleted_before = len(standin.deleted)
    for _ in range(2):  # the listing order rotates; both runs must keep them
        sweep(world, len(world["worker"].logs()))
    gone = [r["login"] for r in standin.deleted[deleted_before:] if r["id"] in {k["id"] for k in kept}]
    assert not gone, gone


# ---- the stand-in itself ------------------------------------------------------------------
def test_the_stand_in_is_strict(world, secret):
    """Not vacuous: the stand-in refuses what Harbor refuses, as Harbor does."""
    import urllib.error
    import urllib.request
    standin = world["standin"]
    auth = creator_basic(world)

    def post(body, content_type="application/json", authorization=auth):
        req = urllib.request.Request(standin.url + "/api/v2.0/robots", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": content_type, "Authorization": authorization})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                answer = json.load(r)
                remember_secret(answer["secret"])
                return r.status, answer
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    def body(**changes):
        return {"name": "rise-broker-my-app-pull-5e1f7e57", "description": "strictness", "level": "project",
                "duration": 1, "disable": False,
                "permissions": [{"kind": "project", "namespace": "my-app",
                                 "access": [{"resource": "repository", "action": "pull"}]}], **changes}

    perm = body()["permissions"][0]
    for changes, content_type, expected in [
        ({}, "text/plain", (415, "content_type")),
        ({"name": "Rise-Broker"}, None, (400, "name")),
        ({"name": "rise--broker"}, None, (400, "name")),
        ({"name": "robot$x"}, None, (400, "name")),
        ({"duration": 0}, None, (400, "duration")),
        ({"duration": "1"}, None, (400, "schema")),
        ({"permissions": [perm, {**perm, "namespace": "other-app"}]}, None, (400, "permissions")),
        ({"permissions": [{**perm, "kind": "repository"}]}, None, (400, "kind")),
        ({"permissions": [{**perm, "access": [{"resource": "repository", "action": "delete"}]}]}, None,
         (403, "permission_scope")),
        ({"permissions": [{**perm, "access": [{"resource": "repository", "action": "pull", "effect": "allow"}]}]},
         None, (403, "permission_scope")),
        ({"permissions": [{**perm, "namespace": "third-app"}]}, None, (403, "robot_create_permission")),
    ]:
        status, answer = post(body(**changes), content_type or "application/json")
        assert (status, standin.refused[-1]["reason"]) == expected, (changes, status, answer)
        assert set(answer) == {"errors"} and answer["errors"][0]["code"], answer
    status, answer = post(body(secret="Chosen0Secret0Value"))
    assert status == 201 and answer["secret"] != "Chosen0Secret0Value"
    assert answer["name"] == "robot$my-app+rise-broker-my-app-pull-5e1f7e57"
    assert post(body())[0] == 409
    status, _ = post(body(name="other"), authorization="Basic " + base64.b64encode(
        f"{answer['name']}:{answer['secret']}".encode()).decode())  # a pull-only robot has no robot:create
    assert status == 403
