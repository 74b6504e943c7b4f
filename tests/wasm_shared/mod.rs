//! Tests compiled to wasm32 and run by wasm-bindgen-test-runner: the same core the worker
//! runs, exercised inside a JS engine (Node in `wasm_node.rs`, headless Chromium in
//! `wasm_browser.rs`). They cover config-from-vars, the request→response path, and every
//! signature algorithm on the worker's crypto backend, WebCrypto: the RFC and Wycheproof
//! vectors (the same runners the native tests use, `tests/vectors`), the PyJWT corpus,
//! and signing (mint → verify, a mismatched key pair refused).

#[path = "../vectors/mod.rs"]
mod vectors;

use async_trait::async_trait;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header};
use rise_registry_broker::api::respond;
use rise_registry_broker::auth::{AuthError, Verifier};
use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use rise_registry_broker::error::ConfigError;
use rise_registry_broker::http::ApiRequest;
use rise_registry_broker::registry::RegistryConfig;
use rise_registry_broker::runtime::FixedClock;
use rise_registry_broker::runtime::{
    Context, HttpClient, OutboundRequest, OutboundResponse, TransportError,
};
use rise_registry_broker::secrets::MapSecrets;
use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

const NOW_MS: u64 = 1_767_225_600_000;
const SECRET_B64: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXRlcyE=";

struct NoSleep;

#[async_trait(?Send)]
impl rise_registry_broker::runtime::Sleeper for NoSleep {
    async fn sleep(&self, _ms: u64) {}
}

/// No upstream is expected in these tests: any call is an error.
struct NoUpstream;

#[async_trait(?Send)]
impl HttpClient for NoUpstream {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, TransportError> {
        Err(TransportError::Network(format!(
            "unexpected call to {}",
            request.url
        )))
    }
}

fn secrets() -> MapSecrets {
    MapSecrets::default().with("RISE_JWT_SECRET", SECRET_B64)
}

fn token(claims: Value, exp_s: i64) -> String {
    use base64::Engine as _;
    let mut claims = Claims::new(claims);
    claims.expiration = chrono::DateTime::from_timestamp(exp_s, 0);
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET_B64)
        .unwrap();
    Hs256
        .token(&Header::empty(), &claims, &Hs256Key::new(key))
        .unwrap()
}

fn request(query: &str, token: Option<&str>) -> ApiRequest {
    ApiRequest {
        method: "GET".into(),
        path: "/registry/credentials".into(),
        query: Some(query.into()),
        authorization: token.map(|t| format!("Bearer {t}")),
        request_id: None,
    }
}

/// The PyJWT corpus, a verifier trusting its two issuers, and its frozen `now`.
fn corpus_verifier() -> (Value, Verifier, u64) {
    let corpus = vectors::fixture("corpus.json");
    let issuers = json!([
        {"issuer": corpus["hs256_issuer"], "audience": corpus["audience"], "hs256_secret": "HS"},
        {"issuer": corpus["jwks_issuer"], "audience": corpus["audience"], "jwks": corpus["jwks"]},
    ])
    .to_string();
    let config = config::load_embedded(
        Some("development"),
        [("RISE_AUTH__ISSUERS", issuers.as_str())],
    )
    .unwrap();
    let secrets = MapSecrets::default().with("HS", corpus["hs256_secret_b64"].as_str().unwrap());
    let verifier = Verifier::from_config(&config.auth, &secrets).unwrap();
    let now_ms = corpus["now"].as_u64().unwrap() * 1000;
    (corpus, verifier, now_ms)
}

#[wasm_bindgen_test]
fn config_from_vars() {
    let vars = [
        ("RISE_REGISTRY__REGISTRY_URL", "registry.example.com"),
        ("RISE_REGISTRY__NAMESPACE", "team"),
        ("RISE_AUTH__LEEWAY_SECONDS", "5"),
    ];
    let c = config::load_embedded(Some("development"), vars).unwrap();
    let RegistryConfig::Docker(d) = &c.registry else {
        panic!("docker expected")
    };
    assert_eq!(
        (d.registry_url.as_str(), d.namespace.as_str()),
        ("registry.example.com", "team")
    );
    assert_eq!(c.auth.leeway_seconds, 5);
    let err =
        config::load_embedded(Some("development"), [("RISE_REGISTRY__TYPE", "ecr")]).unwrap_err();
    assert!(
        matches!(err, ConfigError::Key { ref key, .. } if key == "registry.region"),
        "{err:?}"
    );
}

#[wasm_bindgen_test]
async fn request_to_response() {
    let config = config::load_embedded(Some("development"), []).unwrap();
    let broker = Broker::new(config, &secrets()).unwrap();
    let secrets = secrets();
    let env = Context {
        now_ms: NOW_MS,
        clock: &FixedClock(NOW_MS),
        http: &NoUpstream,
        secrets: &secrets,
        sleeper: &NoSleep,
    };
    let good = token(
        json!({"iss": "rise-dev", "aud": "rise", "sub": "w", "projects": ["my-app"]}),
        1_767_229_200,
    );
    let cases = [
        (request("project=my-app", Some(&good)), 200, None),
        (
            request("project=my-app2", Some(&good)),
            403,
            Some("forbidden"),
        ),
        (
            request("project=*", Some(&good)),
            400,
            Some("invalid_project"),
        ),
        (request("project=my-app", None), 401, Some("missing_token")),
        (
            request("project=my-app", Some("a.b.c")),
            401,
            Some("invalid_token"),
        ),
    ];
    for (req, status, code) in cases {
        let outcome = respond(Ok(&broker), &req, &env).await;
        assert_eq!(outcome.response.status, status, "{}", outcome.response.body);
        let body: Value = serde_json::from_str(&outcome.response.body).unwrap();
        match code {
            Some(code) => assert_eq!(body["code"], code),
            None => assert_eq!(body["image"], "localhost:5000/rise-apps/my-app"),
        }
    }
}

#[wasm_bindgen_test]
async fn pyjwt_corpus_in_wasm() {
    let (corpus, verifier, now_ms) = corpus_verifier();
    let mut checked = 0;
    for case in corpus["cases"].as_array().unwrap() {
        let got = match verifier
            .verify(case["token"].as_str().unwrap(), now_ms, &NoUpstream)
            .await
        {
            Ok(_) => "ok",
            Err(AuthError::Expired) => "token_expired",
            Err(AuthError::InvalidToken(_)) => "invalid_token",
            Err(other) => panic!("{}: {other:?}", case["name"]),
        };
        assert_eq!(got, case["expect"], "{}", case["name"]);
        checked += 1;
    }
    assert!(checked >= 50);
}

#[wasm_bindgen_test]
async fn rfc_vectors_on_webcrypto() {
    vectors::rfc_signatures().await;
}

#[wasm_bindgen_test]
async fn wycheproof_es256_on_webcrypto() {
    vectors::wycheproof_es256().await;
}

#[wasm_bindgen_test]
async fn wycheproof_ed25519_on_webcrypto() {
    vectors::wycheproof_ed25519().await;
}

#[wasm_bindgen_test]
async fn wycheproof_rs256_on_webcrypto() {
    vectors::wycheproof_rs256().await;
}

#[wasm_bindgen_test]
async fn rsa_key_size_bounds_on_webcrypto() {
    vectors::rsa_key_size_bounds().await;
}

#[wasm_bindgen_test]
async fn wycheproof_hmac_sha256_in_wasm() {
    vectors::wycheproof_hmac_sha256().await;
}

/// WebCrypto signing: tokens minted with each key type verify against the published
/// JWKS through the broker's own verifier, and a key pair that does not match is refused
/// when the key is prepared.
#[wasm_bindgen_test]
async fn signing_on_webcrypto() {
    use rise_registry_broker::oidc::{Mint, OidcConfig, TokenIssuer};
    let es256 = include_str!("../fixtures/oidc/es256_a.pem");
    let es256_b = include_str!("../fixtures/oidc/es256_b.pem");
    for pem in [es256, include_str!("../fixtures/oidc/rs256.pem")] {
        let config = OidcConfig {
            issuer: "https://broker.example.com".into(),
            signing_keys: vec!["KEY".into()],
            token_seconds: 300,
        };
        let issuer = TokenIssuer::new(&config, &MapSecrets::default().with("KEY", pem)).unwrap();
        issuer.signer().prepare().await.unwrap();
        let mint = Mint {
            audience: "rise",
            subject: "s",
            lifetime_seconds: 300,
            extra: Default::default(),
            header: jwt_compact::Header::empty(),
            family: rise_registry_broker::signer::KeyFamily::Any,
        };
        let token = issuer.mint(mint, NOW_MS).await;
        let issuers = json!([{"issuer": "https://broker.example.com", "audience": "rise",
                              "jwks": issuer.jwks()}])
        .to_string();
        let config = config::load_embedded(
            Some("development"),
            [("RISE_AUTH__ISSUERS", issuers.as_str())],
        )
        .unwrap();
        let verifier = Verifier::from_config(&config.auth, &MapSecrets::default()).unwrap();
        verifier.prepare().await.unwrap();
        let caller = verifier
            .verify(token.expose(), NOW_MS, &NoUpstream)
            .await
            .unwrap();
        assert_eq!(caller.subject(), "s");
        // One flipped signature bit: refused.
        let mut bad = token.expose().to_owned();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        assert!(verifier.verify(&bad, NOW_MS, &NoUpstream).await.is_err());
    }
    assert_eq!(vectors::load_signing_key(es256).await, Ok(()));
    let swapped = vectors::mismatched_p256_pem(es256, es256_b);
    // Node's and Chromium's WebCrypto refuse the inconsistent pair at import (seen); a
    // runtime that imported it would fail the signed probe against the published half.
    let err = vectors::load_signing_key(&swapped).await.unwrap_err();
    assert!(
        err.contains("refused by WebCrypto") || err.contains("does not match"),
        "{err}"
    );
}

#[wasm_bindgen_test]
fn aws_query_encoding_in_wasm() {
    let body = rise_registry_broker::aws::sts::aws_form_encode(&[("P", r#"{"R":"*"}"#)]);
    assert_eq!(body, "P=%7B%22R%22%3A%22%2A%22%7D");
}

/// Verification time per algorithm inside the JS engine (a benchmark, not a test: it
/// prints and asserts nothing about time). Run explicitly:
/// `cargo test --release --target wasm32-unknown-unknown --test wasm_node -- --include-ignored verify_speed`
#[wasm_bindgen_test]
#[ignore]
async fn verify_speed_in_wasm() {
    let (corpus, verifier, now_ms) = corpus_verifier();
    for (name, n) in [
        ("hs256_valid", 5000),
        ("rs256_valid", 500),
        ("es256_valid", 500),
        ("eddsa_valid", 500),
    ] {
        let case = corpus["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let token = case["token"].as_str().unwrap();
        let start = js_sys::Date::now();
        for _ in 0..n {
            verifier
                .verify_uncached(token, now_ms, &NoUpstream)
                .await
                .unwrap();
        }
        let per_us = (js_sys::Date::now() - start) * 1000.0 / n as f64;
        wasm_bindgen_test::console_log!("{name}: {per_us:.1} µs/token ({n} tokens)");
    }
}

/// Signing time per algorithm inside the JS engine: the broker's OIDC signer minting
/// web identity tokens (a benchmark, not a test). Run explicitly:
/// `cargo test --release --target wasm32-unknown-unknown --test wasm_node -- --include-ignored sign_speed`
#[wasm_bindgen_test]
#[ignore]
async fn sign_speed_in_wasm() {
    use rise_registry_broker::oidc::{Mint, OidcConfig, TokenIssuer};
    for (name, pem, n) in [
        ("ES256", include_str!("../fixtures/oidc/es256_a.pem"), 500),
        ("RS256", include_str!("../fixtures/oidc/rs256.pem"), 50),
    ] {
        let config = OidcConfig {
            issuer: "https://broker.example.com".into(),
            signing_keys: vec!["KEY".into()],
            token_seconds: 300,
        };
        let issuer = TokenIssuer::new(&config, &MapSecrets::default().with("KEY", pem)).unwrap();
        let start = js_sys::Date::now();
        for _ in 0..n {
            let mint = Mint {
                audience: "sts.amazonaws.com",
                subject: "project:my-app:push",
                lifetime_seconds: 300,
                extra: Default::default(),
                header: jwt_compact::Header::empty(),
                family: rise_registry_broker::signer::KeyFamily::Any,
            };
            assert!(!issuer.mint(mint, NOW_MS).await.expose().is_empty());
        }
        let per_us = (js_sys::Date::now() - start) * 1000.0 / n as f64;
        wasm_bindgen_test::console_log!("sign {name}: {per_us:.1} µs/token ({n} tokens)");
    }
}

/// SigV4 signing time inside the JS engine (a benchmark, not a test): the miss path signs
/// twice per issuance, with SHA-256/HMAC computed in Wasm. Run explicitly:
/// `cargo test --release --target wasm32-unknown-unknown --test wasm_node -- --include-ignored --nocapture sigv4_speed`
#[wasm_bindgen_test]
#[ignore]
fn sigv4_speed_in_wasm() {
    use rise_registry_broker::aws::{ecr, sigv4, AwsCredentials};
    use rise_registry_broker::secrets::SecretString;
    let credentials = AwsCredentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: Some(SecretString::new("session-token-".repeat(40))),
        expires_at_ms: None,
    };
    let n = 2000;
    let start = js_sys::Date::now();
    for _ in 0..n {
        let mut request =
            ecr::get_authorization_token_request("https://api.ecr.us-east-1.amazonaws.com/", 1000);
        sigv4::sign(&mut request, &credentials, "us-east-1", "ecr", NOW_MS).unwrap();
    }
    let per_us = (js_sys::Date::now() - start) * 1000.0 / n as f64;
    wasm_bindgen_test::console_log!("sigv4 sign: {per_us:.1} µs/request ({n} requests)");
}

/// SHA-256 of a bearer token (the token cache's key, computed on every cache hit) inside
/// the JS engine (a benchmark, not a test). Run explicitly:
/// `cargo test --release --target wasm32-unknown-unknown --test wasm_node -- --include-ignored --nocapture token_hash_speed`
#[wasm_bindgen_test]
#[ignore]
fn token_hash_speed_in_wasm() {
    use rise_registry_broker::auth::token_cache::TokenCache;
    let token = "x".repeat(592); // the benchmark's HS256 token is 592 bytes
    let n = 20_000;
    let mut acc = 0u8;
    let start = js_sys::Date::now();
    for _ in 0..n {
        acc ^= TokenCache::digest(&token)[0];
    }
    let per_us = (js_sys::Date::now() - start) * 1000.0 / n as f64;
    wasm_bindgen_test::console_log!("sha256 of a 592-byte token: {per_us:.2} µs ({n}, {acc})");
}
