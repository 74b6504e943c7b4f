//! Bearer token → [`VerifiedCaller`]: jwt-compact parses the token and validates the time
//! claims; the signature goes through the key's backend (`crate::crypto`, WebCrypto in
//! the worker) over the token's signing input.
//!
//! Order of checks (cheap and fetch-free first, so hostile input costs little):
//! 1. size, alphabet and segment count;
//! 2. jwt-compact parse; header: no `crit`, no embedded/remote key (`jwk`, `jku`, `x5u`, `x5c`);
//! 3. claims parsed (malformed JSON stops here); `iss`, unverified, picks a configured
//!    issuer — unknown issuers stop here, no fetch;
//! 4. the issuer's key set (fetched/cached for remote ones) and the key by `kid`;
//! 5. the key decides the algorithm: the token's `alg` must match it;
//! 6. signature; then `iss`, `aud`, `exp` (required), `nbf`, `iat` with leeway.

use std::rc::Rc;

use chrono::{DateTime, Duration, Utc};
use jwt_compact::{Claims, TimeOptions, UntrustedToken, ValidationError};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwks::{KeyLookup, KeySet, RemoteKeys, RemotePolicy, RemoteSource};
use super::token_cache::TokenCache;
use super::{AuthConfig, AuthError, IssuerConfig, VerifiedCaller};
use crate::error::ConfigError;
use crate::runtime::HttpClient;
use crate::secrets::Secrets;

/// Header members jwt-compact does not model but we must look at.
#[derive(Debug, Clone, Default, Deserialize)]
struct ExtraHeader {
    #[serde(default)]
    crit: Option<Value>,
    #[serde(default)]
    jwk: Option<Value>,
    #[serde(default)]
    x5c: Option<Value>,
}

type Untrusted<'a> = UntrustedToken<'a, ExtraHeader>;

enum IssuerKeys {
    Static(Rc<KeySet>),
    Remote(RemoteKeys),
}

struct TrustedIssuer {
    config: IssuerConfig,
    keys: IssuerKeys,
}

/// Verifies bearer tokens against the configured issuers.
pub struct Verifier {
    issuers: Vec<TrustedIssuer>,
    leeway: Duration,
    max_token_bytes: usize,
    tokens: TokenCache,
}

impl Verifier {
    /// Builds key sets for every issuer. HS256 secrets are read (and checked: base64,
    /// ≥ 32 bytes) now, so a bad one fails at start-up rather than on some request.
    pub fn from_config(auth: &AuthConfig, secrets: &dyn Secrets) -> Result<Self, ConfigError> {
        let policy = RemotePolicy {
            ttl_ms: auth.jwks_cache_seconds * 1000,
            min_refetch_ms: auth.jwks_min_refetch_seconds * 1000,
        };
        let mut issuers = Vec::new();
        for (i, config) in auth.issuers.iter().enumerate() {
            let key = format!("auth.issuers[{i}]");
            let keys = if let Some(name) = &config.hs256_secret {
                let secret = secrets
                    .get(name)
                    .ok_or_else(|| ConfigError::missing_secret(name))?;
                let set = KeySet::from_hs256_secret(secret.expose()).map_err(|reason| {
                    ConfigError::Secret {
                        name: name.clone(),
                        reason,
                    }
                })?;
                IssuerKeys::Static(Rc::new(set))
            } else if let Some(jwks) = &config.jwks {
                let doc = match jwks {
                    Value::String(text) => serde_json::from_str(text).map_err(|_| {
                        ConfigError::key(format!("{key}.jwks"), "is not valid JSON")
                    })?,
                    other => other.clone(),
                };
                let set = KeySet::from_jwks(&doc)
                    .map_err(|reason| ConfigError::key(format!("{key}.jwks"), reason))?;
                IssuerKeys::Static(Rc::new(set))
            } else if let Some(url) = &config.jwks_url {
                IssuerKeys::Remote(RemoteKeys::new(RemoteSource::JwksUrl(url.clone()), policy))
            } else {
                let source = RemoteSource::Discovery {
                    issuer: config.issuer.clone(),
                };
                IssuerKeys::Remote(RemoteKeys::new(source, policy))
            };
            issuers.push(TrustedIssuer {
                config: config.clone(),
                keys,
            });
        }
        Ok(Verifier {
            issuers,
            leeway: Duration::seconds(auth.leeway_seconds as i64),
            max_token_bytes: auth.max_token_bytes as usize,
            tokens: TokenCache::new(0),
        })
    }

    /// Imports every static public key into the runtime (WebCrypto in the worker), so a
    /// key it refuses stops the broker at start, naming the issuer's `jwks` key.
    pub async fn prepare(&self) -> Result<(), ConfigError> {
        for (i, issuer) in self.issuers.iter().enumerate() {
            if let IssuerKeys::Static(set) = &issuer.keys {
                set.prepare().await.map_err(|reason| {
                    ConfigError::key(format!("auth.issuers[{i}].jwks"), reason)
                })?;
            }
        }
        Ok(())
    }

    /// Remembers up to `entries` verified tokens (see [`TokenCache`]); 0 turns it off.
    pub fn with_token_cache(mut self, entries: usize) -> Self {
        self.tokens = TokenCache::new(entries);
        self
    }

    /// The key-set generation of `issuer`: 0 for static keys (they change only with a
    /// new deployment, i.e. a new isolate), the fetch count for remote ones.
    fn generation(&self, issuer: &str) -> u64 {
        match self
            .issuers
            .iter()
            .find(|i| i.config.issuer == issuer)
            .map(|i| &i.keys)
        {
            Some(IssuerKeys::Remote(remote)) => remote.generation(),
            _ => 0,
        }
    }

    /// The issuer config a verified caller came through.
    pub fn issuer_config(&self, issuer: &str) -> Option<&IssuerConfig> {
        self.issuers
            .iter()
            .find(|i| i.config.issuer == issuer)
            .map(|i| &i.config)
    }

    /// Verifies a compact JWS token (or finds it verified, and authorized, moments ago).
    pub async fn verify(
        &self,
        token: &str,
        now_ms: u64,
        http: &dyn HttpClient,
    ) -> Result<VerifiedCaller, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::InvalidToken("token too large"));
        }
        // No cache (`cache.enabled = false`): no hash either.
        if self.tokens.is_enabled() {
            let digest = TokenCache::digest(token);
            if let Some(caller) = self.tokens.get(&digest, now_ms, |iss| self.generation(iss)) {
                return Ok(caller);
            }
        }
        self.verify_uncached(token, now_ms, http).await
    }

    /// Callers remembered in the verified-token cache (tests, benchmark).
    pub fn remembered_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Remembers a caller just verified from `token` *and authorized*, so its next
    /// requests skip signature verification. Only authorized callers: anyone who can mint
    /// a valid token for a configured issuer (any GitHub user, for GitHub's) could
    /// otherwise fill the cache and push real callers out.
    pub fn remember(&self, token: &str, caller: &VerifiedCaller, now_ms: u64) {
        if !self.tokens.is_enabled() {
            return;
        }
        let valid_until_ms = (caller.expires_at() + self.leeway.num_seconds()).max(0) as u64 * 1000;
        let generation = self.generation(caller.issuer());
        self.tokens.insert(
            TokenCache::digest(token),
            caller.clone(),
            valid_until_ms,
            generation,
            now_ms,
        );
    }

    /// Full verification, no token cache.
    pub async fn verify_uncached(
        &self,
        token: &str,
        now_ms: u64,
        http: &dyn HttpClient,
    ) -> Result<VerifiedCaller, AuthError> {
        let untrusted = self.parse(token)?;
        // Parsed once, before the signature is checked, but only read for `iss` until it is.
        let claims = untrusted
            .deserialize_claims_unchecked::<Map<String, Value>>()
            .map_err(map_validation_error)?;
        let issuer = self.pick_issuer(&claims.custom)?;
        let kid = untrusted.header().key_id.as_deref();
        let set = match &issuer.keys {
            IssuerKeys::Static(set) => set.clone(),
            IssuerKeys::Remote(remote) => remote.key_set(kid, now_ms, http).await?,
        };
        let entry = match set.lookup(kid) {
            KeyLookup::Found(entry) => entry,
            KeyLookup::UnknownKid => return Err(AuthError::InvalidToken("unknown key id")),
            KeyLookup::KidRequired => return Err(AuthError::InvalidToken("key id required")),
        };
        if untrusted.algorithm() != entry.key.algorithm() {
            return Err(AuthError::InvalidToken("algorithm does not match the key"));
        }
        // The signing input is the token up to its last dot (RFC 7515 §5.2).
        let (signing_input, _) = token.rsplit_once('.').expect("three segments");
        if !entry
            .key
            .verify(signing_input.as_bytes(), untrusted.signature_bytes())
            .await
        {
            return Err(AuthError::InvalidToken("bad signature"));
        }
        self.check_claims(&issuer.config, &claims, now_ms)
    }

    /// Steps 1–2: shape and header, before any key is touched.
    fn parse<'t>(&self, token: &'t str) -> Result<Untrusted<'t>, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::InvalidToken("token too large"));
        }
        let alphabet_ok = token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !alphabet_ok || token.bytes().filter(|&b| b == b'.').count() != 2 {
            return Err(AuthError::InvalidToken("malformed token"));
        }
        let untrusted =
            Untrusted::try_from(token).map_err(|_| AuthError::InvalidToken("malformed token"))?;
        let header = untrusted.header();
        if header.other_fields.crit.is_some() {
            return Err(AuthError::InvalidToken("unsupported critical header"));
        }
        if header.other_fields.jwk.is_some()
            || header.other_fields.x5c.is_some()
            || header.key_set_url.is_some()
            || header.certificate_url.is_some()
        {
            return Err(AuthError::InvalidToken(
                "embedded or remote key references are not accepted",
            ));
        }
        Ok(untrusted)
    }

    /// Step 3: the unverified `iss` only selects which keys to try.
    fn pick_issuer(&self, claims: &Map<String, Value>) -> Result<&TrustedIssuer, AuthError> {
        let Some(Value::String(iss)) = claims.get("iss") else {
            return Err(AuthError::InvalidToken("missing issuer"));
        };
        self.issuers
            .iter()
            .find(|i| &i.config.issuer == iss)
            .ok_or(AuthError::InvalidToken("unknown issuer"))
    }

    /// Step 6, after the signature: registered claims.
    fn check_claims(
        &self,
        issuer: &IssuerConfig,
        claims: &Claims<Map<String, Value>>,
        now_ms: u64,
    ) -> Result<VerifiedCaller, AuthError> {
        let now = DateTime::<Utc>::from_timestamp_millis(now_ms as i64)
            .ok_or(AuthError::InvalidToken("clock"))?;
        let options = TimeOptions::new(self.leeway, move || now);
        claims
            .validate_expiration(&options)
            .map_err(map_validation_error)?;
        if claims.not_before.is_some() {
            claims
                .validate_maturity(&options)
                .map_err(map_validation_error)?;
        }
        if claims.issued_at.is_some_and(|iat| iat > now + self.leeway) {
            return Err(AuthError::InvalidToken("issued in the future"));
        }
        let custom = &claims.custom;
        if custom.get("iss").and_then(Value::as_str) != Some(issuer.issuer.as_str()) {
            return Err(AuthError::InvalidToken("wrong issuer"));
        }
        let audiences =
            audiences(custom.get("aud")).ok_or(AuthError::InvalidToken("malformed audience"))?;
        if !audiences.contains(&issuer.audience) {
            return Err(AuthError::InvalidToken("wrong audience"));
        }
        let subject = match custom.get("sub") {
            None => String::new(),
            Some(Value::String(sub)) => sub.clone(),
            Some(_) => return Err(AuthError::InvalidToken("malformed subject")),
        };
        let expires_at = claims.expiration.map(|e| e.timestamp()).unwrap_or_default();
        Ok(VerifiedCaller::new(
            issuer.issuer.clone(),
            subject,
            audiences,
            custom.clone(),
            expires_at,
        ))
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3); anything else is malformed.
fn audiences(aud: Option<&Value>) -> Option<Vec<String>> {
    match aud? {
        Value::String(a) => Some(vec![a.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// `Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1); anything else is no token.
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let header = header?.trim();
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn map_validation_error(err: ValidationError) -> AuthError {
    match err {
        ValidationError::Expired => AuthError::Expired,
        ValidationError::NotMature => AuthError::InvalidToken("token not yet valid"),
        ValidationError::NoClaim(_) => AuthError::InvalidToken("expiry (exp) required"),
        ValidationError::AlgorithmMismatch { .. } => {
            AuthError::InvalidToken("algorithm does not match the key")
        }
        ValidationError::MalformedClaims(_) => AuthError::InvalidToken("malformed claims"),
        _ => AuthError::InvalidToken("bad signature"),
    }
}
