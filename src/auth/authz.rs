//! Stateless per-project authorization on verified claims (no database).
//!
//! A caller may have credentials for project P when any of these holds:
//! (a) its issuer has `claims_grant_access` and the `projects_claim` (a string array)
//!     lists P;
//! (b) its issuer has `claims_grant_access` and the `admin_claim` value is in `admins`
//!     (when that claim is `email`, only with `email_verified: true`);
//! (c) a service-account rule for P matches: same issuer, the rule's audience among the
//!     token's, and every pinned claim equal to its pattern (`*` matches any run of
//!     characters, including none and `/`; everything else is literal).
//!
//! No match is [`AuthError::Forbidden`], with the same answer whether P exists or not.

use serde_json::Value;

use super::{AuthConfig, AuthError, ServiceAccountRule, VerifiedCaller};
use crate::project::ProjectName;

/// Which rule let the caller in (for the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    ProjectsClaim,
    Admin,
    ServiceAccount(usize),
}

impl Grant {
    pub fn as_str(&self) -> &'static str {
        match self {
            Grant::ProjectsClaim => "projects_claim",
            Grant::Admin => "admin",
            Grant::ServiceAccount(_) => "service_account",
        }
    }
}

/// Decides whether `caller` may use `project`. `claims_grant_access` is the caller's
/// issuer's setting (see [`super::IssuerConfig`]).
pub fn authorize(
    config: &AuthConfig,
    caller: &VerifiedCaller,
    claims_grant_access: bool,
    project: &ProjectName,
) -> Result<Grant, AuthError> {
    if claims_grant_access {
        let listed = caller
            .claim(&config.projects_claim)
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|v| v.as_str() == Some(project.as_str())));
        if listed {
            return Ok(Grant::ProjectsClaim);
        }
        // An email address is only an identity once the issuer has verified it.
        let verified = config.admin_claim != "email"
            || caller.claim("email_verified") == Some(&Value::Bool(true));
        let admin = verified
            && caller
                .claim(&config.admin_claim)
                .and_then(Value::as_str)
                .is_some_and(|who| config.admins.iter().any(|a| a == who));
        if admin {
            return Ok(Grant::Admin);
        }
    }
    config
        .service_accounts
        .iter()
        .position(|rule| rule.project == project.as_str() && rule_matches(rule, caller))
        .map(Grant::ServiceAccount)
        .ok_or(AuthError::Forbidden)
}

fn rule_matches(rule: &ServiceAccountRule, caller: &VerifiedCaller) -> bool {
    caller.issuer() == rule.issuer
        && caller.audiences().contains(&rule.audience)
        && rule.claims.iter().all(|(name, pattern)| {
            caller
                .claim(name)
                .and_then(Value::as_str)
                .is_some_and(|value| glob_match(pattern, value))
        })
}

/// `*` matches any run of characters; everything else is literal. Iterative with
/// backtracking to the last `*`, so it runs in O(pattern × value) at worst.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let (p, v) = (pattern.as_bytes(), value.as_bytes());
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, vi));
            pi += 1;
        } else if pi < p.len() && p[pi] == v[vi] {
            pi += 1;
            vi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        let cases = [
            ("org/my-app", "org/my-app", true),
            ("org/my-app", "org/my-app2", false),
            ("org/my-app", "org/my-ap", false),
            ("org/*", "org/anything/deep", true),
            ("org/*", "org2/x", false),
            ("refs/heads/*", "refs/heads/main", true),
            ("refs/heads/*", "refs/tags/v1", false),
            ("refs/tags/v*", "refs/tags/v1.2", true),
            ("*", "", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("", "", true),
            ("", "x", false),
            ("?", "x", false), // `?` is literal
        ];
        for (pattern, value, want) in cases {
            assert_eq!(glob_match(pattern, value), want, "{pattern} vs {value}");
        }
    }
}
