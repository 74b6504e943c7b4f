//! Authorization tables: (a) projects claim, (b) admins, (c) service-account rules.

use crate::common::*;
use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use serde_json::{json, Value};

/// Broker with the dev HS256 issuer plus a "CI" HS256 issuer that does not grant by claims.
fn broker() -> Broker {
    let issuers = json!([
        {"issuer": "rise-dev", "audience": "rise", "hs256_secret": "RISE_JWT_SECRET"},
        {"issuer": "https://ci.test", "audience": "rise-ci", "hs256_secret": "RISE_JWT_SECRET", "claims_grant_access": false, "owner_claims": ["repository"]},
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
    let config = config::load_embedded(Some("development"), vars).unwrap();
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
    let admin = |claims: Value| status(&b, "anything", claims);
    assert_eq!(
        admin(json!({"email": "root@example.com", "email_verified": true})),
        200
    );
    // An unverified (or unstated) email is not an identity.
    assert_eq!(admin(json!({"email": "root@example.com"})), 403);
    assert_eq!(
        admin(json!({"email": "root@example.com", "email_verified": false})),
        403
    );
    assert_eq!(
        admin(json!({"email": "root@example.com", "email_verified": "true"})),
        403
    );
    assert_eq!(
        admin(json!({"email": "ROOT@example.com", "email_verified": true})),
        403
    );
    assert_eq!(
        admin(json!({"email": ["root@example.com"], "email_verified": true})),
        403
    );
    assert_eq!(
        admin(json!({"mail": "root@example.com", "email_verified": true})),
        403
    );
}

/// Issue 11: which service-account rules load. Every rule must pin the workload's owner;
/// the dangerous ways of writing them are refused at config load, naming the key.
#[test]
fn service_account_rules_must_pin_the_owner() {
    const GH: &str = "https://token.actions.githubusercontent.com";
    const GL: &str = "https://gitlab.com";
    const OTHER: &str = "https://ci.example.com";
    let load = |issuer: &str, owner_claims: Option<Value>, claims: Value| {
        let mut i =
            json!({"issuer": issuer, "audience": "rise", "jwks_url": format!("{issuer}/keys")});
        if let Some(names) = owner_claims {
            i["owner_claims"] = names;
        }
        let issuers = json!([i]).to_string();
        let rules =
            json!([{"project": "my-app", "issuer": issuer, "audience": "rise", "claims": claims}])
                .to_string();
        config::load_embedded(
            Some("development"),
            [
                ("RISE_AUTH__ISSUERS", issuers.as_str()),
                ("RISE_AUTH__SERVICE_ACCOUNTS", rules.as_str()),
            ],
        )
        .map(|_| ())
        .map_err(|e| match e {
            rise_registry_broker::error::ConfigError::Key { key, .. } => key,
            other => panic!("{other}"),
        })
    };
    let refused = Err("auth.service_accounts[0].claims".to_owned());
    let cases = [
        (
            GH,
            None,
            json!({"repository": "my-org/my-app", "ref": "refs/heads/main"}),
            Ok(()),
        ),
        (GH, None, json!({"repository": "my-org/*"}), Ok(())),
        (GH, None, json!({"repository_id": "123456"}), Ok(())),
        (
            GH,
            None,
            json!({"repository_owner": "my-org", "environment": "prod"}),
            Ok(()),
        ),
        (GH, None, json!({"repository_owner_id": "42"}), Ok(())),
        (
            GH,
            None,
            json!({"sub": "repo:my-org/my-app:ref:refs/heads/main"}),
            Ok(()),
        ),
        (GH, None, json!({"sub": "repo:my-org/*"}), Ok(())),
        (
            GH,
            None,
            json!({"repository": "my-org/my-app", "job_workflow_ref": "my-org/wf/.github/workflows/d.yml@refs/heads/main"}),
            Ok(()),
        ),
        // Issue 20: `job_workflow_ref` names a reusable workflow any repository may call.
        (
            GH,
            None,
            json!({"job_workflow_ref": "my-org/wf/.github/workflows/d.yml@refs/heads/main"}),
            refused.clone(),
        ),
        (
            GH,
            None,
            json!({"job_workflow_ref": "my-org/*", "ref": "refs/heads/main"}),
            refused.clone(),
        ),
        // The dangerous ones: no owner, or a glob inside the owner part.
        (GH, None, json!({"ref": "refs/heads/main"}), refused.clone()),
        (
            GH,
            None,
            json!({"environment": "production", "workflow": "deploy"}),
            refused.clone(),
        ),
        (GH, None, json!({"actor": "alice"}), refused.clone()),
        (
            GH,
            None,
            json!({"repository_owner": "my-org*"}),
            refused.clone(),
        ),
        (GH, None, json!({"repository": "my-org*"}), refused.clone()),
        (GH, None, json!({"repository": "*/my-app"}), refused.clone()),
        (GH, None, json!({"repository": "*"}), refused.clone()),
        (GH, None, json!({"repository_id": "12*"}), refused.clone()),
        (GH, None, json!({"sub": "repo:*"}), refused.clone()),
        (GH, None, json!({"sub": "repo:my-org*"}), refused.clone()),
        (
            GH,
            None,
            json!({"sub": "*:my-org/my-app:*"}),
            refused.clone(),
        ),
        (GH, None, json!({"aud": "rise", "iss": GH}), refused.clone()),
        (GH, None, json!({}), refused.clone()),
        (
            GL,
            None,
            json!({"project_path": "group/app", "ref": "main"}),
            Ok(()),
        ),
        (GL, None, json!({"namespace_path": "group"}), Ok(())),
        (GL, None, json!({"project_id": "7"}), Ok(())),
        (
            GL,
            None,
            json!({"sub": "project_path:group/app:ref_type:branch:ref:main"}),
            Ok(()),
        ),
        (GL, None, json!({"ref": "main"}), refused.clone()),
        // The CI file may come from another project: not the pipeline's owner.
        (
            GL,
            None,
            json!({"ci_config_ref_uri": "gitlab.com/group/ci//.gitlab-ci.yml@refs/heads/main"}),
            refused.clone(),
        ),
        (GL, None, json!({"user_login": "alice"}), refused.clone()),
        (GL, None, json!({"namespace_path": "gro*"}), refused.clone()),
        // Any other issuer: the operator names its owner claims, or its rules are refused.
        (
            OTHER,
            None,
            json!({"team": "payments"}),
            Err("auth.issuers[0].owner_claims".to_owned()),
        ),
        (
            OTHER,
            Some(json!(["team"])),
            json!({"team": "payments"}),
            Ok(()),
        ),
        (
            OTHER,
            Some(json!(["team"])),
            json!({"team": "pay*"}),
            refused.clone(),
        ),
        (
            OTHER,
            Some(json!(["team"])),
            json!({"branch": "main"}),
            refused.clone(),
        ),
    ];
    for (issuer, owner_claims, claims, want) in cases {
        assert_eq!(
            load(issuer, owner_claims, claims.clone()),
            want,
            "{issuer} {claims}"
        );
    }
}

/// The attack from the issue, end to end in the core: with the owner pinned, a
/// GitHub-shaped token from `attacker/x` on `main` is refused.
#[test]
fn a_token_from_another_owner_gets_nothing() {
    let b = broker();
    let attacker = json!({"iss": "https://ci.test", "aud": "rise-ci", "repository": "attacker/x", "ref": "refs/heads/main"});
    assert_eq!(status(&b, "my-app", attacker), 403);
}

/// Issue 20, the reusable-workflow attack: GitHub puts the *caller's* `repository` and
/// the *called* workflow's `job_workflow_ref` in one token. A rule that pins
/// `repository` and narrows by `job_workflow_ref` admits only that repository running
/// that workflow; `evil/x` calling the same public workflow gets nothing.
#[test]
fn a_reusable_workflow_does_not_admit_its_callers() {
    const GH: &str = "https://token.actions.githubusercontent.com";
    const WORKFLOW: &str = "my-org/ci/.github/workflows/push.yml@refs/heads/main";
    let issuers = json!([
        {"issuer": "rise-dev", "audience": "rise", "hs256_secret": "RISE_JWT_SECRET"},
        {"issuer": GH, "audience": "rise", "hs256_secret": "RISE_JWT_SECRET"},
    ])
    .to_string();
    let rules = |claims: Value| {
        json!([{"project": "my-app", "issuer": GH, "audience": "rise", "claims": claims}])
            .to_string()
    };
    let load = |rules: String| {
        config::load_embedded(
            Some("development"),
            [
                ("RISE_AUTH__ISSUERS", issuers.as_str()),
                ("RISE_AUTH__SERVICE_ACCOUNTS", rules.as_str()),
            ],
        )
    };
    let err = load(rules(json!({"job_workflow_ref": WORKFLOW}))).unwrap_err();
    assert!(
        err.to_string().contains("auth.service_accounts[0].claims"),
        "{err}"
    );
    let config = load(rules(
        json!({"repository": "my-org/my-app", "job_workflow_ref": WORKFLOW}),
    ))
    .unwrap();
    let b = Broker::new(config, &secrets()).unwrap();
    let caller = |repository: &str, workflow: &str| {
        let owner = repository.split('/').next().unwrap();
        json!({"iss": GH, "repository": repository, "repository_owner": owner,
               "sub": format!("repo:{repository}:ref:refs/heads/main"),
               "job_workflow_ref": workflow})
    };
    assert_eq!(status(&b, "my-app", caller("my-org/my-app", WORKFLOW)), 200);
    assert_eq!(status(&b, "my-app", caller("evil/x", WORKFLOW)), 403);
    let other = "my-org/ci/.github/workflows/other.yml@refs/heads/main";
    assert_eq!(status(&b, "my-app", caller("my-org/my-app", other)), 403);
}

/// Issue 11: issuers' own claims grant access only for first-party HS256 issuers by
/// default; a key-set issuer needs `claims_grant_access = true` said out loud.
#[test]
fn claims_grant_access_defaults_to_first_party_only() {
    let issuers = json!([
        {"issuer": "rise-dev", "audience": "rise", "hs256_secret": "RISE_JWT_SECRET"},
        {"issuer": "https://idp.test", "audience": "rise", "jwks_url": "https://idp.test/keys"},
        {"issuer": "https://idp2.test", "audience": "rise", "jwks_url": "https://idp2.test/keys", "claims_grant_access": "true"},
        {"issuer": "https://ci.test", "audience": "rise", "hs256_secret": "RISE_JWT_SECRET", "claims_grant_access": false},
    ])
    .to_string();
    let c = config::load_embedded(
        Some("development"),
        [("RISE_AUTH__ISSUERS", issuers.as_str())],
    )
    .unwrap();
    let grants: Vec<bool> = c
        .auth
        .issuers
        .iter()
        .map(|i| i.grants_by_claims())
        .collect();
    assert_eq!(grants, [true, false, true, false]);
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
