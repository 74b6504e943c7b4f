"""A strict stand-in for the parts of Harbor 2.x the `harbor` provider meets, written from
shared/spec/PROVIDERS.md §5 and the goharbor/harbor sources it cites at commit
c50c7ddd6ea4e335a480b49c618281882ab7eec9 (`api/v2.0/swagger.yaml`, kept as
tests/fixtures/harbor/swagger.yaml; `src/server/v2.0/handler/robot.go`, `project.go`,
`base.go`; `src/controller/robot/controller.go`; `src/common/rbac/const.go`;
`src/server/middleware/security/robot.go`; `src/core/service/token/creator.go`;
`src/lib/http/error.go`; `src/lib/q/builder.go`), not from the broker.

Callers authenticate with HTTP Basic, as Harbor's security middleware does: a username
starting with `robot$` is a robot (its stored name follows the prefix; the secret must
match; a disabled robot or one whose `expires_at` (epoch seconds, -1 = never) is <= now is
not authenticated), anything else a local user. A failed login is NOT an error by itself:
the request goes on as anonymous, and the handler answers 401 UNAUTHORIZED when it needs
an authenticated caller. Errors are Harbor's `{"errors": [{"code", "message"}]}`.

API (`/api/v2.0`):
- `POST /robots` (RobotCreate), checked in Harbor's order: `Content-Type` must be
  `application/json` (415 UNSUPPORTED_MEDIA_TYPE — go-openapi's consumer check); the body
  must parse and have the swagger's types (400; the RobotCreate schema is read from the
  fixture; unknown fields are ignored, as Go's decoder does); `validateName`: `name`
  matches `^[a-z0-9]+(?:[._-][a-z0-9]+)*$` (400); `validate`: `duration` -1 or
  0 < d < 2^31-1, `level` `system` or `project`, at least one permission, each with at
  least one access, a `project` level robot exactly ONE permission entry, every access a
  (resource, action) Harbor knows for that kind (`const.go`, NolimitProvider), kind
  `system` or `project` (400 BAD_REQUEST); then the caller needs `robot:create` on the
  permission's project — for a robot caller a missing project is simply "no permission"
  (401 anonymous / 403 FORBIDDEN); a ROBOT caller's requested permissions must be a subset
  of its own, comparing kind:namespace (or the creator's kind:*) and then
  resource:action:effect EXACTLY (`isValidPermissionScope`; an absent effect is "", which
  does not equal "allow") — else 403 DENIED; the project must exist (404 NOT_FOUND: only
  an admin caller gets this far for a missing project); the name must be new in the
  project (409 CONFLICT). A `secret` in the body is ignored: the secret is generated.
  201 `RobotCreated {id, name: "robot$<project>+<name>", secret, creation_time,
  expires_at: now + duration days (epoch seconds) or -1}` and `Location: /api/v2.0/robots/<id>`.
- `GET /robots?q=&page=&page_size=`: authenticated; `q` is Harbor's query grammar
  (`k=v,k2=v2`, `~` fuzzy); `Level=project` needs `ProjectID=<positive int>` (400
  otherwise), without `Level` only system robots are listed; the caller needs `robot:list`
  on that project (403). `page` default 1, `page_size` default 10, at most 100 (422 from
  go-openapi's validation — the exact status is UNCONFIRMED); `X-Total-Count`, and a
  `Link` header as Harbor's `BaseAPI.Links` builds it: the request's path and query
  (relative, unescaped) with `page`/`page_size` set, `<…>; rel="prev"` / `rel="next"`
  joined by " , ".
- `GET /robots/{id}`, `DELETE /robots/{id}`: authenticated (401), unknown id 404, the
  caller needs `robot:read` / `robot:delete` on the robot's project (403); DELETE → 200.
  `PUT /robots/{id}` by a robot → 403 DENIED (PROVIDERS.md §5a': robots may not update or
  disable robots); PATCH is not served (Python's server answers 501).
- `GET /projects?page=&page_size=&name=&public=`: an admin sees every project; a robot
  whose permissions cover `project:*` sees every project, any other robot the projects
  its permissions name PLUS every public project (as Harbor's ListProjects); anonymous:
  public projects. Same paging headers.

Token service: `GET /service/token?service=harbor-registry&scope=repository:<p>/<repo>:<a>`
(the realm the docker-registry points at). `service` must be the configured one (400). No
scope and not authenticated → 401. For each repository scope Harbor grants EVERYTHING the
caller may do on the repository's project (pull, push, delete), not only what was asked;
a missing project grants nothing; an anonymous caller gets pull on public projects only.
So a deleted, expired or disabled robot (anonymous after the failed login) gets a token
without actions on a private project, and the registry refuses. The registry token
(`iss` harbor-token-issuer, `sub` the username, 30 minutes — Harbor's default
`token_expiration`) is signed with `RegistryTokenSigner` (x5c).
"""
import base64
import datetime
import json
import re
import secrets
import string
import threading
import time
import urllib.parse
from pathlib import Path

from standin_common import RegistryTokenSigner, StandInServer, basic_credentials, parse_scope

SWAGGER = Path(__file__).resolve().parents[1] / "fixtures" / "harbor" / "swagger.yaml"
API = "/api/v2.0"
ROBOT_PREFIX = "robot$"  # src/common/const.go RobotPrefix (configurable in Harbor; the default)
NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")  # handler/robot.go validateName
MAX_INT32 = 2 ** 31 - 1
SERVICE = "harbor-registry"  # Harbor's registry `service` name
TOKEN_ISSUER = "harbor-token-issuer"
REGISTRY_TOKEN_SECONDS = 30 * 60  # token_expiration default: 30 minutes
DAY = 24 * 60 * 60

# (resource, action) pairs a permission may name: PoliciesMap + NolimitProvider in
# src/common/rbac/const.go at the commit above.
SYSTEM_POLICIES = {
    "audit-log": ("list",),
    "catalog": ("read",),
    "garbage-collection": ("create", "list", "read", "stop", "update"),
    "jobservice-monitor": ("list", "stop"),
    "label": ("create", "delete", "read", "update"),
    "ldap-user": ("create", "list"),
    "preheat-instance": ("create", "delete", "list", "read", "update"),
    "project": ("create", "list"),
    "purge-audit": ("create", "list", "read", "stop", "update"),
    "quota": ("list", "read", "update"),
    "registry": ("create", "delete", "list", "read", "update"),
    "replication": ("create", "list", "read"),
    "replication-adapter": ("list",),
    "replication-policy": ("create", "delete", "list", "read", "update"),
    "robot": ("create", "delete", "list", "read"),
    "scan-all": ("create", "read", "stop", "update"),
    "scanner": ("create", "delete", "list", "read", "update"),
    "security-hub": ("list", "read"),
    "system-volumes": ("read",),
    "user": ("create", "delete", "list", "read", "update"),
    "user-group": ("create", "delete", "list", "read", "update"),
}
PROJECT_POLICIES = {
    "accessory": ("list",),
    "artifact": ("create", "delete", "list", "read"),
    "artifact-addition": ("read",),
    "artifact-label": ("create", "delete"),
    "export-cve": ("create", "read"),
    "immutable-tag": ("create", "delete", "list", "update"),
    "label": ("create", "delete", "list", "read", "update"),
    "log": ("list",),
    "member": ("create", "delete", "list", "read", "update"),
    "metadata": ("create", "delete", "list", "read", "update"),
    "notification-policy": ("create", "delete", "list", "read", "update"),
    "preheat-policy": ("create", "delete", "list", "read", "update"),
    "project": ("delete", "read", "update"),
    "quota": ("read",),
    "repository": ("delete", "list", "pull", "push", "read", "update"),
    "robot": ("create", "delete", "list", "read"),
    "sbom": ("create", "read", "stop"),
    "scan": ("create", "read", "stop"),
    "scanner": ("create", "read"),
    "tag": ("create", "delete", "list"),
    "tag-retention": ("create", "delete", "list", "read", "update"),
}
REGISTRY_ACTIONS = ("pull", "push", "delete")  # token/creator.go actionScopeMap (scanner-pull aside)


def harbor_error(status, code, message):
    return status, {"errors": [{"code": code, "message": message}]}


def harbor_time(epoch):
    """Harbor renders times as RFC 3339 with milliseconds."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def generate_secret():
    """robot.CreateSec: 32 characters with upper, lower and digits (IsValidSec)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(32))
        if any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value):
            return value


def load_definitions(path=SWAGGER):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)["definitions"]


def inline_schema(definitions, name, strict=False):
    """`#/definitions/<name>` with every `$ref` resolved inline (Swagger 2.0 keeps models
    under `definitions`). `strict` adds `additionalProperties: false` to every object that
    lists properties. Swagger-only keywords (`x-…`, `format: int64`, `example`) are left:
    JSON Schema validators ignore what they do not know."""
    def resolve(node, seen):
        if isinstance(node, dict):
            if "$ref" in node:
                ref = node["$ref"]
                assert ref.startswith("#/definitions/"), ref
                target = ref.split("/")[-1]
                assert target not in seen, f"recursive $ref {target}"
                merged = {**resolve(definitions[target], seen | {target}),
                          **{k: resolve(v, seen) for k, v in node.items() if k != "$ref"}}
                return merged
            out = {k: resolve(v, seen) for k, v in node.items()}
            if strict and out.get("type") == "object" and "properties" in out:
                out.setdefault("additionalProperties", False)
            return out
        if isinstance(node, list):
            return [resolve(v, seen) for v in node]
        return node
    return resolve(definitions[name], {name})


def parse_harbor_query(q):
    """src/lib/q/builder.go parseKeywords: `k=v` pairs split by `,`; an empty key or value
    is a 400. Values are kept as strings (`~v` fuzzy, others exact)."""
    keywords = {}
    if not q:
        return keywords
    q = urllib.parse.unquote(q)
    for param in q.split(","):
        key, eq, value = param.partition("=")
        if not eq or not key or not value:
            raise ValueError('the query string must contain "=" and the key/value cannot be empty')
        keywords[key] = value
    return keywords


def keyword_matches(pattern, value):
    if pattern.startswith("~"):
        return pattern[1:] in value
    return pattern == value


class HarborStandIn:
    def __init__(self, projects, users=None, robots=None, on_secret=None, service=SERVICE):
        """
        projects: {name: {"id": int, "public": bool}} (Harbor project names and ids).
        users: {username: {"password": str, "admin": bool}} local users (admin = sysadmin).
        robots: system-level robots to create first: {short name: {"secret": str,
            "permissions": [{"kind", "namespace", "access": [{"resource", "action"[, "effect"]}]}],
            "expires_at": -1 by default}}; log in as `robot$<short name>`.
        on_secret: called with every robot secret and registry token issued here.
        """
        self.lock = threading.RLock()
        self.projects = {}
        for name, spec in projects.items():
            self.add_project(name, spec["id"], spec.get("public", False))
        self.users = dict(users or {})
        self.robots = {}  # id → record
        self.next_robot_id = 100
        self.on_secret = on_secret or (lambda value: None)
        self.service = service
        self.signer = RegistryTokenSigner(TOKEN_ISSUER, common_name="rise-standin-harbor")
        self.definitions = load_definitions()
        self.create_schema = inline_schema(self.definitions, "RobotCreate")
        self.created = []  # {"request", "body", "robot"}
        self.deleted = []  # robot records, as they were
        self.refused = []  # {"method", "path", "status", "code", "reason", "caller"}
        self.registry_tokens = []  # {"token", "username", "robot_id", "access", "requested"}
        for short, spec in (robots or {}).items():
            self.seed_robot(None, short, spec.get("expires_at", -1), spec["permissions"],
                            secret=spec["secret"], level="system")
        self.server = StandInServer(self.route, name="harbor")
        self.url = self.server.url
        self.realm = self.url + "/service/token"
        self.realm_issuer = TOKEN_ISSUER

    # ---- state --------------------------------------------------------------------------
    def add_project(self, name, project_id, public=False):
        with self.lock:
            assert NAME_RE.match(name), f"not a Harbor project name: {name}"
            assert all(p["project_id"] != project_id for p in self.projects.values()), "duplicate project id"
            now = time.time()
            self.projects[name] = {"project_id": project_id, "name": name, "public": public,
                                   "creation_time": now, "update_time": now}

    def remove_project(self, name):
        with self.lock:
            project = self.projects.pop(name)
            for rid in [r["id"] for r in self.robots.values() if r["project_id"] == project["project_id"]]:
                del self.robots[rid]

    def project_by_id(self, project_id):
        return next((p for p in self.projects.values() if p["project_id"] == project_id), None)

    def seed_robot(self, project, name, expires_at, permissions=None, secret=None, level="project",
                   description="", disable=False, creator=("local", 1)):
        """A robot as if created earlier (possibly already expired), outside the API.
        Returns its record; `record["login"]` is the name it logs in with."""
        with self.lock:
            return self._store_robot(project, name, expires_at, permissions, secret or generate_secret(), level,
                                     description, disable, creator, duration=None)

    def _store_robot(self, project, name, expires_at, permissions, secret, level, description, disable,
                     creator, duration):
        if level == "project":
            proj = self.projects[project]
            stored = f"{project}+{name}"
            permissions = permissions or [{"kind": "project", "namespace": project,
                                           "access": [{"resource": "repository", "action": "pull"}]}]
            project_id = proj["project_id"]
        else:
            stored, project_id = name, 0
        rid = self.next_robot_id
        self.next_robot_id += 1
        now = time.time()
        record = {
            "id": rid, "stored_name": stored, "login": ROBOT_PREFIX + stored, "level": level,
            "project_id": project_id, "description": description, "secret": secret, "disable": disable,
            "duration": duration if duration is not None else (-1 if expires_at == -1
                                                              else max(1, round((expires_at - now) / DAY))),
            "expires_at": expires_at,
            "permissions": [{"kind": p["kind"], "namespace": p["namespace"],
                             "access": [{"resource": a["resource"], "action": a["action"],
                                         "effect": a.get("effect", "")} for a in p["access"]]}
                            for p in permissions],
            "creator_type": creator[0], "creator_ref": creator[1],
            "creation_time": now, "update_time": now,
        }
        self.robots[rid] = record
        self.on_secret(secret)
        return record

    def robots_in(self, project):
        pid = self.projects[project]["project_id"]
        with self.lock:
            return [r for r in self.robots.values() if r["project_id"] == pid]

    def robot_named(self, login):
        with self.lock:
            return next((r for r in self.robots.values() if r["login"] == login), None)

    def count(self):
        return self.server.count()

    @property
    def requests(self):
        return self.server.requests

    def api_requests(self, method=None, path=None):
        return [r for r in self.server.requests
                if r.path.startswith(API) and (method is None or r.method == method)
                and (path is None or r.path == API + path)]

    def stop(self):
        self.server.stop()

    # ---- authentication and permissions --------------------------------------------------
    def principal(self, req):
        """("robot", record) | ("user", name, record) | None (anonymous)."""
        creds = basic_credentials(req)
        if creds is None:
            return None
        username, password = creds
        with self.lock:
            if username.startswith(ROBOT_PREFIX):
                stored = username[len(ROBOT_PREFIX):]
                robot = next((r for r in self.robots.values() if r["stored_name"] == stored), None)
                if robot is not None and secrets.compare_digest(robot["secret"], password) and not robot["disable"] \
                        and (robot["expires_at"] == -1 or robot["expires_at"] > time.time()):
                    return ("robot", robot)
                # Harbor then tries a local user of that name (basicAuth), which fails too.
            user = self.users.get(username)
            if user is not None and secrets.compare_digest(user["password"], password):
                return ("user", username, user)
        return None

    def is_admin(self, who):
        return who is not None and who[0] == "user" and who[2].get("admin", False)

    @staticmethod
    def _allows(policies, resource, action):
        allowed = denied = False
        for access in policies:
            if access["resource"] in (resource, "*") and access["action"] in (action, "*"):
                if access.get("effect", "") == "deny":
                    denied = True
                else:
                    allowed = True
        return allowed and not denied

    def can_project(self, who, project, resource, action):
        """Whether `who` may do `action` on `resource` of `project` (a project record or None)."""
        if project is None:
            return self.is_admin(who)
        if who is None:
            return project["public"] and resource == "repository" and action == "pull"
        if self.is_admin(who):
            return True
        if who[0] == "user":
            return project["public"] and resource == "repository" and action == "pull"  # no memberships here
        robot = who[1]
        if robot["level"] == "project" and robot["project_id"] != project["project_id"]:
            return project["public"] and resource == "repository" and action == "pull"
        policies = [a for p in robot["permissions"] if p["kind"] == "project"
                    and p["namespace"] in (project["name"], "*") for a in p["access"]]
        if self._allows(policies, resource, action):
            return True
        return project["public"] and resource == "repository" and action == "pull"

    def can_system(self, who, resource, action):
        if self.is_admin(who):
            return True
        if who is None or who[0] != "robot":
            return False
        policies = [a for p in who[1]["permissions"] if p["kind"] == "system" for a in p["access"]]
        return self._allows(policies, resource, action)

    def _refuse(self, req, answer, reason, who=None):
        body = answer[1]
        code = body["errors"][0]["code"] if isinstance(body, dict) and body.get("errors") else None
        with self.lock:
            self.refused.append({"method": req.method, "path": req.path, "status": answer[0], "code": code,
                                 "reason": reason, "caller": who[1]["login"] if who and who[0] == "robot"
                                 else (who[1] if who else None)})
        return answer

    def _unauthorized_or_forbidden(self, req, who, reason, code="FORBIDDEN", message=""):
        if who is None:
            return self._refuse(req, harbor_error(401, "UNAUTHORIZED", "unauthorized"), "unauthenticated")
        return self._refuse(req, harbor_error(403, code, message or "forbidden"), reason, who)

    # ---- routing ------------------------------------------------------------------------
    def route(self, req):
        path = req.path
        if path == "/service/token":
            return self.token_service(req)
        if not path.startswith(API + "/"):
            return self._refuse(req, harbor_error(404, "NOT_FOUND", "not found"), "route")
        rest = path[len(API):]
        if rest == "/robots":
            if req.method == "POST":
                return self.create_robot(req)
            if req.method == "GET":
                return self.list_robots(req)
        elif re.fullmatch(r"/robots/[^/]+", rest):
            ident = rest.split("/")[-1]
            if req.method in ("GET", "DELETE", "PUT"):
                if not re.fullmatch(r"[0-9]+", ident):
                    return self._refuse(req, harbor_error(400, "BAD_REQUEST",
                                                          f"robot_id in path must be of type int64: \"{ident}\""),
                                        "robot_id")
                return {"GET": self.get_robot, "DELETE": self.delete_robot, "PUT": self.update_robot}[req.method](
                    req, int(ident))
        elif rest == "/projects" and req.method == "GET":
            return self.list_projects(req)
        return self._refuse(req, harbor_error(404 if req.method in ("GET", "POST", "PUT", "DELETE") else 405,
                                              "NOT_FOUND", "not found"), "route")

    # ---- robots -------------------------------------------------------------------------
    def create_robot(self, req):
        import jsonschema
        if req.media_type != "application/json":
            return self._refuse(req, harbor_error(415, "UNSUPPORTED_MEDIA_TYPE",
                                                  f"unsupported media type {req.media_type!r}"), "content_type")
        try:
            body = json.loads(req.body.decode())
        except (ValueError, UnicodeDecodeError) as err:
            return self._refuse(req, harbor_error(400, "BAD_REQUEST", f"parsing robot body from \"\" failed: {err}"),
                                "json")
        errors = [] if isinstance(body, dict) else ["not an object"]
        if not errors:
            errors = [e.message for e in jsonschema.Draft4Validator(self.create_schema).iter_errors(body)]
        if errors:
            return self._refuse(req, harbor_error(400, "BAD_REQUEST", "; ".join(errors)), "schema")
        name = body.get("name", "")
        if not NAME_RE.match(name):
            return self._refuse(req, harbor_error(400, "BAD_REQUEST",
                                                  "robot name is not in lower case or contains illegal characters"),
                                "name")
        duration, level = body.get("duration", 0), body.get("level", "")
        permissions = body.get("permissions") or []
        problem = self._validate(duration, level, permissions)
        if problem:
            return self._refuse(req, harbor_error(400, "BAD_REQUEST", problem[1]), problem[0])
        who = self.principal(req)
        namespace = permissions[0].get("namespace", "")
        if level == "system":
            if not self.can_system(who, "robot", "create"):
                return self._unauthorized_or_forbidden(req, who, "robot_create_permission")
        else:
            project = self.projects.get(namespace)
            if not self.can_project(who, project, "robot", "create"):
                return self._unauthorized_or_forbidden(req, who, "robot_create_permission")
        if who is not None and who[0] == "robot" and not self.permission_subset(permissions, who[1]["permissions"]):
            return self._refuse(req, harbor_error(
                403, "DENIED", "permission scope is invalid. It must be equal to or more restrictive than the "
                               f"creator robot's permissions: {who[1]['login']}"), "permission_scope", who)
        with self.lock:
            if level == "project" and namespace not in self.projects:
                return self._refuse(req, harbor_error(404, "NOT_FOUND", f"project {namespace} not found"),
                                    "project_missing", who)
            stored = f"{namespace}+{name}" if level == "project" else name
            if any(r["stored_name"] == stored for r in self.robots.values()):
                return self._refuse(req, harbor_error(409, "CONFLICT", f"robot account {name} already exists"),
                                    "conflict", who)
            expires_at = -1 if duration == -1 else int(time.time()) + duration * DAY
            creator = ("robot", who[1]["id"]) if who[0] == "robot" else ("local", 1)
            robot = self._store_robot(namespace if level == "project" else None, name, expires_at, permissions,
                                      generate_secret(), level, body.get("description", ""),
                                      body.get("disable", False), creator, duration)
            self.created.append({"request": req, "body": body, "robot": robot})
        answer = {"id": robot["id"], "name": robot["login"], "secret": robot["secret"],
                  "creation_time": harbor_time(robot["creation_time"]), "expires_at": robot["expires_at"]}
        return 201, answer, {"Location": f"{API}/robots/{robot['id']}"}

    @staticmethod
    def _validate(duration, level, permissions):
        """handler/robot.go `validate`; (reason, message) or None."""
        if not (duration == -1 or 0 < duration < MAX_INT32):
            return ("duration", f"bad request error duration input: {duration}, duration must be either -1(Never) "
                                "or a positive integer")
        if level not in ("system", "project"):
            return ("level", f"bad request error level input: {level}")
        if not permissions:
            return ("permissions", "bad request empty permission")
        for perm in permissions:
            if perm is None:
                return ("permissions", "bad request empty permission")
            if not perm.get("access"):
                return ("access", "bad request empty access")
            if any(a is None for a in perm["access"]):
                return ("access", "bad request empty access")
        if level == "project" and len(permissions) > 1:
            return ("permissions", "bad request permission")
        for perm in permissions:
            kind = perm.get("kind")
            if kind not in ("system", "project"):
                return ("kind", f"bad request permission level: {kind}")
            known = SYSTEM_POLICIES if kind == "system" else PROJECT_POLICIES
            for access in perm["access"]:
                if access.get("action") not in known.get(access.get("resource"), ()):
                    return ("access", f"bad request permission: {access.get('resource')}:{access.get('action')}")
        return None

    @staticmethod
    def permission_subset(creating, creator):
        """handler/robot.go isValidPermissionScope: exact kind:namespace (or kind:*), then
        exact resource:action:effect."""
        creator_map = {f"{p['kind']}:{p['namespace']}": p for p in creator}
        for perm in creating:
            found = creator_map.get(f"{perm.get('kind')}:{perm.get('namespace')}") \
                or creator_map.get(f"{perm.get('kind')}:*")
            if found is None:
                return False
            have = {f"{a['resource']}:{a['action']}:{a.get('effect', '')}" for a in found["access"]}
            for access in perm.get("access") or []:
                if f"{access.get('resource')}:{access.get('action')}:{access.get('effect', '') or ''}" not in have:
                    return False
        return True

    def robot_model(self, robot):
        """The swagger `Robot` (model.NewRobot(r).ToSwagger()); the secret is not listed."""
        return {"id": robot["id"], "name": robot["login"], "description": robot["description"],
                "level": robot["level"], "duration": robot["duration"], "editable": True,
                "disable": robot["disable"], "expires_at": robot["expires_at"],
                "permissions": [{"kind": p["kind"], "namespace": p["namespace"],
                                 "access": [{k: v for k, v in a.items() if v != ""} for a in p["access"]]}
                                for p in robot["permissions"]],
                "creator_type": robot["creator_type"], "creator_ref": robot["creator_ref"],
                "creation_time": harbor_time(robot["creation_time"]),
                "update_time": harbor_time(robot["update_time"])}

    def _paging(self, req):
        """(page, page_size) or an error answer."""
        values = {}
        for key, default in (("page", 1), ("page_size", 10)):
            raw = req.query_one(key)
            if raw is None:
                values[key] = default
                continue
            if not re.fullmatch(r"-?[0-9]+", raw):
                return None, self._refuse(req, harbor_error(422, "UNPROCESSABLE_ENTITY",
                                                            f"{key} in query must be of type int64: \"{raw}\""), key)
            values[key] = int(raw)
        if values["page_size"] > 100:
            return None, self._refuse(req, harbor_error(422, "UNPROCESSABLE_ENTITY",
                                                        "page_size in query should be less than or equal to 100"),
                                      "page_size")
        return (max(values["page"], 1), values["page_size"]), None

    @staticmethod
    def _page(req, items, page, page_size):
        """Slices `items` and builds X-Total-Count and Link as BaseAPI.Links does (page_size
        0: everything, no Link)."""
        total = len(items)
        size = max(page_size, 0)
        chosen = items[(page - 1) * size: page * size] if size else items
        headers = {"X-Total-Count": str(total)}
        links = []
        if size:
            query = [(k, v) for k, v in req.query if k not in ("page", "page_size")]

            def link(number, rel):
                # url.Values.Encode sorts keys; Harbor then unescapes the whole query.
                pairs = sorted(query + [("page", str(number)), ("page_size", str(size))])
                raw = urllib.parse.unquote(urllib.parse.urlencode(pairs))
                return f'<{req.path}?{raw}>; rel="{rel}"'
            if page > 1 and (page - 1) * size < total:
                links.append(link(page - 1, "prev"))
            if size * page < total:
                links.append(link(page + 1, "next"))
        if links:
            headers["Link"] = " , ".join(links)
        return chosen, headers

    def list_robots(self, req):
        who = self.principal(req)
        if who is None:
            return self._refuse(req, harbor_error(401, "UNAUTHORIZED", "unauthorized"), "unauthenticated")
        try:
            keywords = parse_harbor_query(req.query_one("q"))
        except ValueError as err:
            return self._refuse(req, harbor_error(400, "BAD_REQUEST", str(err)), "q", who)
        paging, error = self._paging(req)
        if error:
            return error
        level = keywords.get("Level", "system")
        if level not in ("system", "project"):
            return self._refuse(req, harbor_error(400, "BAD_REQUEST", "bad request error level input"), "level", who)
        project_id = 0
        if level == "project":
            if "ProjectID" not in keywords:
                return self._refuse(req, harbor_error(400, "BAD_REQUEST",
                                                      "must with project ID when to query project robots"),
                                    "project_id_missing", who)
            if not re.fullmatch(r"[0-9]+", keywords["ProjectID"]) or int(keywords["ProjectID"]) <= 0:
                return self._refuse(req, harbor_error(400, "BAD_REQUEST", "ProjectID must be a positive integer"),
                                    "project_id", who)
            project_id = int(keywords["ProjectID"])
            if not self.can_project(who, self.project_by_id(project_id), "robot", "list"):
                return self._unauthorized_or_forbidden(req, who, "robot_list_permission")
        elif not self.can_system(who, "robot", "list"):
            return self._unauthorized_or_forbidden(req, who, "robot_list_permission")
        with self.lock:
            found = [r for r in sorted(self.robots.values(), key=lambda r: r["id"])
                     if r["project_id"] == project_id
                     and all(keyword_matches(v, r["stored_name"] if k == "name" else r["description"])
                             for k, v in keywords.items() if k in ("name", "description"))]
        chosen, headers = self._page(req, found, *paging)
        return 200, [self.robot_model(r) for r in chosen], headers

    def _robot_for(self, req, robot_id, action):
        who = self.principal(req)
        if who is None:
            return None, None, self._refuse(req, harbor_error(401, "UNAUTHORIZED", "unauthorized"), "unauthenticated")
        with self.lock:
            robot = self.robots.get(robot_id)
        if robot is None:
            return who, None, self._refuse(req, harbor_error(404, "NOT_FOUND", f"robot {robot_id} not found"),
                                           "robot_missing", who)
        allowed = (self.can_system(who, "robot", action) if robot["level"] == "system"
                   else self.can_project(who, self.project_by_id(robot["project_id"]), "robot", action))
        if not allowed:
            return who, robot, self._unauthorized_or_forbidden(req, who, f"robot_{action}_permission")
        return who, robot, None

    def get_robot(self, req, robot_id):
        _, robot, error = self._robot_for(req, robot_id, "read")
        return error or (200, self.robot_model(robot))

    def delete_robot(self, req, robot_id):
        _, robot, error = self._robot_for(req, robot_id, "delete")
        if error:
            return error
        with self.lock:
            if self.robots.pop(robot_id, None) is None:
                return self._refuse(req, harbor_error(404, "NOT_FOUND", f"robot {robot_id} not found"), "robot_missing")
            self.deleted.append(robot)
        return 200, None

    def update_robot(self, req, robot_id):
        who = self.principal(req)
        if who is not None and who[0] == "robot":
            return self._refuse(req, harbor_error(403, "DENIED", "a robot may not update robots"), "robot_update", who)
        return self._refuse(req, harbor_error(501, "UNKNOWN", "PUT /robots is not served by the stand-in"), "route")

    # ---- projects -----------------------------------------------------------------------
    def project_model(self, project):
        return {"project_id": project["project_id"], "owner_id": 1, "name": project["name"], "registry_id": 0,
                "creation_time": harbor_time(project["creation_time"]),
                "update_time": harbor_time(project["update_time"]), "deleted": False, "owner_name": "admin",
                "togglable": True, "repo_count": 0,
                "metadata": {"public": "true" if project["public"] else "false"}}

    def list_projects(self, req):
        who = self.principal(req)
        paging, error = self._paging(req)
        if error:
            return error
        public = req.query_one("public")
        with self.lock:
            items = sorted(self.projects.values(), key=lambda p: p["project_id"])
        if self.is_admin(who) or self.can_system(who, "project", "list"):
            visible = items
        elif who is not None and who[0] == "robot":
            perms = who[1]["permissions"]
            if any(p["kind"] == "project" and p["namespace"] == "*" for p in perms):
                visible = items
            else:
                names = {p["namespace"] for p in perms if p["kind"] == "project"}
                with_public = public is None or public == "true"
                visible = [p for p in items if p["name"] in names or (with_public and p["public"])]
        else:
            visible = [p for p in items if p["public"]]
        if public is not None:
            visible = [p for p in visible if p["public"] == (public == "true")]
        name = req.query_one("name")
        if name:
            visible = [p for p in visible if name in p["name"]]  # FuzzyMatchValue
        chosen, headers = self._page(req, visible, *paging)
        return 200, [self.project_model(p) for p in chosen], headers

    # ---- token service --------------------------------------------------------------------
    def token_service(self, req):
        if req.method != "GET":
            return self._refuse(req, (405, {"error": "method not allowed"}), "method")
        if req.query_one("service") != self.service:
            return self._refuse(req, (400, {"error": f"Unable to handle service: {req.query_one('service')}"}),
                                "service")
        who = self.principal(req)
        scopes = [s for value in req.query_all("scope") for s in value.split(" ") if s]
        if who is None and not scopes:
            return self._refuse(req, (401, {"error": ""}), "unauthenticated")
        access = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, _requested = parsed
            if kind != "repository":
                # registryFilter: catalog only for admins; anything else refused.
                granted = ["*"] if kind == "registry" and name == "catalog" and self.is_admin(who) else []
                access.append({"type": kind, "name": name, "actions": granted})
                continue
            if "/" not in name:
                return self._refuse(req, (500, {"error": ""}), "image_name")  # parseImg error → 500
            project = self.projects.get(name.split("/", 1)[0])
            granted = [a for a in REGISTRY_ACTIONS
                       if project is not None and self.can_project(who, project, "repository", a)]
            access.append({"type": "repository", "name": name, "actions": granted})
        username = (who[1]["login"] if who[0] == "robot" else who[1]) if who else ""
        token, seconds = self.signer.registry_token(username, self.service, access, seconds=REGISTRY_TOKEN_SECONDS)
        self.on_secret(token)
        with self.lock:
            self.registry_tokens.append({"token": token, "username": username,
                                         "robot_id": who[1]["id"] if who and who[0] == "robot" else None,
                                         "access": access, "requested": scopes})
        return 200, {"token": token, "expires_in": seconds, "issued_at": harbor_time(time.time())}


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
