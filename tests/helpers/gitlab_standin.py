"""A strict stand-in for GitLab (gitlab.com or self-managed) as the `gitlab` provider meets it,
written from shared/spec/PROVIDERS.md §11–12 part A (A1 token service, A2 deploy tokens,
A5 image path → project) and the GitLab sources it cites (`lib/api/deploy_tokens.rb`,
`app/models/deploy_token.rb`, `API::Entities::DeployToken`,
`Auth::ContainerRegistryAuthenticationService`, `JwtController`, `ContainerRegistry::Path`),
not from the broker.

REST API (`/api/v4`), authenticated by a personal / project / group access token (or a
service account's PAT) in `PRIVATE-TOKEN: <token>` or `Authorization: Bearer <token>`:
- no token, or an unknown / revoked / expired one → 401 `{"message": "401 Unauthorized"}`;
  a token without `api` scope (`read_api` is enough for GET) → 403
  `{"error": "insufficient_scope", …}`.
- `:id` is a numeric id or the URL-ENCODED full path (`rise-group%2Fmy-app`); an unencoded
  `/` in it matches no route (404 `{"error": "404 Not Found"}`). Every project here is
  private: a caller who is no member gets 404 `{"message": "404 Project Not Found"}` (GitLab
  does not reveal private projects), a member below Maintainer 403 `{"message": "403 Forbidden"}`.
- `POST /projects/:id/deploy_tokens` (Maintainer): JSON or form. Grape's parameter rules
  answer 400 `{"error": "<param> is missing" | "<param> does not have a valid value" |
  "<param> is invalid"}` (joined with ", "): `name` (required string), `scopes` (required;
  array or comma list of read_repository, read_registry, write_registry,
  read_package_registry, write_package_registry, read_virtual_registry,
  write_virtual_registry), `expires_at` (optional ISO-8601 date or datetime; a datetime
  without offset is UTC; omitted = never expires), `username` (optional). The model's rules
  answer 400 `{"message": "<sentence>"}`: no scope at all ("Scopes can't be blank"), a
  username outside `[a-zA-Z0-9.+_-]` or > 255, a name > 255.
  201 → `{"id", "name", "username", "expires_at", "scopes", "revoked", "expired", "token"}`:
  `username` defaults to `gitlab+deploy-token-{id}`, `token` is `gldt-` + 20 characters and
  is shown only here, `expires_at` as GitLab renders times (`2026-11-30T17:00:00.000Z`, or
  null).
- `GET /projects/:id/deploy_tokens[?active=true]` (Maintainer, paginated) and
  `GET|DELETE /projects/:id/deploy_tokens/:token_id` (DELETE → 204, no body; unknown id →
  404 `{"message": "404 Not found"}`). `expired` is GitLab's `expires_at < Date.today`: a
  token that expired EARLIER TODAY still says `"expired": false` (PROVIDERS.md §A2: the
  registry checks the full timestamp, the API flag only the date).
- `GET /projects?min_access_level=N[&simple=true]`: the projects where the caller's role is
  at least N (10/15/20/30/40/50), newest first, paginated: `page`, `per_page` (default 20,
  at most 100 — `projects_max_per_page` lowers that to exercise paging), with X-Page,
  X-Per-Page, X-Next-Page ("" on the last page), X-Prev-Page, X-Total, X-Total-Pages, Link.

Registry realm (what a docker-registry's `auth.token.realm` points at):
`GET /jwt/auth?service=container_registry&scope=repository:<path>:<actions>` (POST → 404,
another service → 404, both with an empty body). Basic credentials, in GitLab's order: a
PAT as password (any login), else a deploy token that is not revoked and whose `expires_at`
(full timestamp) is not past, with the login EQUAL to its username; anything else → 401
`{"errors": [{"code": "UNAUTHORIZED", "message": "HTTP Basic: Access denied"}]}`. No Basic
header = anonymous (reads public projects only; none here). A credential without any
registry scope → 403 DENIED "access forbidden". Each `scope` (repeatable, space-separated)
is `type:name:actions`; `name` is lowercased, must match the registry name regex and have
2..19 components, and maps to the project whose full path is one of its 3 longest prefixes
(so at most two levels below the project); an unknown path drops the scope. Actions are
kept only when allowed — deploy token: its own project only, `pull` needs read_registry,
`push` write_registry; PAT: the user's role (pull ≥ Reporter, push ≥ Developer, delete/`*`
≥ Maintainer with `api`) — and a scope with none left is DROPPED: the answer is still 200
`{"token": <JWT>}` with an `access` claim that may be empty. An authorized push records the
container repository. The JWT: `iss` gitlab-issuer, `aud` = service, `exp` = now + 5 min
(self-managed default), `auth_type`, `access` [{type, name, actions, meta}], `user` (a
nested JWT with user_info), `sub` = the user's username (absent for deploy tokens). GitLab
signs RS256 with a `kid`; here `RegistryTokenSigner` signs ES256 with `x5c`, which Debian's
docker-registry 2.8 verifies against its rootcertbundle (the claims are what matters).

Faults: `script(method, kind, project, answers)` queues canned answers for matching requests
(kind "deploy_tokens" | "deploy_token" | "projects" | "jwt"), consumed in order before the
real handling; every request is in `calls` with its kind, project and status.
"""
import datetime
import json
import math
import re
import secrets
import string
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standin_common import RegistryTokenSigner, Request, basic_credentials, bearer

API_PREFIX = "/api/v4"
AVAILABLE_SCOPES = ("read_repository", "read_registry", "write_registry", "read_package_registry",
                    "write_package_registry", "read_virtual_registry", "write_virtual_registry")
GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 15, 20, 30, 40, 50
ACCESS_LEVELS = (GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER)
REGISTRY_SERVICE = "container_registry"
REGISTRY_ISSUER = "gitlab-issuer"  # Gitlab.config.registry.issuer's default
REGISTRY_TOKEN_MINUTES = 5  # container_registry_token_expire_delay, self-managed default
DEPLOY_TOKEN_PREFIX = "gldt-"
# Gitlab::Regex.container_repository_name_regex; ContainerRegistry::Path rules.
REPOSITORY_NAME = re.compile(r"\A[a-z0-9]+(?:(?:[._/]|__|-*)[a-z0-9])*\Z")
NUMBER_OF_ANCESTORS_ALLOWED = 20
LEVELS_SUPPORTED = 3
DEPLOY_USERNAME = re.compile(r"\A[a-zA-Z0-9.+_-]+\Z")
PAGE_DEFAULT, PAGE_MAX = 20, 100
# Gitlab::Auth.abilities_for_scopes, reduced to the registry abilities.
SCOPE_ABILITIES = {"read_registry": {"read_container_image"},
                   "write_registry": {"create_container_image"},
                   "api": {"read_container_image", "create_container_image", "destroy_container_image",
                           "admin_container_image"},
                   "read_api": {"read_container_image"}}
UNAUTHORIZED_API = (401, {"message": "401 Unauthorized"})
FORBIDDEN_API = (403, {"message": "403 Forbidden"})
PROJECT_NOT_FOUND = (404, {"message": "404 Project Not Found"})
ROUTE_NOT_FOUND = (404, {"error": "404 Not Found"})
EMPTY_404 = (404, None)


def utc(dt):
    return dt if dt.tzinfo else dt.replace(tzinfo=datetime.timezone.utc)


def gitlab_time(dt):
    """How GitLab's API renders a time: UTC, milliseconds, `Z`."""
    if dt is None:
        return None
    dt = utc(dt).astimezone(datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso8601(value):
    """Grape `type: DateTime` + the model's iso8601_date rule, read strictly: an ISO-8601 date
    (midnight UTC) or datetime (no offset = UTC). None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.date.fromisoformat(text)
            return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}:?\d{2})?", text):
            return None
        return utc(datetime.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00")))
    except ValueError:
        return None


class GitLabServer:
    """Loopback HTTP server: `route(req)` → (status, payload[, headers]); payload None means
    no body (204, `head :not_found`), anything else is sent as JSON. Keeps every request."""

    def __init__(self, route):
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
                    body = self._read_chunked()
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                parsed = urllib.parse.urlsplit(self.path)
                # `path` stays percent-encoded, as GitLab's router sees it (`%2F` in `:id`).
                req = Request(method=self.command, path=parsed.path,
                              query=urllib.parse.parse_qsl(parsed.query, keep_blank_values=True),
                              headers=dict(self.headers.items()), body=body)
                if req.media_type == "application/x-www-form-urlencoded":
                    req.form = urllib.parse.parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
                with outer.lock:
                    outer.requests.append(req)
                try:
                    answer = route(req)
                except Exception as err:  # noqa: BLE001 — a stand-in bug must show, not hang the broker
                    answer = (500, {"message": "500 Internal Server Error", "standin_bug": repr(err)})
                status, payload = answer[0], answer[1]
                extra = answer[2] if len(answer) > 2 else {}
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if payload is not None:
                    self.send_header("Content-Type", "application/json")
                if status != 204:
                    self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                if data and self.command != "HEAD":
                    self.wfile.write(data)

            def _read_chunked(self):
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return body
                    body += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class GitLabStandIn:
    def __init__(self, projects, users, on_secret=None, clock=time.time):
        """
        projects: {"group/sub/project": {"members": {username: access level}}} — all private;
            ids are given in this order (1001, 1002, …), so the last is the newest.
        users: {username: {"tokens": {token: {"scopes": [...], "revoked"?: bool,
                                                "expires_at"?: datetime}}}}
            (personal, project/group access or service-account tokens: all are PATs).
        on_secret: called with every token issued here (deploy tokens, registry JWTs).
        clock: seconds since the epoch (the tests move it only in self-checks).
        """
        self.clock = clock
        self.on_secret = on_secret or (lambda secret: None)
        self.lock = threading.Lock()
        self.projects = {}
        for index, (path, spec) in enumerate(projects.items()):
            assert path == path.lower() and REPOSITORY_NAME.match(path), path
            self.projects[path] = {"id": 1001 + index, "path": path, "members": dict(spec.get("members", {})),
                                   "created_index": index}
        self.pats = {}
        for username, spec in users.items():
            for token, info in spec.get("tokens", {}).items():
                self.pats[token] = {"user": username, "scopes": list(info["scopes"]),
                                    "revoked": info.get("revoked", False), "expires_at": info.get("expires_at")}
        self.deploy_tokens = {}  # id → record
        self.next_deploy_token_id = 1
        self.created = []  # {"record", "request", "body"} for each 201 of the API
        self.deleted = []  # {"id", "project", "name", "request"}
        self.registry_tokens = []  # {"token", "claims", "credential", "requested"}
        self.container_repositories = set()
        self.refused = []  # {"method", "path", "status", "body", "reason"}
        self.calls = []  # {"method", "kind", "project", "status", "request", "scripted"}
        self.scripts = []  # [method, kind, project, [answers]]
        self.projects_max_per_page = PAGE_MAX
        self.signer = RegistryTokenSigner(REGISTRY_ISSUER, common_name="rise-standin-gitlab")
        self.server = GitLabServer(self.route)
        self.url = self.server.url
        self.realm = self.url + "/jwt/auth"
        self.realm_issuer = REGISTRY_ISSUER
        self.service = REGISTRY_SERVICE

    # ---- helpers for tests -------------------------------------------------------------
    def now(self):
        return datetime.datetime.fromtimestamp(self.clock(), datetime.timezone.utc)

    def count(self):
        with self.server.lock:
            return len(self.server.requests)

    @property
    def requests(self):
        with self.server.lock:
            return list(self.server.requests)

    @property
    def realm_requests(self):
        return [r for r in self.requests if r.path == "/jwt/auth"]

    def calls_for(self, method=None, kind=None, project=None):
        with self.lock:
            return [c for c in self.calls if (method is None or c["method"] == method)
                    and (kind is None or c["kind"] == kind) and (project is None or c["project"] == project)]

    def script(self, method, kind, project, answers):
        """Canned answers (status, body[, headers]) for the next requests matching
        (method, kind, project full path or None for any)."""
        with self.lock:
            self.scripts.append([method, kind, project, list(answers)])

    def add_project(self, path, members):
        """A project created now (the newest: listed first by `GET /projects`)."""
        assert path == path.lower() and REPOSITORY_NAME.match(path) and path not in self.projects, path
        with self.lock:
            index = max(p["created_index"] for p in self.projects.values()) + 1 if self.projects else 0
            self.projects[path] = {"id": 1001 + index, "path": path, "members": dict(members),
                                   "created_index": index}
        return self.projects[path]

    def add_deploy_token(self, project, name, scopes, expires_at=None, revoked=False, username=None):
        """A deploy token made outside the broker (by hand, by another tool, an old one)."""
        with self.lock:
            record = self._new_deploy_token(self.projects[project], name, list(scopes), expires_at, username,
                                            creator="setup")
            record["revoked"] = revoked
        self.on_secret(record["token"])
        return record

    def tokens_of(self, project):
        with self.lock:
            pid = self.projects[project]["id"]
            return [dict(t) for t in self.deploy_tokens.values() if t["project_id"] == pid]

    def deploy_token_by_secret(self, token):
        with self.lock:
            return next((dict(t) for t in self.deploy_tokens.values() if t["token"] == token), None)

    def expired_flag(self, record):
        """`DeployToken#expired?`: `expires_at < Date.today` (date granularity)."""
        if record["expires_at"] is None:
            return False
        today = self.now().replace(hour=0, minute=0, second=0, microsecond=0)
        return record["expires_at"] < today

    def authenticates(self, record):
        """`DeployToken.active`: `revoked = false AND expires_at >= NOW()` (full timestamp)."""
        return not record["revoked"] and (record["expires_at"] is None or record["expires_at"] >= self.now())

    # ---- routing -----------------------------------------------------------------------
    def _record(self, req, kind, project, answer, scripted=False):
        with self.lock:
            self.calls.append({"method": req.method, "kind": kind, "project": project, "status": answer[0],
                               "request": req, "scripted": scripted})
            if answer[0] >= 400:
                self.refused.append({"method": req.method, "path": req.path, "status": answer[0],
                                     "body": answer[1], "reason": kind})
        return answer

    def _scripted(self, req, kind, project):
        with self.lock:
            for entry in self.scripts:
                method, k, p, answers = entry
                if answers and method == req.method and k == kind and (p is None or p == project):
                    return answers.pop(0)
        return None

    def route(self, req):
        kind, project_ref, token_id = self._classify(req)
        project = self._project_path_for(project_ref)
        canned = self._scripted(req, kind, project)
        if canned is not None:
            return self._record(req, kind, project, canned, scripted=True)
        if kind == "jwt":
            answer = self.registry_auth(req) if req.method == "GET" else EMPTY_404
        elif kind is None:
            answer = ROUTE_NOT_FOUND
        else:
            answer = self.api(req, kind, project_ref, token_id)
        return self._record(req, kind, project, answer)

    def _classify(self, req):
        """(kind, raw project id segment, token id segment) from the still-encoded path."""
        if req.path == "/jwt/auth":
            return "jwt", None, None
        if not req.path.startswith(API_PREFIX + "/"):
            return None, None, None
        parts = req.path[len(API_PREFIX) + 1:].split("/")
        if parts == ["projects"]:
            return "projects", None, None
        if len(parts) == 3 and parts[0] == "projects" and parts[2] == "deploy_tokens" and parts[1]:
            return "deploy_tokens", parts[1], None
        if len(parts) == 4 and parts[0] == "projects" and parts[2] == "deploy_tokens" and parts[1]:
            return "deploy_token", parts[1], parts[3]
        return None, None, None

    def _project_path_for(self, ref):
        if ref is None:
            return None
        key = urllib.parse.unquote(ref)
        if key.isdigit():
            return next((p for p, spec in self.projects.items() if spec["id"] == int(key)), key)
        return key.lower()

    # ---- REST API ----------------------------------------------------------------------
    def api_user(self, req):
        """(username, scopes) or None: PRIVATE-TOKEN first, then Authorization: Bearer."""
        token = req.header("PRIVATE-TOKEN")
        if token is None:
            token = bearer(req)
        if not token:
            return None
        pat = self.pats.get(token)
        if pat is None or pat["revoked"] or (pat["expires_at"] is not None and pat["expires_at"] < self.now()):
            return None
        return pat["user"], pat["scopes"]

    def api(self, req, kind, project_ref, token_id):
        if kind == "projects" and req.method != "GET":
            return ROUTE_NOT_FOUND
        if kind == "deploy_tokens" and req.method not in ("GET", "POST"):
            return ROUTE_NOT_FOUND
        if kind == "deploy_token" and req.method not in ("GET", "DELETE"):
            return ROUTE_NOT_FOUND
        caller = self.api_user(req)
        if caller is None:
            return UNAUTHORIZED_API
        username, scopes = caller
        if not ("api" in scopes or (req.method == "GET" and "read_api" in scopes)):
            return 403, {"error": "insufficient_scope",
                         "error_description": "The request requires higher privileges than provided by the access token.",
                         "scope": "api read_api" if req.method == "GET" else "api"}
        if kind == "projects":
            return self.list_projects(req, username)
        ref = urllib.parse.unquote(project_ref)
        project = (next((p for p in self.projects.values() if p["id"] == int(ref)), None) if ref.isdigit()
                   else self.projects.get(ref.lower()))
        level = project["members"].get(username, 0) if project else 0
        if project is None or level < GUEST:
            return PROJECT_NOT_FOUND
        if level < MAINTAINER:
            return FORBIDDEN_API
        if kind == "deploy_tokens" and req.method == "POST":
            return self.create_deploy_token(req, project, username)
        if kind == "deploy_tokens":
            return self.list_deploy_tokens(req, project)
        if not token_id.isdigit():
            return 400, {"error": "token_id is invalid"}
        with self.lock:
            record = self.deploy_tokens.get(int(token_id))
            if record is None or record["project_id"] != project["id"]:
                return 404, {"message": "404 Not found"}
            if req.method == "GET":
                return 200, self.entity(record)
            del self.deploy_tokens[record["id"]]
            self.deleted.append({"id": record["id"], "project": project["path"], "name": record["name"],
                                 "request": req})
        return 204, None

    def params(self, req):
        """Grape's params: the query string, then the body (JSON or form)."""
        params = {}
        for key, value in req.query:
            params.setdefault(key, []).append(value)
        merged = {k: (v if k.endswith("[]") else v[-1]) for k, v in params.items()}
        if req.media_type == "application/json" and req.body:
            try:
                body = json.loads(req.body)
            except ValueError:
                return None
            if not isinstance(body, dict):
                return None
            merged.update(body)
        elif req.form:
            grouped = {}
            for key, value in req.form:
                grouped.setdefault(key, []).append(value)
            merged.update({k: (v if k.endswith("[]") else v[-1]) for k, v in grouped.items()})
        if "scopes[]" in merged and "scopes" not in merged:
            merged["scopes"] = merged.pop("scopes[]")
        return merged

    def create_deploy_token(self, req, project, username):
        params = self.params(req)
        if params is None:
            return 400, {"message": "400 Bad request - body is not a JSON object"}
        errors = []
        name = params.get("name")
        if "name" not in params or name is None:
            errors.append("name is missing")
        elif not isinstance(name, (str, int, float)) or isinstance(name, bool):
            errors.append("name is invalid")
        scopes = params.get("scopes")
        if "scopes" not in params or scopes is None:
            errors.append("scopes is missing")
        else:
            if isinstance(scopes, str):  # CommaSeparatedToArray
                scopes = [s.strip() for s in scopes.split(",") if s.strip()]
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                errors.append("scopes is invalid")
            elif any(s not in AVAILABLE_SCOPES for s in scopes):
                errors.append("scopes does not have a valid value")
        expires_at = None
        if params.get("expires_at") not in (None, ""):
            expires_at = parse_iso8601(params["expires_at"])
            if expires_at is None:
                errors.append("expires_at is invalid")
        custom_username = params.get("username")
        if custom_username is not None and not isinstance(custom_username, str):
            errors.append("username is invalid")
        if errors:
            return 400, {"error": ", ".join(errors)}
        name = str(name)
        if not any(s in scopes for s in AVAILABLE_SCOPES):
            return 400, {"message": "Scopes can't be blank"}
        if custom_username and (len(custom_username) > 255 or not DEPLOY_USERNAME.match(custom_username)):
            return 400, {"message": "Username can contain only letters, digits, '_', '-', '+', and '.'"}
        if len(name) > 255:
            return 400, {"message": "Name is too long (maximum is 255 characters)"}
        with self.lock:
            record = self._new_deploy_token(project, name, scopes, expires_at, custom_username or None,
                                            creator=username)
            self.created.append({"record": dict(record), "request": req, "body": params})
        self.on_secret(record["token"])
        return 201, {**self.entity(record), "token": record["token"]}

    def _new_deploy_token(self, project, name, scopes, expires_at, username, creator):
        token_id = self.next_deploy_token_id
        self.next_deploy_token_id += 1
        alphabet = string.ascii_letters + string.digits + "_-"
        record = {"id": token_id, "project_id": project["id"], "project": project["path"], "name": name,
                  "username": username or f"gitlab+deploy-token-{token_id}",
                  "scopes": [s for s in AVAILABLE_SCOPES if s in scopes], "expires_at": expires_at and utc(expires_at),
                  "revoked": False, "creator": creator,
                  "token": DEPLOY_TOKEN_PREFIX + "".join(secrets.choice(alphabet) for _ in range(20))}
        self.deploy_tokens[token_id] = record
        return record

    def entity(self, record):
        """API::Entities::DeployToken (without `token`)."""
        return {"id": record["id"], "name": record["name"], "username": record["username"],
                "expires_at": gitlab_time(record["expires_at"]), "scopes": list(record["scopes"]),
                "revoked": record["revoked"], "expired": self.expired_flag(record)}

    def list_deploy_tokens(self, req, project):
        active = req.query_one("active")
        if active not in (None, "true", "false"):
            return 400, {"error": "active is invalid"}
        with self.lock:
            tokens = sorted((t for t in self.deploy_tokens.values() if t["project_id"] == project["id"]),
                            key=lambda t: t["id"])
            if active == "true":
                tokens = [t for t in tokens if self.authenticates(t)]
            items = [self.entity(t) for t in tokens]
        return self.paginate(req, items, PAGE_MAX)

    def list_projects(self, req, username):
        level = req.query_one("min_access_level")
        if level is not None and (not level.isdigit() or int(level) not in ACCESS_LEVELS):
            return 400, {"error": "min_access_level does not have a valid value"}
        minimum = int(level) if level is not None else GUEST
        projects = sorted((p for p in self.projects.values() if p["members"].get(username, 0) >= minimum),
                          key=lambda p: -p["created_index"])  # order_by created_at, sort desc
        items = []
        for p in projects:
            namespace, _, short = p["path"].rpartition("/")
            items.append({"id": p["id"], "name": short, "path": short, "path_with_namespace": p["path"],
                          "name_with_namespace": p["path"].replace("/", " / "),
                          "web_url": f"{self.url}/{p['path']}",
                          "namespace": {"full_path": namespace, "path": namespace.rpartition("/")[2]}})
        return self.paginate(req, items, self.projects_max_per_page)

    def paginate(self, req, items, max_per_page):
        try:
            page = int(req.query_one("page") or 1)
            per_page = int(req.query_one("per_page") or PAGE_DEFAULT)
        except ValueError:
            return 400, {"error": "page is invalid" if not (req.query_one("page") or "1").isdigit()
                         else "per_page is invalid"}
        page = max(page, 1)
        per_page = min(per_page if per_page > 0 else PAGE_DEFAULT, max_per_page)
        total = len(items)
        pages = max(1, math.ceil(total / per_page))
        chunk = items[(page - 1) * per_page: page * per_page]

        def link(number):
            query = [(k, v) for k, v in req.query if k not in ("page", "per_page")]
            query += [("page", str(number)), ("per_page", str(per_page))]
            return f"<{self.url}{req.path}?{urllib.parse.urlencode(query)}>"

        links = ([f'{link(page + 1)}; rel="next"'] if page < pages else []) + \
                ([f'{link(page - 1)}; rel="prev"'] if page > 1 else []) + \
                [f'{link(1)}; rel="first"', f'{link(pages)}; rel="last"']
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(total),
                   "X-Total-Pages": str(pages), "X-Next-Page": str(page + 1) if page < pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else "", "Link": ", ".join(links)}
        return 200, chunk, headers

    # ---- registry realm ----------------------------------------------------------------
    def find_for_git_client(self, login, password):
        """→ ("pat", username, abilities) | ("deploy_token", record, abilities) | None."""
        pat = self.pats.get(password)
        if pat is not None and login:
            if pat["revoked"] or (pat["expires_at"] is not None and pat["expires_at"] < self.now()):
                return None
            return "pat", pat["user"], set().union(*(SCOPE_ABILITIES.get(s, set()) for s in pat["scopes"]))
        with self.lock:
            record = next((t for t in self.deploy_tokens.values() if t["token"] == password), None)
            if record is None or not self.authenticates(record) or login != record["username"]:
                return None
            record = dict(record)
        abilities = set().union(*(SCOPE_ABILITIES.get(s, set()) for s in record["scopes"]
                                  if s in ("read_registry", "write_registry")))
        return "deploy_token", record, abilities

    def project_for_path(self, name):
        """ContainerRegistry::Path: (lowercased path, project) or None when invalid/unknown."""
        path = name.lower()
        components = path.split("/")
        if not REPOSITORY_NAME.match(path) or not 1 < len(components) < NUMBER_OF_ANCESTORS_ALLOWED:
            return None
        nodes = ["/".join(components[:n]) for n in range(len(components), 1, -1)][:LEVELS_SUPPORTED]
        project = next((self.projects[n] for n in nodes if n in self.projects), None)
        return (path, project) if project else None

    def can(self, credential, project, action):
        kind, who, abilities = credential
        if kind == "deploy_token":
            if who["project_id"] != project["id"] or who["revoked"] or self.expired_flag(who):
                return False  # has_access_to?: own project, `active?`
            return {"pull": "read_container_image", "push": "create_container_image"}.get(action) in abilities
        level = project["members"].get(who, 0)
        if action == "pull":
            return "read_container_image" in abilities and level >= REPORTER
        if action == "push":
            return "create_container_image" in abilities and level >= DEVELOPER
        if action in ("delete", "*"):
            return "admin_container_image" in abilities and level >= MAINTAINER
        return False

    def registry_auth(self, req):
        creds = basic_credentials(req)
        credential = ("anonymous", None, {"read_container_image"})
        if req.header("Authorization", "").lower().startswith("basic "):
            credential = self.find_for_git_client(*creds) if creds else None
            if credential is None:
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "HTTP Basic: Access denied"}]}
        if req.query_one("service") != REGISTRY_SERVICE:
            return EMPTY_404
        kind, who, abilities = credential
        if not abilities & {"read_container_image", "create_container_image", "destroy_container_image",
                            "admin_container_image"}:
            return 403, {"errors": [{"code": "DENIED", "message": "access forbidden"}]}
        requested = [item for value in req.query_all("scope") for item in value.split(" ") if item]
        access = []
        for scope in requested:
            parts = scope.split(":", 2)
            if len(parts) != 3 or parts[0] != "repository":
                continue  # registry:catalog:* is for admins; none here
            found = self.project_for_path(parts[1])
            if found is None:
                continue
            path, project = found
            actions = [a for a in parts[2].split(",") if a]
            if kind == "anonymous":
                allowed = []  # every project here is private
            else:
                allowed = [a for a in actions if self.can(credential, project, a)]
            if not allowed:
                continue  # dropped silently ("Denied container registry permissions")
            if "push" in allowed:
                with self.lock:
                    self.container_repositories.add(path)
            access.append({"type": "repository", "name": path, "actions": allowed,
                           "meta": {"project_path": project["path"], "project_id": project["id"],
                                    "root_namespace_id": 1}})
        if kind == "anonymous" and not access:
            return 403, {"errors": [{"code": "DENIED", "message": "access forbidden"}]}
        now = int(self.clock())
        user_info = ({"token_type": "deploy_token", "username": who["username"], "deploy_token_id": who["id"]}
                     if kind == "deploy_token" else
                     {"token_type": "personal_access_token", "username": who} if kind == "pat" else None)
        claims = {"iss": REGISTRY_ISSUER, "aud": req.query_one("service"), "iat": now, "nbf": now - 5,
                  "exp": now + REGISTRY_TOKEN_MINUTES * 60, "jti": secrets.token_hex(16),
                  "auth_type": {"deploy_token": "deploy_token", "pat": "personal_access_token"}.get(kind),
                  "access": access, "user": self.signer.sign({"user_info": user_info, "iat": now})}
        if kind == "pat":
            claims["sub"] = who
        token = self.signer.sign(claims)
        with self.lock:
            self.registry_tokens.append({"token": token, "claims": claims, "credential": (kind, who),
                                         "requested": requested})
        self.on_secret(token)
        return 200, {"token": token}

    def stop(self):
        self.server.stop()
