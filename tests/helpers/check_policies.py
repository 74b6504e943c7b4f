#!/usr/bin/env python3
"""Every IAM policy document the project ships, checked by parliament (PyPI):

- the CloudFormation template's (infra/aws.yaml): trust policies of both modes, the push
  role's permission policy, the access-key user's policy — with the template's
  substitutions filled in with example values;
- the JSON policy examples in docs/*.md;
- the session policies the broker generates (push and pull), as sent to STS and committed
  as botocore golden files (tests/fixtures/botocore/).

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
    "AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
    "BrokerOidcProvider.Arn": "arn:aws:iam::123456789012:oidc-provider/broker.example.com",
    "BrokerUser.Arn": "arn:aws:iam::123456789012:user/rise-broker",
    "PushRole.Arn": "arn:aws:iam::123456789012:role/rise-ecr-push",
}


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
            return [EXAMPLE.get(node["Ref"], node["Ref"])]
        out = [{}]
        for k, v in node.items():
            out = [dict(o, **{k: r}) for o in out for r in resolve(v)]
        return out
    if isinstance(node, list):
        out = [[]]
        for item in node:
            out = [o + [r] for o in out for r in resolve(item)]
        return out
    return [node]


def template_policies():
    template = cfn_yaml.load(str(ROOT / "infra" / "aws.yaml"))
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


def session_policies():
    found = []
    for path in sorted((ROOT / "tests" / "fixtures" / "botocore").glob("assume_role_*.json")):
        body = json.loads(path.read_text())["body"]
        policy = dict(urllib.parse.parse_qsl(body)).get("Policy")
        if policy:
            found.append((f"session policy ({path.name})", policy))
    return found


def known_trust_policy_gap(text, finding):
    """parliament 1.6.4 reads every document as an identity policy. In a *trust* policy
    (statements with a Principal) two findings are therefore always wrong: a trust policy
    has no Resource by definition, and parliament knows only SAML providers and four
    fixed web identity providers as federated principals, not IAM OIDC providers."""
    doc = json.loads(text)
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    if not all("Principal" in st for st in statements):
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
    kinds = {"template": len(template_policies()), "docs": len(doc_policies()),
             "session": len(session_policies())}
    print(f"parliament: {len(documents)} policy documents {kinds}, {len(problems)} findings")
    for p in problems:
        print("  " + p)
    return 1 if problems or kinds["session"] < 2 or kinds["template"] < 3 else 0


if __name__ == "__main__":
    sys.exit(main())
