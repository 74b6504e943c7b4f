//! The HTTP contract (DESIGN.md "HTTP API") on the docker provider, natively.

use crate::common::*;
use rise_registry_broker::api::respond;
use rise_registry_broker::error::ConfigError;
use rise_registry_broker::http::ApiRequest;
use rise_registry_broker::runtime::Context;
use rise_registry_broker::runtime::FixedClock;
use serde_json::json;

fn assert_json_error(outcome: &rise_registry_broker::api::Outcome, status: u16, code: &str) {
    let r = &outcome.response;
    assert_eq!(r.status, status, "body: {}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = body(outcome);
    assert_eq!(body["code"], code, "body: {}", r.body);
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only error and code: {}",
        r.body
    );
}

#[test]
fn docker_credentials_exactly_as_designed() {
    let broker = broker_with_vars(&[]);
    let token = dev_token(json!({"projects": ["my-app"]}));
    let http = FakeHttp::new();
    let outcome = run(
        &broker,
        &get("/registry/credentials?project=my-app", Some(&token)),
        &http,
    );
    assert_eq!(outcome.response.status, 200, "{}", outcome.response.body);
    assert_eq!(
        outcome.response.header("content-type"),
        Some("application/json")
    );
    assert_eq!(outcome.response.header("cache-control"), Some("no-store"));
    assert_eq!(
        body(&outcome),
        json!({
            "credentials": {"registry_url": "localhost:5000", "username": "", "password": ""},
            "repository": "rise-apps/my-app",
            "image": "localhost:5000/rise-apps/my-app",
            "auth_method": "client_auth"
        })
    );
    assert_eq!(
        http.call_count(),
        0,
        "docker provider makes no upstream call"
    );
    let audit = audit(&outcome);
    assert_eq!(audit["outcome"], "issued");
    assert_eq!(audit["sub"], "alice@example.com");
    assert_eq!(audit["project"], "my-app");
    assert_eq!(audit["grant"], "projects_claim");
    assert!(!audit.to_string().contains(&token));
}

#[test]
fn pull_access_and_namespace_override() {
    let broker = broker_with_vars(&[("RISE_REGISTRY__NAMESPACE", "team/apps")]);
    let token = dev_token(json!({"projects": ["svc.api"]}));
    let outcome = run(
        &broker,
        &get(
            "/registry/credentials?project=svc.api&access=pull",
            Some(&token),
        ),
        &FakeHttp::new(),
    );
    assert_eq!(outcome.response.status, 200);
    assert_eq!(body(&outcome)["repository"], "team/apps/svc.api");
}

#[test]
fn invalid_project_names_are_400_before_anything_else() {
    let broker = broker_with_vars(&[]);
    let long = "a".repeat(64);
    let cases = [
        ("project=*", "invalid_project"),
        ("project=my-app*", "invalid_project"),
        ("project=%3F", "invalid_project"),
        ("project=%22x%22", "invalid_project"),
        ("project='x'", "invalid_project"),
        ("project=a%2Fb", "invalid_project"),
        ("project=a/b", "invalid_project"),
        ("project=..", "invalid_project"),
        ("project=../etc", "invalid_project"),
        ("project=My-App", "invalid_project"),
        ("project=%C3%BCnicode", "invalid_project"),
        ("project=caf%C3%A9", "invalid_project"),
        ("project=%FF", "invalid_project"),
        (&format!("project={long}"), "invalid_project"),
        ("project=a&project=b", "invalid_project"),
        ("project=a&project=a", "invalid_project"),
        ("project=", "missing_project"),
        ("", "missing_project"),
        ("other=1", "missing_project"),
        ("project=ok&access=admin", "invalid_access"),
        ("project=ok&access=", "invalid_access"),
        ("project=ok&access=push&access=pull", "invalid_access"),
    ];
    for (query, code) in cases {
        // No token at all: a 400 proves validation ran first.
        let http = FakeHttp::new();
        let outcome = run(
            &broker,
            &get(&format!("/registry/credentials?{query}"), None),
            &http,
        );
        assert_json_error(&outcome, 400, code);
        assert_eq!(http.call_count(), 0);
    }
    // Exactly 63 characters is fine.
    let token = dev_token(json!({"projects": ["a".repeat(63)]}));
    let ok = run(
        &broker,
        &get(
            &format!("/registry/credentials?project={}", "a".repeat(63)),
            Some(&token),
        ),
        &FakeHttp::new(),
    );
    assert_eq!(ok.response.status, 200);
}

#[test]
fn token_errors_are_401_with_challenge() {
    let broker = broker_with_vars(&[]);
    let expired = {
        let mut claims = jwt_compact::Claims::new(
            json!({"iss": "rise-dev", "aud": "rise", "sub": "a", "projects": ["my-app"]}),
        );
        claims.expiration = chrono::DateTime::from_timestamp(NOW_S - 3600, 0);
        hs256(&claims)
    };
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing_token"),
        (Some("Basic dXNlcjpwYXNz".into()), "missing_token"),
        (Some("Bearer".into()), "missing_token"),
        (Some("Bearer ".into()), "missing_token"),
        (Some("Bearer not-a-jwt".into()), "invalid_token"),
        (Some("Bearer a.b.c".into()), "invalid_token"),
        (Some(format!("Bearer {expired}")), "token_expired"),
        (
            Some("Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJyaXNlLWRldiJ9.".into()),
            "invalid_token",
        ),
    ];
    for (authorization, code) in cases {
        let request = ApiRequest {
            authorization: authorization.clone(),
            ..get("/registry/credentials?project=my-app", None)
        };
        let outcome = run(&broker, &request, &FakeHttp::new());
        assert_json_error(&outcome, 401, code);
        let challenge = outcome
            .response
            .header("www-authenticate")
            .expect("WWW-Authenticate");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert_eq!(
            challenge, "Bearer realm=\"rise\", error=\"invalid_token\"",
            "no hint of which check failed (which issuers exist)"
        );
        if let Some(a) = &authorization {
            let token = a.trim_start_matches("Bearer ").trim_start_matches("Basic ");
            if token.len() > 8 {
                assert!(!outcome.response.body.contains(token));
                assert!(!audit(&outcome).to_string().contains(token));
            }
        }
    }
}

#[test]
fn scheme_is_case_insensitive() {
    let broker = broker_with_vars(&[]);
    let token = dev_token(json!({"projects": ["my-app"]}));
    let request = ApiRequest {
        authorization: Some(format!("bearer {token}")),
        ..get("/registry/credentials?project=my-app", None)
    };
    assert_eq!(
        run(&broker, &request, &FakeHttp::new()).response.status,
        200
    );
}

#[test]
fn forbidden_looks_the_same_for_known_and_unknown_projects() {
    let broker = broker_with_vars(&[]);
    let token = dev_token(json!({"projects": ["my-app"]}));
    let a = run(
        &broker,
        &get("/registry/credentials?project=my-app2", Some(&token)),
        &FakeHttp::new(),
    );
    let b = run(
        &broker,
        &get("/registry/credentials?project=does-not-exist", Some(&token)),
        &FakeHttp::new(),
    );
    assert_json_error(&a, 403, "forbidden");
    assert_eq!(a.response.body, b.response.body);
    assert_eq!(audit(&a)["outcome"], "refused");
}

#[test]
fn routes_404_405_and_health() {
    let broker = broker_with_vars(&[]);
    let http = FakeHttp::new();
    assert_json_error(&run(&broker, &get("/", None), &http), 404, "not_found");
    assert_json_error(
        &run(&broker, &get("/registry/credentials/x", None), &http),
        404,
        "not_found",
    );
    assert_json_error(
        &run(&broker, &get("/REGISTRY/credentials", None), &http),
        404,
        "not_found",
    );
    for method in ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
        for path in ["/registry/credentials", "/health"] {
            let request = ApiRequest {
                method: method.into(),
                ..get(path, None)
            };
            let outcome = run(&broker, &request, &http);
            assert_json_error(&outcome, 405, "method_not_allowed");
            assert_eq!(outcome.response.header("allow"), Some("GET"));
        }
    }
    let health = run(&broker, &get("/health", None), &http);
    assert_eq!(health.response.status, 200);
    let h = body(&health);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["provider"], "docker");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn misconfigured_broker_answers_500_naming_the_key_only() {
    let err = ConfigError::key("registry.region", "is required");
    let secrets = secrets();
    let http = FakeHttp::new();
    let sleeper = RecordingSleeper::default();
    let env = Context {
        now_ms: NOW_MS,
        clock: &FixedClock(NOW_MS),
        http: &http,
        secrets: &secrets,
        sleeper: &sleeper,
    };
    for path in ["/health", "/registry/credentials?project=my-app"] {
        let outcome = block_on(respond(Err(&err), &get(path, Some("x.y.z")), &env));
        assert_json_error(&outcome, 500, "misconfigured");
        assert!(body(&outcome)["error"]
            .as_str()
            .unwrap()
            .contains("registry.region"));
    }
    // Query validation still comes first.
    let outcome = block_on(respond(
        Err(&err),
        &get("/registry/credentials?project=*", None),
        &env,
    ));
    assert_json_error(&outcome, 400, "invalid_project");
}

/// docs/api.md's error table is the code's one list of error codes, row for row.
#[test]
fn docs_error_table_lists_exactly_the_codes() {
    use rise_registry_broker::error::ErrorCode;
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .expect("docs/api.md");
    let section = doc.split("\n## Errors").nth(1).expect("an Errors section");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<(u16, String)> = section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status = cells.get(1)?.parse().ok()?;
            Some((status, cells.get(2)?.trim_matches('`').to_owned()))
        })
        .collect();
    let codes: Vec<(u16, String)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.status(), c.as_str().to_owned()))
        .collect();
    assert_eq!(rows, codes);
}

/// Issue 11: only authorized callers enter the verified-token cache, so valid tokens of
/// callers without access (any GitHub user, for a GitHub issuer) cannot fill it.
#[test]
fn only_authorized_callers_are_remembered() {
    let broker = broker_with_vars(&[]);
    let http = FakeHttp::new();
    for i in 0..50 {
        let token = dev_token(json!({"projects": ["other"], "sub": format!("user-{i}")}));
        let outcome = run(
            &broker,
            &get("/registry/credentials?project=my-app", Some(&token)),
            &http,
        );
        assert_eq!(outcome.response.status, 403);
    }
    assert_eq!(broker.verifier().remembered_tokens(), 0);
    let token = dev_token(json!({"projects": ["my-app"]}));
    let request = get("/registry/credentials?project=my-app", Some(&token));
    assert_eq!(run(&broker, &request, &http).response.status, 200);
    assert_eq!(broker.verifier().remembered_tokens(), 1);
}

/// docs/openapi.json: its error codes are the code's one list, and it documents every route.
#[test]
fn openapi_document_matches_the_code() {
    use rise_registry_broker::error::ErrorCode;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
        .expect("docs/openapi.json");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let listed: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, codes);
    // Every status an operation documents is one the code's list can produce for it.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for status in item["get"]["responses"].as_object().unwrap().keys() {
            let s: u16 = status.parse().unwrap();
            assert!(
                s == 200 || ErrorCode::ALL.iter().any(|c| c.status() == s),
                "{path} {s}"
            );
        }
        // The route exists: anything but 404 from a broker that has every provider feature
        // is checked end to end by schemathesis; here, it is not an unknown path.
        let outcome = run(&broker_with_vars(&[]), &get(path, None), &FakeHttp::new());
        assert!(
            outcome.response.status != 404
                || path.starts_with("/.well-known")
                || path == "/registry/token",
            "{path}"
        );
    }
    // Every code appears in the troubleshooting table too.
    let troubleshooting = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/troubleshooting.md"
    ))
    .unwrap();
    for code in codes {
        assert!(
            troubleshooting.contains(&format!("| `{code}` |")),
            "troubleshooting lacks {code}"
        );
    }
}

/// Issue 9: every answer carries `x-request-id` (the runtime's `cf-ray` when present,
/// log-safe), the same id is in its audit line, and 400/404/405/500 answers are audited.
#[test]
fn request_ids_and_audited_refusals() {
    let broker = broker_with_vars(&[]);
    let http = FakeHttp::new();
    let with_ray = ApiRequest {
        request_id: Some("8f1c2d3e4a5b6c7d-AMS\n\"x".into()),
        ..get("/nope/../etc?x=1", None)
    };
    let outcome = run(&broker, &with_ray, &http);
    assert_eq!(outcome.response.status, 404);
    assert_eq!(
        outcome.response.header("x-request-id"),
        Some("8f1c2d3e4a5b6c7d-AMSx")
    );
    let line = audit(&outcome);
    assert_eq!(line["request_id"], "8f1c2d3e4a5b6c7d-AMSx");
    assert_eq!(
        (line["event"].as_str(), line["code"].as_str()),
        (Some("request"), Some("not_found"))
    );
    assert_eq!(line["path"], "/nope/../etc");
    for (request, code) in [
        (
            ApiRequest {
                method: "QUERY".into(),
                ..get("/registry/credentials?project=x", None)
            },
            "method_not_allowed",
        ),
        (
            get("/registry/credentials?project=Bad", None),
            "invalid_project",
        ),
        (get("/registry/credentials", None), "missing_project"),
    ] {
        let outcome = run(&broker, &request, &http);
        let id = outcome
            .response
            .header("x-request-id")
            .expect("x-request-id")
            .to_owned();
        assert_eq!(id.len(), 16, "a random id when the runtime gives none");
        let line = audit(&outcome);
        assert_eq!(
            (line["code"].as_str(), line["request_id"].as_str()),
            (Some(code), Some(id.as_str()))
        );
        assert_eq!(line["outcome"], "refused");
    }
    // A healthy /health is answered without an audit line, but with an id.
    let health = run(&broker, &get("/health", None), &http);
    assert!(health.audit.is_none() && health.response.header("x-request-id").is_some());
    // A broken config: every route's 500 is audited.
    let err = rise_registry_broker::error::ConfigError::key("registry.region", "is required");
    let ctx = Context {
        now_ms: NOW_MS,
        clock: &FixedClock(NOW_MS),
        http: &http,
        secrets: &secrets(),
        sleeper: &RecordingSleeper::default(),
    };
    let outcome = block_on(respond(Err(&err), &get("/health", None), &ctx));
    assert_eq!(audit(&outcome)["code"], "misconfigured");
    assert!(audit(&outcome)["reason"]
        .as_str()
        .unwrap()
        .contains("registry.region"));
}
