//! The ECR provider: scoped push/pull credentials via STS AssumeRole + GetAuthorizationToken.

use async_trait::async_trait;
use serde::Deserialize;

use super::{
    CredentialRequest, ProviderContext, ProviderError, RegistryCredentials, RegistryProvider,
};
use crate::config::{lenient, validate_url, ConfigError};
use crate::project::MAX_PROJECT_LEN;

/// Bounds AWS puts on `DurationSeconds` for AssumeRole.
pub const MIN_SESSION_SECONDS: u64 = 900;
pub const MAX_SESSION_SECONDS: u64 = 43_200;
/// Longest ECR repository name.
pub const MAX_REPOSITORY_LEN: usize = 256;

fn default_session_seconds() -> u64 {
    3600
}
fn default_true() -> bool {
    true
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_max_attempts() -> u64 {
    3
}

/// `[registry]` with `type = "ecr"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcrConfig {
    pub region: String,
    pub account_id: String,
    /// Prepended to the project name: `rise/` → `rise/my-app`. May be empty.
    #[serde(default)]
    pub repo_prefix: String,
    /// Optional role assumed first with the base credentials; the push role is then
    /// assumed from that session (role chaining).
    #[serde(default)]
    pub role_arn: Option<String>,
    pub push_role_arn: String,
    #[serde(default = "default_session_seconds", deserialize_with = "lenient::u64")]
    pub session_duration_seconds: u64,
    /// Send `SourceIdentity` (needs `sts:SetSourceIdentity` in the push role's trust policy).
    #[serde(default = "default_true", deserialize_with = "lenient::bool")]
    pub source_identity: bool,
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    #[serde(default)]
    pub ecr_endpoint: Option<String>,
    /// Per-attempt timeout for each AWS call.
    #[serde(default = "default_timeout_ms", deserialize_with = "lenient::u64")]
    pub timeout_ms: u64,
    /// Attempts per AWS call, including the first (each one is a subrequest).
    #[serde(default = "default_max_attempts", deserialize_with = "lenient::u64")]
    pub max_attempts: u64,
}

impl EcrConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !valid_region(&self.region) {
            return Err(ConfigError::key(
                "registry.region",
                "must look like `us-east-1`",
            ));
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::key("registry.account_id", "must be 12 digits"));
        }
        if !valid_prefix(&self.repo_prefix) {
            return Err(ConfigError::key(
                "registry.repo_prefix",
                "must be lower-case path segments ending in `/` (or empty)",
            ));
        }
        if self.repo_prefix.len() + MAX_PROJECT_LEN > MAX_REPOSITORY_LEN {
            return Err(ConfigError::key(
                "registry.repo_prefix",
                "is too long for ECR repository names",
            ));
        }
        if !valid_role_arn(&self.push_role_arn) {
            return Err(ConfigError::key(
                "registry.push_role_arn",
                "must be an IAM role ARN",
            ));
        }
        if let Some(arn) = &self.role_arn {
            if !valid_role_arn(arn) {
                return Err(ConfigError::key(
                    "registry.role_arn",
                    "must be an IAM role ARN",
                ));
            }
        }
        if !(MIN_SESSION_SECONDS..=MAX_SESSION_SECONDS).contains(&self.session_duration_seconds) {
            return Err(ConfigError::key(
                "registry.session_duration_seconds",
                "must be between 900 and 43200",
            ));
        }
        if let Some(url) = &self.sts_endpoint {
            validate_url("registry.sts_endpoint", url)?;
        }
        if let Some(url) = &self.ecr_endpoint {
            validate_url("registry.ecr_endpoint", url)?;
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(ConfigError::key(
                "registry.timeout_ms",
                "must be between 100 and 60000",
            ));
        }
        if !(1..=5).contains(&self.max_attempts) {
            return Err(ConfigError::key(
                "registry.max_attempts",
                "must be between 1 and 5",
            ));
        }
        Ok(())
    }

    /// `{account}.dkr.ecr.{region}.amazonaws.com`
    pub fn registry_host(&self) -> String {
        format!("{}.dkr.ecr.{}.amazonaws.com", self.account_id, self.region)
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, …
fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

fn valid_prefix(prefix: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    let Some(body) = prefix.strip_suffix('/') else {
        return false;
    };
    body.split('/')
        .all(|seg| crate::project::ProjectName::parse(seg).is_ok())
}

/// `arn:aws:iam::123456789012:role/path/name` (also `aws-cn`, `aws-us-gov`).
fn valid_role_arn(arn: &str) -> bool {
    let Some(rest) = ["arn:aws:iam::", "arn:aws-cn:iam::", "arn:aws-us-gov:iam::"]
        .iter()
        .find_map(|p| arn.strip_prefix(p))
    else {
        return false;
    };
    let Some((account, name)) = rest.split_once(":role/") else {
        return false;
    };
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
}

pub struct EcrProvider {
    #[allow(dead_code)]
    config: EcrConfig,
}

impl EcrProvider {
    pub fn new(config: EcrConfig) -> Self {
        EcrProvider { config }
    }
}

#[async_trait(?Send)]
impl RegistryProvider for EcrProvider {
    fn kind(&self) -> &'static str {
        "ecr"
    }

    async fn credentials(
        &self,
        _request: &CredentialRequest<'_>,
        _ctx: &ProviderContext<'_>,
    ) -> Result<RegistryCredentials, ProviderError> {
        Err(ProviderError::NotImplemented("ECR credential issuance"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_arns() {
        for r in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
        ] {
            assert!(valid_region(r), "{r}");
        }
        for r in [
            "us-east",
            "US-EAST-1",
            "us_east_1",
            "",
            "us-east-1a",
            "-east-1",
        ] {
            assert!(!valid_region(r), "{r}");
        }
        assert!(valid_role_arn(
            "arn:aws:iam::123456789012:role/rise-ecr-push"
        ));
        assert!(valid_role_arn(
            "arn:aws:iam::123456789012:role/path/to/role"
        ));
        assert!(!valid_role_arn("arn:aws:iam::123456789012:user/bob"));
        assert!(!valid_role_arn("arn:aws:iam::12345678901:role/x"));
        assert!(!valid_role_arn("arn:aws:iam::123456789012:role/"));
        assert!(!valid_role_arn("arn:aws:iam::123456789012:role/a*"));
        assert!(valid_prefix("") && valid_prefix("rise/") && valid_prefix("a/b/"));
        assert!(!valid_prefix("rise") && !valid_prefix("/") && !valid_prefix("Rise/"));
    }
}
