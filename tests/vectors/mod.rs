//! Signature vectors shared by the native tests (`tests/it/jwt_vectors.rs`, Rust crypto
//! backend) and the wasm-bindgen tests (`tests/wasm_shared`, WebCrypto backend in Node
//! and Chromium): both backends are held to the same RFC and Wycheproof vectors through
//! the same key loading (`KeySet`) and `VerifyingKey::verify` the verifier uses.
//! Fixtures are compiled in, so the runners work where there is no filesystem.

use rise_registry_broker::auth::jwks::{KeySet, VerifyingKey};
use serde_json::{json, Value};

pub fn fixture(name: &str) -> Value {
    let text = match name {
        "rfc_vectors.json" => include_str!("../fixtures/jwt/rfc_vectors.json"),
        "corpus.json" => include_str!("../fixtures/jwt/corpus.json"),
        "ecdsa_secp256r1_sha256_p1363_test.json" => {
            include_str!("../fixtures/jwt/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json")
        }
        "ed25519_test.json" => include_str!("../fixtures/jwt/wycheproof/ed25519_test.json"),
        "rsa_signature_2048_sha256_test.json" => {
            include_str!("../fixtures/jwt/wycheproof/rsa_signature_2048_sha256_test.json")
        }
        "hmac_sha256_test.json" => include_str!("../fixtures/jwt/wycheproof/hmac_sha256_test.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// Issue 20: one RSA size rule for both backends. A 4096-bit public key loads and
/// imports; an 8192-bit one (WebCrypto alone would import it) is refused by the shared
/// key reading with its own message, before either backend sees it.
pub async fn rsa_key_size_bounds() {
    use base64::Engine as _;
    let jwk = |bytes: usize| {
        // Any odd modulus with its top bit set: public-key import checks the shape only.
        let mut n = vec![0x37u8; bytes];
        n[0] = 0xc5;
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n);
        json!({"keys": [{"kty": "RSA", "e": "AQAB", "n": n}]})
    };
    let set = KeySet::from_jwks(&jwk(512)).expect("a 4096-bit key loads");
    set.prepare().await.expect("a 4096-bit key imports");
    assert_eq!(
        KeySet::from_jwks(&jwk(513)).err(),
        Some("has an RSA key over 4096 bits")
    );
    assert_eq!(
        KeySet::from_jwks(&jwk(1024)).err(),
        Some("has an RSA key over 4096 bits")
    );
}

/// The RFC key as a one-key set, the way the broker would load it.
pub fn rfc_key_set(jwk: &Value) -> Result<KeySet, &'static str> {
    if jwk["kty"] == "oct" {
        KeySet::from_hs256_secret(&b64(&b64url_decode(jwk["k"].as_str().unwrap())))
    } else {
        let mut public = jwk.clone();
        public.as_object_mut().unwrap().remove("kid");
        KeySet::from_jwks(&json!({"keys": [public]}))
    }
}

/// RFC 7515/8037/7520 examples: each valid signature verifies and fails with one bit
/// flipped; P-521 does not load; `none` carries no signature. All six valid ones checked.
pub async fn rfc_signatures() {
    let vectors = fixture("rfc_vectors.json");
    let mut checked = 0;
    for v in vectors.as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let compact = v["compact"].as_str().unwrap();
        let (signing_input, signature) = compact.rsplit_once('.').unwrap();
        match (v["alg"].as_str().unwrap(), v["expect"].as_str().unwrap()) {
            ("ES512", _) => {
                // P-521 is not a supported key type: the set must not load at all.
                assert!(rfc_key_set(&v["jwk"]).is_err(), "{name}");
            }
            ("none", "reject") => {
                assert!(signature.is_empty(), "{name}");
            }
            (alg, "valid") => {
                let set = rfc_key_set(&v["jwk"]).unwrap_or_else(|e| panic!("{name}: {e}"));
                let key = &set.keys()[0].key;
                assert_eq!(key.algorithm(), alg, "{name}");
                let sig = b64url_decode(signature);
                assert!(key.verify(signing_input.as_bytes(), &sig).await, "{name}");
                let mut flipped = sig.clone();
                flipped[5] ^= 1;
                assert!(
                    !key.verify(signing_input.as_bytes(), &flipped).await,
                    "{name}"
                );
                checked += 1;
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
    assert_eq!(checked, 6);
}

/// One Wycheproof file: every vector's verdict through `VerifyingKey::verify`.
/// Returns (checked, skipped).
pub async fn wycheproof(
    file: &str,
    key_for_group: impl Fn(&Value) -> Option<VerifyingKey>,
) -> (usize, usize) {
    let doc = fixture(file);
    let (mut checked, mut skipped) = (0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        let Some(key) = key_for_group(group) else {
            skipped += group["tests"].as_array().unwrap().len();
            continue;
        };
        for t in group["tests"].as_array().unwrap() {
            let msg = hex(t["msg"].as_str().unwrap());
            let sig = hex(t
                .get("sig")
                .or(t.get("tag"))
                .and_then(Value::as_str)
                .unwrap());
            let ok = key.verify(&msg, &sig).await;
            match t["result"].as_str().unwrap() {
                "valid" => assert!(
                    ok,
                    "{file} tcId {} should verify: {}",
                    t["tcId"], t["comment"]
                ),
                "invalid" => assert!(
                    !ok,
                    "{file} tcId {} should fail: {}",
                    t["tcId"], t["comment"]
                ),
                // "acceptable": either verdict is allowed by Wycheproof.
                _ => {}
            }
            checked += 1;
        }
    }
    (checked, skipped)
}

pub fn jwk_key(jwk: &Value) -> Option<VerifyingKey> {
    let mut jwk = jwk.clone();
    jwk.as_object_mut()?.remove("kid");
    KeySet::from_jwks(&json!({"keys": [jwk]}))
        .ok()
        .map(|s| s.keys()[0].key.clone())
}

/// Each Wycheproof runner also checks it saw enough vectors (a loader that skipped
/// every group would otherwise pass).
pub async fn wycheproof_es256() {
    let (checked, _) = wycheproof("ecdsa_secp256r1_sha256_p1363_test.json", |g| {
        jwk_key(&g["publicKeyJwk"])
    })
    .await;
    assert!(checked > 200, "{checked}");
}

pub async fn wycheproof_ed25519() {
    let (checked, _) = wycheproof("ed25519_test.json", |g| jwk_key(&g["publicKeyJwk"])).await;
    assert!(checked > 100, "{checked}");
}

pub async fn wycheproof_rs256() {
    let (checked, _) = wycheproof("rsa_signature_2048_sha256_test.json", |g| {
        jwk_key(&g["keyJwk"])
    })
    .await;
    assert!(checked > 200, "{checked}");
}

/// JWS HS256 uses full 256-bit tags and (here) keys of at least 32 bytes: other groups
/// are outside what the verifier accepts, and the key loader refuses short keys.
/// Keys differ per vector here, so each one is loaded on its own.
pub async fn wycheproof_hmac_sha256() {
    let doc = fixture("hmac_sha256_test.json");
    let mut n = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        if group["tagSize"] != 256 {
            continue;
        }
        for t in group["tests"].as_array().unwrap() {
            let key = hex(t["key"].as_str().unwrap());
            let Ok(set) = KeySet::from_hs256_secret(&b64(&key)) else {
                assert!(
                    key.len() < 32,
                    "tcId {} key of {} bytes refused",
                    t["tcId"],
                    key.len()
                );
                continue;
            };
            let ok = set.keys()[0]
                .key
                .verify(
                    &hex(t["msg"].as_str().unwrap()),
                    &hex(t["tag"].as_str().unwrap()),
                )
                .await;
            assert_eq!(
                ok,
                t["result"] == "valid",
                "tcId {}: {}",
                t["tcId"],
                t["comment"]
            );
            n += 1;
        }
    }
    assert!(n > 20, "{n}");
}

/// A PKCS#8 P-256 key whose embedded public key is another key's (`other_pem`'s): the
/// `kid` and JWKS would name a key the private half does not sign for.
pub fn mismatched_p256_pem(pem: &str, other_pem: &str) -> String {
    use base64::Engine as _;
    use rise_registry_broker::crypto::PrivateKey;
    let point = |pem: &str| {
        let jwk = PrivateKey::from_pkcs8_pem(pem).unwrap().public_jwk();
        let mut point = vec![4u8];
        point.extend(b64url_decode(jwk["x"].as_str().unwrap()));
        point.extend(b64url_decode(jwk["y"].as_str().unwrap()));
        point
    };
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let (own, other) = (point(pem), point(other_pem));
    let at = der.windows(65).position(|w| w == own.as_slice()).unwrap();
    der[at..at + 65].copy_from_slice(&other);
    let body = b64(&der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// Loads and prepares a signing key; the error from whichever step refused it.
pub async fn load_signing_key(pem: &str) -> Result<(), &'static str> {
    let key = rise_registry_broker::crypto::PrivateKey::from_pkcs8_pem(pem)?;
    key.prepare().await
}
