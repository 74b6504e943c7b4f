#!/usr/bin/env python3
"""The Terraform the project ships (infra/**/*.tf), checked without a cloud account:

1. every file parses with python-hcl2 (PyPI);
2. our own assertions on the parsed structure — the properties the broker's security rests
   on, which no generic linter knows:
   - Google: only `*_iam_member` resources (never a `_binding`/`_policy` that replaces a
     whole policy, never a project-level grant); every member is exactly
     `principal://iam.googleapis.com/<pool>/subject/project:${each.key}:push|pull` or a
     per-(project, access) service account — never `principalSet://` over the pool, never
     `allUsers`; writer ↔ push and reader ↔ pull, on the repository of the same key;
     impersonation only through `roles/iam.workloadIdentityUser`; every pool provider maps
     `google.subject = assertion.sub` and nothing else, and carries the attribute condition
     `assertion.sub.startsWith('project:')`;
   - Azure: the registry in `AbacRepositoryPermissions` mode with admin user and anonymous
     pull off; every federated identity credential has audience exactly
     `["api://AzureADTokenExchange"]`, the broker's issuer and the exact subject
     `project:<project>:<access>` (no wildcard) of its own identity; every role assignment
     on the registry is a Container Registry Repository Writer (push) / Reader (pull)
     with condition version 2.0 and a condition naming exactly one repository
     (StringEqualsIgnoreCase), whose action list covers every data action of the role;
     identity, credential and role assignment share one `for_each` key;
   - every `#checkov:skip` carries a reason;
3. `checkov -d infra --framework terraform --quiet --compact` (PyPI; checks skipped only
   inline, each with its reason). checkov cannot share the test venv (it pins
   `packaging<24`, which pytest 9 refuses, and boto3 1.35, which botocore 1.44 refuses), so
   it runs from its own venv: `$CHECKOV`, default `.venv-checkov/bin/checkov`
   (`python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -r
   tests/requirements-checkov.txt`). `--no-checkov` runs steps 1–2 only.

Exits 1 listing every finding.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
ACR_READ = ["Microsoft.ContainerRegistry/registries/repositories/content/read",
            "Microsoft.ContainerRegistry/registries/repositories/metadata/read"]
ACR_WRITE = ["Microsoft.ContainerRegistry/registries/repositories/content/write",
             "Microsoft.ContainerRegistry/registries/repositories/metadata/write"]
WRITER, READER = "Container Registry Repository Writer", "Container Registry Repository Reader"
AR_ROLE = {"push": "roles/artifactregistry.writer", "pull": "roles/artifactregistry.reader"}
SUBJECT_MEMBER = re.compile(
    r"^principal://iam\.googleapis\.com/\$\{google_iam_workload_identity_pool\.(\w+)\.name\}"
    r"/subject/project:\$\{each\.key\}:(push|pull)$")
SA_MEMBER = re.compile(r"^serviceAccount:\$\{google_service_account\.(push|pull)\[each\.key\]\.email\}$")


def unquote(value):
    """python-hcl2 8 keeps HCL's quotes on keys and string literals ("\"x\""); expressions
    stay as ${…}. Drop one level of quotes and the parser's bookkeeping keys."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            return value[1:-1]
        return value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()
                if k not in ("__is_block__", "__comments__", "__start_line__", "__end_line__")}
    return value


def parse_all():
    files, problems = {}, []
    paths = sorted(INFRA.rglob("*.tf"))
    if not paths:
        problems.append("infra/: no .tf files found")
    for path in paths:
        rel = str(path.relative_to(ROOT))
        try:
            with open(path) as f:
                files[rel] = unquote(hcl2.load(f))
        except Exception as e:  # the parser raises lark errors of several kinds
            problems.append(f"{rel}: does not parse: {type(e).__name__}: {str(e).splitlines()[0]}")
    return files, problems


def blocks(doc, kind):
    """[(type, name, body)] of `resource`/`data` blocks."""
    out = []
    for entry in doc.get(kind, []):
        for rtype, named in entry.items():
            for name, body in named.items():
                out.append((rtype, name, body))
    return out


def local_values(doc):
    values = {}
    for entry in doc.get("locals", []):
        values.update(entry)
    return values


def expand_locals(text, values):
    """${local.x} → the text of a string local (one level, enough for prefixes)."""
    def sub(m):
        v = values.get(m.group(1))
        return v if isinstance(v, str) and not v.startswith("${") else m.group(0)
    return re.sub(r"\$\{local\.(\w+)\}", sub, text)


def check_google(rel, doc, problems):
    values = local_values(doc)
    resources = blocks(doc, "resource")
    for rtype, name, body in resources:
        where = f"{rel}: {rtype}.{name}"
        if rtype.startswith("google_") and re.search(r"_iam_(binding|policy)$", rtype):
            problems.append(f"{where}: use *_iam_member (a binding/policy replaces grants made elsewhere)")
        if rtype.startswith(("google_project_iam", "google_organization_iam", "google_folder_iam")):
            problems.append(f"{where}: grants above the repository reach every repository")
        if rtype.startswith("google_") and rtype.endswith("_iam_member"):
            member = expand_locals(str(body.get("member", "")), values)
            role = body.get("role")
            if re.search(r"principalSet|allUsers|allAuthenticatedUsers", member):
                problems.append(f"{where}: member {member!r} reaches more than one subject")
                continue
            subject, sa = SUBJECT_MEMBER.match(member), SA_MEMBER.match(member)
            if not (subject or sa):
                problems.append(f"{where}: member {member!r} is neither principal://…/subject/"
                                "project:${each.key}:push|pull nor a per-(project, access) service account")
                continue
            access = subject.group(2) if subject else sa.group(1)
            if rtype == "google_artifact_registry_repository_iam_member":
                if role != AR_ROLE[access]:
                    problems.append(f"{where}: {access} must get {AR_ROLE[access]}, not {role}")
                repo = str(body.get("repository", ""))
                if not re.fullmatch(r"\$\{google_artifact_registry_repository\.\w+\[each\.key\]\.name\}", repo):
                    problems.append(f"{where}: repository must be the project's own repository "
                                    f"(google_artifact_registry_repository.X[each.key].name), not {repo!r}")
            elif rtype == "google_service_account_iam_member":
                if not subject:
                    problems.append(f"{where}: only a broker subject may impersonate, not {member!r}")
                    continue
                if role != "roles/iam.workloadIdentityUser":
                    problems.append(f"{where}: role must be roles/iam.workloadIdentityUser, not {role}")
                sa_ref = str(body.get("service_account_id", ""))
                if sa_ref != f"${{google_service_account.{access}[each.key].name}}":
                    problems.append(f"{where}: subject …:{access} must impersonate "
                                    f"google_service_account.{access}[each.key], not {sa_ref!r}")
            else:
                problems.append(f"{where}: unexpected IAM member resource type")
        if rtype == "google_iam_workload_identity_pool_provider":
            if body.get("attribute_mapping") != {"google.subject": "assertion.sub"}:
                problems.append(f"{where}: attribute_mapping must be exactly google.subject = assertion.sub")
            condition = str(body.get("attribute_condition", ""))
            if "assertion.sub.startsWith('project:')" not in condition:
                problems.append(f"{where}: attribute_condition must require assertion.sub.startsWith('project:')")
            oidc = body.get("oidc") or [{}]
            if oidc[0].get("issuer_uri") != "${var.broker_issuer}":
                problems.append(f"{where}: oidc.issuer_uri must be var.broker_issuer")
        if rtype == "google_artifact_registry_repository" and body.get("format") != "DOCKER":
            problems.append(f"{where}: format must be DOCKER")


def check_azure(rel, doc, problems):
    values = local_values(doc)
    resources = blocks(doc, "resource")
    registries = [n for t, n, _ in resources if t == "azurerm_container_registry"]
    for rtype, name, body in resources:
        where = f"{rel}: {rtype}.{name}"
        if rtype == "azurerm_container_registry":
            if body.get("role_assignment_mode") != "AbacRepositoryPermissions":
                problems.append(f"{where}: role_assignment_mode must be AbacRepositoryPermissions (rbac-abac)")
            if body.get("admin_enabled") is not False:
                problems.append(f"{where}: admin_enabled must be false")
            if body.get("anonymous_pull_enabled") is not False:
                problems.append(f"{where}: anonymous_pull_enabled must be false")
        if rtype == "azurerm_federated_identity_credential":
            if body.get("audience") != [FEDERATION_AUDIENCE]:
                problems.append(f"{where}: audience must be exactly [{FEDERATION_AUDIENCE!r}], "
                                f"not {body.get('audience')!r}")
            subject = str(body.get("subject", ""))
            if subject != "project:${each.value.project}:${each.value.access}":
                problems.append(f"{where}: subject must be project:${{each.value.project}}:"
                                f"${{each.value.access}} (exact match, no wildcard), not {subject!r}")
            if body.get("issuer") != "${var.broker_issuer}":
                problems.append(f"{where}: issuer must be var.broker_issuer")
            if not re.fullmatch(r"\$\{azurerm_user_assigned_identity\.\w+\[each\.key\]\.id\}",
                                str(body.get("parent_id", ""))):
                problems.append(f"{where}: parent_id must be the identity of the same key")
        if rtype == "azurerm_role_assignment":
            scope = str(body.get("scope", ""))
            if not any(f"azurerm_container_registry.{r}." in scope for r in registries):
                continue
            role = str(body.get("role_definition_name", ""))
            if role not in (WRITER, READER) and role != (
                    f'${{each.value.access == "push" ? "{WRITER}" : "{READER}"}}'):
                problems.append(f"{where}: role must be {WRITER} for push and {READER} for pull "
                                f"(AcrPush/AcrPull are not honoured in ABAC mode), not {role!r}")
            if not body.get("condition"):
                problems.append(f"{where}: no ABAC condition: the role would reach every repository")
            if body.get("condition_version") != "2.0":
                problems.append(f"{where}: condition_version must be 2.0")
            if not re.fullmatch(r"\$\{azurerm_user_assigned_identity\.\w+\[each\.key\]\.principal_id\}",
                                str(body.get("principal_id", ""))):
                problems.append(f"{where}: principal_id must be the identity of the same key")
        if rtype in ("azurerm_user_assigned_identity", "azurerm_federated_identity_credential",
                     "azurerm_role_assignment") and body.get("for_each") != "${local.identities}":
            problems.append(f"{where}: for_each must be local.identities (one per (project, access))")
    if not registries:
        return
    reader = values.get("reader_actions")
    writer = str(values.get("writer_actions", ""))
    conditions = str(values.get("conditions", ""))
    if not isinstance(reader, list) or sorted(reader) != sorted(ACR_READ):
        problems.append(f"{rel}: local.reader_actions must be exactly {ACR_READ}")
    if "local.reader_actions" not in writer or not all(a in writer for a in ACR_WRITE):
        problems.append(f"{rel}: local.writer_actions must be reader_actions plus {ACR_WRITE}")
    needed = ["StringEqualsIgnoreCase '%s'", "ActionMatches",
              "@Request[Microsoft.ContainerRegistry/registries/repositories:name]",
              '"push" ? local.writer_actions : local.reader_actions', "id.repository"]
    missing = [n for n in needed if n not in conditions]
    if missing or "StartsWith" in conditions:
        problems.append(f"{rel}: local.conditions must name exactly one repository per identity "
                        f"(missing {missing}, prefix match {'StartsWith' in conditions})")
    if "local.conditions[each.key]" not in "".join(
            str(b.get("condition", "")) for t, _, b in resources if t == "azurerm_role_assignment"):
        problems.append(f"{rel}: role assignments must use local.conditions[each.key]")


def check_skips(problems):
    for path in sorted(INFRA.rglob("*.tf")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" in line and not re.search(r"#\s*checkov:skip=CKV2?_\w+:\s*\S.{10,}", line):
                problems.append(f"{path.relative_to(ROOT)}:{n}: checkov skip without a reason")


def run_checkov(problems):
    exe = os.environ.get("CHECKOV", str(ROOT / ".venv-checkov" / "bin" / "checkov"))
    if not Path(exe).exists():
        problems.append(f"checkov not found at {exe}: python3 -m venv .venv-checkov && "
                        ".venv-checkov/bin/pip install -r tests/requirements-checkov.txt "
                        "(or set CHECKOV, or pass --no-checkov)")
        return
    # --skip-download: no call to Prisma Cloud for guideline links (offline, deterministic).
    cmd = [exe, "-d", str(INFRA), "--framework", "terraform", "--quiet", "--compact",
           "--skip-download"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                            env=dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_NO_UPDATE="1"))
    summary = re.findall(r"Passed checks: \d+, Failed checks: \d+, Skipped checks: \d+", result.stdout)
    print("checkov: " + ("; ".join(summary) or "no summary"))
    if result.returncode != 0:
        problems.append("checkov failed:\n" + (result.stdout + result.stderr).strip())


def main(argv):
    files, problems = parse_all()
    kinds = set()
    for rel, doc in files.items():
        types = {t for t, _, _ in blocks(doc, "resource")}
        if any(t.startswith("google_") for t in types):
            kinds.add("gcp")
            check_google(rel, doc, problems)
        if any(t.startswith("azurerm_") for t in types):
            kinds.add("azure")
            check_azure(rel, doc, problems)
        for entry in doc.get("variable", []):
            for var, body in entry.items():
                if not body.get("description") or "type" not in body:
                    problems.append(f"{rel}: variable {var} needs a description and a type")
    if kinds != {"gcp", "azure"}:
        problems.append(f"infra/: expected Google and Azure Terraform, found {sorted(kinds)}")
    check_skips(problems)
    print(f"terraform: {len(files)} files parsed ({', '.join(files)}), "
          f"{len(problems)} findings before checkov")
    if "--no-checkov" not in argv:
        run_checkov(problems)
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
