#!/usr/bin/env python3
"""Every IAM policy document the project ships, checked by parliament (PyPI):

- the CloudFormation template's (infra/aws.yaml): trust policies of both modes, the push
  role's permission policy with and without RepositoryMode=CreateOnPush, the access-key
  user's policy — with the template's substitutions filled in with example values (every
  Fn::If yields both branches, so every mode is checked);
- the JSON policy examples in docs/*.md;
- the session policies the broker generates (push and pull), as sent to STS and committed
  as botocore golden files (tests/fixtures/botocore/), and the four committed session
  policies of tests/fixtures/policies/ (push/pull, with and without create_on_push).

Beyond parliament, structural checks that fail when the documents drift: the
create_on_push fixtures add exactly one statement (`CreateOnPush`: ecr:CreateRepository +
ecr:TagResource on the exact repository ARN, never a wildcard) to push and nothing to pull;
the fixtures without it equal the botocore golden policies; the template grants
CreateRepository only in the CreateOnPush branch and only under repository/{prefix}/*; the
repository creation template's lifecycle policy is valid JSON with the `any` rule last.

Exits 1 listing every finding; prints how many documents were checked.
"""
import json
import re
import sys
import urllib.parse
from pathlib import Path

from cfnlint.decode import cfn_yaml
from parliament import analyze_policy_string

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = {
    "BrokerHost": "broker.example.com", "Audience": "sts.amazonaws.com", "RepoPrefix": "rise",
    "KeepImages": "200",
    "AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
    "BrokerOidcProvider.Arn": "arn:aws:iam::123456789012:oidc-provider/broker.example.com",
    "BrokerUser.Arn": "arn:aws:iam::123456789012:user/rise-broker",
    "PushRole.Arn": "arn:aws:iam::123456789012:role/rise-ecr-push",
}
NO_VALUE = object()  # Ref AWS::NoValue: the list item or key disappears

REPO_ARN = "arn:aws:ecr:us-east-1:123456789012:repository/rise/my-app"
CREATE_ON_PUSH = {"Sid": "CreateOnPush", "Effect": "Allow",
                  "Action": ["ecr:CreateRepository", "ecr:TagResource"], "Resource": REPO_ARN}
FIXTURES = ROOT / "tests" / "fixtures" / "policies"


def resolve(node):
    """CloudFormation intrinsics → example values; Fn::If yields both branches."""
    if isinstance(node, dict):
        if "Fn::Sub" in node:
            return [re.sub(r"\$\{([^}]+)\}", lambda m: EXAMPLE[m.group(1)], node["Fn::Sub"])]
        if "Fn::GetAtt" in node:
            att = node["Fn::GetAtt"]
            return [EXAMPLE[".".join(att) if isinstance(att, list) else att]]
        if "Fn::If" in node:
            return resolve(node["Fn::If"][1]) + resolve(node["Fn::If"][2])
        if "Ref" in node:
            if node["Ref"] == "AWS::NoValue":
                return [NO_VALUE]
            return [EXAMPLE.get(node["Ref"], node["Ref"])]
        out = [{}]
        for k, v in node.items():
            out = [dict(o, **({} if r is NO_VALUE else {k: r})) for o in out for r in resolve(v)]
        return out
    if isinstance(node, list):
        out = [[]]
        for item in node:
            out = [o + ([] if r is NO_VALUE else [r]) for o in out for r in resolve(item)]
        return out
    return [node]


def load_template():
    return cfn_yaml.load(str(ROOT / "infra" / "aws.yaml"))


def template_policies():
    template = load_template()
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("PolicyDocument", "AssumeRolePolicyDocument"):
                    for i, doc in enumerate(resolve(v)):
                        found.append((f"{where}.{k}[{i}]", doc if isinstance(doc, str) else json.dumps(doc)))
                else:
                    walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    walk(template["Resources"], "infra/aws.yaml")
    return found


def doc_policies():
    found = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        for i, block in enumerate(re.findall(r"```json\n(.*?)```", path.read_text(), re.S)):
            if '"Statement"' in block and '"Version"' in block:
                found.append((f"{path.relative_to(ROOT)} block {i}", block))
    return found


def golden_session_policies():
    found = {}
    for path in sorted((ROOT / "tests" / "fixtures" / "botocore").glob("assume_role_*.json")):
        body = json.loads(path.read_text())["body"]
        policy = dict(urllib.parse.parse_qsl(body)).get("Policy")
        if policy:
            found[path.name] = policy
    return found


def fixture_policies():
    return {p.name: p.read_text() for p in sorted(FIXTURES.glob("session_*.json"))}


def session_policies():
    return ([(f"session policy ({name})", text) for name, text in golden_session_policies().items()]
            + [(f"session policy (tests/fixtures/policies/{name})", text)
               for name, text in fixture_policies().items()])


def statements(doc):
    st = doc["Statement"]
    return st if isinstance(st, list) else [st]


def actions(st):
    a = st.get("Action", [])
    return [a] if isinstance(a, str) else a


def fixture_problems():
    """The committed create_on_push fixtures against the golden ones, statement by statement."""
    problems = []
    fx = fixture_policies()
    want = {"session_push.json", "session_pull.json", "session_push_create_on_push.json",
            "session_pull_create_on_push.json"}
    if set(fx) != want:
        return [f"tests/fixtures/policies: expected {sorted(want)}, found {sorted(fx)}"]
    golden = golden_session_policies()
    for access in ("push", "pull"):
        if fx[f"session_{access}.json"] != golden.get(f"assume_role_{access}.json"):
            problems.append(f"session_{access}.json differs from the Policy in "
                            f"tests/fixtures/botocore/assume_role_{access}.json")
    for name, text in fx.items():
        compact = json.dumps(json.loads(text), separators=(",", ":"))
        if text != compact:
            problems.append(f"{name}: not compact serde_json form (key order, spaces, trailing newline)")
        doc = json.loads(text)
        if list(doc) != ["Version", "Statement"]:
            problems.append(f"{name}: keys must be Version, Statement in that order")
        for st in statements(doc):
            if list(st) != ["Sid", "Effect", "Action", "Resource"]:
                problems.append(f"{name}: statement {st.get('Sid')} keys must be Sid, Effect, Action, Resource")
            if st["Sid"] != "GetAuthorizationToken" and st["Resource"] != REPO_ARN:
                problems.append(f"{name}: {st['Sid']} resource {st['Resource']} is not exactly {REPO_ARN}")
    push, push_cop = json.loads(fx["session_push.json"]), json.loads(fx["session_push_create_on_push.json"])
    if statements(push_cop) != statements(push) + [CREATE_ON_PUSH]:
        problems.append("session_push_create_on_push.json must be session_push.json plus exactly "
                        + json.dumps(CREATE_ON_PUSH, separators=(",", ":")))
    if fx["session_pull_create_on_push.json"] != fx["session_pull.json"]:
        problems.append("session_pull_create_on_push.json must equal session_pull.json (pull never creates)")
    for name in ("session_push.json", "session_pull.json", "session_pull_create_on_push.json"):
        if any(a in ("ecr:CreateRepository", "ecr:TagResource")
               for st in statements(json.loads(fx[name])) for a in actions(st)):
            problems.append(f"{name}: grants CreateRepository/TagResource without create_on_push on push")
    return problems


def template_problems():
    """CreateRepository/TagResource only in the CreateOnPush branch, only under the prefix;
    the creation template as issue 21 asks; its lifecycle policy well-formed."""
    problems = []
    role_docs = [json.loads(text) for name, text in template_policies()
                 if name.startswith("infra/aws.yaml.PushRole.Properties.Policies")]
    create_docs = [d for d in role_docs
                   if any("ecr:CreateRepository" in actions(st) for st in statements(d))]
    if not (create_docs and len(create_docs) < len(role_docs)):
        problems.append("push role: expected its policy both with (CreateOnPush) and without "
                        "(PerProject) ecr:CreateRepository")
    wildcard = "arn:aws:ecr:us-east-1:123456789012:repository/rise/*"
    for d in role_docs:
        for st in statements(d):
            if {"ecr:CreateRepository", "ecr:TagResource"} & set(actions(st)):
                if st.get("Resource") != wildcard or set(actions(st)) != {"ecr:CreateRepository", "ecr:TagResource"}:
                    problems.append(f"push role statement {st.get('Sid')}: CreateRepository/TagResource "
                                    f"must stand alone on exactly {wildcard}")
    template = load_template()
    res = template["Resources"]
    tmpl = [(k, v) for k, v in res.items() if isinstance(v, dict)
            and v.get("Type") == "AWS::ECR::RepositoryCreationTemplate"]
    if len(tmpl) != 1:
        return problems + [f"expected one AWS::ECR::RepositoryCreationTemplate, found {len(tmpl)}"]
    name, t = tmpl[0]
    props = t["Properties"]
    if t.get("Condition") != "CreateOnPush":
        problems.append(f"{name}: must be created only under Condition CreateOnPush (default unchanged)")
    if props.get("AppliedFor") != ["CREATE_ON_PUSH"]:
        problems.append(f"{name}: AppliedFor must be exactly [CREATE_ON_PUSH]")
    if props.get("Prefix") != {"Ref": "RepoPrefix"}:
        problems.append(f"{name}: Prefix must be the RepoPrefix parameter (never ROOT)")
    if props.get("ImageTagMutability") != "IMMUTABLE":
        problems.append(f"{name}: ImageTagMutability must be IMMUTABLE")
    if "EncryptionConfiguration" not in props:
        problems.append(f"{name}: EncryptionConfiguration missing")
    for text in resolve(props.get("LifecyclePolicy")):
        try:
            rules = json.loads(text)["rules"]
        except (TypeError, ValueError, KeyError) as e:
            problems.append(f"{name}: LifecyclePolicy is not JSON with rules ({e})")
            continue
        prios = [r["rulePriority"] for r in rules]
        if len(set(prios)) != len(prios):
            problems.append(f"{name}: LifecyclePolicy rule priorities repeat")
        anys = [r["rulePriority"] for r in rules if r["selection"]["tagStatus"] == "any"]
        if anys and max(anys) != max(prios):
            problems.append(f"{name}: a tagStatus any rule must have the highest rulePriority")
    return problems


def known_trust_policy_gap(text, finding):
    """parliament 1.6.4 reads every document as an identity policy. In a *trust* policy
    (statements with a Principal) two findings are therefore always wrong: a trust policy
    has no Resource by definition, and parliament knows only SAML providers and four
    fixed web identity providers as federated principals, not IAM OIDC providers."""
    doc = json.loads(text)
    if not all("Principal" in st for st in statements(doc)):
        return False
    if finding.issue == "MALFORMED" and finding.detail == "Statement contains neither Resource nor NotResource":
        return True
    return finding.issue == "UNKNOWN_FEDERATION_SOURCE" and re.match(
        r"^arn:aws[-a-z]*:iam::\d{12}:oidc-provider/[a-z0-9.-]+$", str(finding.detail))


def main():
    documents = template_policies() + doc_policies() + session_policies()
    problems = []
    for name, text in documents:
        policy = analyze_policy_string(text)
        for finding in policy.findings:
            if not known_trust_policy_gap(text, finding):
                problems.append(f"{name}: {finding.issue} {finding.detail} {finding.location}")
    problems += fixture_problems() + template_problems()
    kinds = {"template": len(template_policies()), "docs": len(doc_policies()),
             "session": len(session_policies())}
    print(f"parliament: {len(documents)} policy documents {kinds}, {len(problems)} findings")
    for p in problems:
        print("  " + p)
    return 1 if problems or kinds["session"] < 6 or kinds["template"] < 5 else 0


if __name__ == "__main__":
    sys.exit(main())
