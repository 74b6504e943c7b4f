//! The broker's own token signer: PKCS#8 PEM keys from worker secrets → compact JWS
//! (jwt-compact), and the public JWKS that lets others verify them.
//!
//! P-256 keys sign ES256, RSA keys (≥ 2048 bits) RS256; the key decides. Every key's
//! `kid` is its RFC 7638 thumbprint (SHA-256, base64url), so the published set is a pure
//! function of the secrets: every isolate publishes the same document. The first key
//! signs; all are published, which is how a rotation works (publish the next key second,
//! wait for relying parties to refetch, then swap the order).
//!
//! Used by the OIDC issuer (`crate::oidc`) and, through it, by every provider that mints
//! tokens. Private key material never leaves this module: `Debug` prints `kid`s only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_compact::alg::{Es256, Rsa, StrongAlg, StrongKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use p256::pkcs8::DecodePrivateKey as _;
use rsa::RsaPrivateKey;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::error::ConfigError;
use crate::secrets::{SecretString, Secrets};

enum PrivateKey {
    Es256(p256::ecdsa::SigningKey),
    // Boxed: an RSA key is three times the size of a P-256 one.
    Rs256(Box<StrongKey<RsaPrivateKey>>),
}

/// One signing key with its derived public JWK and `kid`.
pub struct SigningKey {
    key: PrivateKey,
    kid: String,
    /// The public JWK as published (`kty`, key members, `kid`, `use`, `alg`).
    public_jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, kid={})", self.algorithm(), self.kid)
    }
}

impl SigningKey {
    /// Parses a PKCS#8 PEM private key. The reason never repeats any of the input.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, &'static str> {
        let pem = pem.trim();
        if !pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            return Err("is not a PKCS#8 PEM private key (convert: openssl pkcs8 -topk8 -nocrypt)");
        }
        let key = if let Ok(ec) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            PrivateKey::Es256(ec)
        } else if let Ok(rsa) = RsaPrivateKey::from_pkcs8_pem(pem) {
            PrivateKey::Rs256(Box::new(
                StrongKey::try_from(rsa).map_err(|_| "holds an RSA key under 2048 bits")?,
            ))
        } else {
            return Err("holds neither a P-256 nor an RSA private key");
        };
        // RFC 7638: the thumbprint covers the required public members only, which is
        // exactly the public JWK jwt-compact builds.
        let public_of = |jwk: JsonWebKey<'_>| {
            let kid = URL_SAFE_NO_PAD.encode(jwk.thumbprint::<Sha256>());
            (kid, serde_json::to_value(&jwk).expect("JWK serializes"))
        };
        let (kid, mut public_jwk) = match &key {
            PrivateKey::Es256(k) => public_of(JsonWebKey::from(k.verifying_key())),
            PrivateKey::Rs256(k) => {
                let public = k.to_public_key().into_inner();
                public_of(JsonWebKey::from(&public))
            }
        };
        let algorithm = match key {
            PrivateKey::Es256(_) => "ES256",
            PrivateKey::Rs256(_) => "RS256",
        };
        let members = public_jwk.as_object_mut().expect("JWK is an object");
        members.insert("kid".into(), json!(kid));
        members.insert("use".into(), json!("sig"));
        members.insert("alg".into(), json!(algorithm));
        Ok(SigningKey {
            key,
            kid,
            public_jwk,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `ES256` or `RS256`: decided by the key.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            PrivateKey::Es256(_) => "ES256",
            PrivateKey::Rs256(_) => "RS256",
        }
    }

    /// The public key as DER SubjectPublicKeyInfo (what a certificate for it carries).
    pub fn public_key_der(&self) -> Vec<u8> {
        use p256::pkcs8::EncodePublicKey as _;
        match &self.key {
            PrivateKey::Es256(k) => k.verifying_key().to_public_key_der(),
            PrivateKey::Rs256(k) => k.to_public_key().into_inner().to_public_key_der(),
        }
        .expect("a loaded key encodes")
        .into_vec()
    }

    /// Signs `claims` with `header` (its `kid` is set here).
    fn sign<H: Serialize, C: Serialize>(&self, header: Header<H>, claims: &Claims<C>) -> String {
        let header = header.with_key_id(&self.kid).with_token_type("JWT");
        // Signing with a valid key and serializable claims cannot fail.
        match &self.key {
            PrivateKey::Es256(key) => Es256.token(&header, claims, key),
            PrivateKey::Rs256(key) => StrongAlg(Rsa::rs256()).token(&header, claims, &**key),
        }
        .expect("signing with a loaded key")
    }
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
            let signing =
                SigningKey::from_pkcs8_pem(pem.expose()).map_err(|reason| ConfigError::Secret {
                    name: name.clone(),
                    reason,
                })?;
            if keys.iter().any(|k| k.kid == signing.kid) {
                return Err(ConfigError::Secret {
                    name: name.clone(),
                    reason: "holds the same key as an earlier secret",
                });
            }
            keys.push(signing);
        }
        Ok(Signer { keys })
    }

    /// The key that signs.
    pub fn current(&self) -> &SigningKey {
        &self.keys[0]
    }

    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// `{"keys": [...]}`: every key's public half, in configured order.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| &k.public_jwk).collect::<Vec<_>>() })
    }

    /// Signs with the current key.
    pub fn sign<H: Serialize, C: Serialize>(
        &self,
        header: Header<H>,
        claims: &Claims<C>,
    ) -> String {
        self.current().sign(header, claims)
    }
}
