//! Issue 19: `type = "harbor"` — a project robot per (project, access), cached; the
//! sweeper deletes the broker's own expired robots and nothing else.

use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use rise_registry_broker::runtime::{Context, FixedClock, OutboundResponse};
use serde_json::{json, Value};

use crate::common::aws::token_for;
use crate::common::*;

const API: &str = "https://harbor.example.com/api/v2.0";

fn vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("RISE_REGISTRY__TYPE", "harbor"),
        ("RISE_REGISTRY__URL", "https://harbor.example.com"),
        ("RISE_REGISTRY__ROBOT_DAYS", "2"),
    ]
}

fn harbor_secrets() -> rise_registry_broker::secrets::MapSecrets {
    secrets()
        .with("HARBOR_USERNAME", "robot$rise-broker")
        .with("HARBOR_PASSWORD", "harbor-pass-0123456789")
}

fn broker() -> Broker {
    let config = config::load_embedded(Some("development"), vars()).unwrap();
    Broker::new(config, &harbor_secrets()).unwrap()
}

#[test]
fn a_robot_per_project_and_access_cached_for_its_life() {
    let b = broker();
    let http = FakeHttp::new();
    http.script(
        &format!("{API}/robots"),
        vec![Ok(OutboundResponse {
            status: 201,
            headers: vec![],
            body: json!({"id": 5, "name": "robot$my-app+rise-broker-my-app-push-00",
                         "secret": "harbor-robot-secret-1", "creation_time": "2026-01-01T00:00:00Z",
                         "expires_at": NOW_S + 2 * 86_400})
            .to_string()
            .into_bytes(),
        })],
    );
    let request = get(
        "/registry/credentials?project=my-app",
        Some(&token_for(&["my-app"])),
    );
    let run = || {
        let outcome = run_with(
            &b,
            &request,
            &http,
            &harbor_secrets(),
            &RecordingSleeper::default(),
            NOW_MS,
        );
        (outcome.response.status, body(&outcome))
    };
    let (status, body) = run();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"credentials": {"registry_url": "harbor.example.com",
            "username": "robot$my-app+rise-broker-my-app-push-00",
            "password": "harbor-robot-secret-1", "expires_in": 2 * 86_400 - 60},
            "repository": "my-app/my-app", "image": "harbor.example.com/my-app/my-app",
            "auth_method": "login_credentials"})
    );
    let call = &http.calls_for(&format!("{API}/robots"))[0];
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(sent["duration"], 2);
    assert_eq!(sent["level"], "project");
    assert_eq!(
        sent["permissions"],
        json!([{"kind": "project", "namespace": "my-app", "access": [
            {"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}])
    );
    assert!(sent["name"]
        .as_str()
        .unwrap()
        .starts_with("rise-broker-my-app-push-"));
    assert!(call
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v.starts_with("Basic ")));
    // Cached: the second request creates no robot.
    assert_eq!(run().0, 200);
    assert_eq!(http.call_count(), 1);
}

#[test]
fn missing_harbor_secrets_stop_the_broker_naming_them() {
    for missing in ["HARBOR_USERNAME", "HARBOR_PASSWORD"] {
        let mut s = harbor_secrets();
        s.0.remove(missing);
        let config = config::load_embedded(Some("development"), vars()).unwrap();
        let err = Broker::new(config, &s).err().unwrap().to_string();
        assert!(err.contains(missing), "{err}");
    }
}

#[test]
fn the_sweeper_deletes_only_the_brokers_expired_robots() {
    let b = broker();
    let http = FakeHttp::new();
    http.route_json(
        &format!("{API}/projects?page=1&page_size=100"),
        &json!([{"project_id": 3, "name": "my-app"}]),
    );
    http.route_json(
        &format!("{API}/robots?q=Level%3Dproject%2CProjectID%3D3&page_size=100"),
        &json!([
            {"id": 1, "name": "robot$my-app+rise-broker-my-app-push-aa", "expires_at": NOW_S - 10},
            {"id": 2, "name": "robot$my-app+rise-broker-my-app-pull-bb", "expires_at": NOW_S + 3600},
            {"id": 3, "name": "robot$my-app+ci", "expires_at": NOW_S - 10},
            {"id": 4, "name": "robot$my-app+rise-broker-x-push-cc", "expires_at": -1},
        ]),
    );
    http.route_status(&format!("{API}/robots/1"), 200);
    let secrets = harbor_secrets();
    let ctx = Context {
        now_ms: NOW_MS,
        clock: &FixedClock(NOW_MS),
        http: &http,
        secrets: &secrets,
        sleeper: &RecordingSleeper::default(),
    };
    let line: Value = serde_json::from_str(&block_on(b.sweep(&ctx)).unwrap()).unwrap();
    assert_eq!(
        line["report"],
        json!({"examined": 1, "deleted": 1, "failed": 0, "subrequests": 3, "truncated": false})
    );
    let deleted: Vec<String> = http
        .calls
        .borrow()
        .iter()
        .filter(|c| c.method == "DELETE")
        .map(|c| c.url.clone())
        .collect();
    assert_eq!(deleted, [format!("{API}/robots/1")]);
    assert!(!line.to_string().contains("harbor-pass"));
}
