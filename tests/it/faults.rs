//! Issue 11: the fault matrix. Every upstream (STS, ECR, a JWKS URL, OIDC discovery)
//! misbehaving every way an upstream can — slow headers, slow body, an oversized body,
//! truncated XML/JSON, the wrong content type, an HTML error page, a redirect, a 5xx
//! burst, a connection reset — maps to its documented code, within a bounded number of
//! attempts and backoff, and nothing the upstream sent is echoed to the caller or the log.
//! (A slow body is a timeout: the shell's timer covers the body read as well as the
//! headers; redirects are never followed: the shell fetches with `redirect: "manual"`.)

use ed25519_dalek::SigningKey;
use jwt_compact::alg::Ed25519;
use jwt_compact::{AlgorithmExt, Claims, Header};
use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use rise_registry_broker::runtime::{OutboundResponse, TransportError};
use serde_json::{json, Value};

use crate::common::aws::*;
use crate::common::*;

/// Text every faulty answer carries: it must never come back out.
const ECHO: &str = "UPSTREAM-ECHO-MARKER";

type Answer = Result<OutboundResponse, TransportError>;

fn answer(status: u16, content_type: &str, body: &str, extra: &[(&str, &str)]) -> Answer {
    let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Ok(OutboundResponse {
        status,
        headers,
        body: body.as_bytes().to_vec(),
    })
}

/// The faults, each as the answer(s) an upstream gives, for an upstream whose good body
/// is `good` (XML for STS, JSON otherwise).
fn faults(good: &str) -> Vec<(&'static str, Vec<Answer>)> {
    let cut = &good[..good.len() / 2];
    let html = format!("<html><body><h1>502 Bad Gateway</h1>{ECHO}</body></html>");
    vec![
        ("slow headers", vec![Err(TransportError::Timeout)]),
        ("slow body", vec![Err(TransportError::Timeout)]),
        (
            "body over the limit",
            vec![answer(
                200,
                "text/xml",
                &format!("{good}{}", "x".repeat(300 * 1024)),
                &[],
            )],
        ),
        (
            "truncated",
            vec![answer(200, "text/xml", &format!("{cut}{ECHO}"), &[])],
        ),
        (
            "wrong content type",
            vec![answer(200, "image/png", &format!("\u{89}PNG{ECHO}"), &[])],
        ),
        (
            "HTML error page",
            vec![answer(502, "text/html", &html, &[])],
        ),
        (
            "redirect",
            vec![answer(
                302,
                "text/html",
                ECHO,
                &[("location", "https://evil.test/steal")],
            )],
        ),
        (
            "connection reset",
            vec![Err(TransportError::Network(format!("reset {ECHO}")))],
        ),
    ]
}

fn assert_clean(what: &str, status: u16, body: &str, audit: &Value) {
    assert!(!body.contains(ECHO), "{what}: echoed in the body: {body}");
    assert!(
        !audit.to_string().contains(ECHO),
        "{what}: echoed in the log: {audit}"
    );
    assert!(
        !body.contains("evil.test") && !audit.to_string().contains("evil.test"),
        "{what}"
    );
    let parsed: Value = serde_json::from_str(body).unwrap();
    assert_eq!(parsed.as_object().unwrap().len(), 2, "{what}: {body}");
    assert!(status >= 500, "{what}: {status}");
}

#[test]
fn aws_faults_map_to_documented_codes_within_bounds() {
    let sts_good = match sts_ok("ASIASESSION000000001", 3600) {
        Ok(r) => String::from_utf8(r.body).unwrap(),
        Err(_) => unreachable!(),
    };
    let ecr_good = match ecr_ok(NOW_F + 43_200.0) {
        Ok(r) => String::from_utf8(r.body).unwrap(),
        Err(_) => unreachable!(),
    };
    for (upstream, good) in [(STS, &sts_good), (ECR, &ecr_good)] {
        for (fault, answers) in faults(good) {
            let what = format!("{upstream} {fault}");
            let b = broker(&[]);
            let http = FakeHttp::new();
            // The fault on every attempt (a burst longer than the retries).
            let repeated: Vec<Answer> = (0..5).flat_map(|_| answers.clone()).collect();
            if upstream == ECR {
                http.script(STS, vec![sts_ok("ASIASESSION000000001", 3600)]);
            }
            http.script(upstream, repeated);
            let sleeper = RecordingSleeper::default();
            let outcome = request_with_aws(&b, &http, "project=my-app", &sleeper);
            let (status, body) = (outcome.response.status, &outcome.response.body);
            assert_clean(&what, status, body, &audit(&outcome));
            let code = serde_json::from_str::<Value>(body).unwrap()["code"].clone();
            let (want_status, want_code, want_attempts) = match fault {
                "slow headers" | "slow body" => (504, "upstream_timeout", 3),
                "HTML error page" | "connection reset" => (502, "upstream_error", 3),
                _ => (502, "upstream_error", 1), // an answer that retrying will not fix
            };
            assert_eq!(
                (status, code.as_str().unwrap()),
                (want_status, want_code),
                "{what}"
            );
            assert_eq!(http.calls_to(upstream), want_attempts, "{what}");
            // Bounded: at most (attempts − 1) backoffs of at most 2 s each.
            let slept: u64 = sleeper.sleeps.borrow().iter().sum();
            assert!(slept <= 2 * 2_000, "{what}: slept {slept} ms");
        }
    }
}

#[test]
fn a_5xx_burst_shorter_than_the_retries_is_absorbed() {
    for upstream in [STS, ECR] {
        let b = broker(&[]);
        let http = FakeHttp::new();
        let html = answer(503, "text/html", ECHO, &[]);
        let (sts, ecr) = if upstream == STS {
            (
                vec![html.clone(), html, sts_ok("ASIASESSION000000001", 3600)],
                vec![ecr_ok(NOW_F + 43_200.0)],
            )
        } else {
            (
                vec![sts_ok("ASIASESSION000000001", 3600)],
                vec![html.clone(), html, ecr_ok(NOW_F + 43_200.0)],
            )
        };
        http.script(STS, sts);
        http.script(ECR, ecr);
        let outcome = request_with_aws(&b, &http, "project=my-app", &RecordingSleeper::default());
        assert_eq!(outcome.response.status, 200, "{upstream}");
        assert_eq!(audit(&outcome)["subrequests"], 4, "{upstream}");
    }
}

// ---- JWKS URL and OIDC discovery -----------------------------------------------------

const JWKS_URL: &str = "https://keys.test/jwks";
const OIDC: &str = "https://oidc.test";
const DISCOVERY: &str = "https://oidc.test/.well-known/openid-configuration";
const OIDC_JWKS: &str = "https://oidc.test/jwks";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn jwks() -> Value {
    use base64::Engine as _;
    let x =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key().verifying_key().as_bytes());
    json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA"}]})
}

fn token(iss: &str) -> String {
    let mut claims =
        Claims::new(json!({"iss": iss, "aud": "rise", "sub": "ci", "projects": ["my-app"]}));
    claims.expiration = chrono::DateTime::from_timestamp(NOW_S + 600, 0);
    Ed25519
        .token(&Header::empty().with_key_id("k1"), &claims, &key())
        .unwrap()
}

fn key_set_broker() -> Broker {
    let issuers = json!([
        {"issuer": "https://keys.test", "audience": "rise", "jwks_url": JWKS_URL, "claims_grant_access": true},
        {"issuer": OIDC, "audience": "rise", "discovery": true, "claims_grant_access": true},
    ])
    .to_string();
    let config = config::load_embedded(
        Some("development"),
        [("RISE_AUTH__ISSUERS", issuers.as_str())],
    )
    .unwrap();
    Broker::new(config, &secrets()).unwrap()
}

#[test]
fn key_fetch_faults_map_to_upstream_error_without_echo() {
    let good = jwks().to_string();
    let discovery_good = json!({"issuer": OIDC, "jwks_uri": OIDC_JWKS}).to_string();
    for (faulty_url, iss, good) in [
        (JWKS_URL, "https://keys.test", &good),
        (DISCOVERY, OIDC, &discovery_good),
        (OIDC_JWKS, OIDC, &good),
    ] {
        for (fault, answers) in faults(good) {
            let what = format!("{faulty_url} {fault}");
            let b = key_set_broker();
            let http = FakeHttp::new();
            http.route_json(DISCOVERY, &serde_json::from_str(&discovery_good).unwrap());
            http.route_json(OIDC_JWKS, &jwks());
            http.route_json(JWKS_URL, &jwks());
            http.script(faulty_url, answers);
            let outcome = run(
                &b,
                &get("/registry/credentials?project=my-app", Some(&token(iss))),
                &http,
            );
            let (status, body) = (outcome.response.status, &outcome.response.body);
            assert_clean(&what, status, body, &audit(&outcome));
            assert_eq!(status, 502, "{what}: {body}");
            assert_eq!(
                serde_json::from_str::<Value>(body).unwrap()["code"],
                "upstream_error",
                "{what}"
            );
            // One fetch per document, no retry loop inside a request.
            assert!(http.calls_to(faulty_url) == 1, "{what}");
            // The issuer recovers once the rate limit allows another fetch.
            let later = run_with(
                &b,
                &get("/registry/credentials?project=my-app", Some(&token(iss))),
                &http,
                &secrets(),
                &RecordingSleeper::default(),
                NOW_MS + 61_000,
            );
            assert_eq!(
                later.response.status, 200,
                "{what}: {}",
                later.response.body
            );
        }
    }
}

// ---- keyless clouds: Google STS and IAM Credentials, Entra, ACR ---------------------

/// The same matrix for every call of every new provider (issues 18, 19, 21): each call
/// failing every way, the calls before it answering well.
#[test]
fn cloud_faults_map_to_documented_codes_within_bounds() {
    use crate::federation::*;
    let sa_ok = || json_ok(json!({"accessToken": "ya29.sa", "expireTime": "2026-01-01T01:00:00Z"}));
    let good = |url: &str| -> String {
        let answer = match url {
            GOOGLE_STS => google_ok(),
            GOOGLE_SA => sa_ok(),
            ENTRA => json_ok(json!({"access_token": "entra-at", "expires_in": 3599})),
            ACR_EXCHANGE => json_ok(json!({"refresh_token": acr_jwt(NOW_S + 10_800, "r")})),
            QUAY => json_ok(json!({"token": acr_jwt(NOW_S + 3_600, "q")})),
            JFROG => json_ok(json!({"access_token": jfrog_token(NOW_S + 3_600)})),
            GITLAB_CREATE => json_ok(json!({"id": 7, "username": "gitlab+deploy-token-7",
                "token": "gldt-x", "expires_at": "2026-01-01T01:00:00Z"})),
            HARBOR_CREATE => json_ok(json!({"id": 5, "name": "robot$my-app+rise-broker-x",
                "secret": "s", "expires_at": NOW_S + 86_400})),
            _ => json_ok(json!({"access_token": acr_jwt(NOW_S + 4_500, "a")})),
        };
        String::from_utf8(answer.unwrap().body).unwrap()
    };
    let chains: [(&str, &[&str]); 6] = [
        ("gar", &[GOOGLE_STS, GOOGLE_SA]),
        ("acr", &[ENTRA, ACR_EXCHANGE, ACR_TOKEN]),
        ("quay", &[QUAY]),
        ("artifactory", &[JFROG]),
        ("gitlab", &[GITLAB_CREATE]),
        ("harbor", &[HARBOR_CREATE]),
    ];
    for (kind, chain) in chains {
        for (i, upstream) in chain.iter().enumerate() {
            for (fault, answers) in faults(&good(upstream)) {
                let what = format!("{kind} {upstream} {fault}");
                let vars = match kind {
                    "gar" => {
                        let mut v = gar_vars();
                        v.push((
                            "RISE_REGISTRY__SERVICE_ACCOUNT",
                            "push-{project}@rise-gcp.iam.gserviceaccount.com",
                        ));
                        v
                    }
                    "quay" => quay_vars(),
                    "artifactory" => artifactory_vars(),
                    "gitlab" => vec![
                        ("RISE_REGISTRY__URL", "https://gitlab.example.com"),
                        ("RISE_REGISTRY__REGISTRY_URL", "registry.example.com"),
                    ],
                    "harbor" => vec![("RISE_REGISTRY__URL", "https://harbor.example.com")],
                    _ => acr_vars(),
                };
                let b = cloud_broker(kind, &vars).unwrap();
                let http = FakeHttp::new();
                for before in &chain[..i] {
                    http.script(
                        before,
                        vec![Ok(OutboundResponse {
                            status: 200,
                            headers: vec![],
                            body: good(before).into_bytes(),
                        })],
                    );
                }
                http.script(upstream, (0..5).flat_map(|_| answers.clone()).collect());
                let sleeper = RecordingSleeper::default();
                let request = get(
                    "/registry/credentials?project=my-app",
                    Some(&crate::common::aws::token_for(&["my-app"])),
                );
                let outcome = run_with(&b, &request, &http, &key_secrets(), &sleeper, NOW_MS);
                let (status, body) = (outcome.response.status, &outcome.response.body);
                assert_clean(&what, status, body, &audit(&outcome));
                let code = serde_json::from_str::<Value>(body).unwrap()["code"].clone();
                let (want_status, want_code, want_attempts) = match fault {
                    "slow headers" | "slow body" => (504, "upstream_timeout", 3),
                    "HTML error page" | "connection reset" => (502, "upstream_error", 3),
                    _ => (502, "upstream_error", 1),
                };
                assert_eq!(
                    (status, code.as_str().unwrap()),
                    (want_status, want_code),
                    "{what}"
                );
                assert_eq!(http.calls_to(upstream), want_attempts, "{what}");
                // Nothing after the failed call was asked.
                for after in &chain[i + 1..] {
                    assert_eq!(http.calls_to(after), 0, "{what}: called {after}");
                }
                let slept: u64 = sleeper.sleeps.borrow().iter().sum();
                assert!(slept <= 2 * 2_000, "{what}: slept {slept} ms");
            }
        }
    }
}

/// Throttling (429 with and without an OAuth code) is retried and then reported as
/// `upstream_throttled` with `Retry-After`; a denial is never retried.
#[test]
fn cloud_throttling_and_denials() {
    use crate::federation::*;
    let throttled = answer(429, "application/json", r#"{"error":"slow_down"}"#, &[]);
    let b = cloud_broker("gar", &gar_vars()).unwrap();
    let http = FakeHttp::new();
    http.script(
        GOOGLE_STS,
        vec![throttled.clone(), throttled.clone(), throttled],
    );
    let request = get(
        "/registry/credentials?project=my-app",
        Some(&crate::common::aws::token_for(&["my-app"])),
    );
    let sleeper = RecordingSleeper::default();
    let outcome = run_with(&b, &request, &http, &key_secrets(), &sleeper, NOW_MS);
    assert_eq!(outcome.response.status, 503);
    assert_eq!(outcome.response.header("retry-after"), Some("5"));
    assert_eq!(http.calls_to(GOOGLE_STS), 3);
    let denied = answer(
        400,
        "application/json",
        r#"{"error":"invalid_grant","error_description":"The audience in ID Token does not match"}"#,
        &[],
    );
    let http = FakeHttp::new();
    http.script(GOOGLE_STS, vec![denied.clone(), denied]);
    let outcome = run_with(&b, &request, &http, &key_secrets(), &sleeper, NOW_MS);
    assert_eq!(outcome.response.status, 502);
    assert!(outcome.response.body.contains("upstream_denied"));
    assert!(!outcome.response.body.contains("audience in ID Token"));
    assert_eq!(http.calls_to(GOOGLE_STS), 1);
}
