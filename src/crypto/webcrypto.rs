//! The worker backend: the runtime's WebCrypto (`crypto.subtle`).
//!
//! Keys are imported once and kept as `CryptoKey`s (per isolate, per key). The first use
//! imports; the shell's start-up `prepare` imports every configured key ahead of time,
//! so a key the runtime refuses stops the broker instead of failing some request.

use std::cell::OnceCell;
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};
use zeroize::Zeroizing;

use super::PublicMaterial;

thread_local! {
    /// `crypto.subtle`, looked up once per isolate rather than on every call.
    static SUBTLE: OnceCell<Option<SubtleCrypto>> = const { OnceCell::new() };
}

fn subtle() -> Result<SubtleCrypto, &'static str> {
    SUBTLE
        .with(|cell| {
            cell.get_or_init(|| {
                let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).ok()?;
                crypto
                    .is_object()
                    .then(|| crypto.unchecked_into::<web_sys::Crypto>().subtle())
            })
            .clone()
        })
        .ok_or("needs WebCrypto (crypto.subtle), which this runtime lacks")
}

/// A plain JS object from (name, value) pairs.
fn object(members: &[(&str, JsValue)]) -> Object {
    let obj = Object::new();
    for (name, value) in members {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&obj, &JsValue::from_str(name), value);
    }
    obj
}

fn usages(usage: &str) -> JsValue {
    Array::of1(&JsValue::from_str(usage)).into()
}

/// The algorithm object for import, sign and verify (WebCrypto reads only what it needs).
fn algorithm(material: &PublicMaterial) -> Object {
    let name = |n: &str| ("name", JsValue::from_str(n));
    match material {
        PublicMaterial::Rsa { .. } => object(&[
            name("RSASSA-PKCS1-v1_5"),
            ("hash", JsValue::from_str("SHA-256")),
        ]),
        PublicMaterial::P256 { .. } => object(&[
            name("ECDSA"),
            ("namedCurve", JsValue::from_str("P-256")),
            ("hash", JsValue::from_str("SHA-256")),
        ]),
        PublicMaterial::Ed25519 { .. } => object(&[name("Ed25519")]),
    }
}

async fn import(
    format: &str,
    data: &Object,
    algorithm: &Object,
    usage: &str,
) -> Result<CryptoKey, &'static str> {
    let promise = subtle()?
        .import_key_with_object(format, data, algorithm, false, &usages(usage))
        .map_err(|_| "was refused by WebCrypto")?;
    JsFuture::from(promise)
        .await
        .map(JsCast::unchecked_into)
        .map_err(|_| "was refused by WebCrypto")
}

/// The imported key, shared by the clones of one key set entry, and its algorithm object
/// (built once here, not on every verification).
#[derive(Clone)]
pub(super) struct PublicHandle {
    key: Rc<OnceCell<CryptoKey>>,
    algorithm: Object,
}

impl PublicHandle {
    /// Shape was checked by the caller; the runtime checks the rest when importing.
    pub(super) fn new(material: &PublicMaterial) -> Result<Self, &'static str> {
        Ok(PublicHandle {
            key: Rc::default(),
            algorithm: algorithm(material),
        })
    }

    async fn key(&self, material: &PublicMaterial) -> Result<CryptoKey, &'static str> {
        if let Some(key) = self.key.get() {
            return Ok(key.clone());
        }
        let b64 = |bytes: &[u8]| JsValue::from_str(&URL_SAFE_NO_PAD.encode(bytes));
        let key = match material {
            PublicMaterial::Rsa { n, e } => {
                let jwk = object(&[("kty", "RSA".into()), ("n", b64(n)), ("e", b64(e))]);
                import("jwk", &jwk, &self.algorithm, "verify").await?
            }
            // The SEC1 point and the Ed25519 key are both WebCrypto's "raw" format.
            PublicMaterial::P256 { point: raw } | PublicMaterial::Ed25519 { x: raw } => {
                let raw = Uint8Array::from(raw.as_slice());
                import("raw", &raw, &self.algorithm, "verify").await?
            }
        };
        // Two requests may import the same key concurrently; either result is the key.
        let _ = self.key.set(key.clone());
        Ok(key)
    }

    pub(super) async fn prepare(&self, material: &PublicMaterial) -> Result<(), &'static str> {
        self.key(material).await.map(drop)
    }

    pub(super) async fn verify(
        &self,
        material: &PublicMaterial,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let Ok(key) = self.key(material).await else {
            return false;
        };
        let Ok(subtle) = subtle() else { return false };
        let Ok(promise) = subtle.verify_with_object_and_u8_array_and_u8_array(
            &self.algorithm,
            &key,
            signature,
            message,
        ) else {
            return false;
        };
        // A rejected promise (malformed signature for the key) is a failed verification.
        matches!(JsFuture::from(promise).await, Ok(v) if v.as_bool() == Some(true))
    }
}

pub(super) struct PrivateHandle {
    /// The PKCS#8 document, until imported (then the runtime holds the key, not us).
    pkcs8: std::cell::RefCell<Option<Zeroizing<Vec<u8>>>>,
    key: OnceCell<CryptoKey>,
    algorithm: Object,
}

impl PrivateHandle {
    pub(super) fn new(pkcs8_der: &[u8], public: &PublicMaterial) -> Result<Self, &'static str> {
        Ok(PrivateHandle {
            pkcs8: std::cell::RefCell::new(Some(Zeroizing::new(pkcs8_der.to_vec()))),
            key: OnceCell::new(),
            algorithm: algorithm(public),
        })
    }

    async fn key(&self) -> Result<CryptoKey, &'static str> {
        if let Some(key) = self.key.get() {
            return Ok(key.clone());
        }
        // Copied out so no RefCell borrow is held across the await.
        let der = self
            .pkcs8
            .borrow()
            .clone()
            .ok_or("was refused by WebCrypto")?;
        let imported = import(
            "pkcs8",
            &Uint8Array::from(der.as_slice()),
            &self.algorithm,
            "sign",
        )
        .await?;
        let _ = self.key.set(imported.clone());
        self.pkcs8.borrow_mut().take();
        Ok(imported)
    }

    pub(super) async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, &'static str> {
        let key = self.key().await?;
        let promise = subtle()?
            .sign_with_object_and_u8_array(&self.algorithm, &key, message)
            .map_err(|_| "could not sign")?;
        let buffer = JsFuture::from(promise)
            .await
            .map_err(|_| "could not sign")?;
        Ok(Uint8Array::new(&buffer).to_vec())
    }
}
