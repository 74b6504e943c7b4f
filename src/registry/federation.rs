//! The one federation path every keyless provider takes: the broker, as its own OpenID
//! Connect issuer (`crate::oidc`), mints a short-lived token for one (project, access)
//! and a cloud exchanges it for credentials — AWS `AssumeRoleWithWebIdentity`, Google STS,
//! Entra client credentials, and the next providers alike.
//!
//! Each cloud differs only in its [`Profile`]: the audience it checks, the key family it
//! verifies (Entra and Quay take RS256 only) and the lifetime. The subject is the same
//! everywhere — `project:{project}:{access}` — so one trust rule per (project, access)
//! on the cloud's side is what scopes the credential; the caller the broker acted for
//! travels in [`CALLER_CLAIM`] for the cloud's audit log.

use std::rc::Rc;

use serde_json::{Map, Value};

use super::{CredentialRequest, Services};
use crate::error::ConfigError;
use crate::oidc::{Mint, TokenIssuer, CALLER_CLAIM};
use crate::secrets::SecretString;
use crate::signer::KeyFamily;

/// What one cloud needs of the broker's token.
#[derive(Debug, Clone, Copy)]
pub struct Profile<'a> {
    /// `aud`: exactly what the cloud checks.
    pub audience: &'a str,
    /// The keys the cloud can verify.
    pub family: KeyFamily,
    /// Seconds the token lives (`[oidc] token_seconds` unless the cloud needs less).
    pub lifetime_seconds: u64,
}

/// The token's `sub`: `project:{project}:{access}`.
pub fn subject(request: &CredentialRequest<'_>) -> String {
    format!("project:{}:{}", request.project, request.access.as_str())
}

/// The broker's issuer for a keyless provider, checked at config load: `[oidc]` must be
/// configured, and hold a key the cloud can verify. Errors name the key to fix.
pub fn issuer(
    services: &Services,
    family: KeyFamily,
    needed_by: &str,
) -> Result<Rc<TokenIssuer>, ConfigError> {
    let oidc = services.oidc.clone().ok_or_else(|| {
        ConfigError::key(
            "registry.type",
            format!("is `{needed_by}`, which needs the [oidc] section (the broker's own issuer)"),
        )
    })?;
    if oidc.signer().first(family).is_none() {
        return Err(ConfigError::key(
            "oidc.signing_keys",
            format!("must hold an RSA key: `{needed_by}` verifies RS256 only (the first RSA key signs for it)"),
        ));
    }
    Ok(oidc)
}

/// Mints the subject token for one issuance, with the caller in [`CALLER_CLAIM`] and any
/// `extra` claims the cloud reads (AWS's source identity).
pub async fn subject_token(
    oidc: &TokenIssuer,
    profile: Profile<'_>,
    request: &CredentialRequest<'_>,
    mut extra: Map<String, Value>,
    now_ms: u64,
) -> SecretString {
    extra.insert(
        CALLER_CLAIM.into(),
        serde_json::json!({"sub": request.caller.audit_identity(), "iss": request.caller.issuer()}),
    );
    oidc.mint(
        Mint {
            audience: profile.audience,
            subject: &subject(request),
            lifetime_seconds: profile.lifetime_seconds,
            extra,
            header: jwt_compact::Header::empty(),
            family: profile.family,
        },
        now_ms,
    )
    .await
}

/// [`subject_token`] with no extra claims and `[oidc] token_seconds`: what every cloud
/// but AWS (which reads a source identity claim) needs.
pub async fn plain_subject_token(
    oidc: &TokenIssuer,
    audience: &str,
    family: KeyFamily,
    request: &CredentialRequest<'_>,
    now_ms: u64,
) -> SecretString {
    let profile = Profile {
        audience,
        family,
        lifetime_seconds: oidc.token_seconds(),
    };
    subject_token(oidc, profile, request, Map::new(), now_ms).await
}

/// The claims of a JWT a cloud returned (ACR, Quay, JFrog tokens) — read, not verified:
/// the cloud that issued it is the one that checks it; the broker only needs to know how
/// long to report and cache it, and (JFrog) whose name to log in with.
pub fn jwt_claims(token: &str) -> Option<Value> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

/// The `exp` of a JWT a cloud returned, in ms since the epoch (see [`jwt_claims`]).
pub fn jwt_expiry_ms(token: &str) -> Option<u64> {
    jwt_claims(token)?.get("exp")?.as_u64()?.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_expiry_is_read_from_the_payload() {
        use base64::Engine as _;
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = format!("{}.{}.sig", enc("{}"), enc(r#"{"exp":1700000000}"#));
        assert_eq!(jwt_expiry_ms(&token), Some(1_700_000_000_000));
        for bad in [
            "nodots".to_owned(),
            format!("{}.{}.s", enc("{}"), enc(r#"{"exp":"1"}"#)),
            format!("{}.{}.s", enc("{}"), enc(r#"{"exp":-5}"#)),
            format!("{}.!!.s", enc("{}")),
        ] {
            assert_eq!(jwt_expiry_ms(&bad), None, "{bad}");
        }
    }
}
