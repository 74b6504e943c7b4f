//! Verification keys: where they come from and how they are cached.
//!
//! A [`KeySet`] is built from an HS256 secret, an inline JWKS or a fetched JWKS. Each key
//! carries the one algorithm its type allows ([`VerifyingKey::algorithm`]); the token's
//! `alg` header has to match it, which rules out `none` and algorithm-confusion tricks.
//!
//! [`RemoteKeys`] fetches a JWKS (directly, or via OIDC discovery) through the
//! [`HttpClient`] seam, keeps it for `jwks_cache_seconds`, refetches once when a token
//! names an unknown `kid` (key rotation), and never fetches one issuer's keys more often
//! than every `jwks_min_refetch_seconds`, whatever the tokens say.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use base64::Engine as _;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
use serde_json::Value;

use super::AuthError;
use crate::config_support::validate_url;
use crate::crypto::PublicKey;
use crate::runtime::{HttpClient, OutboundRequest, TransportError, DEFAULT_TIMEOUT_MS};
use crate::singleflight::{Abandoned, FlightOptions, SingleFlight};

/// A key that can verify exactly one JWS algorithm.
#[derive(Clone)]
pub enum VerifyingKey {
    /// At least 32 bytes (RFC 7518 §3.2). Not jwt-compact's `StrongKey`, which demands
    /// 64 (the SHA-256 block size) and would refuse the 32-byte keys the design specifies.
    Hs256(Hs256Key),
    /// RS256, ES256 or EdDSA, verified by the platform's backend (`crate::crypto`).
    Public(PublicKey),
}

impl VerifyingKey {
    /// The JWS `alg` this key verifies: decided by the key, never by the token.
    pub fn algorithm(&self) -> &'static str {
        match self {
            VerifyingKey::Hs256(_) => "HS256",
            VerifyingKey::Public(key) => key.algorithm().name(),
        }
    }

    /// Verifies a JWS signature over `message` (the token's `header.payload`) with the
    /// algorithm this key dictates. Malformed signatures are just `false`.
    pub async fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            // jwt-compact's HS256: constant-time tag comparison; 32-byte tags only.
            VerifyingKey::Hs256(key) => {
                signature.len() == 32
                    && jwt_compact::alg::Hs256Signature::try_from_slice(signature)
                        .is_ok_and(|sig| Hs256.verify_signature(&sig, key, message))
            }
            VerifyingKey::Public(key) => key.verify(message, signature).await,
        }
    }
}

// Hand-written so that HMAC key material can never be printed.
impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.algorithm())
    }
}

/// One key of a set, with its optional `kid`.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub kid: Option<String>,
    pub key: VerifyingKey,
}

/// The keys one issuer signs with.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<KeyEntry>,
}

/// Result of looking a token's `kid` up in a set.
#[derive(Debug)]
pub enum KeyLookup<'a> {
    Found(&'a KeyEntry),
    /// The token names a `kid` the set does not hold (maybe a rotation).
    UnknownKid,
    /// The set holds several keys and the token names none.
    KidRequired,
}

/// Minimum HS256 key length (RFC 7518 §3.2: at least the hash output size).
pub const MIN_HS256_KEY_BYTES: usize = 32;

impl KeySet {
    pub fn keys(&self) -> &[KeyEntry] {
        &self.keys
    }

    /// A single HS256 key from a base64 (standard or URL-safe, padded or not) secret.
    pub fn from_hs256_secret(encoded: &str) -> Result<Self, &'static str> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let encoded = encoded.trim();
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(encoded).ok())
            .ok_or("is not valid base64")?;
        if bytes.len() < MIN_HS256_KEY_BYTES {
            return Err("must decode to at least 32 bytes");
        }
        Ok(KeySet {
            keys: vec![KeyEntry {
                kid: None,
                key: VerifyingKey::Hs256(Hs256Key::new(&bytes)),
            }],
        })
    }

    /// Parses a JWKS document (`{"keys": [...]}`).
    ///
    /// Private keys, symmetric keys and duplicate `kid`s make the whole document invalid.
    /// Keys this broker does not verify with are skipped, since real issuers publish
    /// some: unsupported types or curves, `use` other than `sig`, and an `alg` other
    /// than the one algorithm the key's type allows here (e.g. an RSA key marked PS256).
    /// The set must end up non-empty.
    pub fn from_jwks(doc: &Value) -> Result<Self, &'static str> {
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("is not a JWKS (no `keys` array)")?;
        let mut out: Vec<KeyEntry> = Vec::new();
        for jwk in keys {
            let Some(entry) = parse_jwk(jwk)? else {
                continue;
            };
            if entry.kid.is_some() && out.iter().any(|e| e.kid == entry.kid) {
                return Err("lists a `kid` twice");
            }
            out.push(entry);
        }
        if out.is_empty() {
            return Err("holds no supported signing key (RS256, ES256, EdDSA)");
        }
        Ok(KeySet { keys: out })
    }

    /// Imports every public key into the runtime (WebCrypto in the worker; nothing to do
    /// natively, where parsing checked the keys): a key the runtime refuses is an error.
    pub async fn prepare(&self) -> Result<(), &'static str> {
        for entry in &self.keys {
            if let VerifyingKey::Public(key) = &entry.key {
                key.prepare().await?;
            }
        }
        Ok(())
    }

    pub fn lookup(&self, kid: Option<&str>) -> KeyLookup<'_> {
        match kid {
            Some(kid) => match self.keys.iter().find(|e| e.kid.as_deref() == Some(kid)) {
                Some(entry) => KeyLookup::Found(entry),
                // A set with one key that has no `kid` of its own still answers a token
                // that names one; with a `kid` on both sides they must agree.
                None if self.keys.len() == 1 && self.keys[0].kid.is_none() => {
                    KeyLookup::Found(&self.keys[0])
                }
                None => KeyLookup::UnknownKid,
            },
            None if self.keys.len() == 1 => KeyLookup::Found(&self.keys[0]),
            None => KeyLookup::KidRequired,
        }
    }

    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|e| e.kid.as_deref() == Some(kid))
    }
}

/// One JWK → a key entry; `Ok(None)` for a key type this broker does not verify with.
fn parse_jwk(jwk: &Value) -> Result<Option<KeyEntry>, &'static str> {
    let obj = jwk.as_object().ok_or("has a key that is not an object")?;
    let text = |name: &str| obj.get(name).and_then(Value::as_str);
    if obj.contains_key("d") || obj.contains_key("p") || obj.contains_key("k") {
        return Err("contains private or symmetric key material");
    }
    if text("use").is_some_and(|u| u != "sig") {
        return Ok(None); // an encryption key: not ours to use
    }
    let kid = text("kid").map(str::to_owned);
    let parsed: JsonWebKey<'_> = match serde_json::from_value(jwk.clone()) {
        Ok(k) => k,
        Err(_) => return Ok(None), // unknown `kty`
    };
    let Some(key) = PublicKey::from_jwk(&parsed)? else {
        return Ok(None);
    };
    let key = VerifyingKey::Public(key);
    if let Some(alg) = text("alg") {
        if alg != key.algorithm() {
            // e.g. an RSA key marked PS256: we only verify RS256 with RSA keys.
            return Ok(None);
        }
    }
    Ok(Some(KeyEntry { kid, key }))
}

/// Where a remote key set lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteSource {
    JwksUrl(String),
    /// `{issuer}/.well-known/openid-configuration` → `jwks_uri`.
    Discovery {
        issuer: String,
    },
}

/// How often a request waiting on another's key fetch checks for the result (Workers).
const FOLLOWER_POLL_MS: u64 = 5;
/// A fetch's worst case (discovery, then the key set, each with the default timeout):
/// requests waiting on another's fetch stop waiting after this.
const FETCH_DEADLINE_MS: u64 = 2 * DEFAULT_TIMEOUT_MS;

/// Timing knobs for [`RemoteKeys`], from `[auth]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemotePolicy {
    pub ttl_ms: u64,
    pub min_refetch_ms: u64,
}

#[derive(Default)]
struct RemoteState {
    keys: Option<Rc<KeySet>>,
    fetched_at_ms: u64,
    last_attempt_ms: Option<u64>,
}

/// A fetched, cached JWKS for one issuer.
pub struct RemoteKeys {
    source: RemoteSource,
    policy: RemotePolicy,
    state: RefCell<RemoteState>,
    /// Bumped on every successful fetch: what the token cache compares against.
    generation: Cell<u64>,
    /// Concurrent requests that need a fetch share one.
    flight: SingleFlight<(), Result<Rc<KeySet>, AuthError>>,
}

impl RemoteKeys {
    pub fn new(source: RemoteSource, policy: RemotePolicy) -> Self {
        RemoteKeys {
            source,
            policy,
            state: RefCell::new(RemoteState::default()),
            generation: Cell::new(0),
            flight: SingleFlight::new(),
        }
    }

    /// Changes whenever a new key set was fetched (rotation or TTL refresh).
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// The key set to verify a token with `kid`, fetching when the cache is empty, stale,
    /// or lacks `kid` — subject to the refetch rate limit.
    pub async fn key_set(
        &self,
        kid: Option<&str>,
        now_ms: u64,
        http: &dyn HttpClient,
    ) -> Result<Rc<KeySet>, AuthError> {
        let (cached, fresh, may_fetch) = {
            let state = self.state.borrow();
            let fresh = state.keys.is_some()
                && now_ms.saturating_sub(state.fetched_at_ms) < self.policy.ttl_ms;
            let may_fetch = state
                .last_attempt_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= self.policy.min_refetch_ms);
            (state.keys.clone(), fresh, may_fetch)
        };
        // A `kid` the cached set does not know may mean the issuer rotated its keys.
        let kid_missing = matches!((&cached, kid), (Some(set), Some(_)) if matches!(set.lookup(kid), KeyLookup::UnknownKid));
        let want_fetch = cached.is_none() || !fresh || kid_missing;
        // A fetch already in flight is joined whatever the rate limit says: it is the fetch
        // the limit allowed, and the requests that arrive during it share its result.
        let in_flight = self.flight.is_live(&(), now_ms);
        match (want_fetch && (may_fetch || in_flight), cached) {
            (true, cached) => {
                let options = FlightOptions {
                    now_ms,
                    deadline_ms: FETCH_DEADLINE_MS,
                    poll: http.poll_timer().map(|t| (t, FOLLOWER_POLL_MS)),
                };
                let fetched = match self
                    .flight
                    .run((), options, || self.fetch(now_ms, http))
                    .await
                {
                    Ok((result, _)) => result,
                    // The fetching request went away or hung past the deadline: fetch here.
                    Err(Abandoned) => self.fetch(now_ms, http).await,
                };
                // A failed refresh keeps the last good set working (availability), the
                // rate limit keeps the failure from turning into a fetch per request.
                fetched.or_else(|err| cached.ok_or(err))
            }
            (false, Some(set)) => Ok(set),
            (false, None) => Err(AuthError::KeysUnavailable(
                "recent fetch failed; rate-limited",
            )),
        }
    }

    async fn fetch(&self, now_ms: u64, http: &dyn HttpClient) -> Result<Rc<KeySet>, AuthError> {
        self.state.borrow_mut().last_attempt_ms = Some(now_ms);
        let jwks_url = match &self.source {
            RemoteSource::JwksUrl(url) => url.clone(),
            RemoteSource::Discovery { issuer } => discover_jwks_uri(issuer, http).await?,
        };
        let doc = get_json(&jwks_url, http).await?;
        let set = KeySet::from_jwks(&doc)
            .map_err(|_| AuthError::KeysUnavailable("JWKS document is invalid"))?;
        // Imported before it is stored, so a key the runtime refuses fails the whole
        // document here, as one natively invalid key does in `from_jwks`.
        set.prepare()
            .await
            .map_err(|_| AuthError::KeysUnavailable("JWKS document is invalid"))?;
        let set = Rc::new(set);
        let mut state = self.state.borrow_mut();
        // A fetch that started before the one already stored (a leader that hung and came
        // back late) must not replace the newer set.
        if state.keys.is_none() || now_ms >= state.fetched_at_ms {
            state.keys = Some(set.clone());
            state.fetched_at_ms = now_ms;
            self.generation.set(self.generation.get() + 1);
        }
        Ok(set)
    }
}

/// OIDC discovery: the document must name the same issuer, and its `jwks_uri` must be https.
async fn discover_jwks_uri(issuer: &str, http: &dyn HttpClient) -> Result<String, AuthError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = get_json(&url, http).await?;
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(AuthError::KeysUnavailable(
            "discovery document names another issuer",
        ));
    }
    let jwks_uri =
        doc.get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or(AuthError::KeysUnavailable(
                "discovery document has no jwks_uri",
            ))?;
    validate_url("jwks_uri", jwks_uri)
        .map_err(|_| AuthError::KeysUnavailable("jwks_uri is not https"))?;
    Ok(jwks_uri.to_owned())
}

/// Largest key-set or discovery document accepted: reading stops there.
const MAX_DOC_BYTES: usize = 256 * 1024;

async fn get_json(url: &str, http: &dyn HttpClient) -> Result<Value, AuthError> {
    let request = OutboundRequest {
        max_response_bytes: MAX_DOC_BYTES,
        ..OutboundRequest::get(url)
    };
    let response = http.send(request).await.map_err(|e| match e {
        TransportError::TooLarge => AuthError::KeysUnavailable("document too large"),
        _ => AuthError::KeysUnavailable("fetch failed"),
    })?;
    if response.status != 200 {
        return Err(AuthError::KeysUnavailable("fetch returned an error status"));
    }
    serde_json::from_slice(&response.body)
        .map_err(|_| AuthError::KeysUnavailable("document is not JSON"))
}
