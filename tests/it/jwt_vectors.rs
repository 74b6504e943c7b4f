//! JWT verification against public vectors and an independently minted corpus.
//!
//! - RFC 7515/8037/7520 examples: signatures verify, `exp` is enforced, `none` is refused;
//! - Wycheproof (ES256 raw r‖s, Ed25519, RS256, HMAC-SHA256) through the key loading
//!   (`KeySet`) and signature primitive the verifier uses;
//! - `corpus.json`, minted by PyJWT (tests/helpers/mint_tokens.py): valid tokens for every
//!   algorithm and every attack, with expected verdicts. The test command re-mints a fresh
//!   corpus each run and points `JWT_CORPUS` at it; otherwise the committed one is used.

use crate::common::*;
use crate::vectors::{self, b64, b64url_decode};
use rise_registry_broker::auth::jwks::KeySet;
use rise_registry_broker::auth::{AuthError, Verifier};
use rise_registry_broker::config;
use rise_registry_broker::secrets::MapSecrets;
use serde_json::{json, Value};

fn verdict(result: &Result<impl std::fmt::Debug, AuthError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(AuthError::Expired) => "token_expired",
        Err(AuthError::InvalidToken(_)) => "invalid_token",
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn pyjwt_corpus() {
    let corpus: Value = match std::env::var("JWT_CORPUS") {
        Ok(path) => serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(),
        Err(_) => vectors::fixture("corpus.json"),
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

#[test]
fn rfc_vectors_signatures() {
    block_on(vectors::rfc_signatures());
}

#[test]
fn rfc_vectors_through_the_full_verifier() {
    // A.1–A.3 are signed JWTs from "joe" that expired in 2011: a verifier enforcing `exp`
    // must call them expired; A.5 (`alg: none`) must be refused.
    let rfc = vectors::fixture("rfc_vectors.json");
    let find = |n: &str| {
        rfc.as_array()
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

#[test]
fn wycheproof_es256_p1363() {
    block_on(vectors::wycheproof_es256());
}

#[test]
fn wycheproof_ed25519() {
    block_on(vectors::wycheproof_ed25519());
}

#[test]
fn wycheproof_rs256() {
    block_on(vectors::wycheproof_rs256());
}

#[test]
fn wycheproof_hmac_sha256() {
    block_on(vectors::wycheproof_hmac_sha256());
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
fn rsa_key_size_bounds_natively() {
    futures::executor::block_on(vectors::rsa_key_size_bounds());
}

#[test]
fn jwks_documents_that_must_not_load() {
    let rsa_pub = vectors::fixture("rfc_vectors.json")[1]["jwk"].clone();
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
