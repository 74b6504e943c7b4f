//! Who is asking, and may they have credentials for this project?
//!
//! - [`jwt`]: turns an untrusted bearer token into a [`VerifiedCaller`] (jwt-compact);
//! - [`jwks`]: key sets — inline, fetched from a URL or via OIDC discovery, cached;
//! - [`authz`]: stateless per-project authorization on the verified claims.

pub mod authz;
pub mod jwks;
pub mod jwt;
pub mod owner;
pub mod token_cache;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config_support::{in_range, validate_url, Fields};
use crate::error::{ConfigError, ErrorCode, PublicError, PublicFailure};
use crate::project::ProjectName;

pub use authz::authorize;
pub use jwt::Verifier;

/// `[auth]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway_seconds: u64,
    /// Claim (string array) listing the projects a caller may use.
    pub projects_claim: String,
    /// Claim compared against `admins`.
    pub admin_claim: String,
    pub admins: Vec<String>,
    pub issuers: Vec<IssuerConfig>,
    pub service_accounts: Vec<ServiceAccountRule>,
    /// Longer bearer tokens are rejected before any parsing.
    pub max_token_bytes: u64,
    /// How long a fetched JWKS is used before it is fetched again.
    pub jwks_cache_seconds: u64,
    /// Minimum time between two fetches of one issuer's keys, whatever `kid`s arrive.
    pub jwks_min_refetch_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            leeway_seconds: 60,
            projects_claim: "projects".into(),
            admin_claim: "email".into(),
            admins: Vec::new(),
            issuers: Vec::new(),
            service_accounts: Vec::new(),
            max_token_bytes: 8192,
            jwks_cache_seconds: 600,
            jwks_min_refetch_seconds: 60,
        }
    }
}

/// One trusted token issuer (`[[auth.issuers]]`) with exactly one key source.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerConfig {
    /// Must equal the token's `iss`.
    pub issuer: String,
    /// Must be in the token's `aud`.
    pub audience: String,
    /// NAME of the worker secret holding a base64 HS256 key (≥ 32 bytes).
    pub hs256_secret: Option<String>,
    /// Inline JWKS: a JSON string or a table.
    pub jwks: Option<Value>,
    pub jwks_url: Option<String>,
    /// Find `jwks_uri` at `{issuer}/.well-known/openid-configuration`.
    pub discovery: bool,
    /// Whether this issuer's `projects`/admin claims grant access. Default: only for
    /// first-party HS256 issuers (the broker's own backend); a newly added IdP's claims
    /// grant nothing unless the operator says so. See [`IssuerConfig::grants_by_claims`].
    pub claims_grant_access: Option<bool>,
    /// Claims that name a workload's owner, for service-account rules on this issuer.
    /// Built in for GitHub Actions and gitlab.com (see [`owner`]); required for any other
    /// issuer that service-account rules name.
    pub owner_claims: Option<Vec<String>>,
}

impl IssuerConfig {
    fn parse(mut f: Fields) -> Result<Self, ConfigError> {
        let config = IssuerConfig {
            issuer: f.string("issuer")?,
            audience: f.string("audience")?,
            hs256_secret: f.opt_string("hs256_secret")?,
            jwks: f.take("jwks"),
            jwks_url: f.opt_string("jwks_url")?,
            discovery: f.bool_or("discovery", false)?,
            claims_grant_access: f.opt_bool("claims_grant_access")?,
            owner_claims: f.opt_string_list("owner_claims")?,
        };
        f.finish()?;
        Ok(config)
    }

    /// `claims_grant_access`, or its default: true only for HS256 (first-party) issuers.
    pub fn grants_by_claims(&self) -> bool {
        self.claims_grant_access
            .unwrap_or(self.hs256_secret.is_some())
    }

    /// The claims a service-account rule on this issuer may pin the owner with.
    pub fn owner_claims(&self) -> Option<Vec<owner::OwnerClaim>> {
        match &self.owner_claims {
            // Named by the operator: `owner/…` paths or exact values.
            Some(names) => Some(names.iter().map(|n| owner::OwnerClaim::named(n)).collect()),
            None => owner::well_known(&self.issuer).map(<[_]>::to_vec),
        }
    }
}

/// `[[auth.service_accounts]]`: lets a CI job's OIDC token push to one project.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountRule {
    pub project: String,
    pub issuer: String,
    pub audience: String,
    /// Claim name → exact value, or a pattern where `*` matches any run of characters.
    pub claims: BTreeMap<String, String>,
}

impl ServiceAccountRule {
    fn parse(mut f: Fields) -> Result<Self, ConfigError> {
        let config = ServiceAccountRule {
            project: f.string("project")?,
            issuer: f.string("issuer")?,
            audience: f.string("audience")?,
            claims: f
                .opt_string_map("claims")?
                .ok_or_else(|| ConfigError::key(format!("{}.claims", f.prefix()), "is required"))?,
        };
        f.finish()?;
        Ok(config)
    }
}

impl AuthConfig {
    /// `[auth]` as written (every key optional), read with [`Fields`].
    pub fn parse(value: Value) -> Result<Self, ConfigError> {
        let mut f = Fields::table("auth", value)?;
        let d = AuthConfig::default();
        let issuers = f
            .table_list("issuers")?
            .into_iter()
            .map(IssuerConfig::parse)
            .collect::<Result<_, _>>()?;
        let service_accounts = f
            .table_list("service_accounts")?
            .into_iter()
            .map(ServiceAccountRule::parse)
            .collect::<Result<_, _>>()?;
        let config = AuthConfig {
            leeway_seconds: f.u64_or("leeway_seconds", d.leeway_seconds)?,
            projects_claim: f.string_or("projects_claim", &d.projects_claim)?,
            admin_claim: f.string_or("admin_claim", &d.admin_claim)?,
            admins: f.opt_string_list("admins")?.unwrap_or_default(),
            issuers,
            service_accounts,
            max_token_bytes: f.u64_or("max_token_bytes", d.max_token_bytes)?,
            jwks_cache_seconds: f.u64_or("jwks_cache_seconds", d.jwks_cache_seconds)?,
            jwks_min_refetch_seconds: f
                .u64_or("jwks_min_refetch_seconds", d.jwks_min_refetch_seconds)?,
        };
        f.finish()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.leeway_seconds > 600 {
            return Err(ConfigError::key(
                "auth.leeway_seconds",
                "must be at most 600",
            ));
        }
        in_range("auth.max_token_bytes", self.max_token_bytes, 1024..=65536)?;
        if self.jwks_cache_seconds == 0 {
            return Err(ConfigError::key(
                "auth.jwks_cache_seconds",
                "must be positive",
            ));
        }
        // 0 would let every token with an unknown `kid` trigger a fetch.
        in_range(
            "auth.jwks_min_refetch_seconds",
            self.jwks_min_refetch_seconds,
            1..=3600,
        )?;
        for (i, issuer) in self.issuers.iter().enumerate() {
            issuer.validate(&format!("auth.issuers[{i}]"))?;
            if self.issuers[..i].iter().any(|o| o.issuer == issuer.issuer) {
                return Err(ConfigError::key(
                    format!("auth.issuers[{i}].issuer"),
                    "is listed twice",
                ));
            }
        }
        for (i, rule) in self.service_accounts.iter().enumerate() {
            let key = format!("auth.service_accounts[{i}]");
            if ProjectName::parse(&rule.project).is_err() {
                return Err(ConfigError::key(
                    format!("{key}.project"),
                    "is not a valid project name",
                ));
            }
            if rule.audience.is_empty() {
                return Err(ConfigError::key(
                    format!("{key}.audience"),
                    "must not be empty",
                ));
            }
            let Some(issuer_index) = self.issuers.iter().position(|i| i.issuer == rule.issuer)
            else {
                return Err(ConfigError::key(
                    format!("{key}.issuer"),
                    "is not a configured issuer",
                ));
            };
            // A rule must pin the workload's owner, or every token from that issuer (any
            // GitHub repository, any org whose name starts alike) would match.
            let Some(owner_claims) = self.issuers[issuer_index].owner_claims() else {
                return Err(ConfigError::key(
                    format!("auth.issuers[{issuer_index}].owner_claims"),
                    format!("must name the claims that identify a workload's owner ({key} uses this issuer)"),
                ));
            };
            let pinned = owner_claims.iter().any(|owner| {
                rule.claims
                    .get(owner.name())
                    .is_some_and(|pattern| owner.pinned_by(pattern))
            });
            if !pinned {
                let names: Vec<&str> = owner_claims.iter().map(|o| o.name()).collect();
                return Err(ConfigError::key(
                    format!("{key}.claims"),
                    format!(
                        "must pin the workload's owner: one of `{}` matched exactly, or with `*` only after `owner/`",
                        names.join("`, `")
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl IssuerConfig {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.issuer.is_empty() {
            return Err(ConfigError::key(
                format!("{key}.issuer"),
                "must not be empty",
            ));
        }
        if self.audience.is_empty() {
            return Err(ConfigError::key(
                format!("{key}.audience"),
                "must not be empty",
            ));
        }
        let sources = [
            self.hs256_secret.is_some(),
            self.jwks.is_some(),
            self.jwks_url.is_some(),
            self.discovery,
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(ConfigError::key(
                key,
                "needs exactly one of hs256_secret, jwks, jwks_url, discovery",
            ));
        }
        if let Some(url) = &self.jwks_url {
            validate_url(&format!("{key}.jwks_url"), url)?;
        }
        if self.discovery {
            validate_url(&format!("{key}.issuer"), &self.issuer)?;
        }
        Ok(())
    }
}

/// A caller whose token passed every check. Only [`jwt::Verifier`] constructs one.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCaller {
    issuer: String,
    subject: String,
    audiences: Vec<String>,
    /// Shared: a remembered caller is cloned out of the token cache on every hit.
    claims: std::rc::Rc<Map<String, Value>>,
    /// Unix seconds of the token's `exp`.
    expires_at: i64,
}

impl VerifiedCaller {
    pub(crate) fn new(
        issuer: String,
        subject: String,
        audiences: Vec<String>,
        claims: Map<String, Value>,
        expires_at: i64,
    ) -> Self {
        VerifiedCaller {
            issuer,
            subject,
            audiences,
            claims: std::rc::Rc::new(claims),
            expires_at,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The raw `sub` (empty when the token had none). For logs and AWS session names use
    /// [`VerifiedCaller::audit_identity`].
    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// A claim by name (all claims, including `iss`/`sub`/`aud`).
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// `sub` reduced to `[\w+=,.@-]`, 2–64 characters: what AWS accepts for
    /// RoleSessionName/SourceIdentity, and safe in a log line.
    pub fn audit_identity(&self) -> String {
        sanitize_identity(&self.subject)
    }
}

/// Keeps `[A-Za-z0-9_+=,.@-]`, replaces anything else with `-`, truncates to 64 and
/// pads to at least 2 characters.
pub fn sanitize_identity(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while out.len() < 2 {
        out.push('-');
    }
    out
}

/// Why a caller was turned away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    MissingToken,
    /// Malformed, unknown issuer, wrong audience, bad signature, …: one public answer,
    /// the `&'static str` says which check failed (for the log and `WWW-Authenticate`).
    InvalidToken(&'static str),
    Expired,
    /// The caller is known but may not use this project.
    Forbidden,
    /// The issuer's keys could not be fetched.
    KeysUnavailable(&'static str),
    Misconfigured(ConfigError),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::MissingToken => f.write_str("missing bearer token"),
            AuthError::InvalidToken(why) => write!(f, "invalid token: {why}"),
            AuthError::Expired => f.write_str("token expired"),
            AuthError::Forbidden => f.write_str("forbidden"),
            AuthError::KeysUnavailable(why) => write!(f, "issuer keys unavailable: {why}"),
            AuthError::Misconfigured(e) => e.fmt(f),
        }
    }
}

impl PublicError for AuthError {
    fn public(&self) -> PublicFailure {
        // RFC 6750's minimum: which check failed (an unknown issuer, say) would tell an
        // unauthenticated caller what the broker trusts; that detail goes to the log only.
        // DESIGN.md: every 401 carries error="invalid_token", a missing token included.
        const CHALLENGE: &str = "Bearer realm=\"rise\", error=\"invalid_token\"";
        match self {
            AuthError::MissingToken => PublicFailure::new(
                ErrorCode::MissingToken,
                "an Authorization: Bearer token is required",
            )
            .with_header("www-authenticate", CHALLENGE),
            AuthError::InvalidToken(_) => {
                PublicFailure::new(ErrorCode::InvalidToken, "the bearer token is not valid")
                    .with_header("www-authenticate", CHALLENGE)
            }
            AuthError::Expired => {
                PublicFailure::new(ErrorCode::TokenExpired, "the bearer token has expired")
                    .with_header("www-authenticate", CHALLENGE)
            }
            AuthError::Forbidden => {
                PublicFailure::new(ErrorCode::Forbidden, "not allowed to access this project")
            }
            AuthError::KeysUnavailable(_) => PublicFailure::new(
                ErrorCode::UpstreamError,
                "could not fetch the token issuer's signing keys",
            ),
            AuthError::Misconfigured(e) => e.public(),
        }
    }
}
