//! The broker's own token signer: PKCS#8 PEM keys from worker secrets → compact JWS
//! (signatures from `crate::crypto`), and the public JWKS that lets others verify them.
//!
//! P-256 keys sign ES256, RSA keys (≥ 2048 bits) RS256; the key decides. Every key's
//! `kid` is its RFC 7638 thumbprint (SHA-256, base64url), so the published set is a pure
//! function of the secrets: every isolate publishes the same document. The first key
//! signs; all are published, which is how a rotation works (publish the next key second,
//! wait for relying parties to refetch, then swap the order).
//!
//! Used by the OIDC issuer (`crate::oidc`) and, through it, by every provider that mints
//! tokens. Private key material stays in `crate::crypto`: `Debug` prints `kid`s only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::{Claims, Header};
use serde::Serialize;
use serde_json::{json, Value};

use crate::crypto::PrivateKey;
use crate::error::ConfigError;
use crate::secrets::{SecretString, Secrets};

/// One signing key, with the name of the secret it came from (for errors at start).
pub struct SigningKey {
    key: PrivateKey,
    secret: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, kid={})", self.algorithm(), self.kid())
    }
}

impl SigningKey {
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// `ES256` or `RS256`: decided by the key.
    pub fn algorithm(&self) -> &'static str {
        self.key.algorithm().name()
    }

    /// The public key as DER SubjectPublicKeyInfo (what a certificate for it carries).
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public_key_der()
    }

    /// Signs `claims` with `header` (its `alg`, `kid` and `typ` are set here): the JWS
    /// compact serialization (RFC 7515 §3.1) around the backend's signature.
    pub(crate) async fn sign<H: Serialize, C: Serialize>(
        &self,
        header: Header<H>,
        claims: &Claims<C>,
    ) -> String {
        let header = header.with_key_id(self.kid()).with_token_type("JWT");
        let mut header = serde_json::to_value(&header).expect("header serializes");
        header
            .as_object_mut()
            .expect("a header is an object")
            .insert("alg".into(), json!(self.algorithm()));
        // Claims through `Value` too (not `to_vec`): it reuses the `Value` serializer the
        // header needs anyway; serializing them straight to bytes added 590 B gzip.
        let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let claims = serde_json::to_value(claims).expect("claims serialize");
        let mut token = format!("{}.{}", encode(&header), encode(&claims));
        let signature = self.key.sign(token.as_bytes()).await;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        token
    }
}

/// Which of the configured keys a relying party can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// Whatever the first key is (ES256 or RS256): AWS, Google, registries.
    Any,
    /// RS256 only (Entra, Quay): the first RSA key in the list.
    Rsa,
}

/// The ordered key list: the first signs, all are published.
pub struct Signer {
    keys: Vec<SigningKey>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.keys).finish()
    }
}

impl Signer {
    /// Reads each named secret (`key` names the config key listing them, for errors).
    /// A missing or unusable secret is an error naming the secret, never its value.
    pub fn from_secrets(
        key: &str,
        names: &[String],
        secrets: &dyn Secrets,
    ) -> Result<Self, ConfigError> {
        if names.is_empty() {
            return Err(ConfigError::key(key, "must name at least one secret"));
        }
        let mut keys: Vec<SigningKey> = Vec::new();
        for name in names {
            let pem: SecretString = secrets
                .get(name)
                .filter(|s| !s.expose().trim().is_empty())
                .ok_or_else(|| ConfigError::missing_secret(name))?;
            let key =
                PrivateKey::from_pkcs8_pem(pem.expose()).map_err(|reason| ConfigError::Secret {
                    name: name.clone(),
                    reason,
                })?;
            if keys.iter().any(|k| k.kid() == key.kid()) {
                return Err(ConfigError::Secret {
                    name: name.clone(),
                    reason: "holds the same key as an earlier secret",
                });
            }
            keys.push(SigningKey {
                key,
                secret: name.clone(),
            });
        }
        Ok(Signer { keys })
    }

    /// The key that signs.
    pub fn current(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// The first key of `family`: the one that signs for relying parties that accept
    /// only that family. `None` when no configured key is of it.
    pub fn first(&self, family: KeyFamily) -> Option<&SigningKey> {
        match family {
            KeyFamily::Any => self.keys.first(),
            KeyFamily::Rsa => self.keys.iter().find(|k| k.algorithm() == "RS256"),
        }
    }

    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// `{"keys": [...]}`: every key's public half, in configured order.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| k.key.public_jwk()).collect::<Vec<_>>() })
    }

    /// Imports every key into the runtime and checks each pair (see
    /// [`PrivateKey::prepare`]); a failure names the secret.
    pub async fn prepare(&self) -> Result<(), ConfigError> {
        for key in &self.keys {
            key.key
                .prepare()
                .await
                .map_err(|reason| ConfigError::Secret {
                    name: key.secret.clone(),
                    reason,
                })?;
        }
        Ok(())
    }

    /// Signs with the current key.
    pub async fn sign<H: Serialize, C: Serialize>(
        &self,
        header: Header<H>,
        claims: &Claims<C>,
    ) -> String {
        self.current().sign(header, claims).await
    }
}
