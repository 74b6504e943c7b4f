//! The audit line: one structured record per request, written in one place
//! (`crate::api::respond` returns it, the shell logs it as one JSON line).
//!
//! It never holds a token, password, key or AWS secret: only who asked, for what, what
//! was decided and why (a reason that names checks, keys and AWS error codes, never
//! values). docs/api.md lists the fields with an example line per outcome.

use serde::Serialize;

/// One request's audit record. Fields that do not apply are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditLine {
    /// `registry_credentials`, `registry_token`, or `request` (a refusal before any route:
    /// unknown path, wrong method, broken config).
    pub event: &'static str,
    /// The answer's `x-request-id`: Cloudflare's `cf-ray` when present, else random.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// For refusals before a route's checks: the method and path asked for (printable
    /// ASCII, truncated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub project: String,
    /// `push` or `pull`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub access: &'static str,
    /// The configured provider kind (`docker`, `ecr`, …).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub provider: &'static str,
    /// The caller's `sub`, reduced to `[A-Za-z0-9_+=,.@-]` (absent when unauthenticated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The caller's verified issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    pub outcome: Decision,
    /// The public error code, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// Why it was refused, for the operator (never shown to the caller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Which rule authorized the caller: `projects_claim`, `admin`, `service_account`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<&'static str>,
    /// How the credential cache answered (absent when refused before issuance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStatus>,
    /// The answer came from another request's in-flight issuance.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// Why a refresh failed when a still-valid credential was served (`cache: "stale"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_error: Option<String>,
    /// Seconds the served credential keeps working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// Request ids of the upstream calls this request made (AWS `x-amzn-RequestId`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aws_request_ids: Vec<String>,
    /// Outbound calls (Worker subrequests) this request made, retries included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subrequests: Option<u32>,
    /// Registry token requests: the scopes granted, `repository:name:actions`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// What was decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Issued,
    #[default]
    Refused,
}

/// How the credential cache answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheStatus {
    /// Served from the cache (or from another request's in-flight issuance: `shared`).
    Hit,
    /// Issued upstream by this request.
    Miss,
    /// A refresh failed; a cached credential still above the floor was served.
    Stale,
    /// The cache is disabled.
    Off,
}

impl AuditLine {
    /// The one JSON line the shell logs.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("audit line serializes")
    }
}
