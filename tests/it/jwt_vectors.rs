//! JWT verification against public vectors and an independently minted corpus.
//!
//! - RFC 7515/8037/7520 examples: signatures verify, `exp` is enforced, `none` is refused;
//! - Wycheproof (ES256 raw r‖s, Ed25519, RS256, HMAC-SHA256) through the key loading
//!   (`KeySet`) and signature primitive the verifier uses;
//! - `corpus.json`, minted by PyJWT (tests/helpers/mint_tokens.py): valid tokens for every
//!   algorithm and every attack, with expected verdicts. The test command re-mints a fresh
//!   corpus each run and points `JWT_CORPUS` at it; otherwise the committed one is used.

use crate::common::*;
use rise_registry_broker::auth::jwks::{KeySet, VerifyingKey};
use rise_registry_broker::auth::{AuthError, Verifier};
use rise_registry_broker::config;
use rise_registry_broker::secrets::MapSecrets;
use serde_json::{json, Value};

fn fixture(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}")))
        .unwrap()
}

fn verdict(result: &Result<impl std::fmt::Debug, AuthError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(AuthError::Expired) => "token_expired",
        Err(AuthError::InvalidToken(_)) => "invalid_token",
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn b64url_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[test]
fn pyjwt_corpus() {
    let corpus: Value = match std::env::var("JWT_CORPUS") {
        Ok(path) => serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(),
        Err(_) => fixture("jwt/corpus.json"),
    };
    let issuers = json!([
        {"issuer": corpus["hs256_issuer"], "audience": corpus["audience"], "hs256_secret": "CORPUS_HS"},
        {"issuer": corpus["jwks_issuer"], "audience": corpus["audience"], "jwks": corpus["jwks"].to_string()},
    ])
    .to_string();
    let config = config::load_embedded(
        Some("development"),
        [("RISE_AUTH__ISSUERS", issuers.as_str())],
    )
    .unwrap();
    let secrets =
        MapSecrets::default().with("CORPUS_HS", corpus["hs256_secret_b64"].as_str().unwrap());
    let verifier = Verifier::from_config(&config.auth, &secrets).unwrap();
    let now_ms = corpus["now"].as_u64().unwrap() * 1000;
    let http = FakeHttp::new();
    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 50, "corpus too small: {}", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let token = case["token"].as_str().unwrap();
        let got = verdict(&block_on(verifier.verify(token, now_ms, &http)));
        if got != case["expect"] {
            failures.push(format!(
                "{}: expected {}, got {got}",
                case["name"], case["expect"]
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(http.call_count(), 0, "static key sets never fetch");
    // The valid HS256 token carries the subject through.
    let valid = cases.iter().find(|c| c["name"] == "hs256_valid").unwrap();
    let caller =
        block_on(verifier.verify(valid["token"].as_str().unwrap(), now_ms, &http)).unwrap();
    assert_eq!(caller.subject(), "user-42");
    assert_eq!(caller.issuer(), corpus["hs256_issuer"]);
}

/// The RFC key as a one-key set, the way the broker would load it.
fn rfc_key_set(jwk: &Value) -> Result<KeySet, &'static str> {
    if jwk["kty"] == "oct" {
        KeySet::from_hs256_secret(&b64(&b64url_decode(jwk["k"].as_str().unwrap())))
    } else {
        let mut public = jwk.clone();
        public.as_object_mut().unwrap().remove("kid");
        KeySet::from_jwks(&json!({"keys": [public]}))
    }
}

#[test]
fn rfc_vectors_signatures() {
    let vectors = fixture("jwt/rfc_vectors.json");
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
                assert!(
                    key.verify_signature_bytes(signing_input.as_bytes(), &sig),
                    "{name}"
                );
                let mut flipped = sig.clone();
                flipped[5] ^= 1;
                assert!(
                    !key.verify_signature_bytes(signing_input.as_bytes(), &flipped),
                    "{name}"
                );
                checked += 1;
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
    assert_eq!(checked, 6);
}

#[test]
fn rfc_vectors_through_the_full_verifier() {
    // A.1–A.3 are signed JWTs from "joe" that expired in 2011: a verifier enforcing `exp`
    // must call them expired; A.5 (`alg: none`) must be refused.
    let vectors = fixture("jwt/rfc_vectors.json");
    let find = |n: &str| {
        vectors
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == n)
            .unwrap()
            .clone()
    };
    let http = FakeHttp::new();
    for (name, want) in [
        ("rfc7515-A.1-HS256", "token_expired"),
        ("rfc7515-A.2-RS256", "token_expired"),
        ("rfc7515-A.3-ES256", "token_expired"),
        ("rfc7515-A.5-none", "invalid_token"),
    ] {
        let v = find(name);
        let jwk = if v["alg"] == "none" {
            find("rfc7515-A.2-RS256")["jwk"].clone()
        } else {
            v["jwk"].clone()
        };
        let issuer = if jwk["kty"] == "oct" {
            json!({"issuer": "joe", "audience": "rise", "hs256_secret": "RFC_KEY"})
        } else {
            let mut public = jwk.clone();
            public.as_object_mut().unwrap().remove("kid");
            json!({"issuer": "joe", "audience": "rise", "jwks": {"keys": [public]}})
        };
        let list = json!([issuer]).to_string();
        let config =
            config::load_embedded(Some("development"), [("RISE_AUTH__ISSUERS", list.as_str())])
                .unwrap();
        let secret = jwk
            .get("k")
            .and_then(Value::as_str)
            .map(|k| b64(&b64url_decode(k)))
            .unwrap_or_default();
        let verifier = Verifier::from_config(
            &config.auth,
            &MapSecrets::default().with("RFC_KEY", &secret),
        )
        .unwrap();
        let got = verdict(&block_on(verifier.verify(
            v["compact"].as_str().unwrap(),
            NOW_MS,
            &http,
        )));
        assert_eq!(got, want, "{name}");
    }
}

/// Runs one Wycheproof file: every vector's verdict through `verify_signature_bytes`.
fn wycheproof(
    file: &str,
    key_for_group: impl Fn(&Value) -> Option<VerifyingKey>,
) -> (usize, usize) {
    let doc = fixture(&format!("jwt/wycheproof/{file}"));
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
            let ok = key.verify_signature_bytes(&msg, &sig);
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

fn jwk_key(jwk: &Value) -> Option<VerifyingKey> {
    let mut jwk = jwk.clone();
    jwk.as_object_mut()?.remove("kid");
    KeySet::from_jwks(&json!({"keys": [jwk]}))
        .ok()
        .map(|s| s.keys()[0].key.clone())
}

#[test]
fn wycheproof_es256_p1363() {
    let (checked, _) = wycheproof("ecdsa_secp256r1_sha256_p1363_test.json", |g| {
        jwk_key(&g["publicKeyJwk"])
    });
    assert!(checked > 200, "{checked}");
}

#[test]
fn wycheproof_ed25519() {
    let (checked, _) = wycheproof("ed25519_test.json", |g| jwk_key(&g["publicKeyJwk"]));
    assert!(checked > 100, "{checked}");
}

#[test]
fn wycheproof_rs256() {
    let (checked, _) = wycheproof("rsa_signature_2048_sha256_test.json", |g| {
        jwk_key(&g["keyJwk"])
    });
    assert!(checked > 200, "{checked}");
}

#[test]
fn wycheproof_hmac_sha256() {
    // JWS HS256 uses full 256-bit tags and (here) keys of at least 32 bytes: other groups
    // are outside what the verifier accepts, and the key loader refuses short keys.
    // Keys differ per vector here, so each one is loaded on its own.
    let doc = fixture("jwt/wycheproof/hmac_sha256_test.json");
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
            let ok = set.keys()[0].key.verify_signature_bytes(
                &hex(t["msg"].as_str().unwrap()),
                &hex(t["tag"].as_str().unwrap()),
            );
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

#[test]
fn key_material_never_prints() {
    let set = KeySet::from_hs256_secret(DEV_SECRET_B64).unwrap();
    let printed = format!("{set:?} {:?}", set.keys()[0]);
    assert!(!printed.contains("secret-key"), "{printed}");
    let secrets = MapSecrets::default().with("X", "hunter2-value");
    assert!(!format!("{secrets:?}").contains("hunter2"));
    let s = rise_registry_broker::secrets::SecretString::new("hunter2-value");
    assert_eq!(format!("{s:?}"), "[redacted]");
}

#[test]
fn jwks_documents_that_must_not_load() {
    let rsa_pub = fixture("jwt/rfc_vectors.json")[1]["jwk"].clone();
    let mut private = rsa_pub.clone();
    private["d"] = json!("AQAB");
    let mut dup = rsa_pub.clone();
    dup["kid"] = json!("k");
    let mut small = rsa_pub.clone();
    small["n"] = json!("AQAB");
    for (doc, why) in [
        (json!({}), "no keys"),
        (json!({"keys": []}), "empty"),
        (json!({"keys": [private]}), "private key"),
        (
            json!({"keys": [{"kty": "oct", "k": "AAAA"}]}),
            "symmetric key",
        ),
        (json!({"keys": [dup.clone(), dup]}), "duplicate kid"),
        (json!({"keys": [small]}), "weak RSA"),
        (
            json!({"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]}),
            "unsupported only",
        ),
    ] {
        assert!(KeySet::from_jwks(&doc).is_err(), "{why}");
    }
    // An encryption key next to a signing key is skipped, not fatal.
    let mut enc = rsa_pub.clone();
    enc["use"] = json!("enc");
    let set = KeySet::from_jwks(&json!({"keys": [enc, rsa_pub]})).unwrap();
    assert_eq!(set.keys().len(), 1);
}
