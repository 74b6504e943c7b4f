//! The broker as an OIDC issuer: signing keys from PKCS#8 PEM secrets, the published
//! discovery document and JWKS, minted tokens, rotation order, bad key secrets, and the
//! keyless ECR path (AssumeRoleWithWebIdentity) against the scripted fake STS/ECR.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rise_registry_broker::auth::Verifier;
use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use rise_registry_broker::error::ConfigError;
use rise_registry_broker::oidc::{OidcConfig, TokenIssuer};
use rise_registry_broker::runtime::FixedClock;
use rise_registry_broker::secrets::MapSecrets;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::aws::*;
use crate::common::*;
use crate::vectors;

const ISSUER: &str = "https://broker.example.com";

fn pem(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/oidc/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

fn oidc_config(keys: &[&str]) -> OidcConfig {
    OidcConfig {
        issuer: ISSUER.into(),
        signing_keys: keys.iter().map(|k| k.to_string()).collect(),
        token_seconds: 300,
    }
}

fn key_secrets() -> MapSecrets {
    let mut s = secrets();
    for name in [
        "es256_a",
        "es256_b",
        "rs256",
        "rsa1024",
        "p384",
        "ed25519",
        "ec_sec1",
        "rsa_pkcs1",
    ] {
        s = s.with(&format!("KEY_{}", name.to_uppercase()), &pem(name));
    }
    s.with(
        "KEY_GARBAGE",
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----",
    )
}

fn token_issuer(keys: &[&str]) -> TokenIssuer {
    TokenIssuer::new(&oidc_config(keys), &key_secrets()).unwrap()
}

/// RFC 7638 §3, computed here independently: the required members, sorted, no spaces.
fn thumbprint(jwk: &Value) -> String {
    let members: &[&str] = match jwk["kty"].as_str().unwrap() {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        other => panic!("{other}"),
    };
    let canonical: serde_json::Map<String, Value> = members
        .iter()
        .map(|m| (m.to_string(), jwk[*m].clone()))
        .collect();
    URL_SAFE_NO_PAD.encode(Sha256::digest(Value::Object(canonical).to_string()))
}

fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn jwks_publishes_public_keys_with_rfc7638_kids() {
    let issuer = token_issuer(&["KEY_ES256_A", "KEY_RS256"]);
    let jwks = issuer.jwks();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for (jwk, alg) in keys.iter().zip(["ES256", "RS256"]) {
        assert_eq!(jwk["kid"], thumbprint(jwk), "{jwk}");
        assert_eq!(
            (jwk["use"].as_str(), jwk["alg"].as_str()),
            (Some("sig"), Some(alg))
        );
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(jwk.get(private).is_none(), "{private} published");
        }
    }
    assert_eq!(keys[0]["crv"], "P-256");
    // Derived from the secrets only: a second isolate publishes the same bytes.
    assert_eq!(
        jwks.to_string(),
        token_issuer(&["KEY_ES256_A", "KEY_RS256"])
            .jwks()
            .to_string()
    );
}

#[test]
fn minted_token_claims_header_and_lifetime() {
    for (key, alg) in [("KEY_ES256_A", "ES256"), ("KEY_RS256", "RS256")] {
        let issuer = token_issuer(&[key]);
        let mut extra = serde_json::Map::new();
        extra.insert("urn:rise:caller".into(), json!({"sub": "alice"}));
        let token = block_on(issuer.mint(
            rise_registry_broker::oidc::Mint {
                audience: "sts.amazonaws.com",
                subject: "project:my-app:push",
                lifetime_seconds: 300,
                extra,
                header: jwt_compact::Header::empty(),
                family: rise_registry_broker::signer::KeyFamily::Any,
            },
            NOW_MS,
        ));
        let token = token.expose();
        let header = decode_part(token, 0);
        let kid = issuer.signer().current().kid();
        assert_eq!(header, json!({"alg": alg, "kid": kid, "typ": "JWT"}));
        let claims = decode_part(token, 1);
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["aud"], "sts.amazonaws.com");
        assert_eq!(claims["sub"], "project:my-app:push");
        assert_eq!(claims["iat"], NOW_S);
        assert_eq!(claims["nbf"], NOW_S);
        assert_eq!(claims["exp"], NOW_S + 300);
        assert_eq!(claims["urn:rise:caller"]["sub"], "alice");
        let jti = claims["jti"].as_str().unwrap();
        assert!(jti.len() == 32 && jti.bytes().all(|b| b.is_ascii_hexdigit()));
        // The broker's own verifier, configured with the published JWKS, accepts it.
        let verifier = verifier_for(&issuer, "sts.amazonaws.com");
        let caller = block_on(verifier.verify(token, NOW_MS, &FakeHttp::new())).unwrap();
        assert_eq!(caller.subject(), "project:my-app:push");
    }
}

fn verifier_for(issuer: &TokenIssuer, audience: &str) -> Verifier {
    let auth = config::load(
        &[],
        None,
        [(
            "RISE_AUTH__ISSUERS",
            json!([{"issuer": ISSUER, "audience": audience, "jwks": issuer.jwks().to_string()}])
                .to_string()
                .as_str(),
        ), ("RISE_REGISTRY__TYPE", "docker"), ("RISE_REGISTRY__REGISTRY_URL", "localhost:5000")],
    )
    .unwrap()
    .auth;
    Verifier::from_config(&auth, &MapSecrets::default()).unwrap()
}

#[test]
fn rotation_signs_with_the_first_key_and_publishes_all() {
    let before = token_issuer(&["KEY_ES256_A"]);
    let during = token_issuer(&["KEY_ES256_A", "KEY_ES256_B"]);
    let after = token_issuer(&["KEY_ES256_B", "KEY_ES256_A"]);
    let kid_a = before.signer().current().kid().to_owned();
    let kid_b = after.signer().current().kid().to_owned();
    assert_ne!(kid_a, kid_b);
    assert_eq!(
        during.signer().current().kid(),
        kid_a,
        "next key published, not signing"
    );
    let kids = |i: &TokenIssuer| -> Vec<String> {
        i.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kids(&during), [kid_a.clone(), kid_b.clone()]);
    assert_eq!(kids(&after), [kid_b.clone(), kid_a]);
    // A token from the swapped key verifies against the set published during the overlap.
    let token = block_on(after.mint(
        rise_registry_broker::oidc::Mint {
            audience: "aud",
            subject: "s",
            lifetime_seconds: 60,
            extra: Default::default(),
            header: jwt_compact::Header::empty(),
            family: rise_registry_broker::signer::KeyFamily::Any,
        },
        NOW_MS,
    ));
    assert!(block_on(verifier_for(&during, "aud").verify(
        token.expose(),
        NOW_MS,
        &FakeHttp::new()
    ))
    .is_ok());
    // …and not against the set from before the next key was published.
    assert!(block_on(verifier_for(&before, "aud").verify(
        token.expose(),
        NOW_MS,
        &FakeHttp::new()
    ))
    .is_err());
}

#[test]
fn bad_key_secrets_are_named_never_shown() {
    let cases = [
        ("KEY_MISSING", "is not set"),
        ("KEY_RSA1024", "under 2048 bits"),
        ("KEY_P384", "neither a P-256 nor an RSA"),
        ("KEY_ED25519", "neither a P-256 nor an RSA"),
        ("KEY_EC_SEC1", "not a PKCS#8"),
        ("KEY_RSA_PKCS1", "not a PKCS#8"),
        ("KEY_GARBAGE", "neither a P-256 nor an RSA"),
    ];
    for (name, reason) in cases {
        let err =
            TokenIssuer::new(&oidc_config(&["KEY_ES256_A", name]), &key_secrets()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(name) && text.contains(reason),
            "{name}: {text}"
        );
        assert!(
            !text.contains("BEGIN") && !text.contains("base64"),
            "{text}"
        );
    }
    let err = TokenIssuer::new(
        &oidc_config(&["KEY_ES256_A", "KEY_ES256_A"]),
        &key_secrets(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("same key"), "{err}");
    // Formatting never prints key material.
    let debug = format!("{:?}", token_issuer(&["KEY_ES256_A", "KEY_RS256"]));
    assert!(
        !debug.contains("BEGIN") && debug.contains("ES256"),
        "{debug}"
    );
    let single = rise_registry_broker::crypto::PrivateKey::from_pkcs8_pem(&pem("es256_a")).unwrap();
    assert!(!format!("{single:?}").contains(&pem("es256_a")[30..60]));
}

#[test]
fn oidc_section_is_validated_naming_the_key() {
    let load = |table: Value| {
        config::load(
            &[],
            None,
            [
                ("RISE_REGISTRY__TYPE", "docker"),
                ("RISE_REGISTRY__REGISTRY_URL", "localhost:5000"),
                ("RISE_OIDC", ""), // not a config var (no `__`): ignored
                ("RISE_OIDC__ISSUER", table["issuer"].as_str().unwrap()),
                (
                    "RISE_OIDC__SIGNING_KEYS",
                    &table["signing_keys"].to_string(),
                ),
                (
                    "RISE_OIDC__TOKEN_SECONDS",
                    &table["token_seconds"].to_string(),
                ),
            ],
        )
    };
    let ok = json!({"issuer": ISSUER, "signing_keys": ["K"], "token_seconds": 300});
    assert!(load(ok.clone()).unwrap().oidc.is_some());
    for (key, value, name) in [
        ("issuer", json!("http://broker.example.com"), "oidc.issuer"),
        (
            "issuer",
            json!("https://broker.example.com/"),
            "oidc.issuer",
        ),
        (
            "issuer",
            json!("https://broker.example.com/path"),
            "oidc.issuer",
        ),
        ("issuer", json!("http://127.0.0.1:8787"), ""),
        ("signing_keys", json!([]), "oidc.signing_keys"),
        ("token_seconds", json!(59), "oidc.token_seconds"),
        ("token_seconds", json!(3601), "oidc.token_seconds"),
    ] {
        let mut table = ok.clone();
        table[key] = value;
        match (load(table), name) {
            (Ok(_), "") => {}
            (Err(ConfigError::Key { key, .. }), name) => assert_eq!(key, name),
            (other, name) => panic!("{name}: {other:?}"),
        }
    }
}

// ---- the broker's routes ----------------------------------------------------------

fn oidc_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("RISE_OIDC__ISSUER", ISSUER),
        ("RISE_OIDC__SIGNING_KEYS", r#"["KEY_ES256_A", "KEY_RS256"]"#),
    ]
}

/// Issue 20 (6a): the broker's own issuer may not be a trusted caller issuer.
#[test]
fn the_brokers_own_issuer_is_never_a_caller_issuer() {
    let mut vars = oidc_vars();
    let issuers = json!([
        {"issuer": "rise-dev", "audience": "rise", "hs256_secret": "RISE_JWT_SECRET"},
        {"issuer": "https://broker.example.com/", "audience": "rise", "jwks_url": "https://broker.example.com/.well-known/jwks.json"},
    ])
    .to_string();
    vars.push(("RISE_AUTH__ISSUERS", issuers.leak()));
    let err = config::load_embedded(Some("development"), vars).unwrap_err();
    assert!(err.to_string().contains("auth.issuers[1].issuer"), "{err}");
    assert!(config::load_embedded(Some("development"), oidc_vars()).is_ok());
}

#[test]
fn well_known_routes_exist_only_with_oidc() {
    let config = config::load_embedded(Some("development"), oidc_vars()).unwrap();
    let b = Broker::new(config, &key_secrets()).unwrap();
    let http = FakeHttp::new();
    let discovery = run(&b, &get("/.well-known/openid-configuration", None), &http);
    assert_eq!(discovery.response.status, 200);
    assert_eq!(
        discovery.response.header("cache-control"),
        Some("public, max-age=300")
    );
    let doc = body(&discovery);
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256", "RS256"])
    );
    assert_eq!(doc["response_types_supported"], json!(["id_token"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert!(doc["claims_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("sub")));
    let jwks = run(&b, &get("/.well-known/jwks.json", None), &http);
    assert_eq!(jwks.response.status, 200);
    assert_eq!(body(&jwks)["keys"].as_array().unwrap().len(), 2);
    assert!(!jwks.response.body.contains("\"d\""));
    let post = run(
        &b,
        &ApiRequest {
            method: "POST".into(),
            ..get("/.well-known/jwks.json", None)
        },
        &http,
    );
    assert_eq!(post.response.status, 405);
    assert_eq!(http.call_count(), 0);

    let plain = broker_with_vars(&[]);
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
    ] {
        let outcome = run(&plain, &get(path, None), &http);
        assert_eq!(outcome.response.status, 404, "{path}");
        assert_eq!(body(&outcome)["code"], "not_found");
    }
}

#[test]
fn a_bad_key_secret_answers_every_route_500_naming_it() {
    let config = config::load_embedded(Some("development"), oidc_vars()).unwrap();
    let secrets = key_secrets().with("KEY_RS256", &pem("rsa1024"));
    let err = Broker::new(config, &secrets).unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker secret `KEY_RS256` holds an RSA key under 2048 bits"
    );
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/health",
    ] {
        let outcome = block_on(respond(
            Err(&err),
            &get(path, None),
            &Context {
                now_ms: NOW_MS,
                clock: &FixedClock(NOW_MS),
                http: &FakeHttp::new(),
                secrets: &secrets,
                sleeper: &RecordingSleeper::default(),
            },
        ));
        assert_eq!(outcome.response.status, 500);
        assert!(outcome.response.body.contains("KEY_RS256"));
        assert!(!outcome.response.body.contains("BEGIN"));
    }
}

use rise_registry_broker::api::respond;
use rise_registry_broker::http::ApiRequest;
use rise_registry_broker::runtime::{Context, OutboundRequest};

// ---- keyless ECR --------------------------------------------------------------------

fn web_identity_vars(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut keyless = vec![("RISE_REGISTRY__CREDENTIALS", "web_identity")];
    keyless.extend(oidc_vars());
    keyless.retain(|(k, _)| extra.iter().all(|(e, _)| e != k));
    keyless.extend_from_slice(extra);
    ecr_vars(&keyless)
}

/// A web-identity broker whose secrets hold no AWS key at all.
fn keyless_broker(extra: &[(&'static str, &'static str)]) -> (Broker, MapSecrets) {
    let secrets = key_secrets();
    assert!(secrets.0.keys().all(|k| !k.starts_with("AWS_")));
    let config = config::load_embedded(Some("development"), web_identity_vars(extra)).unwrap();
    (Broker::new(config, &secrets).unwrap(), secrets)
}

fn web_identity_ok() -> Result<
    rise_registry_broker::runtime::OutboundResponse,
    rise_registry_broker::runtime::TransportError,
> {
    let Ok(mut response) = sts_ok("ASIAWEBIDENTITY00001", 3600) else {
        unreachable!()
    };
    let text = String::from_utf8(response.body)
        .unwrap()
        .replace("AssumeRoleResponse", "AssumeRoleWithWebIdentityResponse")
        .replace("AssumeRoleResult", "AssumeRoleWithWebIdentityResult");
    response.body = text.into_bytes();
    Ok(response)
}

fn form(request: &OutboundRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn param(form: &[(String, String)], key: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn issue_keyless(b: &Broker, secrets: &MapSecrets, http: &FakeHttp) -> (u16, Value, Value) {
    let request = get(
        "/registry/credentials?project=my-app",
        Some(&token_for(&["my-app"])),
    );
    let outcome = run_with(
        b,
        &request,
        http,
        secrets,
        &RecordingSleeper::default(),
        NOW_MS,
    );
    (outcome.response.status, body(&outcome), audit(&outcome))
}

#[test]
fn keyless_ecr_exchanges_a_minted_token_without_any_aws_secret() {
    let (b, secrets) = keyless_broker(&[]);
    let http = FakeHttp::new();
    http.script(STS, vec![web_identity_ok()]);
    http.script(ECR, vec![ecr_ok(NOW_F + 43_200.0)]);
    let (status, body, audit) = issue_keyless(&b, &secrets, &http);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["credentials"]["password"], PASSWORD);
    assert_eq!(body["credentials"]["expires_in"], 3540);
    assert_eq!(audit["subrequests"], 2);

    let sts = &http.calls_for(STS)[0];
    assert!(
        sts.headers.iter().all(|(k, _)| k != "authorization"),
        "not signed"
    );
    let form = form(sts);
    assert_eq!(
        param(&form, "Action").as_deref(),
        Some("AssumeRoleWithWebIdentity")
    );
    assert_eq!(
        param(&form, "RoleArn").as_deref(),
        Some("arn:aws:iam::123456789012:role/rise-ecr-push")
    );
    assert_eq!(
        param(&form, "RoleSessionName").as_deref(),
        Some("rise-alice@example.com")
    );
    assert_eq!(param(&form, "DurationSeconds").as_deref(), Some("3600"));
    assert!(
        param(&form, "SourceIdentity").is_none(),
        "comes from the token"
    );
    let policy: Value = serde_json::from_str(&param(&form, "Policy").unwrap()).unwrap();
    assert_eq!(
        policy["Statement"][1]["Resource"],
        "arn:aws:ecr:us-east-1:123456789012:repository/rise/my-app"
    );

    let token = param(&form, "WebIdentityToken").unwrap();
    let claims = decode_part(&token, 1);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], "sts.amazonaws.com");
    assert_eq!(claims["sub"], "project:my-app:push");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(
        claims["https://aws.amazon.com/source_identity"],
        "alice@example.com"
    );
    assert_eq!(
        claims["urn:rise:caller"],
        json!({"sub": "alice@example.com", "iss": "rise-dev"})
    );
    let issuer =
        TokenIssuer::new(&oidc_config(&["KEY_ES256_A", "KEY_RS256"]), &key_secrets()).unwrap();
    assert!(block_on(verifier_for(&issuer, "sts.amazonaws.com").verify(
        &token,
        NOW_MS,
        &FakeHttp::new()
    ))
    .is_ok());

    // GetAuthorizationToken is signed with the session STS returned.
    let ecr = &http.calls_for(ECR)[0];
    let auth = ecr
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert!(
        auth.1.contains("Credential=ASIAWEBIDENTITY00001/"),
        "{}",
        auth.1
    );
    // The minted token appears nowhere the broker writes.
    assert!(!audit.to_string().contains(&token));
}

#[test]
fn keyless_errors_are_mapped_and_only_communication_errors_retried() {
    for (code, status, error_code, attempts) in [
        ("InvalidIdentityToken", 502, "upstream_denied", 1),
        ("IDPRejectedClaim", 502, "upstream_denied", 1),
        ("ExpiredTokenException", 502, "upstream_denied", 1),
        ("IDPCommunicationError", 502, "upstream_error", 3),
    ] {
        let (b, secrets) = keyless_broker(&[]);
        let http = FakeHttp::new();
        http.script(STS, (0..3).map(|_| err(400, &sts_error(code))).collect());
        let (got, body, audit) = issue_keyless(&b, &secrets, &http);
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(error_code)),
            "{code}"
        );
        assert_eq!(http.calls_to(STS), attempts, "{code}");
        assert_eq!(audit["subrequests"], attempts as u64, "{code}");
        assert!(audit["reason"].as_str().unwrap().contains(code));
        assert_eq!(http.calls_to(ECR), 0);
    }
}

#[test]
fn web_identity_needs_oidc_and_refuses_chaining() {
    let no_oidc: Vec<_> = web_identity_vars(&[])
        .into_iter()
        .filter(|(k, _)| !k.starts_with("RISE_OIDC"))
        .collect();
    let err = Broker::new(
        config::load_embedded(Some("development"), no_oidc).unwrap(),
        &key_secrets(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Key { key, .. } if key == "registry.credentials"),
        "{err}"
    );
    let chained = web_identity_vars(&[(
        "RISE_REGISTRY__ROLE_ARN",
        "arn:aws:iam::123456789012:role/hop",
    )]);
    let err = config::load_embedded(Some("development"), chained).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Key { key, .. } if key == "registry.role_arn"),
        "{err}"
    );
    // source_identity = false leaves the claim out.
    let (b, secrets) = keyless_broker(&[("RISE_REGISTRY__SOURCE_IDENTITY", "false")]);
    let http = FakeHttp::new();
    http.script(STS, vec![web_identity_ok()]);
    http.script(ECR, vec![ecr_ok(NOW_F + 43_200.0)]);
    assert_eq!(issue_keyless(&b, &secrets, &http).0, 200);
    let token = param(&form(&http.calls_for(STS)[0]), "WebIdentityToken").unwrap();
    assert!(decode_part(&token, 1)
        .get("https://aws.amazon.com/source_identity")
        .is_none());
}

#[test]
fn a_role_per_project_through_the_placeholder() {
    let (b, secrets) = keyless_broker(&[(
        "RISE_REGISTRY__PUSH_ROLE_ARN",
        "arn:aws:iam::123456789012:role/rise-push/{project}",
    )]);
    let http = FakeHttp::new();
    http.script(STS, vec![web_identity_ok()]);
    http.script(ECR, vec![ecr_ok(NOW_F + 43_200.0)]);
    assert_eq!(issue_keyless(&b, &secrets, &http).0, 200);
    let form = form(&http.calls_for(STS)[0]);
    assert_eq!(
        param(&form, "RoleArn").as_deref(),
        Some("arn:aws:iam::123456789012:role/rise-push/my-app")
    );
    // A role name that would pass 64 characters for a long project name is refused
    // (a prefix belongs in the role path, which does not count).
    let long = format!(
        "arn:aws:iam::123456789012:role/{}-{{project}}",
        "r".repeat(10)
    );
    let vars = web_identity_vars(&[(
        "RISE_REGISTRY__PUSH_ROLE_ARN",
        Box::leak(long.into_boxed_str()),
    )]);
    let err = config::load_embedded(Some("development"), vars).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Key { key, .. } if key == "registry.push_role_arn"),
        "{err}"
    );
}

#[test]
fn a_signing_key_whose_public_half_is_another_keys_is_refused() {
    let good = pem("es256_a");
    assert_eq!(block_on(vectors::load_signing_key(&good)), Ok(()));
    let swapped = vectors::mismatched_p256_pem(&pem("es256_a"), &pem("es256_b"));
    let err = block_on(vectors::load_signing_key(&swapped)).unwrap_err();
    assert!(err.contains("does not match"), "{err}");
}
