//! Config layering (DESIGN.md "Config"): every precedence pair, and errors that name keys.

use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use rise_registry_broker::error::ConfigError;
use rise_registry_broker::registry::RegistryConfig;
use rise_registry_broker::secrets::MapSecrets;

const DEFAULT: &str = r#"
[registry]
type = "docker"
registry_url = "default:5000"
namespace = "from-default"
"#;
const PROD: &str = r#"
[registry]
registry_url = "prod:5000"
namespace = "from-prod"
"#;
const LOCAL: &str = r#"
[registry]
namespace = "from-local"
"#;

fn docker(c: &config::Config) -> (&str, &str) {
    match &c.registry {
        RegistryConfig::Docker(d) => (d.registry_url.as_str(), d.namespace.as_str()),
        other => panic!("expected docker, got {other:?}"),
    }
}

fn load(
    files: &[(&str, &str)],
    mode: Option<&str>,
    vars: &[(&str, &str)],
) -> Result<config::Config, ConfigError> {
    // Layers are JSON at run time (build.rs converts config/*.toml); convert the same way.
    let json: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| {
            (
                n.to_string(),
                toml::from_str::<serde_json::Value>(t).unwrap().to_string(),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = json.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    config::load(&files, mode, vars.iter().copied())
}

#[test]
fn default_alone() {
    let c = load(&[("default", DEFAULT)], None, &[]).unwrap();
    assert_eq!(docker(&c), ("default:5000", "from-default"));
}

#[test]
fn env_file_beats_default() {
    let c = load(
        &[("default", DEFAULT), ("production", PROD)],
        Some("production"),
        &[],
    )
    .unwrap();
    assert_eq!(docker(&c), ("prod:5000", "from-prod"));
    // Without RUN_MODE the environment file is not used.
    let c = load(&[("default", DEFAULT), ("production", PROD)], None, &[]).unwrap();
    assert_eq!(docker(&c), ("default:5000", "from-default"));
}

const DEV: &str = r#"
[registry]
registry_url = "dev:5000"
namespace = "from-dev"
"#;

#[test]
fn local_beats_the_development_file() {
    let files = [("default", DEFAULT), ("development", DEV), ("local", LOCAL)];
    let c = load(&files, Some("development"), &[]).unwrap();
    assert_eq!(docker(&c), ("dev:5000", "from-local"));
}

/// Issue 11: a `config/local.toml` on the build machine never reaches production (or any
/// mode but development).
#[test]
fn local_is_ignored_outside_development() {
    let files = [("default", DEFAULT), ("production", PROD), ("local", LOCAL)];
    let c = load(&files, Some("production"), &[]).unwrap();
    assert_eq!(docker(&c), ("prod:5000", "from-prod"));
    let c = load(&[("default", DEFAULT), ("local", LOCAL)], None, &[]).unwrap();
    assert_eq!(docker(&c), ("default:5000", "from-default"));
}

/// Issue 11: the embedded config needs `RUN_MODE`: a `wrangler deploy` that forgot
/// `--env production` stops with a message naming it, instead of serving the
/// development issuer and registry.
#[test]
fn embedded_config_needs_a_run_mode() {
    for mode in [None, Some(""), Some("  ")] {
        let err = config::load_embedded(mode, []).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Key { key, .. } if key == "RUN_MODE"),
            "{err}"
        );
    }
    let dev = config::load_embedded(Some("development"), []).unwrap();
    assert_eq!(dev.auth.issuers[0].issuer, "rise-dev");
    // Production has no development issuer and no local registry.
    let prod = config::load_embedded(Some("production"), []).unwrap();
    assert!(prod.auth.issuers.iter().all(|i| i.issuer != "rise-dev"));
    assert!(!matches!(prod.registry, RegistryConfig::Docker(_)));
}

#[test]
fn var_beats_default() {
    let c = load(
        &[("default", DEFAULT)],
        None,
        &[("RISE_REGISTRY__NAMESPACE", "from-var")],
    )
    .unwrap();
    assert_eq!(docker(&c), ("default:5000", "from-var"));
}

#[test]
fn var_beats_env_file() {
    let files = [("default", DEFAULT), ("production", PROD)];
    let c = load(
        &files,
        Some("production"),
        &[("RISE_REGISTRY__REGISTRY_URL", "var:1")],
    )
    .unwrap();
    assert_eq!(docker(&c), ("var:1", "from-prod"));
}

#[test]
fn var_beats_local() {
    let files = [("default", DEFAULT), ("production", PROD), ("local", LOCAL)];
    let c = load(
        &files,
        Some("production"),
        &[("RISE_REGISTRY__NAMESPACE", "from-var")],
    )
    .unwrap();
    assert_eq!(docker(&c), ("prod:5000", "from-var"));
}

#[test]
fn unrelated_vars_are_ignored() {
    // Secrets such as RISE_JWT_SECRET have no `__` and are never config.
    let vars = [
        ("RISE_JWT_SECRET", "c2VjcmV0"),
        ("OTHER__X", "1"),
        ("RUN_MODE", "x"),
    ];
    let c = load(&[("default", DEFAULT)], None, &vars).unwrap();
    assert_eq!(docker(&c), ("default:5000", "from-default"));
}

#[test]
fn type_switch_by_var_replaces_the_section() {
    let vars = [
        ("RISE_REGISTRY__TYPE", "ecr"),
        ("RISE_REGISTRY__REGION", "eu-west-1"),
        ("RISE_REGISTRY__ACCOUNT_ID", "123456789012"),
        (
            "RISE_REGISTRY__PUSH_ROLE_ARN",
            "arn:aws:iam::123456789012:role/push",
        ),
        ("RISE_REGISTRY__SESSION_DURATION_SECONDS", "1800"),
        ("RISE_REGISTRY__SOURCE_IDENTITY", "false"),
    ];
    let c = load(&[("default", DEFAULT)], None, &vars).unwrap();
    let RegistryConfig::Ecr(ecr) = &c.registry else {
        panic!("expected ecr")
    };
    assert_eq!(ecr.region, "eu-west-1");
    assert_eq!(ecr.session_duration_seconds, 1800);
    assert!(!ecr.source_identity);
    assert_eq!(ecr.repo_prefix, "");
    assert_eq!(
        ecr.registry_host(),
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    );
}

#[test]
fn embedded_production_file_is_a_valid_ecr_example() {
    let c = config::load_embedded(Some("production"), []).unwrap();
    let RegistryConfig::Ecr(ecr) = &c.registry else {
        panic!("expected ecr")
    };
    assert_eq!(ecr.repo_prefix, "rise/");
    assert_eq!(c.auth.issuers.len(), 2);
    let c = config::load_embedded(Some("development"), []).unwrap();
    assert_eq!(docker(&c), ("localhost:5000", "rise-apps"));
}

#[test]
fn json_var_replaces_a_list_whole() {
    let issuers = r#"[{"issuer":"https://ci.test","audience":"rise","jwks_url":"https://ci.test/keys","claims_grant_access":false}]"#;
    let c = config::load_embedded(
        Some("development"),
        [
            ("RISE_AUTH__ISSUERS", issuers),
            ("RISE_AUTH__LEEWAY_SECONDS", "30"),
        ],
    )
    .unwrap();
    assert_eq!(c.auth.issuers.len(), 1);
    assert_eq!(c.auth.issuers[0].issuer, "https://ci.test");
    assert!(!c.auth.issuers[0].grants_by_claims());
    assert_eq!(c.auth.leeway_seconds, 30);
}

fn key_error(result: Result<config::Config, ConfigError>) -> (String, String) {
    match result {
        Err(ConfigError::Key { key, reason }) => (key, reason),
        other => panic!("expected a key error, got {other:?}"),
    }
}

#[test]
fn errors_name_the_key_and_never_the_value() {
    let bad = |vars: &[(&str, &str)]| key_error(load(&[("default", DEFAULT)], None, vars));
    let ecr = [
        ("RISE_REGISTRY__TYPE", "ecr"),
        ("RISE_REGISTRY__REGION", "us-east-1"),
        ("RISE_REGISTRY__ACCOUNT_ID", "123456789012"),
    ];
    let (key, reason) = bad(&ecr);
    assert_eq!(
        (key.as_str(), reason.as_str()),
        ("registry.push_role_arn", "is required")
    );

    let (key, reason) = bad(&[("RISE_REGISTRY__COLOUR", "blue")]);
    assert_eq!(
        (key.as_str(), reason.as_str()),
        ("registry.colour", "is not a known key")
    );

    let (key, _) = bad(&[("RISE_AUTH__LEEWAY_SECONDS", "sixty-SECRETVALUE")]);
    assert_eq!(key, "auth.leeway_seconds");

    let (key, _) = bad(&[("RISE_REGISTRY__TYPE", "harbour")]);
    assert_eq!(key, "registry.type");

    let (key, _) = bad(&[("RISE_AUTH__ISSUERS", "[{not json")]);
    assert_eq!(key, "RISE_AUTH__ISSUERS");

    let (key, _) = bad(&[(
        "RISE_AUTH__ISSUERS",
        r#"[{"issuer":"a","audience":"b","hs256_secret":"S","colour":"SECRETVALUE"}]"#,
    )]);
    assert_eq!(key, "auth.issuers[0].colour");

    let (key, _) = bad(&[("RISE_NOPE__X", "1")]);
    assert_eq!(key, "nope");

    let mut dur = ecr.to_vec();
    dur.push((
        "RISE_REGISTRY__PUSH_ROLE_ARN",
        "arn:aws:iam::123456789012:role/push",
    ));
    dur.push(("RISE_REGISTRY__SESSION_DURATION_SECONDS", "899"));
    assert_eq!(bad(&dur).0, "registry.session_duration_seconds");
    dur.pop();
    dur.push(("RISE_REGISTRY__SESSION_DURATION_SECONDS", "43201"));
    assert_eq!(bad(&dur).0, "registry.session_duration_seconds");
    dur.pop();
    dur.push(("RISE_REGISTRY__STS_ENDPOINT", "http://sts.example.com"));
    assert_eq!(bad(&dur).0, "registry.sts_endpoint");

    // The value never appears in the message, whatever went wrong.
    for vars in [
        vec![("RISE_AUTH__LEEWAY_SECONDS", "SECRETVALUE")],
        vec![("RISE_REGISTRY__REGISTRY_URL", "https://SECRETVALUE/x")],
        vec![("RISE_AUTH__ADMINS", "SECRETVALUE")],
    ] {
        let err = load(&[("default", DEFAULT)], None, &vars).unwrap_err();
        assert!(!err.to_string().contains("SECRETVALUE"), "{err}");
    }
}

#[test]
fn unknown_run_mode_is_an_error() {
    let (key, _) = key_error(load(&[("default", DEFAULT)], Some("prodution"), &[]));
    assert_eq!(key, "RUN_MODE");
}

#[test]
fn service_account_rules_must_pin_more_than_issuer_and_audience() {
    let base = r#"{"issuer":"https://gh.test","audience":"rise","jwks_url":"https://gh.test/k","owner_claims":["repository"]}"#;
    let with_rule = |claims: &str| {
        let issuers = format!("[{base}]");
        let rules = format!(
            r#"[{{"project":"my-app","issuer":"https://gh.test","audience":"rise","claims":{claims}}}]"#
        );
        config::load_embedded(
            Some("development"),
            [
                ("RISE_AUTH__ISSUERS", issuers.as_str()),
                ("RISE_AUTH__SERVICE_ACCOUNTS", rules.as_str()),
            ],
        )
    };
    assert!(with_rule(r#"{"repository":"org/my-app"}"#).is_ok());
    for claims in [
        r#"{}"#,
        r#"{"repository":"*"}"#,
        r#"{"aud":"rise"}"#,
        r#"{"iss":"https://gh.test"}"#,
    ] {
        let (key, _) = key_error(with_rule(claims));
        assert_eq!(key, "auth.service_accounts[0].claims", "{claims}");
    }
}

#[test]
fn issuer_needs_exactly_one_key_source() {
    for issuer in [
        r#"{"issuer":"a","audience":"b"}"#,
        r#"{"issuer":"a","audience":"b","hs256_secret":"S","jwks_url":"https://x/k"}"#,
        r#"{"issuer":"a","audience":"","hs256_secret":"S"}"#,
        r#"{"issuer":"a","audience":"b","jwks_url":"http://evil.test/k"}"#,
    ] {
        let list = format!("[{issuer}]");
        let (key, _) = key_error(config::load_embedded(
            Some("development"),
            [("RISE_AUTH__ISSUERS", list.as_str())],
        ));
        assert!(key.starts_with("auth.issuers[0]"), "{key}");
    }
}

#[test]
fn hs256_secret_is_checked_at_start_up() {
    let config = config::load_embedded(Some("development"), []).unwrap();
    let err = Broker::new(config.clone(), &MapSecrets::default()).unwrap_err();
    assert_eq!(err, ConfigError::missing_secret("RISE_JWT_SECRET"));
    assert!(err.to_string().contains("RISE_JWT_SECRET"));
    // 31 bytes: too short.
    let short = MapSecrets::default().with(
        "RISE_JWT_SECRET",
        "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MA",
    );
    let short = short.with(
        "RISE_JWT_SECRET",
        "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYQ==",
    );
    let err = Broker::new(config.clone(), &short).unwrap_err();
    assert!(
        matches!(err, ConfigError::Secret { ref name, .. } if name == "RISE_JWT_SECRET"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("YWFh"));
    let not_b64 = MapSecrets::default().with("RISE_JWT_SECRET", "not base64 at all!!");
    assert!(Broker::new(config.clone(), &not_b64).is_err());
    assert!(Broker::new(config, &crate::common::secrets()).is_ok());
}

/// Issue 11: the caches fit an isolate, and a zero refetch interval is refused.
#[test]
fn memory_bounds_and_refetch_floor() {
    let key_of = |vars: &[(&str, &str)]| match config::load_embedded(
        Some("development"),
        vars.iter().copied(),
    ) {
        Ok(_) => None,
        Err(ConfigError::Key { key, .. }) => Some(key),
        Err(other) => panic!("{other}"),
    };
    assert_eq!(key_of(&[("RISE_CACHE__MAX_ENTRIES", "4096")]), None);
    assert_eq!(
        key_of(&[("RISE_CACHE__MAX_ENTRIES", "4097")]).as_deref(),
        Some("cache.max_entries")
    );
    // 16 MiB / (2 × 8192 + 256) = 1008 tokens of the default maximum size.
    assert_eq!(key_of(&[("RISE_CACHE__TOKEN_ENTRIES", "1008")]), None);
    assert_eq!(
        key_of(&[("RISE_CACHE__TOKEN_ENTRIES", "1009")]).as_deref(),
        Some("cache.token_entries")
    );
    // Smaller tokens, more of them.
    assert_eq!(
        key_of(&[
            ("RISE_CACHE__TOKEN_ENTRIES", "7000"),
            ("RISE_AUTH__MAX_TOKEN_BYTES", "1024")
        ]),
        None
    );
    assert_eq!(
        key_of(&[("RISE_AUTH__JWKS_MIN_REFETCH_SECONDS", "0")]).as_deref(),
        Some("auth.jwks_min_refetch_seconds")
    );
}
