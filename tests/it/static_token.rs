//! Issue 19: `type = "static"` — a pre-provisioned token per (project, access) from the
//! worker secret the template names; a missing one is a 500 naming the secret only.

use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use serde_json::json;

use crate::common::aws::token_for;
use crate::common::*;

#[test]
fn each_project_and_access_gets_its_own_secret_and_nothing_else() {
    let vars = [
        ("RISE_REGISTRY__TYPE", "static"),
        ("RISE_REGISTRY__REGISTRY_URL", "ghcr.io"),
        ("RISE_REGISTRY__NAMESPACE", "my-org"),
        ("RISE_REGISTRY__USERNAME", "rise-{project}"),
        ("RISE_REGISTRY__SECRET", "REGISTRY_TOKEN_{PROJECT}_{ACCESS}"),
    ];
    let config = config::load_embedded(Some("development"), vars).unwrap();
    let b = Broker::new(config, &secrets()).unwrap();
    let secrets = secrets()
        .with("REGISTRY_TOKEN_MY_APP_PUSH", "ghp_push-token-for-my-app")
        .with("REGISTRY_TOKEN_MY_APP_PULL", "ghp_pull-token-for-my-app")
        .with("REGISTRY_TOKEN_OTHER_APP_PUSH", "ghp_other");
    let token = token_for(&["my-app", "my.app", "other-app"]);
    let ask = |query: &str| {
        let request = get(&format!("/registry/credentials?{query}"), Some(&token));
        let http = FakeHttp::new();
        let outcome = run_with(
            &b,
            &request,
            &http,
            &secrets,
            &RecordingSleeper::default(),
            NOW_MS,
        );
        assert_eq!(http.call_count(), 0);
        (outcome.response.status, body(&outcome))
    };
    let (status, body) = ask("project=my-app");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"credentials": {"registry_url": "ghcr.io", "username": "rise-my-app",
                               "password": "ghp_push-token-for-my-app"},
               "repository": "my-org/my-app", "image": "ghcr.io/my-org/my-app",
               "auth_method": "login_credentials"})
    );
    assert_eq!(
        ask("project=my-app&access=pull").1["credentials"]["password"],
        "ghp_pull-token-for-my-app"
    );
    // No pull token for other-app: refused naming the secret, never another token.
    let (status, body) = ask("project=other-app&access=pull");
    assert_eq!(status, 500);
    assert_eq!(body["code"], "misconfigured");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("REGISTRY_TOKEN_OTHER_APP_PULL"));
    assert!(!body.to_string().contains("ghp_"));
    // `my.app` maps to the same secret name as `my-app` (documented collision).
    assert_eq!(
        ask("project=my.app").1["credentials"]["password"],
        "ghp_push-token-for-my-app"
    );
}
