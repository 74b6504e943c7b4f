//! AWS without the SDK: SigV4 signing (`aws-sigv4`), STS AssumeRole and ECR
//! GetAuthorizationToken as plain request builders and response parsers, a session
//! policy builder, and AWS's error codes (the retry policy itself is `crate::upstream`'s).
//! IO happens only through [`crate::runtime::HttpClient`].

pub mod ecr;
pub mod policy;
pub mod sigv4;
pub mod sts;

use std::fmt;

use crate::secrets::SecretString;
use crate::upstream::Verdict;

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

/// The AWS calls, for errors and the log.
pub mod step {
    use crate::upstream::Step;

    /// AssumeRole on `role_arn` with the base credentials (role chaining, first hop).
    pub const STS_CHAIN: Step = Step::new("AWS", "sts:AssumeRole (role_arn)");
    /// AssumeRole on `push_role_arn` with the session policy.
    pub const STS_ASSUME_ROLE: Step = Step::new("AWS", "sts:AssumeRole (push_role_arn)");
    /// AssumeRoleWithWebIdentity on `push_role_arn` with a broker-minted token.
    pub const STS_ASSUME_ROLE_WITH_WEB_IDENTITY: Step =
        Step::new("AWS", "sts:AssumeRoleWithWebIdentity (push_role_arn)");
    /// ECR GetAuthorizationToken with the scoped session.
    pub const ECR_GET_AUTHORIZATION_TOKEN: Step = Step::new("AWS", "ecr:GetAuthorizationToken");
}

/// Codes AWS uses for throttling (HTTP 400 on the Query and JSON protocols).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
];

/// Codes that mean "you may not": reported as `upstream_denied`, never retried.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "RegionDisabledException",
    // AssumeRoleWithWebIdentity: the token or its issuer was not accepted.
    "InvalidIdentityToken",
    "IDPRejectedClaim",
];

/// `IDPCommunicationError`: STS could not reach the token's issuer; the STS API reference
/// calls it often transient and says to retry a limited number of times.
const TRANSIENT_CODES: &[&str] = &["IDPCommunicationError"];

/// What an AWS error code means for the retry policy.
pub fn verdict(code: &str) -> Verdict {
    if THROTTLING_CODES.contains(&code) {
        Verdict::Throttled
    } else if DENIED_CODES.contains(&code) {
        Verdict::Denied
    } else if TRANSIENT_CODES.contains(&code) {
        Verdict::Transient
    } else {
        Verdict::Other
    }
}

/// The one response header read from STS and ECR: AWS's request id, for the audit line.
pub const RESPONSE_HEADERS: &[&str] = &["x-amzn-requestid"];

/// The claim of a web identity token that AWS STS `AssumeRoleWithWebIdentity` turns into
/// the session's `SourceIdentity` (IAM User Guide, "Monitor and control actions taken with
/// assumed roles": `"https://aws.amazon.com/source_identity"` in the OIDC token).
pub const SOURCE_IDENTITY_CLAIM: &str = "https://aws.amazon.com/source_identity";

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
