//! Authorization tables: (a) projects claim, (b) admins, (c) service-account rules.

use crate::common::*;
use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use serde_json::{json, Value};

/// Broker with the dev HS256 issuer plus a "CI" HS256 issuer that does not grant by claims.
fn broker() -> Broker {
    let issuers = json!([
        {"issuer": "rise-dev", "audience": "rise", "hs256_secret": "RISE_JWT_SECRET"},
        {"issuer": "https://ci.test", "audience": "rise-ci", "hs256_secret": "RISE_JWT_SECRET", "claims_grant_access": false},
    ])
    .to_string();
    let rules = json!([
        {"project": "my-app", "issuer": "https://ci.test", "audience": "rise-ci",
         "claims": {"repository": "org/my-app", "ref": "refs/heads/main"}},
        {"project": "tools", "issuer": "https://ci.test", "audience": "rise-ci",
         "claims": {"repository": "org/tools", "ref": "refs/tags/v*"}},
    ])
    .to_string();
    let vars = [
        ("RISE_AUTH__ISSUERS", issuers.as_str()),
        ("RISE_AUTH__SERVICE_ACCOUNTS", rules.as_str()),
        ("RISE_AUTH__ADMINS", r#"["root@example.com"]"#),
    ];
    let config = config::load_embedded(None, vars).unwrap();
    Broker::new(config, &secrets()).unwrap()
}

fn token(claims: Value) -> String {
    let mut all = json!({"iss": "rise-dev", "aud": "rise", "sub": "s"});
    all.as_object_mut()
        .unwrap()
        .extend(claims.as_object().unwrap().clone());
    let mut c = jwt_compact::Claims::new(all);
    c.expiration = chrono::DateTime::from_timestamp(NOW_S + 600, 0);
    hs256(&c)
}

fn status(broker: &Broker, project: &str, claims: Value) -> u16 {
    let t = token(claims);
    run(
        broker,
        &get(
            &format!("/registry/credentials?project={project}"),
            Some(&t),
        ),
        &FakeHttp::new(),
    )
    .response
    .status
}

#[test]
fn projects_claim_table() {
    let b = broker();
    let cases = [
        (json!({"projects": ["my-app"]}), "my-app", 200),
        (json!({"projects": ["a", "my-app", "b"]}), "my-app", 200),
        (json!({"projects": ["my-app"]}), "my-app2", 403),
        (json!({"projects": ["my-app2"]}), "my-app", 403),
        (json!({"projects": ["my-app*"]}), "my-app-prod", 403),
        (json!({"projects": ["*"]}), "my-app", 403),
        (json!({"projects": "my-app"}), "my-app", 403), // must be an array
        (json!({"projects": [["my-app"]]}), "my-app", 403),
        (json!({"projects": []}), "my-app", 403),
        (json!({}), "my-app", 403),
        (json!({"project": ["my-app"]}), "my-app", 403),
    ];
    for (claims, project, want) in cases {
        assert_eq!(
            status(&b, project, claims.clone()),
            want,
            "{claims} → {project}"
        );
    }
}

#[test]
fn admin_table() {
    let b = broker();
    assert_eq!(
        status(&b, "anything", json!({"email": "root@example.com"})),
        200
    );
    assert_eq!(
        status(&b, "anything", json!({"email": "ROOT@example.com"})),
        403
    );
    assert_eq!(
        status(&b, "anything", json!({"email": ["root@example.com"]})),
        403
    );
    assert_eq!(
        status(&b, "anything", json!({"mail": "root@example.com"})),
        403
    );
}

#[test]
fn service_account_table() {
    let b = broker();
    let ci = |claims: Value| {
        let mut all = json!({"iss": "https://ci.test", "aud": "rise-ci"});
        all.as_object_mut()
            .unwrap()
            .extend(claims.as_object().unwrap().clone());
        all
    };
    let cases = [
        (
            ci(json!({"repository": "org/my-app", "ref": "refs/heads/main"})),
            "my-app",
            200,
        ),
        (
            ci(json!({"repository": "org/my-app", "ref": "refs/heads/dev"})),
            "my-app",
            403,
        ),
        (
            ci(json!({"repository": "org/my-app2", "ref": "refs/heads/main"})),
            "my-app",
            403,
        ),
        (ci(json!({"repository": "org/my-app"})), "my-app", 403),
        (
            ci(json!({"repository": "org/my-app", "ref": "refs/heads/main"})),
            "tools",
            403,
        ),
        (
            ci(json!({"repository": "org/tools", "ref": "refs/tags/v1.2.3"})),
            "tools",
            200,
        ),
        (
            ci(json!({"repository": "org/tools", "ref": "refs/heads/v1"})),
            "tools",
            403,
        ),
        // The CI issuer's own projects/admin claims grant nothing (claims_grant_access=false).
        (ci(json!({"projects": ["my-app"]})), "my-app", 403),
        (ci(json!({"email": "root@example.com"})), "my-app", 403),
        // Wrong audience for the rule (the token is still valid for the issuer? no: the
        // issuer's audience is rise-ci, so this token is refused at verification).
        (
            ci(json!({"aud": "rise", "repository": "org/my-app", "ref": "refs/heads/main"})),
            "my-app",
            401,
        ),
        // Same claims from the other issuer do not match the CI rule.
        (
            json!({"repository": "org/my-app", "ref": "refs/heads/main"}),
            "my-app",
            403,
        ),
    ];
    for (claims, project, want) in cases {
        assert_eq!(
            status(&b, project, claims.clone()),
            want,
            "{claims} → {project}"
        );
    }
}

#[test]
fn audience_array_with_rule_audience_matches() {
    let b = broker();
    let claims = json!({"iss": "https://ci.test", "aud": ["other", "rise-ci"], "repository": "org/my-app", "ref": "refs/heads/main"});
    assert_eq!(status(&b, "my-app", claims), 200);
}
