//! Asymmetric signatures (RS256, ES256, EdDSA) behind one API with two backends:
//!
//! - natively (`cargo test`, fuzzing): the Rust implementations jwt-compact wraps
//!   (`rsa`, `p256`, `ed25519-dalek`) — [`rust`];
//! - in the worker build (wasm32): the runtime's WebCrypto (`crypto.subtle`) — [`webcrypto`].
//!   The Wasm then carries no bigint, curve or Ed25519 code, and the runtime's native
//!   crypto is several times faster than the same code compiled to Wasm.
//!
//! Everything that is not the primitive itself is shared and runs on both: reading keys
//! (JWK members, PKCS#8 PEM), their shape checks, RFC 7638 thumbprints, the public JWK and
//! SubjectPublicKeyInfo. The wasm-bindgen tests run the RFC, Wycheproof and PyJWT vectors
//! through the WebCrypto backend; the native tests run the same vectors through the Rust one.
//!
//! HS256 is not here: HMAC-SHA-256 is small, already linked for SigV4, and fast in Wasm.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, UintRef};
use der::{Decode as _, Encode as _};
use jwt_compact::jwk::JsonWebKey;
use serde_json::{json, Value};
use sha2::Sha256;
use zeroize::Zeroizing;

#[cfg(not(target_arch = "wasm32"))]
mod rust;
#[cfg(not(target_arch = "wasm32"))]
use rust as backend;
#[cfg(target_arch = "wasm32")]
mod webcrypto;
#[cfg(target_arch = "wasm32")]
use webcrypto as backend;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// RFC 7518 §3.3: RS256 keys of at least 2048 bits.
const MIN_RSA_BITS: usize = 2048;
/// And at most 4096, checked here for both backends alike: the native `rsa` crate refuses
/// larger moduli while WebCrypto imports up to 16,384 bits, so without one rule native
/// tests would not predict what the worker accepts. It also bounds what one verification
/// costs (an unknown `kid` lets anyone make the broker fetch and import a key set).
pub const MAX_RSA_BITS: usize = 4096;

/// Why RSA key material was refused; the callers word it for their input (a JWKS "has",
/// a secret "holds").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RsaRefusal {
    /// No modulus or exponent.
    Invalid,
    TooSmall,
    TooLarge,
}

/// The JWS algorithms a public or private key of ours can serve. The key decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Es256,
    EdDsa,
}

impl Algorithm {
    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }
}

/// Public key material, checked for shape: what both backends import.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PublicMaterial {
    /// Big-endian modulus and exponent, no leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// SEC1 uncompressed point: `04 ‖ x ‖ y`.
    P256 {
        point: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

impl PublicMaterial {
    fn algorithm(&self) -> Algorithm {
        match self {
            PublicMaterial::Rsa { .. } => Algorithm::Rs256,
            PublicMaterial::P256 { .. } => Algorithm::Es256,
            PublicMaterial::Ed25519 { .. } => Algorithm::EdDsa,
        }
    }

    /// A modulus of [`MIN_RSA_BITS`]..=[`MAX_RSA_BITS`] and an exponent.
    fn rsa(n: &[u8], e: &[u8]) -> Result<Self, RsaRefusal> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        if e.is_empty() || n.is_empty() {
            return Err(RsaRefusal::Invalid);
        }
        let bits = n.len() * 8 - n[0].leading_zeros() as usize;
        if bits < MIN_RSA_BITS {
            return Err(RsaRefusal::TooSmall);
        }
        if bits > MAX_RSA_BITS {
            return Err(RsaRefusal::TooLarge);
        }
        Ok(PublicMaterial::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    fn p256(x: &[u8], y: &[u8]) -> Result<Self, &'static str> {
        if x.len() != 32 || y.len() != 32 {
            return Err("has an invalid P-256 key");
        }
        let mut point = Vec::with_capacity(65);
        point.push(4);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        Ok(PublicMaterial::P256 { point })
    }

    /// The public JWK members RFC 7638 hashes (and nothing else).
    fn jwk(&self) -> JsonWebKey<'_> {
        match self {
            PublicMaterial::Rsa { n, e } => JsonWebKey::Rsa {
                modulus: n.into(),
                public_exponent: e.into(),
                private_parts: None,
            },
            PublicMaterial::P256 { point } => JsonWebKey::EllipticCurve {
                curve: "P-256".into(),
                x: point[1..33].into(),
                y: point[33..].into(),
                secret: None,
            },
            PublicMaterial::Ed25519 { x } => JsonWebKey::KeyPair {
                curve: "Ed25519".into(),
                x: x.as_slice().into(),
                secret: None,
            },
        }
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// A key that verifies one asymmetric JWS algorithm.
#[derive(Clone)]
pub struct PublicKey {
    material: PublicMaterial,
    handle: backend::PublicHandle,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.algorithm().name())
    }
}

impl PublicKey {
    /// A public JWK → key, or `Ok(None)` for a key type (or curve) we do not verify with.
    /// RSA under 2048 bits, wrong coordinate sizes and (natively) points off the curve
    /// are errors; in the worker a point off the curve is refused by WebCrypto when the
    /// key is prepared (static keys: at start) or first used (fetched keys).
    pub fn from_jwk(jwk: &JsonWebKey<'_>) -> Result<Option<Self>, &'static str> {
        let material = match jwk {
            JsonWebKey::Rsa {
                modulus,
                public_exponent,
                private_parts: None,
            } => PublicMaterial::rsa(modulus, public_exponent).map_err(|why| match why {
                RsaRefusal::TooSmall => "has an RSA key under 2048 bits",
                RsaRefusal::TooLarge => "has an RSA key over 4096 bits",
                RsaRefusal::Invalid => "has an invalid RSA key",
            })?,
            JsonWebKey::EllipticCurve {
                curve,
                x,
                y,
                secret: None,
            } if curve == "P-256" => PublicMaterial::p256(x, y)?,
            JsonWebKey::KeyPair {
                curve,
                x,
                secret: None,
            } if curve == "Ed25519" => {
                if x.len() != 32 {
                    return Err("has an invalid Ed25519 key");
                }
                PublicMaterial::Ed25519 { x: x.to_vec() }
            }
            // Other curves, symmetric keys, private keys: not ours to verify with.
            _ => return Ok(None),
        };
        Self::new(material).map(Some)
    }

    pub(crate) fn new(material: PublicMaterial) -> Result<Self, &'static str> {
        let handle = backend::PublicHandle::new(&material)?;
        Ok(PublicKey { material, handle })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.material.algorithm()
    }

    /// Imports the key into the runtime now (WebCrypto), so a bad key fails at start.
    pub async fn prepare(&self) -> Result<(), &'static str> {
        self.handle.prepare(&self.material).await
    }

    /// Verifies a JWS signature (`RS256`: PKCS#1 v1.5 / SHA-256; `ES256`: raw `r ‖ s`;
    /// `EdDSA`: Ed25519) over `message`. Any malformed input is just `false`.
    pub async fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let expected_len = match &self.material {
            PublicMaterial::Rsa { n, .. } => n.len(),
            PublicMaterial::P256 { .. } | PublicMaterial::Ed25519 { .. } => 64,
        };
        signature.len() == expected_len
            && self.handle.verify(&self.material, message, signature).await
    }
}

/// A private signing key (P-256 → ES256, RSA ≥ 2048 → RS256) read from PKCS#8 PEM.
pub struct PrivateKey {
    public: PublicKey,
    kid: String,
    handle: backend::PrivateHandle,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PrivateKey({}, kid={})",
            self.algorithm().name(),
            self.kid
        )
    }
}

impl PrivateKey {
    /// Parses a PKCS#8 PEM private key. The reason never repeats any of the input.
    ///
    /// A P-256 key must carry its public key (OpenSSL, Python `cryptography` and the
    /// RustCrypto encoders all write it): the worker derives the `kid` from it without
    /// curve arithmetic, and [`PrivateKey::prepare`] proves the pair matches.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, &'static str> {
        const NOT_PKCS8: &str =
            "is not a PKCS#8 PEM private key (convert: openssl pkcs8 -topk8 -nocrypt)";
        let pem = pem.trim();
        if !pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            return Err(NOT_PKCS8);
        }
        const NEITHER: &str = "holds neither a P-256 nor an RSA private key";
        let (label, der) = pem_rfc7468::decode_vec(pem.as_bytes()).map_err(|_| NEITHER)?;
        let der = Zeroizing::new(der);
        if label != "PRIVATE KEY" {
            return Err(NOT_PKCS8);
        }
        let info = pkcs8::PrivateKeyInfo::from_der(&der).map_err(|_| NEITHER)?;
        let material = match info.algorithm.oid {
            RSA_ENCRYPTION => {
                let rsa = pkcs1::RsaPrivateKey::from_der(info.private_key).map_err(|_| NEITHER)?;
                PublicMaterial::rsa(rsa.modulus.as_bytes(), rsa.public_exponent.as_bytes())
                    .map_err(|why| match why {
                        RsaRefusal::TooSmall => "holds an RSA key under 2048 bits",
                        RsaRefusal::TooLarge => "holds an RSA key over 4096 bits",
                        RsaRefusal::Invalid => NEITHER,
                    })?
            }
            EC_PUBLIC_KEY if info.algorithm.parameters_oid().ok() == Some(PRIME256V1) => {
                let ec = sec1::EcPrivateKey::from_der(info.private_key).map_err(|_| NEITHER)?;
                let point = ec
                    .public_key
                    .or(info.public_key)
                    .ok_or("holds a P-256 key without its public key (re-export it with openssl pkcs8 -topk8 -nocrypt)")?;
                if point.len() != 65 || point[0] != 4 {
                    return Err(NEITHER);
                }
                PublicMaterial::p256(&point[1..33], &point[33..])?
            }
            _ => return Err(NEITHER),
        };
        let handle = backend::PrivateHandle::new(&der, &material)?;
        let kid = URL_SAFE_NO_PAD.encode(material.jwk().thumbprint::<Sha256>());
        let public = PublicKey::new(material)?;
        Ok(PrivateKey {
            public,
            kid,
            handle,
        })
    }

    /// RFC 7638 thumbprint (SHA-256, base64url) of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    /// The public JWK as published: key members, `kid`, `use`, `alg`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = serde_json::to_value(self.public.material.jwk()).expect("JWK serializes");
        let members = jwk.as_object_mut().expect("JWK is an object");
        members.insert("kid".into(), json!(self.kid));
        members.insert("use".into(), json!("sig"));
        members.insert("alg".into(), json!(self.algorithm().name()));
        jwk
    }

    /// The public key as DER SubjectPublicKeyInfo (what a certificate for it carries).
    pub fn public_key_der(&self) -> Vec<u8> {
        let encode = |algorithm, parameters, key: &[u8]| {
            spki::SubjectPublicKeyInfoRef {
                algorithm: spki::AlgorithmIdentifierRef {
                    oid: algorithm,
                    parameters: Some(parameters),
                },
                subject_public_key: BitStringRef::from_bytes(key).expect("key bits"),
            }
            .to_der()
            .expect("SPKI encodes")
        };
        match &self.public.material {
            PublicMaterial::Rsa { n, e } => {
                let key = pkcs1::RsaPublicKey {
                    modulus: UintRef::new(n).expect("modulus"),
                    public_exponent: UintRef::new(e).expect("exponent"),
                }
                .to_der()
                .expect("RSA key encodes");
                encode(RSA_ENCRYPTION, AnyRef::NULL, &key)
            }
            PublicMaterial::P256 { point } => {
                encode(EC_PUBLIC_KEY, AnyRef::from(&PRIME256V1), point)
            }
            PublicMaterial::Ed25519 { .. } => unreachable!("no Ed25519 private keys are loaded"),
        }
    }

    /// Imports the key into the runtime and proves the pair: a probe message signed with
    /// the private half must verify with the published public half.
    pub async fn prepare(&self) -> Result<(), &'static str> {
        const PROBE: &[u8] = b"rise-registry-broker key check";
        self.public.prepare().await?;
        let signature = self.handle.sign(PROBE).await?;
        if self.public.verify(PROBE, &signature).await {
            Ok(())
        } else {
            Err("holds a public key that does not match its private key")
        }
    }

    /// Signs `message` (JWS signature bytes: PKCS#1 v1.5 for RS256, raw `r ‖ s` for ES256).
    pub async fn sign(&self, message: &[u8]) -> Vec<u8> {
        // A key that loaded and passed `prepare` signs; the runtime failing here is a bug.
        self.handle
            .sign(message)
            .await
            .expect("signing with a loaded key")
    }
}
