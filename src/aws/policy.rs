//! The inline session policy that scopes an assumed role to one repository.
//!
//! Built with serde_json (never by string concatenation) from a validated
//! [`ProjectName`], so nothing a caller sends can change its shape. The repository ARN is
//! exact — no trailing `*` — so `my-app` never grants `my-app2`, `my-app-prod` or `my-app/x`.

use serde::Serialize;

use super::partition;
use crate::project::{Access, ProjectName};

/// AWS's limit on an inline session policy (plain text, before packing).
pub const MAX_POLICY_CHARS: usize = 2048;

/// ECR actions a push needs on the repository (docker push = upload layers + manifest).
pub const PUSH_ACTIONS: &[&str] = &[
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
];

/// Read-only actions for `access=pull`.
pub const PULL_ACTIONS: &[&str] = &[
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
];

/// What a first push needs when the registry creates repositories on push: ECR's
/// documentation for repository creation templates names `ecr:CreateRepository`, and
/// `ecr:TagResource` when the template applies tags (PROVIDERS.md §B2).
pub const CREATE_ON_PUSH_ACTIONS: &[&str] = &["ecr:CreateRepository", "ecr:TagResource"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionPolicy {
    version: &'static str,
    statement: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Statement {
    sid: &'static str,
    effect: &'static str,
    action: Vec<&'static str>,
    resource: String,
}

/// The policy would not fit AWS's size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTooLarge(pub usize);

impl SessionPolicy {
    /// `ecr:GetAuthorizationToken` on `*` (it has no resource scope) plus the push or pull
    /// actions on exactly `arn:{partition}:ecr:{region}:{account}:repository/{repository}`.
    pub fn for_repository(
        region: &str,
        account_id: &str,
        repo_prefix: &str,
        project: &ProjectName,
        access: Access,
    ) -> Self {
        let actions = match access {
            Access::Push => PUSH_ACTIONS,
            Access::Pull => PULL_ACTIONS,
        };
        SessionPolicy {
            version: "2012-10-17",
            statement: vec![
                Statement {
                    sid: "GetAuthorizationToken",
                    effect: "Allow",
                    action: vec!["ecr:GetAuthorizationToken"],
                    resource: "*".into(),
                },
                Statement {
                    sid: "ProjectRepository",
                    effect: "Allow",
                    action: actions.to_vec(),
                    resource: repository_arn(
                        region,
                        account_id,
                        &format!("{repo_prefix}{project}"),
                    ),
                },
            ],
        }
    }

    /// For registries with a repository creation template applied for `CREATE_ON_PUSH`
    /// (`[registry] create_on_push`): a push may also create — and tag, as the template
    /// does — the project's repository, on the same exact ARN and nothing wider, so a
    /// first push creates `{repo_prefix}{project}` and no other repository. Pull is
    /// unchanged: reading never creates.
    pub fn with_create_on_push(mut self, access: Access) -> Self {
        if access == Access::Push {
            let resource = self.statement[1].resource.clone();
            self.statement.push(Statement {
                sid: "CreateOnPush",
                effect: "Allow",
                action: CREATE_ON_PUSH_ACTIONS.to_vec(),
                resource,
            });
        }
        self
    }

    /// Compact JSON, refused when longer than [`MAX_POLICY_CHARS`].
    pub fn to_json(&self) -> Result<String, PolicyTooLarge> {
        let json = serde_json::to_string(self).expect("policy serializes");
        if json.chars().count() > MAX_POLICY_CHARS {
            return Err(PolicyTooLarge(json.len()));
        }
        Ok(json)
    }
}

pub fn repository_arn(region: &str, account_id: &str, repository: &str) -> String {
    format!(
        "arn:{}:ecr:{region}:{account_id}:repository/{repository}",
        partition(region)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// IAM resource matching: `*` any run, `?` one character, everything else literal.
    fn iam_matches(pattern: &str, arn: &str) -> bool {
        fn go(p: &[u8], s: &[u8]) -> bool {
            match (p.first(), s.first()) {
                (None, None) => true,
                (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
                (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
                (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
                _ => false,
            }
        }
        go(pattern.as_bytes(), arn.as_bytes())
    }

    fn policy(project: &str, access: Access) -> Value {
        let p = SessionPolicy::for_repository(
            "us-east-1",
            "123456789012",
            "rise/",
            &ProjectName::parse(project).unwrap(),
            access,
        );
        serde_json::from_str(&p.to_json().unwrap()).unwrap()
    }

    #[test]
    fn grants_exactly_one_repository() {
        let doc = policy("my-app", Access::Push);
        let resource = doc["Statement"][1]["Resource"].as_str().unwrap();
        let arn = |repo: &str| format!("arn:aws:ecr:us-east-1:123456789012:repository/{repo}");
        assert!(iam_matches(resource, &arn("rise/my-app")));
        for other in [
            "rise/my-app2",
            "rise/my-app-prod",
            "rise/my-app/x",
            "rise/my-ap",
            "my-app",
            "rise/other",
            "rise/my-app ",
        ] {
            assert!(!iam_matches(resource, &arn(other)), "{other}");
        }
        assert!(!iam_matches(
            resource,
            "arn:aws:ecr:us-west-2:123456789012:repository/rise/my-app"
        ));
        assert!(!iam_matches(
            resource,
            "arn:aws:ecr:us-east-1:999999999999:repository/rise/my-app"
        ));
        // GetAuthorizationToken has no resource-level scope; it is the only action on `*`.
        assert_eq!(doc["Statement"][0]["Resource"], "*");
        assert_eq!(
            doc["Statement"][0]["Action"],
            serde_json::json!(["ecr:GetAuthorizationToken"])
        );
        assert_eq!(doc["Version"], "2012-10-17");
    }

    #[test]
    fn pull_has_no_write_actions() {
        let doc = policy("my-app", Access::Pull);
        let actions: Vec<&str> = doc["Statement"][1]["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        for write in [
            "ecr:PutImage",
            "ecr:InitiateLayerUpload",
            "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload",
        ] {
            assert!(!actions.contains(&write));
        }
        assert!(actions.iter().all(|a| PUSH_ACTIONS.contains(a)));
    }

    /// Issue 21: the session policy with and without `create_on_push`, byte for byte as
    /// STS receives it; the same files are what parliament checks
    /// (tests/helpers/check_policies.py).
    #[test]
    fn create_on_push_adds_exactly_create_and_tag_on_the_same_arn() {
        let project = ProjectName::parse("my-app").unwrap();
        let json = |access, create_on_push| {
            let p = SessionPolicy::for_repository(
                "us-east-1",
                "123456789012",
                "rise/",
                &project,
                access,
            );
            let p = if create_on_push {
                p.with_create_on_push(access)
            } else {
                p
            };
            p.to_json().unwrap()
        };
        let fixture = |name: &str| {
            std::fs::read_to_string(format!(
                "{}/tests/fixtures/policies/{name}.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        assert_eq!(json(Access::Push, false), fixture("session_push"));
        assert_eq!(json(Access::Pull, false), fixture("session_pull"));
        assert_eq!(
            json(Access::Push, true),
            fixture("session_push_create_on_push")
        );
        assert_eq!(
            json(Access::Pull, true),
            fixture("session_pull_create_on_push")
        );
        assert_eq!(json(Access::Pull, true), json(Access::Pull, false));
    }

    #[test]
    fn partitions() {
        assert!(repository_arn("cn-north-1", "123456789012", "x").starts_with("arn:aws-cn:ecr:"));
        assert!(
            repository_arn("us-gov-west-1", "123456789012", "x").starts_with("arn:aws-us-gov:ecr:")
        );
    }

    #[test]
    fn size_guard_trips() {
        let project = ProjectName::parse("my-app").unwrap();
        let fits = SessionPolicy::for_repository(
            "us-east-1",
            "123456789012",
            &"a/".repeat(96),
            &project,
            Access::Push,
        );
        assert!(fits.to_json().unwrap().len() <= MAX_POLICY_CHARS);
        let huge = SessionPolicy::for_repository(
            "us-east-1",
            "123456789012",
            &"a".repeat(1800),
            &project,
            Access::Push,
        );
        assert!(matches!(huge.to_json(), Err(PolicyTooLarge(n)) if n > MAX_POLICY_CHARS));
    }
}
