//! Issue 21: `type = "gitlab"` — a project deploy token per (project, access), cached;
//! the sweeper deletes the broker's own expired tokens and nothing else, bounded.

use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use rise_registry_broker::runtime::{Context, FixedClock, OutboundResponse};
use serde_json::{json, Value};

use crate::common::aws::token_for;
use crate::common::*;

const API: &str = "https://gitlab.example.com/api/v4";
const CREATE: &str = "https://gitlab.example.com/api/v4/projects/rise-group%2Fmy-app/deploy_tokens";

fn vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("RISE_REGISTRY__TYPE", "gitlab"),
        ("RISE_REGISTRY__URL", "https://gitlab.example.com"),
        ("RISE_REGISTRY__REGISTRY_URL", "registry.example.com"),
        ("RISE_REGISTRY__PROJECT_PATH", "rise-group/{project}"),
        ("RISE_REGISTRY__TOKEN_HOURS", "2"),
    ]
}

fn gitlab_secrets() -> rise_registry_broker::secrets::MapSecrets {
    secrets().with("GITLAB_TOKEN", "glpat-broker-token-0123456789")
}

fn broker() -> Broker {
    let config = config::load_embedded(Some("development"), vars()).unwrap();
    Broker::new(config, &gitlab_secrets()).unwrap()
}

fn created(
    id: u64,
    expires: &str,
) -> Result<OutboundResponse, rise_registry_broker::runtime::TransportError> {
    Ok(OutboundResponse {
        status: 201,
        headers: vec![],
        body: json!({"id": id, "name": "rise-broker-my-app-push-00", "username": format!("gitlab+deploy-token-{id}"),
                     "expires_at": expires, "token": format!("gldt-secret-{id}"), "revoked": false,
                     "expired": false, "scopes": ["read_registry", "write_registry"]})
        .to_string()
        .into_bytes(),
    })
}

fn ask(b: &Broker, http: &FakeHttp, query: &str) -> (u16, Value) {
    let request = get(
        &format!("/registry/credentials?{query}"),
        Some(&token_for(&["my-app"])),
    );
    let outcome = run_with(
        b,
        &request,
        http,
        &gitlab_secrets(),
        &RecordingSleeper::default(),
        NOW_MS,
    );
    (outcome.response.status, body(&outcome))
}

#[test]
fn a_deploy_token_per_project_and_access_cached_for_its_life() {
    let b = broker();
    let http = FakeHttp::new();
    http.script(CREATE, vec![created(7, "2026-01-01T02:00:00.000Z")]);
    let (status, body) = ask(&b, &http, "project=my-app");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"credentials": {"registry_url": "registry.example.com",
            "username": "gitlab+deploy-token-7", "password": "gldt-secret-7", "expires_in": 7140},
            "repository": "rise-group/my-app", "image": "registry.example.com/rise-group/my-app",
            "auth_method": "login_credentials"})
    );
    let call = &http.calls_for(CREATE)[0];
    assert_eq!(call.method, "POST");
    assert!(call.headers.contains(&(
        "private-token".into(),
        "glpat-broker-token-0123456789".into()
    )));
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(sent["scopes"], json!(["read_registry", "write_registry"]));
    assert_eq!(sent["expires_at"], "2026-01-01T02:00:00Z");
    assert!(sent["name"]
        .as_str()
        .unwrap()
        .starts_with("rise-broker-my-app-push-"));
    // Cached: no second deploy token.
    assert_eq!(ask(&b, &http, "project=my-app").0, 200);
    assert_eq!(http.calls_to(CREATE), 1);
    // A day-granular `expires_at` never stretches the reported life past what was asked.
    http.script(CREATE, vec![created(8, "2026-01-02")]);
    let (_, body) = ask(&b, &http, "project=my-app&access=pull");
    assert_eq!(body["credentials"]["expires_in"], 7140);
    let pull: Value = serde_json::from_slice(&http.calls_for(CREATE)[1].body).unwrap();
    assert_eq!(pull["scopes"], json!(["read_registry"]));
}

#[test]
fn a_missing_token_stops_the_broker_naming_it() {
    let config = config::load_embedded(Some("development"), vars()).unwrap();
    let err = Broker::new(config, &secrets()).err().unwrap().to_string();
    assert!(err.contains("GITLAB_TOKEN"), "{err}");
}

#[test]
fn gitlab_denials_are_not_retried_and_its_message_is_not_repeated() {
    let b = broker();
    let http = FakeHttp::new();
    http.script(
        CREATE,
        vec![Ok(OutboundResponse {
            status: 403,
            headers: vec![],
            body: br#"{"message":"403 Forbidden - glpat-broker-token"}"#.to_vec(),
        })],
    );
    let (status, body) = ask(&b, &http, "project=my-app");
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("upstream_denied"))
    );
    assert!(!body.to_string().contains("glpat"));
    assert_eq!(http.calls_to(CREATE), 1);
}

#[test]
fn the_sweeper_deletes_only_the_brokers_expired_tokens_within_its_budget() {
    let b = broker();
    let http = FakeHttp::new();
    let page = |ids: &[u64], total_pages: &str| {
        Ok(OutboundResponse {
            status: 200,
            headers: vec![("x-total-pages".into(), total_pages.into())],
            body: Value::from(ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>())
                .to_string()
                .into_bytes(),
        })
    };
    http.script(
        &format!("{API}/projects?min_access_level=40&simple=true&per_page=100&page=1"),
        vec![page(&[11, 12], "1")],
    );
    http.route_json(
        &format!("{API}/projects/11/deploy_tokens?per_page=100"),
        &json!([
            {"id": 1, "name": "rise-broker-my-app-push-aa", "expires_at": "2025-12-31T23:00:00.000Z", "expired": false, "revoked": false},
            {"id": 2, "name": "rise-broker-my-app-pull-bb", "expires_at": "2026-01-01T01:00:00.000Z", "expired": false, "revoked": false},
            {"id": 3, "name": "ci-token", "expires_at": "2025-01-01T00:00:00.000Z", "expired": true, "revoked": false},
        ]),
    );
    http.route_json(
        &format!("{API}/projects/12/deploy_tokens?per_page=100"),
        &json!([{"id": 9, "name": "rise-broker-x-push-cc", "expires_at": null, "expired": true, "revoked": false}]),
    );
    http.route_status(&format!("{API}/projects/11/deploy_tokens/1"), 204);
    http.route_status(&format!("{API}/projects/12/deploy_tokens/9"), 204);
    let secrets = gitlab_secrets();
    let ctx = Context {
        now_ms: NOW_MS,
        clock: &FixedClock(NOW_MS),
        http: &http,
        secrets: &secrets,
        sleeper: &RecordingSleeper::default(),
    };
    let line: Value = serde_json::from_str(&block_on(b.sweep(&ctx)).unwrap()).unwrap();
    assert_eq!(line["event"], "sweep");
    assert_eq!(
        line["report"],
        json!({"examined": 2, "deleted": 2, "failed": 0, "subrequests": 5, "truncated": false})
    );
    // (The order is rotated per run: compared sorted.)
    let mut deleted: Vec<String> = http
        .calls
        .borrow()
        .iter()
        .filter(|c| c.method == "DELETE")
        .map(|c| c.url.clone())
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            format!("{API}/projects/11/deploy_tokens/1"),
            format!("{API}/projects/12/deploy_tokens/9")
        ]
    );
    assert!(!line.to_string().contains("glpat"));

    // Bounded: 60 projects with an expired token each stop at the call budget.
    let http = FakeHttp::new();
    let ids: Vec<u64> = (100..160).collect();
    http.script(
        &format!("{API}/projects?min_access_level=40&simple=true&per_page=100&page=1"),
        vec![page(&ids, "1")],
    );
    for id in &ids {
        http.route_json(
            &format!("{API}/projects/{id}/deploy_tokens?per_page=100"),
            &json!([{"id": 1, "name": "rise-broker-p-push-dd", "expired": true}]),
        );
        http.route_status(&format!("{API}/projects/{id}/deploy_tokens/1"), 204);
    }
    let ctx = Context { http: &http, ..ctx };
    let line: Value = serde_json::from_str(&block_on(b.sweep(&ctx)).unwrap()).unwrap();
    assert_eq!(line["report"]["truncated"], true);
    assert!(http.call_count() <= 45, "{} calls", http.call_count());
}

#[test]
fn other_providers_have_nothing_to_sweep() {
    let b = broker_with_vars(&[]);
    let http = FakeHttp::new();
    let secrets = secrets();
    let ctx = Context {
        now_ms: NOW_MS,
        clock: &FixedClock(NOW_MS),
        http: &http,
        secrets: &secrets,
        sleeper: &RecordingSleeper::default(),
    };
    assert_eq!(block_on(b.sweep(&ctx)), None);
    assert_eq!(http.call_count(), 0);
}

/// GitLab answering `expires_at: null` made a token that never expires: it is not handed
/// out, and the broker deletes it at once.
#[test]
fn a_token_without_expiry_is_refused_and_deleted() {
    let b = broker();
    let http = FakeHttp::new();
    http.script(
        CREATE,
        vec![Ok(OutboundResponse {
            status: 201,
            headers: vec![],
            body: json!({"id": 31, "name": "rise-broker-my-app-push-0", "username": "gitlab+deploy-token-31",
                         "expires_at": null, "token": "gldt-forever", "revoked": false, "expired": false,
                         "scopes": ["read_registry", "write_registry"]})
            .to_string()
            .into_bytes(),
        })],
    );
    let delete = format!("{API}/projects/rise-group%2Fmy-app/deploy_tokens/31");
    http.route_status(&delete, 204);
    let (status, body) = ask(&b, &http, "project=my-app");
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("upstream_error"))
    );
    assert!(!body.to_string().contains("gldt-forever"));
    assert_eq!(http.calls_to(&delete), 1);
    let deleted = &http.calls_for(&delete)[0];
    assert_eq!(deleted.method, "DELETE");
}

/// More pages than one run lists: page 1 every run, plus a window of the others that
/// starts at a random page — over runs, every page is reached.
#[test]
fn the_sweeper_reaches_every_page_over_runs() {
    let b = broker();
    let secrets = gitlab_secrets();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let http = FakeHttp::new();
        for p in 1..=6u64 {
            http.route(
                &format!("{API}/projects?min_access_level=40&simple=true&per_page=100&page={p}"),
                OutboundResponse {
                    status: 200,
                    headers: vec![("x-total-pages".into(), "6".into())],
                    body: json!([{"id": 100 + p}]).to_string().into_bytes(),
                },
            );
            http.route_json(
                &format!("{API}/projects/{}/deploy_tokens?per_page=100", 100 + p),
                &json!([]),
            );
        }
        let ctx = Context {
            now_ms: NOW_MS,
            clock: &FixedClock(NOW_MS),
            http: &http,
            secrets: &secrets,
            sleeper: &RecordingSleeper::default(),
        };
        let line: Value = serde_json::from_str(&block_on(b.sweep(&ctx)).unwrap()).unwrap();
        assert_eq!(line["report"]["truncated"], true);
        let pages: Vec<String> = http
            .calls
            .borrow()
            .iter()
            .filter(|c| c.url.contains("/projects?"))
            .map(|c| c.url.rsplit('=').next().unwrap().to_owned())
            .collect();
        assert_eq!(pages.len(), 3, "{pages:?}");
        assert_eq!(pages[0], "1");
        seen.extend(pages);
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
}
