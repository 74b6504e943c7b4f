//! Remote key sets: JWKS URL and OIDC discovery through the HttpClient seam, with a fake
//! upstream and a frozen clock: caching, rotation, and the refetch rate limit.

use crate::common::*;
use ed25519_dalek::SigningKey;
use jwt_compact::alg::Ed25519;
use jwt_compact::{AlgorithmExt, Claims, Header};
use rise_registry_broker::auth::{AuthError, Verifier};
use rise_registry_broker::config;
use rise_registry_broker::secrets::MapSecrets;
use serde_json::{json, Value};

const JWKS_URL: &str = "https://idp.test/keys";
const OIDC_ISSUER: &str = "https://oidc.test";
const DISCOVERY_URL: &str = "https://oidc.test/.well-known/openid-configuration";
const OIDC_JWKS: &str = "https://oidc.test/jwks";

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn jwk(n: u8, kid: &str) -> Value {
    use base64::Engine as _;
    let x =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key(n).verifying_key().as_bytes());
    json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"})
}

fn token(iss: &str, n: u8, kid: &str) -> String {
    let mut claims = Claims::new(json!({"iss": iss, "aud": "rise", "sub": "ci"}));
    claims.expiration = chrono::DateTime::from_timestamp(NOW_S + 7200, 0);
    Ed25519
        .token(&Header::empty().with_key_id(kid), &claims, &key(n))
        .unwrap()
}

fn verifier(extra: &[(&str, &str)]) -> Verifier {
    let issuers = json!([
        {"issuer": "https://idp.test", "audience": "rise", "jwks_url": JWKS_URL},
        {"issuer": OIDC_ISSUER, "audience": "rise", "discovery": true},
    ])
    .to_string();
    let mut vars = vec![("RISE_AUTH__ISSUERS", issuers.as_str())];
    vars.extend_from_slice(extra);
    let config = config::load_embedded(Some("development"), vars).unwrap();
    Verifier::from_config(&config.auth, &MapSecrets::default()).unwrap()
}

const S: u64 = 1000;

#[test]
fn fetches_once_then_serves_from_cache_until_ttl() {
    let v = verifier(&[]);
    let http = FakeHttp::new();
    http.route_json(JWKS_URL, &json!({"keys": [jwk(1, "k1"), jwk(2, "k2")]}));
    let t = token("https://idp.test", 1, "k1");
    for i in 0..5 {
        assert!(block_on(v.verify(&t, NOW_MS + i * S, &http)).is_ok());
    }
    assert_eq!(http.calls_to(JWKS_URL), 1);
    // Default TTL 600 s: one more fetch after it.
    assert!(block_on(v.verify(&t, NOW_MS + 601 * S, &http)).is_ok());
    assert_eq!(http.calls_to(JWKS_URL), 2);
}

#[test]
fn rotation_refetches_once_for_a_new_kid() {
    let v = verifier(&[]);
    let http = FakeHttp::new();
    http.route_json(JWKS_URL, &json!({"keys": [jwk(1, "k1")]}));
    assert!(block_on(v.verify(&token("https://idp.test", 1, "k1"), NOW_MS, &http)).is_ok());
    // The issuer rotates to k2.
    http.route_json(JWKS_URL, &json!({"keys": [jwk(2, "k2")]}));
    let t2 = token("https://idp.test", 2, "k2");
    // Within the 60 s refetch interval the new kid is refused without a fetch…
    let early = block_on(v.verify(&t2, NOW_MS + 10 * S, &http));
    assert_eq!(
        early.unwrap_err(),
        AuthError::InvalidToken("unknown key id")
    );
    assert_eq!(http.calls_to(JWKS_URL), 1);
    // …and after it, exactly one fetch picks the new key up.
    assert!(block_on(v.verify(&t2, NOW_MS + 61 * S, &http)).is_ok());
    assert!(block_on(v.verify(&t2, NOW_MS + 62 * S, &http)).is_ok());
    assert_eq!(http.calls_to(JWKS_URL), 2);
    // The old key is gone with the old set.
    let old = block_on(v.verify(&token("https://idp.test", 1, "k1"), NOW_MS + 63 * S, &http));
    assert!(old.is_err());
}

#[test]
fn a_flood_of_random_kids_cannot_become_a_flood_of_fetches() {
    let v = verifier(&[]);
    let http = FakeHttp::new();
    http.route_json(JWKS_URL, &json!({"keys": [jwk(1, "k1"), jwk(2, "k2")]}));
    assert!(block_on(v.verify(&token("https://idp.test", 1, "k1"), NOW_MS, &http)).is_ok());
    for i in 0..200u64 {
        let t = token("https://idp.test", 3, &format!("random-{i}"));
        // 200 requests over 200 s: the 60 s limit allows at most 4 more fetches.
        let r = block_on(v.verify(&t, NOW_MS + S + i * S, &http));
        assert_eq!(r.unwrap_err(), AuthError::InvalidToken("unknown key id"));
    }
    assert!(
        http.calls_to(JWKS_URL) <= 1 + 4,
        "{} fetches",
        http.calls_to(JWKS_URL)
    );
}

#[test]
fn concurrent_cold_requests_share_one_fetch() {
    let v = verifier(&[]);
    let http = FakeHttp::new();
    http.route_json(JWKS_URL, &json!({"keys": [jwk(1, "k1")]}));
    http.yield_once.set(true); // the fetch pends, so the other requests arrive during it
    let t = token("https://idp.test", 1, "k1");
    let all = block_on(futures::future::join_all(
        (0..20).map(|_| v.verify(&t, NOW_MS, &http)),
    ));
    assert!(all.iter().all(Result::is_ok));
    assert_eq!(http.calls_to(JWKS_URL), 1);
}

#[test]
fn oidc_discovery() {
    let v = verifier(&[]);
    let http = FakeHttp::new();
    http.route_json(
        DISCOVERY_URL,
        &json!({"issuer": OIDC_ISSUER, "jwks_uri": OIDC_JWKS}),
    );
    http.route_json(OIDC_JWKS, &json!({"keys": [jwk(5, "gh")]}));
    let caller = block_on(v.verify(&token(OIDC_ISSUER, 5, "gh"), NOW_MS, &http)).unwrap();
    assert_eq!(caller.issuer(), OIDC_ISSUER);
    assert_eq!(
        (http.calls_to(DISCOVERY_URL), http.calls_to(OIDC_JWKS)),
        (1, 1)
    );
}

#[test]
fn discovery_must_name_the_same_issuer_and_an_https_jwks_uri() {
    for doc in [
        json!({"issuer": "https://evil.test", "jwks_uri": OIDC_JWKS}),
        json!({"issuer": OIDC_ISSUER, "jwks_uri": "http://oidc.test/jwks"}),
        json!({"issuer": OIDC_ISSUER}),
    ] {
        let v = verifier(&[]);
        let http = FakeHttp::new();
        http.route_json(DISCOVERY_URL, &doc);
        http.route_json(OIDC_JWKS, &json!({"keys": [jwk(5, "gh")]}));
        http.route_json("http://oidc.test/jwks", &json!({"keys": [jwk(5, "gh")]}));
        let r = block_on(v.verify(&token(OIDC_ISSUER, 5, "gh"), NOW_MS, &http));
        assert!(
            matches!(r, Err(AuthError::KeysUnavailable(_))),
            "{doc}: {r:?}"
        );
        assert_eq!(
            http.calls_to(OIDC_JWKS) + http.calls_to("http://oidc.test/jwks"),
            0
        );
    }
}

#[test]
fn failures_are_rate_limited_and_stale_keys_keep_working() {
    let v = verifier(&[]);
    let http = FakeHttp::new();
    http.route_status(JWKS_URL, 503);
    let t = token("https://idp.test", 1, "k1");
    assert!(matches!(
        block_on(v.verify(&t, NOW_MS, &http)),
        Err(AuthError::KeysUnavailable(_))
    ));
    for i in 1..50 {
        assert!(block_on(v.verify(&t, NOW_MS + i * 100, &http)).is_err());
    }
    assert_eq!(
        http.calls_to(JWKS_URL),
        1,
        "failed fetch is not retried within the interval"
    );
    http.route_json(JWKS_URL, &json!({"keys": [jwk(1, "k1")]}));
    assert!(block_on(v.verify(&t, NOW_MS + 61 * S, &http)).is_ok());
    // The issuer goes down after the TTL: the last good set keeps working.
    http.route_status(JWKS_URL, 500);
    assert!(block_on(v.verify(&t, NOW_MS + 700 * S, &http)).is_ok());
    assert_eq!(http.calls_to(JWKS_URL), 3);
}

#[test]
fn hostile_tokens_never_cause_a_fetch() {
    let v = verifier(&[]);
    let http = FakeHttp::new();
    http.route_json(JWKS_URL, &json!({"keys": [jwk(1, "k1")]}));
    let good = token("https://idp.test", 1, "k1");
    let mut claims = Claims::new(json!({"iss": "https://idp.test", "aud": "rise"}));
    claims.expiration = chrono::DateTime::from_timestamp(NOW_S + 60, 0);
    let jku = Ed25519
        .token(
            &Header::empty()
                .with_key_id("k1")
                .with_key_set_url("https://evil.test/jwks"),
            &claims,
            &key(1),
        )
        .unwrap();
    let hostile = [
        "x".repeat(9000),
        format!("{good}.extra"),
        good.replacen('.', "+", 1),
        token("https://unknown.test", 1, "k1"),
        jku,
    ];
    for t in &hostile {
        assert!(block_on(v.verify(t, NOW_MS, &http)).is_err());
    }
    assert_eq!(http.call_count(), 0);
}

#[test]
fn single_key_without_kid_accepts_tokens_without_kid() {
    let mut only = jwk(1, "x");
    only.as_object_mut().unwrap().remove("kid");
    let list =
        json!([{"issuer": "https://one.test", "audience": "rise", "jwks": {"keys": [only]}}])
            .to_string();
    let config =
        config::load_embedded(Some("development"), [("RISE_AUTH__ISSUERS", list.as_str())])
            .unwrap();
    let v = Verifier::from_config(&config.auth, &MapSecrets::default()).unwrap();
    let mut claims = Claims::new(json!({"iss": "https://one.test", "aud": "rise"}));
    claims.expiration = chrono::DateTime::from_timestamp(NOW_S + 60, 0);
    let t = Ed25519.token(&Header::empty(), &claims, &key(1)).unwrap();
    assert!(block_on(v.verify(&t, NOW_MS, &FakeHttp::new())).is_ok());
}

#[test]
fn cached_tokens_never_outlive_a_key_rotation_or_their_expiry() {
    let v = verifier(&[]).with_token_cache(100);
    let http = FakeHttp::new();
    // As the API does for an authorized caller: verify, then remember.
    let verify = |token: &str, now_ms: u64| {
        let result = block_on(v.verify(token, now_ms, &http));
        if let Ok(caller) = &result {
            v.remember(token, caller, now_ms);
        }
        result
    };
    http.route_json(JWKS_URL, &json!({"keys": [jwk(1, "k1")]}));
    let old = token("https://idp.test", 1, "k1");
    assert!(verify(&old, NOW_MS).is_ok());
    assert!(
        verify(&old, NOW_MS + S).is_ok(),
        "served from the token cache"
    );
    assert_eq!(http.calls_to(JWKS_URL), 1);
    // Rotation: k1 withdrawn. A k2 token triggers the refetch; the cached k1 token must
    // now be verified again — and fail.
    http.route_json(JWKS_URL, &json!({"keys": [jwk(2, "k2")]}));
    assert!(verify(&token("https://idp.test", 2, "k2"), NOW_MS + 61 * S).is_ok());
    assert_eq!(
        verify(&old, NOW_MS + 62 * S).unwrap_err(),
        AuthError::InvalidToken("unknown key id")
    );

    // Expiry: a token valid for 60 s (+60 s leeway) stops at 120 s even when cached.
    let mut claims = Claims::new(json!({"iss": "https://idp.test", "aud": "rise"}));
    claims.expiration = chrono::DateTime::from_timestamp(NOW_S + 100, 0);
    let short = Ed25519
        .token(&Header::empty().with_key_id("k2"), &claims, &key(2))
        .unwrap();
    assert!(verify(&short, NOW_MS + 90 * S).is_ok());
    assert!(verify(&short, NOW_MS + 150 * S).is_ok(), "within leeway");
    assert_eq!(
        verify(&short, NOW_MS + 161 * S).unwrap_err(),
        AuthError::Expired
    );
}

/// Issue 11: the JWKS flight with a fetching request that never resumes (and needs no
/// credentials to trigger: a token naming an unknown `kid`). The next request waits at
/// most the fetch's worst case on its own timer, then fetches itself.
#[test]
fn a_jwks_fetch_that_never_resumes_cannot_wedge_the_issuer() {
    use std::future::Future;
    let http = FakeHttp {
        timer: Some(RecordingSleeper::default()),
        ..FakeHttp::new()
    };
    http.route_json(JWKS_URL, &json!({"keys": [jwk(1, "k1")]}));
    http.hang_once.borrow_mut().push(JWKS_URL.to_owned());
    let v = verifier(&[]);
    let token = token("https://idp.test", 1, "k1");
    let mut stuck = Box::pin(v.verify(&token, NOW_MS, &http));
    let waker = futures::task::noop_waker();
    assert!(stuck
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    let caller = block_on(v.verify(&token, NOW_MS + 1_000, &http)).expect("verified");
    assert_eq!(caller.subject(), "ci");
    let waited: u64 = http.timer.as_ref().unwrap().sleeps.borrow().iter().sum();
    assert_eq!(
        waited,
        10_000 - 1_000,
        "waited the rest of the fetch deadline"
    );
    assert_eq!(http.calls_to(JWKS_URL), 2);
    drop(stuck);
}

/// Issue 11: a key set larger than the limit is not read (the shell stops the stream;
/// the fake refuses the same way) and the issuer's tokens get a clean 502-class refusal.
#[test]
fn an_oversized_key_set_is_refused() {
    let v = verifier(&[]);
    let http = FakeHttp::new();
    let padding = "x".repeat(300 * 1024);
    http.route_json(
        JWKS_URL,
        &json!({"keys": [jwk(1, "k1")], "padding": padding}),
    );
    assert_eq!(
        block_on(v.verify(&token("https://idp.test", 1, "k1"), NOW_MS, &http)).unwrap_err(),
        AuthError::KeysUnavailable("document too large")
    );
}
