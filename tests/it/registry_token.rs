//! The registry token provider through the broker: login secrets from
//! `/registry/credentials`, and `/registry/token` checking them and granting only the
//! project's repository. (The real registry and client: tests/e2e/test_registry_token.py.)

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use rise_registry_broker::error::ConfigError;
use rise_registry_broker::http::ApiRequest;
use rise_registry_broker::secrets::MapSecrets;
use serde_json::{json, Value};

use crate::common::*;

const ISSUER: &str = "https://broker.example.com";
const SERVICE: &str = "registry.example.com";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/oidc/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn vars(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars = vec![
        ("RISE_REGISTRY__TYPE", "registry_token"),
        ("RISE_REGISTRY__REGISTRY_URL", "registry.example.com"),
        ("RISE_REGISTRY__NAMESPACE", "rise-apps"),
        ("RISE_REGISTRY__SERVICE", SERVICE),
        ("RISE_OIDC__ISSUER", ISSUER),
        ("RISE_OIDC__SIGNING_KEYS", r#"["KEY"]"#),
    ];
    vars.retain(|(k, _)| extra.iter().all(|(e, _)| e != k));
    vars.extend_from_slice(extra);
    vars
}

fn token_secrets() -> MapSecrets {
    secrets()
        .with("KEY", &fixture("es256_a.pem"))
        .with("CERT", &fixture("es256_a.crt"))
        .with("OTHER_CERT", &fixture("es256_b.crt"))
}

fn build(extra: &[(&'static str, &'static str)]) -> Result<Broker, ConfigError> {
    Broker::new(
        config::load_embedded(Some("development"), vars(extra))?,
        &token_secrets(),
    )
}

fn decode(token: &str, i: usize) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(i).unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// `(username, password)` from `/registry/credentials`.
fn login(b: &Broker, access: &str) -> (String, String, Value) {
    let t = dev_token(json!({"projects": ["my-app"]}));
    let outcome = run(
        b,
        &get(
            &format!("/registry/credentials?project=my-app&access={access}"),
            Some(&t),
        ),
        &FakeHttp::new(),
    );
    assert_eq!(outcome.response.status, 200, "{}", outcome.response.body);
    let body = body(&outcome);
    let creds = &body["credentials"];
    (
        creds["username"].as_str().unwrap().into(),
        creds["password"].as_str().unwrap().into(),
        body,
    )
}

fn token_request(
    b: &Broker,
    query: &str,
    basic: Option<(&str, &str)>,
) -> rise_registry_broker::api::Outcome {
    let request = ApiRequest {
        authorization: basic.map(|(u, p)| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")))),
        ..get(&format!("/registry/token?{query}"), None)
    };
    run(b, &request, &FakeHttp::new())
}

#[test]
fn credentials_are_a_login_secret_bound_to_caller_project_access_and_endpoint() {
    let b = build(&[]).unwrap();
    let (username, password, body) = login(&b, "push");
    assert_eq!(username, "alice@example.com");
    assert_eq!(body["repository"], "rise-apps/my-app");
    assert_eq!(body["image"], "registry.example.com/rise-apps/my-app");
    assert_eq!(body["auth_method"], "login_credentials");
    assert_eq!(body["credentials"]["expires_in"], 3600);
    let claims = decode(&password, 1);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], format!("{ISSUER}/registry/token"));
    assert_eq!(claims["sub"], "alice@example.com");
    assert_eq!(
        claims["urn:rise:registry"],
        json!({"project": "my-app", "access": "push"})
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    // Minted per request, never served from the cache to another caller.
    let (_, again, _) = login(&b, "push");
    assert_ne!(decode(&again, 1)["jti"], claims["jti"]);
    assert_eq!(b.cached_credentials(), 0);
}

#[test]
fn the_token_endpoint_grants_only_the_projects_repository() {
    let b = build(&[("RISE_REGISTRY__CERTIFICATE_CHAIN", "CERT")]).unwrap();
    let (user, push, _) = login(&b, "push");
    let (_, pull, _) = login(&b, "pull");
    let q = |scopes: &str| format!("service={SERVICE}{scopes}");
    let access = |secret: &str, scopes: &str| {
        let outcome = token_request(&b, &q(scopes), Some((&user, secret)));
        assert_eq!(outcome.response.status, 200, "{}", outcome.response.body);
        let body = body(&outcome);
        assert_eq!(body["token"], body["access_token"]);
        assert_eq!(body["expires_in"], 300);
        decode(body["token"].as_str().unwrap(), 1)["access"].clone()
    };
    let mine = |actions: &[&str]| json!([{"type": "repository", "name": "rise-apps/my-app", "actions": actions}]);
    assert_eq!(
        access(&push, "&scope=repository:rise-apps/my-app:pull,push"),
        mine(&["pull", "push"])
    );
    assert_eq!(
        access(&push, "&scope=repository:rise-apps/my-app:*"),
        mine(&["pull", "push"])
    );
    assert_eq!(
        access(&pull, "&scope=repository:rise-apps/my-app:pull,push"),
        mine(&["pull"])
    );
    assert_eq!(
        access(
            &push,
            "&scope=repository:rise-apps/other:pull,push&scope=repository:rise-apps/my-app:pull"
        ),
        mine(&["pull"])
    );
    assert_eq!(
        access(
            &push,
            "&scope=repository:rise-apps/other:push&scope=registry:catalog:*"
        ),
        json!([])
    );
    assert_eq!(access(&push, ""), json!([]));
    // The registry token: header with kid and the certificate chain, claims for the service.
    let outcome = token_request(
        &b,
        &q("&scope=repository:rise-apps/my-app:push"),
        Some((&user, &push)),
    );
    let token = body(&outcome)["token"].as_str().unwrap().to_owned();
    let header = decode(&token, 0);
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    let cert_der = STANDARD.encode(
        STANDARD
            .decode(
                fixture("es256_a.crt")
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap(),
    );
    assert_eq!(header["x5c"], json!([cert_der]));
    let claims = decode(&token, 1);
    assert_eq!(
        (
            claims["iss"].as_str(),
            claims["aud"].as_str(),
            claims["sub"].as_str()
        ),
        (Some(ISSUER), Some(SERVICE), Some("alice@example.com"))
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
        300
    );
    let line = audit(&outcome);
    assert_eq!(
        (line["event"].as_str(), line["outcome"].as_str()),
        (Some("registry_token"), Some("issued"))
    );
    assert_eq!(line["scopes"], json!(["repository:rise-apps/my-app:push"]));
    assert!(!line.to_string().contains(&token) && !line.to_string().contains(&push));
}

#[test]
fn bad_login_secrets_and_hostile_queries_answer_cleanly() {
    let b = build(&[]).unwrap();
    let (user, push, _) = login(&b, "push");
    let ok_query = format!("service={SERVICE}&scope=repository:rise-apps/my-app:push");
    let (head, payload, sig) = {
        let mut parts = push.split('.');
        (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        )
    };
    let flipped = format!(
        "{head}.{payload}.{}{}",
        &sig[..sig.len() - 2],
        if sig.ends_with("AA") { "BA" } else { "AA" }
    );
    // A web-identity-shaped token from the same key but another audience is no login secret.
    let not_login = dev_token(json!({}));
    let twice = format!("service={SERVICE}&service={SERVICE}");
    let quoted = format!("service={SERVICE}&scope=repository:%22x%22:push");
    let huge = format!("service={SERVICE}&scope={}", "a".repeat(5000));
    type Case<'a> = (Option<(&'a str, &'a str)>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        (None, ok_query.as_str(), 401, "missing_token"),
        (
            Some((&user, &flipped)),
            ok_query.as_str(),
            401,
            "invalid_token",
        ),
        (
            Some(("mallory", &push)),
            ok_query.as_str(),
            401,
            "invalid_token",
        ),
        (
            Some((&user, &not_login)),
            ok_query.as_str(),
            401,
            "invalid_token",
        ),
        (Some((&user, "")), ok_query.as_str(), 401, "invalid_token"),
        (
            Some((&user, &push)),
            "scope=repository:rise-apps/my-app:push",
            400,
            "invalid_service",
        ),
        (
            Some((&user, &push)),
            "service=evil.test",
            400,
            "invalid_service",
        ),
        (Some((&user, &push)), twice.as_str(), 400, "invalid_service"),
        (Some((&user, &push)), quoted.as_str(), 400, "invalid_scope"),
        (Some((&user, &push)), huge.as_str(), 400, "invalid_scope"),
    ];
    for (basic, query, status, code) in cases {
        let outcome = token_request(&b, query, basic);
        assert_eq!(
            outcome.response.status, status,
            "{query}: {}",
            outcome.response.body
        );
        assert_eq!(body(&outcome)["code"], code, "{query}");
        assert_eq!(body(&outcome).as_object().unwrap().len(), 2);
        if status == 401 {
            assert_eq!(
                outcome.response.header("www-authenticate"),
                Some("Basic realm=\"rise-registry\"")
            );
        }
        assert!(
            !outcome.response.body.contains(&push) && !audit(&outcome).to_string().contains(&push)
        );
    }
    // A raw Basic header that is not base64, and another scheme.
    for raw in ["Basic %%%", "Bearer abc", "Basic"] {
        let request = ApiRequest {
            authorization: Some(raw.into()),
            ..get(&format!("/registry/token?{ok_query}"), None)
        };
        assert_eq!(
            run(&b, &request, &FakeHttp::new()).response.status,
            401,
            "{raw}"
        );
    }
}

#[test]
fn configuration_mistakes_stop_the_broker_naming_the_key() {
    let key = |r: Result<Broker, ConfigError>| match r {
        Err(ConfigError::Key { key, .. }) | Err(ConfigError::Secret { name: key, .. }) => key,
        Ok(_) => "ok".into(),
    };
    assert_eq!(
        key(build(&[("RISE_REGISTRY__CERTIFICATE_CHAIN", "CERT")])),
        "ok"
    );
    assert_eq!(
        key(build(&[("RISE_REGISTRY__CERTIFICATE_CHAIN", "OTHER_CERT")])),
        "OTHER_CERT"
    );
    assert_eq!(
        key(build(&[("RISE_REGISTRY__CERTIFICATE_CHAIN", "MISSING")])),
        "MISSING"
    );
    assert_eq!(
        key(build(&[("RISE_REGISTRY__CERTIFICATE_CHAIN", "KEY")])),
        "KEY"
    ); // a key is no certificate
    assert_eq!(
        key(build(&[(
            "RISE_REGISTRY__SERVICE",
            "https://broker.example.com/registry/token"
        )])),
        "registry.service"
    );
    assert_eq!(
        key(build(&[("RISE_REGISTRY__TOKEN_SECONDS", "59")])),
        "registry.token_seconds"
    );
    assert_eq!(
        key(build(&[("RISE_REGISTRY__LOGIN_SECONDS", "43201")])),
        "registry.login_seconds"
    );
    assert_eq!(
        key(build(&[("RISE_REGISTRY__SERVICE", "a\"b")])),
        "registry.service"
    );
    let no_oidc: Vec<_> = vars(&[])
        .into_iter()
        .filter(|(k, _)| !k.starts_with("RISE_OIDC"))
        .collect();
    let err = Broker::new(
        config::load_embedded(Some("development"), no_oidc).unwrap(),
        &token_secrets(),
    );
    assert_eq!(key(err), "registry.type");
    // Without the provider, the route does not exist.
    let docker = broker_with_vars(&[]);
    assert_eq!(
        token_request(&docker, "service=x", None).response.status,
        404
    );
}
