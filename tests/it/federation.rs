//! Issue 18: keyless Google Artifact Registry and Azure Container Registry, in the core
//! against scripted upstreams: the exact requests (fields, headers, the minted token's
//! claims and key), the answer's shape and expiry, the cache, config refusals, and the
//! fault matrix for every new upstream call.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use rise_registry_broker::runtime::{OutboundRequest, OutboundResponse, TransportError};
use rise_registry_broker::secrets::MapSecrets;
use serde_json::{json, Value};

use crate::common::aws::token_for;
use crate::common::*;

pub const ISSUER: &str = "https://broker.example.com";
pub const PROVIDER: &str =
    "projects/123456/locations/global/workloadIdentityPools/rise-pool/providers/broker";
pub const GOOGLE_STS: &str = "https://sts.googleapis.com/v1/token";
pub const GOOGLE_SA: &str = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/push-my-app@rise-gcp.iam.gserviceaccount.com:generateAccessToken";
pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_PUSH: &str = "aaaaaaaa-0000-0000-0000-000000000001";
pub const CLIENT_PULL: &str = "aaaaaaaa-0000-0000-0000-000000000002";
pub const ENTRA: &str =
    "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token";
pub const ACR_EXCHANGE: &str = "https://rise.azurecr.io/oauth2/exchange";
pub const ACR_TOKEN: &str = "https://rise.azurecr.io/oauth2/token";

fn pem(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/oidc/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

pub fn key_secrets() -> MapSecrets {
    secrets()
        .with("KEY_ES256_A", &pem("es256_a"))
        .with("KEY_RS256", &pem("rs256"))
        // The minting providers' stored identities (the fault matrix runs them too).
        .with("GITLAB_TOKEN", "glpat-fault-matrix-token")
        .with("HARBOR_USERNAME", "robot$rise-broker")
        .with("HARBOR_PASSWORD", "harbor-fault-matrix-pass")
}

pub const GITLAB_CREATE: &str = "https://gitlab.example.com/api/v4/projects/my-app/deploy_tokens";
pub const HARBOR_CREATE: &str = "https://harbor.example.com/api/v2.0/robots";

/// A broker for `type` with `[oidc]` (ES256 key first, then RSA) and `vars`.
pub fn cloud_broker(kind: &str, vars: &[(&str, &str)]) -> Result<Broker, String> {
    let mut all = vec![
        ("RISE_REGISTRY__TYPE", kind),
        ("RISE_OIDC__ISSUER", ISSUER),
        ("RISE_OIDC__SIGNING_KEYS", r#"["KEY_ES256_A", "KEY_RS256"]"#),
    ];
    all.retain(|(k, _)| vars.iter().all(|(v, _)| v != k));
    all.extend_from_slice(vars);
    let config = config::load_embedded(Some("development"), all).map_err(|e| e.to_string())?;
    Broker::new(config, &key_secrets()).map_err(|e| e.to_string())
}

pub fn gar_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("RISE_REGISTRY__LOCATION", "europe-west1"),
        ("RISE_REGISTRY__GCP_PROJECT", "rise-gcp"),
        ("RISE_REGISTRY__WORKLOAD_IDENTITY_PROVIDER", PROVIDER),
    ]
}

pub fn acr_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("RISE_REGISTRY__REGISTRY_URL", "rise.azurecr.io"),
        ("RISE_REGISTRY__TENANT_ID", TENANT),
        (
            "RISE_REGISTRY__CLIENT_IDS",
            r#"{"my-app": {"push": "aaaaaaaa-0000-0000-0000-000000000001", "pull": "aaaaaaaa-0000-0000-0000-000000000002"}}"#,
        ),
    ]
}

pub fn json_ok(body: Value) -> Result<OutboundResponse, TransportError> {
    Ok(OutboundResponse {
        status: 200,
        headers: vec![("x-ms-request-id".into(), "req-1".into())],
        body: body.to_string().into_bytes(),
    })
}

/// An unsigned JWT with `exp` (the broker reads, never verifies, ACR's tokens).
pub fn acr_jwt(exp_s: i64, marker: &str) -> String {
    let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        enc(json!({"alg": "RS256"})),
        enc(json!({"iss": "Azure Container Registry", "exp": exp_s, "jti": marker}))
    )
}

pub fn google_ok() -> Result<OutboundResponse, TransportError> {
    json_ok(
        json!({"access_token": "ya29.federated", "issued_token_type":
        "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": 3599}),
    )
}

pub fn acr_script(http: &FakeHttp) {
    http.script(
        ENTRA,
        vec![json_ok(
            json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "entra-at"}),
        )],
    );
    http.script(
        ACR_EXCHANGE,
        vec![json_ok(
            json!({"refresh_token": acr_jwt(NOW_S + 10_800, "refresh")}),
        )],
    );
    http.script(
        ACR_TOKEN,
        vec![json_ok(
            json!({"access_token": acr_jwt(NOW_S + 4_500, "access")}),
        )],
    );
}

pub fn form(request: &OutboundRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn field(request: &OutboundRequest, name: &str) -> String {
    form(request)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no field {name}"))
}

fn jwt_part(token: &str, i: usize) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(i).unwrap())
            .unwrap(),
    )
    .unwrap()
}

pub fn issue(b: &Broker, http: &FakeHttp, query: &str) -> (u16, Value) {
    let request = get(
        &format!("/registry/credentials?{query}"),
        Some(&token_for(&["my-app", "other-app"])),
    );
    let outcome = run_with(
        b,
        &request,
        http,
        &key_secrets(),
        &RecordingSleeper::default(),
        NOW_MS,
    );
    (outcome.response.status, body(&outcome))
}

#[test]
fn gar_exchanges_the_brokers_token_as_googles_client_library_does() {
    let b = cloud_broker("gar", &gar_vars()).unwrap();
    let http = FakeHttp::new();
    http.script(GOOGLE_STS, vec![google_ok()]);
    let (status, body) = issue(&b, &http, "project=my-app");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"credentials": {"registry_url": "europe-west1-docker.pkg.dev",
            "username": "oauth2accesstoken", "password": "ya29.federated", "expires_in": 3539},
            "repository": "rise-gcp/my-app/my-app",
            "image": "europe-west1-docker.pkg.dev/rise-gcp/my-app/my-app",
            "auth_method": "login_credentials"})
    );
    let sts = &http.calls_for(GOOGLE_STS)[0];
    assert_eq!(sts.method, "POST");
    // The same request in the `http` crate's types, as any Rust client would send it.
    let as_http = sts.to_http().unwrap();
    assert_eq!(as_http.uri().to_string(), GOOGLE_STS);
    assert_eq!(as_http.method(), "POST");
    assert!(as_http.headers().get("authorization").is_none());
    assert_eq!(as_http.body(), &sts.body);
    assert!(sts.headers.iter().all(|(k, _)| k != "authorization"));
    assert!(sts.headers.contains(&(
        "content-type".into(),
        "application/x-www-form-urlencoded".into()
    )));
    let names: Vec<String> = form(sts).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "grant_type",
            "audience",
            "scope",
            "requested_token_type",
            "subject_token",
            "subject_token_type"
        ]
    );
    let audience = format!("//iam.googleapis.com/{PROVIDER}");
    assert_eq!(field(sts, "audience"), audience);
    assert_eq!(
        field(sts, "grant_type"),
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(
        field(sts, "scope"),
        "https://www.googleapis.com/auth/cloud-platform"
    );
    let token = field(sts, "subject_token");
    let (header, claims) = (jwt_part(&token, 0), jwt_part(&token, 1));
    // Google takes ES256: the first key signs.
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], audience.as_str());
    assert_eq!(claims["sub"], "project:my-app:push");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );

    // Cached: the second request makes no upstream call.
    let (status, _) = issue(&b, &http, "project=my-app");
    assert_eq!((status, http.call_count()), (200, 1));
    // Pull is its own credential with its own subject.
    http.script(GOOGLE_STS, vec![google_ok()]);
    assert_eq!(issue(&b, &http, "project=my-app&access=pull").0, 200);
    let pull = field(&http.calls_for(GOOGLE_STS)[1], "subject_token");
    assert_eq!(jwt_part(&pull, 1)["sub"], "project:my-app:pull");
}

#[test]
fn gar_impersonates_the_projects_service_account_when_configured() {
    let mut vars = gar_vars();
    vars.push((
        "RISE_REGISTRY__SERVICE_ACCOUNT",
        "{access}-{project}@rise-gcp.iam.gserviceaccount.com",
    ));
    vars.push(("RISE_REGISTRY__TOKEN_SECONDS", "900"));
    vars.push(("RISE_REGISTRY__REPOSITORY", "images-{project}"));
    let b = cloud_broker("gar", &vars).unwrap();
    let http = FakeHttp::new();
    http.script(GOOGLE_STS, vec![google_ok()]);
    http.script(
        GOOGLE_SA,
        vec![json_ok(
            json!({"accessToken": "ya29.impersonated", "expireTime": "2026-01-01T00:15:00Z"}),
        )],
    );
    let (status, body) = issue(&b, &http, "project=my-app");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["credentials"]["password"], "ya29.impersonated");
    assert_eq!(body["credentials"]["expires_in"], 840);
    assert_eq!(body["repository"], "rise-gcp/images-my-app/my-app");
    let sa = &http.calls_for(GOOGLE_SA)[0];
    assert!(sa
        .headers
        .contains(&("authorization".into(), "Bearer ya29.federated".into())));
    let sent: Value = serde_json::from_slice(&sa.body).unwrap();
    assert_eq!(
        sent,
        json!({"scope": ["https://www.googleapis.com/auth/cloud-platform"], "lifetime": "900s"})
    );
}

#[test]
fn acr_chains_entra_exchange_and_a_repository_token() {
    let b = cloud_broker("acr", &acr_vars()).unwrap();
    let http = FakeHttp::new();
    acr_script(&http);
    let (status, body) = issue(&b, &http, "project=my-app");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["credentials"]["username"], NULL_GUID);
    assert_eq!(
        body["credentials"]["password"],
        acr_jwt(NOW_S + 4_500, "access")
    );
    assert_eq!(body["credentials"]["expires_in"], 4_440);
    assert_eq!(body["repository"], "my-app");
    assert_eq!(body["image"], "rise.azurecr.io/my-app");

    let entra = &http.calls_for(ENTRA)[0];
    let names: Vec<String> = form(entra).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "client_assertion",
            "client_assertion_type",
            "client_id",
            "grant_type",
            "scope"
        ]
    );
    assert_eq!(field(entra, "client_id"), CLIENT_PUSH);
    assert_eq!(
        field(entra, "scope"),
        "https://containerregistry.azure.net/.default"
    );
    let assertion = field(entra, "client_assertion");
    // Entra verifies RS256 only: the first RSA key signs, though an ES256 key is first.
    assert_eq!(jwt_part(&assertion, 0)["alg"], "RS256");
    let claims = jwt_part(&assertion, 1);
    assert_eq!(claims["aud"], "api://AzureADTokenExchange");
    assert_eq!(claims["sub"], "project:my-app:push");
    assert_eq!(claims["iss"], ISSUER);

    let exchange = &http.calls_for(ACR_EXCHANGE)[0];
    assert_eq!(
        form(exchange),
        [
            ("grant_type".into(), "access_token".into()),
            ("service".into(), "rise.azurecr.io".into()),
            ("tenant".into(), TENANT.into()),
            ("access_token".into(), "entra-at".into()),
        ]
    );
    let narrow = &http.calls_for(ACR_TOKEN)[0];
    assert_eq!(field(narrow, "scope"), "repository:my-app:pull,push");
    assert_eq!(field(narrow, "grant_type"), "refresh_token");
    assert_eq!(
        field(narrow, "refresh_token"),
        acr_jwt(NOW_S + 10_800, "refresh")
    );

    // Pull: the pull identity, and a pull-only scope.
    acr_script(&http);
    assert_eq!(issue(&b, &http, "project=my-app&access=pull").0, 200);
    assert_eq!(field(&http.calls_for(ENTRA)[1], "client_id"), CLIENT_PULL);
    assert_eq!(
        field(&http.calls_for(ACR_TOKEN)[1], "scope"),
        "repository:my-app:pull"
    );
}

const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

#[test]
fn acr_refuses_a_project_without_an_identity_before_any_call() {
    let b = cloud_broker("acr", &acr_vars()).unwrap();
    let http = FakeHttp::new();
    let (status, body) = issue(&b, &http, "project=other-app");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "forbidden");
    assert_eq!(body.as_object().unwrap().len(), 2);
    assert_eq!(http.call_count(), 0);
}

#[test]
fn acr_without_narrowing_answers_the_refresh_token() {
    let mut vars = acr_vars();
    vars.push(("RISE_REGISTRY__SCOPE_TO_REPOSITORY", "false"));
    vars.push(("RISE_REGISTRY__NAMESPACE", "teams/a"));
    let b = cloud_broker("acr", &vars).unwrap();
    let http = FakeHttp::new();
    acr_script(&http);
    let (status, body) = issue(&b, &http, "project=my-app");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["credentials"]["password"],
        acr_jwt(NOW_S + 10_800, "refresh")
    );
    assert_eq!(body["credentials"]["expires_in"], 10_740);
    assert_eq!(body["repository"], "teams/a/my-app");
    assert_eq!(http.calls_to(ACR_TOKEN), 0);
}

#[test]
fn keyless_configs_that_must_not_load() {
    // `base` with `extra`'s keys replaced or added.
    let with = |base: Vec<(&'static str, &'static str)>, extra: &[(&'static str, &'static str)]| {
        let mut v = base;
        v.retain(|(k, _)| extra.iter().all(|(e, _)| e != k));
        v.extend_from_slice(extra);
        v
    };
    type Vars = Vec<(&'static str, &'static str)>;
    let cases: Vec<(&str, Vars, &str)> = vec![
        // ACR needs an RSA key: the ES256-only issuer is refused naming signing_keys.
        (
            "acr",
            with(
                acr_vars(),
                &[("RISE_OIDC__SIGNING_KEYS", r#"["KEY_ES256_A"]"#)],
            ),
            "oidc.signing_keys",
        ),
        (
            "gar",
            with(gar_vars(), &[("RISE_REGISTRY__REPOSITORY", "shared")]),
            "registry.repository",
        ),
        (
            "gar",
            with(
                gar_vars(),
                &[(
                    "RISE_REGISTRY__SERVICE_ACCOUNT",
                    "one@rise-gcp.iam.gserviceaccount.com",
                )],
            ),
            "registry.service_account",
        ),
        (
            "gar",
            with(gar_vars(), &[("RISE_REGISTRY__TOKEN_SECONDS", "7200")]),
            "registry.token_seconds",
        ),
        (
            "gar",
            with(
                gar_vars(),
                &[("RISE_REGISTRY__STS_ENDPOINT", "http://sts.example.com")],
            ),
            "registry.sts_endpoint",
        ),
        (
            "gar",
            with(
                gar_vars(),
                &[("RISE_REGISTRY__STS_ENDPOINT", "https://sts.example.com/v1")],
            ),
            "registry.sts_endpoint",
        ),
        (
            "acr",
            with(acr_vars(), &[("RISE_REGISTRY__CLIENT_ID", CLIENT_PUSH)]),
            "registry.client_id",
        ),
        (
            "acr",
            vec![
                ("RISE_REGISTRY__REGISTRY_URL", "rise.azurecr.io"),
                ("RISE_REGISTRY__TENANT_ID", TENANT),
                ("RISE_REGISTRY__CLIENT_ID", CLIENT_PUSH),
                ("RISE_REGISTRY__SCOPE_TO_REPOSITORY", "false"),
            ],
            "registry.scope_to_repository",
        ),
        (
            "acr",
            vec![
                ("RISE_REGISTRY__REGISTRY_URL", "rise.azurecr.io"),
                ("RISE_REGISTRY__TENANT_ID", TENANT),
                ("RISE_REGISTRY__SCOPE_TO_REPOSITORY", "false"),
                (
                    "RISE_REGISTRY__CLIENT_IDS",
                    r#"{"my-app": {"push": "aaaaaaaa-0000-0000-0000-000000000001"}}"#,
                ),
            ],
            "registry.client_ids.my-app.pull",
        ),
        (
            "acr",
            with(
                acr_vars(),
                &[(
                    "RISE_REGISTRY__CLIENT_IDS",
                    r#"{"My App": {"push": "aaaaaaaa-0000-0000-0000-000000000001"}}"#,
                )],
            ),
            "registry.client_ids.My App",
        ),
    ];
    for (kind, vars, key) in cases {
        let err = cloud_broker(kind, &vars).err().unwrap_or_default();
        assert!(err.contains(key), "{kind} {vars:?}: {err}");
    }
    // And without [oidc] at all.
    let err = config::load_embedded(
        Some("development"),
        with(gar_vars(), &[("RISE_REGISTRY__TYPE", "gar")]),
    )
    .map(|c| Broker::new(c, &key_secrets()).err().map(|e| e.to_string()));
    assert!(format!("{err:?}").contains("[oidc]"), "{err:?}");
}

#[test]
fn cloud_answers_that_are_unusable_are_upstream_errors() {
    // An expired answer, a token with spaces, an ACR token without `exp`.
    let b = cloud_broker("gar", &gar_vars()).unwrap();
    let http = FakeHttp::new();
    http.script(
        GOOGLE_STS,
        vec![json_ok(json!({"access_token": "t", "expires_in": 30}))],
    );
    assert_eq!(
        issue(&b, &http, "project=my-app").1["code"],
        "upstream_error"
    );
    let b = cloud_broker("acr", &acr_vars()).unwrap();
    let http = FakeHttp::new();
    acr_script(&http);
    http.script(
        ACR_TOKEN,
        vec![json_ok(json!({"access_token": "not-a-jwt"}))],
    );
    assert_eq!(
        issue(&b, &http, "project=my-app").1["code"],
        "upstream_error"
    );
    // A denial is reported as such, and not retried.
    let http = FakeHttp::new();
    http.script(
        ENTRA,
        vec![Ok(OutboundResponse {
            status: 400,
            headers: vec![],
            body: br#"{"error":"invalid_client","error_description":"AADSTS70021: No matching federated identity record found"}"#.to_vec(),
        })],
    );
    let (status, body) = issue(&b, &http, "project=my-app");
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("upstream_denied"))
    );
    assert_eq!(body["error"], "Azure denied Entra client credentials");
    assert_eq!(http.calls_to(ENTRA), 1);
}

pub const QUAY: &str = "https://quay.io/oauth2/federation/robot/token";

pub fn quay_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("RISE_REGISTRY__REGISTRY_URL", "quay.io"),
        ("RISE_REGISTRY__ORGANIZATION", "rise"),
    ]
}

#[test]
fn quay_federates_the_projects_robot() {
    let b = cloud_broker("quay", &quay_vars()).unwrap();
    let http = FakeHttp::new();
    let quay_token = acr_jwt(NOW_S + 3600, "quay");
    http.script(QUAY, vec![json_ok(json!({"token": quay_token}))]);
    let (status, body) = issue(&b, &http, "project=my-app");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"credentials": {"registry_url": "quay.io", "username": "rise+my_app_push",
            "password": quay_token, "expires_in": 3540},
            "repository": "rise/my-app", "image": "quay.io/rise/my-app",
            "auth_method": "login_credentials"})
    );
    let call = &http.calls_for(QUAY)[0];
    assert_eq!(call.method, "GET");
    let basic = call
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .and_then(|(_, v)| v.strip_prefix("Basic "))
        .unwrap();
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(basic)
            .unwrap(),
    )
    .unwrap();
    let (user, token) = decoded.split_once(':').unwrap();
    assert_eq!(user, "rise+my_app_push");
    assert_eq!(jwt_part(token, 0)["alg"], "RS256");
    assert!(jwt_part(token, 0)["kid"].is_string());
    let claims = jwt_part(token, 1);
    assert_eq!(claims["sub"], "project:my-app:push");
    assert!(
        claims.get("aud").is_none(),
        "audience (none) by default: {claims}"
    );
    assert!(claims["iat"].is_i64() && claims["exp"].is_i64());
    // Quay's 401 is a denial, not retried, and its free-text message is not repeated.
    let http = FakeHttp::new();
    http.script(
        QUAY,
        vec![Ok(OutboundResponse {
            status: 401,
            headers: vec![],
            body: br#"{"error":"Failed to validate JWT: subject project:my-app:pull"}"#.to_vec(),
        })],
    );
    let (status, body) = issue(&b, &http, "project=my-app&access=pull");
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("upstream_denied"))
    );
    assert!(!body.to_string().contains("validate"));
    assert_eq!(http.calls_to(QUAY), 1);
    // Quay needs RS256: an ES256-only issuer is refused at load.
    let mut vars = quay_vars();
    vars.push(("RISE_OIDC__SIGNING_KEYS", r#"["KEY_ES256_A"]"#));
    assert!(cloud_broker("quay", &vars)
        .err()
        .unwrap()
        .contains("oidc.signing_keys"));
}

pub const JFROG: &str = "https://rise.jfrog.io/access/api/v1/oidc/token";

pub fn artifactory_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("RISE_REGISTRY__URL", "https://rise.jfrog.io"),
        ("RISE_REGISTRY__PROVIDER_NAME", "rise-broker"),
        ("RISE_REGISTRY__REGISTRY_URL", "rise.jfrog.io"),
        ("RISE_REGISTRY__IDENTITY_MAPPING", "rise-{project}-{access}"),
    ]
}

/// A JFrog access token (unsigned here) whose `sub` names the mapped user.
pub fn jfrog_token(exp_s: i64) -> String {
    let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        enc(json!({"alg": "RS256"})),
        enc(json!({"sub": "jfac@01rise/users/rise-my-app-push", "exp": exp_s}))
    )
}

#[test]
fn artifactory_exchanges_at_the_platform_and_logs_in_as_the_mapped_user() {
    let b = cloud_broker("artifactory", &artifactory_vars()).unwrap();
    let http = FakeHttp::new();
    let token = jfrog_token(NOW_S + 7200);
    http.script(
        JFROG,
        vec![json_ok(json!({"access_token": token, "expires_in": 900,
                            "token_type": "Bearer"}))],
    );
    let (status, body) = issue(&b, &http, "project=my-app");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"credentials": {"registry_url": "rise.jfrog.io", "username": "rise-my-app-push",
            "password": token, "expires_in": 840},
            "repository": "docker-local/my-app", "image": "rise.jfrog.io/docker-local/my-app",
            "auth_method": "login_credentials"})
    );
    let call = &http.calls_for(JFROG)[0];
    assert!(call.headers.iter().all(|(k, _)| k != "authorization"));
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    let subject = sent["subject_token"].as_str().unwrap().to_owned();
    assert_eq!(
        sent,
        json!({"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
               "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
               "subject_token": subject, "provider_name": "rise-broker",
               "identity_mapping_name": "rise-my-app-push"})
    );
    assert_eq!(jwt_part(&subject, 0)["alg"], "RS256");
    assert_eq!(jwt_part(&subject, 1)["aud"], "https://rise.jfrog.io");
    assert_eq!(jwt_part(&subject, 1)["sub"], "project:my-app:push");
    // Without `expires_in` the token's own `exp` counts.
    let http = FakeHttp::new();
    http.script(
        JFROG,
        vec![json_ok(json!({"access_token": jfrog_token(NOW_S + 600)}))],
    );
    let (status, body) = issue(&b, &http, "project=my-app&access=pull");
    assert_eq!(
        (status, body["credentials"]["expires_in"].as_i64()),
        (200, Some(540))
    );
    // JFrog's error shape is a denial, not retried.
    let http = FakeHttp::new();
    http.script(
        JFROG,
        vec![Ok(OutboundResponse {
            status: 401,
            headers: vec![],
            body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"no mapping for project:other-app:push"}]}"#.to_vec(),
        })],
    );
    let (status, body) = issue(&b, &http, "project=other-app");
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("upstream_denied"))
    );
    assert!(!body.to_string().contains("mapping"));
    assert_eq!(http.calls_to(JFROG), 1);
}
