//! The native backend: the RustCrypto implementations, through jwt-compact's algorithms.

use std::rc::Rc;

use jwt_compact::alg::{Ed25519, Es256, Rsa, StrongAlg, StrongKey};
use jwt_compact::{Algorithm, AlgorithmSignature};
use p256::pkcs8::DecodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};

use super::PublicMaterial;

#[derive(Clone)]
pub(super) enum PublicHandle {
    Rs256(Rc<StrongKey<RsaPublicKey>>),
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

impl PublicHandle {
    /// Parses the material into the library's key: points must lie on the curve.
    pub(super) fn new(material: &PublicMaterial) -> Result<Self, &'static str> {
        Ok(match material {
            PublicMaterial::Rsa { n, e } => {
                let key = RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
                    .map_err(|_| "has an invalid RSA key")?;
                PublicHandle::Rs256(Rc::new(
                    StrongKey::try_from(key).map_err(|_| "has an RSA key under 2048 bits")?,
                ))
            }
            PublicMaterial::P256 { point } => PublicHandle::Es256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| "has an invalid P-256 key")?,
            ),
            PublicMaterial::Ed25519 { x } => {
                let bytes: [u8; 32] = x
                    .as_slice()
                    .try_into()
                    .map_err(|_| "has an invalid Ed25519 key")?;
                PublicHandle::EdDsa(
                    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                        .map_err(|_| "has an invalid Ed25519 key")?,
                )
            }
        })
    }

    /// Nothing to import natively: `new` already parsed the key.
    pub(super) async fn prepare(&self, _material: &PublicMaterial) -> Result<(), &'static str> {
        Ok(())
    }

    /// The primitive jwt-compact's validator runs (signature parse, `verify_signature`).
    pub(super) async fn verify(
        &self,
        _material: &PublicMaterial,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        fn check<A: Algorithm>(alg: A, key: &A::VerifyingKey, message: &[u8], sig: &[u8]) -> bool {
            match A::Signature::try_from_slice(sig) {
                Ok(sig) => alg.verify_signature(&sig, key, message),
                Err(_) => false,
            }
        }
        match self {
            PublicHandle::Rs256(key) => check(StrongAlg(Rsa::rs256()), key, message, signature),
            PublicHandle::Es256(key) => check(Es256, key, message, signature),
            PublicHandle::EdDsa(key) => check(Ed25519, key, message, signature),
        }
    }
}

pub(super) enum PrivateHandle {
    Es256(p256::ecdsa::SigningKey),
    // Boxed: an RSA key is three times the size of a P-256 one.
    Rs256(Box<RsaPrivateKey>),
}

impl PrivateHandle {
    /// Parses the PKCS#8 document again with the library, which checks the key itself
    /// (RSA consistency, scalar range) and that it matches the public half we read.
    pub(super) fn new(pkcs8_der: &[u8], public: &PublicMaterial) -> Result<Self, &'static str> {
        // The structure already parsed (`PrivateKey::from_pkcs8_pem`): a refusal here is
        // the library's consistency check (public half, scalar range, RSA primes).
        const MISMATCH: &str = "holds a public key that does not match its private key";
        match public {
            PublicMaterial::P256 { point } => {
                let key =
                    p256::ecdsa::SigningKey::from_pkcs8_der(pkcs8_der).map_err(|_| MISMATCH)?;
                let derived = key.verifying_key().to_encoded_point(false);
                if derived.as_bytes() != point.as_slice() {
                    return Err(MISMATCH);
                }
                Ok(PrivateHandle::Es256(key))
            }
            PublicMaterial::Rsa { n, e } => {
                let key = RsaPrivateKey::from_pkcs8_der(pkcs8_der).map_err(|_| MISMATCH)?;
                if key.n().to_bytes_be() != *n || key.e().to_bytes_be() != *e {
                    return Err(MISMATCH);
                }
                Ok(PrivateHandle::Rs256(Box::new(key)))
            }
            PublicMaterial::Ed25519 { .. } => Err("holds neither a P-256 nor an RSA private key"),
        }
    }

    pub(super) async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, &'static str> {
        Ok(match self {
            PrivateHandle::Es256(key) => Es256.sign(key, message).as_bytes().into_owned(),
            PrivateHandle::Rs256(key) => Rsa::rs256().sign(key, message).as_bytes().into_owned(),
        })
    }
}
