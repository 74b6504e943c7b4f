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
