//! The broker as an OpenID Connect issuer: the `[oidc]` section, the discovery document
//! and JWKS it publishes, and the tokens it mints (for AWS `AssumeRoleWithWebIdentity`
//! today, registry tokens and other clouds later).
//!
//! Relying parties (AWS IAM) fetch `{issuer}/.well-known/openid-configuration`, follow
//! its `jwks_uri` to `{issuer}/.well-known/jwks.json`, and verify the broker's tokens
//! with those keys. Both documents are derived from the configured secrets only, so every
//! isolate serves the same bytes.

use jwt_compact::{Claims, Header};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::config_support::{in_range, is_loopback_http, Fields};
use crate::error::ConfigError;
use crate::secrets::{SecretString, Secrets};
use crate::signer::{KeyFamily, Signer};

/// Path of the discovery document (the issuer has no path of its own).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the published key set.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Claim holding the caller the broker acted for (its audit identity and issuer).
pub const CALLER_CLAIM: &str = "urn:rise:caller";

fn default_token_seconds() -> u64 {
    300
}

/// `[oidc]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The broker's public URL: `https://host[:port]`, no path (http only on loopback).
    pub issuer: String,
    /// NAMES of worker secrets holding PKCS#8 PEM keys; the first signs, all are published.
    pub signing_keys: Vec<String>,
    /// Lifetime of the tokens the broker mints (60–3600 s).
    pub token_seconds: u64,
}

impl OidcConfig {
    /// `[oidc]` as written, read with [`Fields`].
    pub fn parse(value: Value) -> Result<Self, ConfigError> {
        let mut f = Fields::table("oidc", value)?;
        let config = OidcConfig {
            issuer: f.string("issuer")?,
            signing_keys: f
                .opt_string_list("signing_keys")?
                .ok_or_else(|| ConfigError::key("oidc.signing_keys", "is required"))?,
            token_seconds: f.u64_or("token_seconds", default_token_seconds())?,
        };
        f.finish()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let rest = self
            .issuer
            .strip_prefix("https://")
            .or_else(|| {
                is_loopback_http(&self.issuer)
                    .then(|| self.issuer.strip_prefix("http://"))
                    .flatten()
            })
            .ok_or_else(|| {
                ConfigError::key(
                    "oidc.issuer",
                    "must be an https:// URL (http:// only on loopback)",
                )
            })?;
        let host_only = !rest.is_empty()
            && rest.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        if !host_only {
            return Err(ConfigError::key(
                "oidc.issuer",
                "must be scheme://host[:port] with no path, query or trailing slash",
            ));
        }
        if self.signing_keys.is_empty() {
            return Err(ConfigError::key(
                "oidc.signing_keys",
                "must name at least one worker secret",
            ));
        }
        in_range("oidc.token_seconds", self.token_seconds, 60..=3600)?;
        Ok(())
    }
}

/// The configured issuer with its keys: built once per isolate.
#[derive(Debug)]
pub struct TokenIssuer {
    issuer: String,
    token_seconds: u64,
    signer: Signer,
}

/// What a minted token is for.
pub struct Mint<'a, H> {
    /// `aud`; empty: no `aud` claim.
    pub audience: &'a str,
    pub subject: &'a str,
    /// Lifetime in seconds.
    pub lifetime_seconds: u64,
    /// Claims beside the registered ones.
    pub extra: Map<String, Value>,
    /// Header members beside `alg`, `kid`, `typ` (e.g. `x5c`).
    pub header: Header<H>,
    /// Which key signs: the first one, or the first of a family the relying party needs.
    pub family: KeyFamily,
}

impl TokenIssuer {
    /// Loads the signing keys named by `config` (a bad one names its secret).
    pub fn new(config: &OidcConfig, secrets: &dyn Secrets) -> Result<Self, ConfigError> {
        Ok(TokenIssuer {
            issuer: config.issuer.clone(),
            token_seconds: config.token_seconds,
            signer: Signer::from_secrets("oidc.signing_keys", &config.signing_keys, secrets)?,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `[oidc] token_seconds`.
    pub fn token_seconds(&self) -> u64 {
        self.token_seconds
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The OpenID Provider Metadata (OIDC Discovery 1.0 §3) a relying party reads.
    pub fn discovery(&self) -> Value {
        let mut algs: Vec<&str> = self.signer.keys().iter().map(|k| k.algorithm()).collect();
        algs.sort_unstable();
        algs.dedup();
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}{JWKS_PATH}", self.issuer),
            "id_token_signing_alg_values_supported": algs,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "sub", "aud", "exp", "nbf", "iat", "jti",
                                 CALLER_CLAIM, crate::aws::SOURCE_IDENTITY_CLAIM],
        })
    }

    /// The public keys (RFC 7517), current signer first.
    pub fn jwks(&self) -> Value {
        self.signer.jwks()
    }

    /// Mints a token: `iss`, `aud`, `sub`, `iat`, `nbf`, `exp`, a random `jti`, plus
    /// `mint.extra`. The token is a credential: it comes back as a [`SecretString`].
    pub async fn mint<H: Serialize>(&self, mint: Mint<'_, H>, now_ms: u64) -> SecretString {
        let now = (now_ms / 1000) as i64;
        let mut custom = mint.extra;
        custom.insert("iss".into(), json!(self.issuer));
        // An empty audience mints no `aud` (Quay: "audience (none)" by default).
        if !mint.audience.is_empty() {
            custom.insert("aud".into(), json!(mint.audience));
        }
        custom.insert("sub".into(), json!(mint.subject));
        custom.insert("nbf".into(), json!(now));
        custom.insert("jti".into(), json!(random_id()));
        let mut claims = Claims::new(custom);
        claims.issued_at = chrono::DateTime::from_timestamp(now, 0);
        claims.expiration = chrono::DateTime::from_timestamp(now + mint.lifetime_seconds as i64, 0);
        // Providers check at config load that a key of their family exists; were it
        // missing, the current key signs and the relying party refuses: fail closed.
        let key = self
            .signer
            .first(mint.family)
            .unwrap_or_else(|| self.signer.current());
        SecretString::new(key.sign(mint.header, &claims).await)
    }
}

/// 128 random bits, hex: a token id no two tokens share.
fn random_id() -> String {
    crate::runtime::random_hex(16).expect("the runtime's random source")
}
