//! AWS without the SDK: SigV4 signing (`aws-sigv4`), STS AssumeRole and ECR
//! GetAuthorizationToken as plain request builders and response parsers, a session
//! policy builder, and the retry policy. IO happens only through [`crate::runtime::HttpClient`].

pub mod ecr;
pub mod policy;
pub mod retry;
pub mod sigv4;
pub mod sts;

use std::fmt;

use crate::error::{ErrorCode, PublicError, PublicFailure};
use crate::secrets::SecretString;

/// AWS credentials: long-lived base keys or a role session. Never printable.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
    /// When a session's credentials stop working (ms since the epoch).
    pub expires_at_ms: Option<u64>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Access key ids are not secret, but they are not needed in logs either.
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &"[redacted]")
            .field("session", &self.session_token.is_some())
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// Which AWS call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// AssumeRole on `role_arn` with the base credentials (role chaining, first hop).
    StsChain,
    /// AssumeRole on `push_role_arn` with the session policy.
    StsAssumeRole,
    /// AssumeRoleWithWebIdentity on `push_role_arn` with a broker-minted token.
    StsAssumeRoleWithWebIdentity,
    /// ECR GetAuthorizationToken with the scoped session.
    EcrGetAuthorizationToken,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::StsChain => "sts:AssumeRole (role_arn)",
            Step::StsAssumeRole => "sts:AssumeRole (push_role_arn)",
            Step::StsAssumeRoleWithWebIdentity => "sts:AssumeRoleWithWebIdentity (push_role_arn)",
            Step::EcrGetAuthorizationToken => "ecr:GetAuthorizationToken",
        }
    }
}

/// How an AWS call failed, after retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// AWS refused the caller (signature, key, permissions, policy).
    Denied,
    /// Still throttled after the last attempt.
    Throttled,
    /// No answer in time on the last attempt.
    Timeout,
    /// Any other failure: 5xx after retries, network, unparseable or unusable answers.
    Error,
}

/// A failed AWS call. Holds only AWS's error *code* and request id — never its message,
/// which could echo request material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    pub step: Step,
    pub kind: UpstreamKind,
    pub aws_code: Option<String>,
    pub request_id: Option<String>,
    pub attempts: u32,
}

impl UpstreamError {
    pub fn new(step: Step, kind: UpstreamKind) -> Self {
        UpstreamError {
            step,
            kind,
            aws_code: None,
            request_id: None,
            attempts: 1,
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed ({:?}) after {} attempt(s)",
            self.step.as_str(),
            self.kind,
            self.attempts
        )?;
        if let Some(code) = &self.aws_code {
            write!(f, ", aws_code={code}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, ", request_id={id}")?;
        }
        Ok(())
    }
}

/// The one response header read from STS and ECR: AWS's request id, for the audit line.
pub const RESPONSE_HEADERS: &[&str] = &["x-amzn-requestid"];

/// The claim of a web identity token that AWS STS `AssumeRoleWithWebIdentity` turns into
/// the session's `SourceIdentity` (IAM User Guide, "Monitor and control actions taken with
/// assumed roles": `"https://aws.amazon.com/source_identity"` in the OIDC token).
pub const SOURCE_IDENTITY_CLAIM: &str = "https://aws.amazon.com/source_identity";

/// Seconds a throttled caller is told to wait.
pub const RETRY_AFTER_SECONDS: u32 = 5;

impl PublicError for UpstreamError {
    fn public(&self) -> PublicFailure {
        let step = self.step.as_str();
        match self.kind {
            UpstreamKind::Denied => {
                PublicFailure::new(ErrorCode::UpstreamDenied, format!("AWS denied {step}"))
            }
            UpstreamKind::Error => {
                PublicFailure::new(ErrorCode::UpstreamError, format!("AWS call {step} failed"))
            }
            UpstreamKind::Throttled => PublicFailure::new(
                ErrorCode::UpstreamThrottled,
                format!("AWS throttled {step}; retry later"),
            )
            .with_header("retry-after", RETRY_AFTER_SECONDS.to_string()),
            UpstreamKind::Timeout => PublicFailure::new(
                ErrorCode::UpstreamTimeout,
                format!("AWS did not answer {step} in time"),
            ),
        }
    }
}

/// Keeps AWS error codes and request ids log-safe: `[A-Za-z0-9._:-]`, at most 128 chars.
pub(crate) fn log_safe(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._:-".contains(*c))
        .take(128)
        .collect()
}

/// `{host_prefix}.{region}.amazonaws.com` (`.com.cn` in the China regions).
pub fn regional_host(host_prefix: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{host_prefix}.{region}.{suffix}")
}

/// `https://{host_prefix}.{region}.amazonaws.com/` (`.com.cn` in the China regions).
pub fn regional_endpoint(host_prefix: &str, region: &str) -> String {
    format!("https://{}/", regional_host(host_prefix, region))
}

/// `aws`, `aws-cn` or `aws-us-gov`, from the region name.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}
