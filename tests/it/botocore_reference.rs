//! The STS and ECR requests the worker builds, signed by the worker's code path and by
//! botocore's `SigV4Auth` (the reference signer), compared byte for byte: canonical
//! request, string to sign, `Authorization`, every signed header and the body.
//!
//! Our side is the production builders (`EcrProvider::assume_role_outbound`,
//! `EcrProvider::authorization_token_outbound`, `push_role_request`,
//! `chain_role_request`): a change to any of them breaks this test.
//!
//! botocore's answers are committed as golden files (`tests/fixtures/botocore/*.json`),
//! so plain `cargo test` needs no Python. When botocore is available
//! (`tests/helpers/botocore_sign.py` in the project's `.venv`, which `scripts/setup.sh
//! test` creates; `BOTOCORE_PYTHON` overrides the interpreter) it is also run live and
//! must agree with the golden files; `scripts/regen-botocore-golden.sh` rewrites them.
//! aws-sigv4 reports its canonical request and string to sign only as trace events, so a
//! small `tracing` subscriber captures the canonical request. aws-sigv4 logs it with the
//! session token redacted, so botocore's gets the same redaction before comparing. The
//! string to sign (which holds the SHA-256 of the unredacted canonical request) is not
//! logged on the header-signing path; instead botocore's string to sign is HMAC'd with
//! the SigV4 signing key (aws-sigv4's public `generate_signing_key`/`calculate_signature`)
//! and must give exactly the signature in our `Authorization` header — equal HMACs mean
//! equal strings to sign, hence equal canonical requests, tokens included.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use rise_registry_broker::aws::AwsCredentials;
use rise_registry_broker::config;
use rise_registry_broker::project::{Access, ProjectName};
use rise_registry_broker::registry::ecr::{chain_role_request, push_role_request, EcrProvider};
use rise_registry_broker::registry::RegistryConfig;
use rise_registry_broker::runtime::OutboundRequest;
use rise_registry_broker::secrets::SecretString;
use serde_json::{json, Value};

use crate::common::sigv4_trace::{canonical_request_of, redact_token};

/// 2026-01-01T00:00:00Z
const NOW_MS: u64 = 1_767_225_600_000;

fn time() -> std::time::SystemTime {
    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(NOW_MS)
}

/// One request as production builds and signs it, plus what botocore needs to sign the
/// same thing.
struct Signed {
    name: &'static str,
    /// The AssumeRole parameters, for botocore's own serializer.
    params: Option<Value>,
    /// Production's signed request.
    signed: OutboundRequest,
    /// The same request without the headers signing added: botocore's input.
    unsigned: OutboundRequest,
    creds: AwsCredentials,
    service: &'static str,
    canonical_request: String,
}

/// Runs `sign` (a production builder) with aws-sigv4's trace captured.
fn captured(
    name: &'static str,
    creds: AwsCredentials,
    service: &'static str,
    sign: impl FnOnce(&AwsCredentials) -> OutboundRequest,
) -> Signed {
    let (signed, canonical_request) = canonical_request_of(|| sign(&creds));
    let mut unsigned = signed.clone();
    unsigned.headers.retain(|(k, _)| {
        !matches!(
            k.to_ascii_lowercase().as_str(),
            "authorization" | "x-amz-date" | "x-amz-security-token"
        )
    });
    Signed {
        name,
        params: None,
        signed,
        unsigned,
        creds,
        service,
        canonical_request,
    }
}

fn creds(akid: &str, secret: &str, token: Option<&str>) -> AwsCredentials {
    AwsCredentials {
        access_key_id: akid.into(),
        secret_access_key: SecretString::new(secret),
        session_token: token.map(SecretString::new),
        expires_at_ms: None,
    }
}

fn ecr_config() -> rise_registry_broker::registry::EcrConfig {
    let vars = [
        ("RISE_REGISTRY__TYPE", "ecr"),
        ("RISE_REGISTRY__REGION", "us-east-1"),
        ("RISE_REGISTRY__ACCOUNT_ID", "123456789012"),
        ("RISE_REGISTRY__REPO_PREFIX", "rise/"),
        (
            "RISE_REGISTRY__PUSH_ROLE_ARN",
            "arn:aws:iam::123456789012:role/rise-ecr-push",
        ),
        ("RISE_REGISTRY__SESSION_DURATION_SECONDS", "3600"),
    ];
    match config::load_embedded(Some("development"), vars)
        .unwrap()
        .registry
    {
        RegistryConfig::Ecr(c) => c,
        _ => unreachable!(),
    }
}

fn assume_role_params(r: &rise_registry_broker::aws::sts::AssumeRoleRequest) -> Option<Value> {
    let mut p = json!({"RoleArn": r.role_arn, "RoleSessionName": r.role_session_name,
                       "DurationSeconds": r.duration_seconds});
    if let Some(policy) = &r.policy {
        p["Policy"] = json!(policy);
    }
    if let Some(si) = &r.source_identity {
        p["SourceIdentity"] = json!(si);
    }
    Some(p)
}

/// Every STS/ECR request the ECR provider sends, built and signed by production code.
fn cases() -> Vec<Signed> {
    let config = ecr_config();
    let provider = EcrProvider::new(config.clone(), None);
    let project = ProjectName::parse("my-app").unwrap();
    let base = creds(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
    );
    let base_with_token = creds(
        "ASIABASEEXAMPLE",
        "base/Secret+Key=",
        Some("IQoJb3JpZ2luX2VjEBase+Token/="),
    );
    let session = creds(
        "ASIASESSIONEXAMPLE",
        "session/Secret+Key=",
        Some("FwoGZXIvYXdzEXAMPLE//Token+with/specials="),
    );
    let push =
        push_role_request(&config, "alice@example.com", &project, Access::Push, 43_200).unwrap();
    let pull = push_role_request(
        &config,
        "ci-bot+repo=org,my-app",
        &project,
        Access::Pull,
        43_200,
    )
    .unwrap();
    let chain = chain_role_request("arn:aws:iam::123456789012:role/rise-backend");
    let sts = |request: &rise_registry_broker::aws::sts::AssumeRoleRequest| {
        let request = request.clone();
        let provider = &provider;
        move |with: &AwsCredentials| {
            provider
                .assume_role_outbound(&request, with, NOW_MS)
                .unwrap()
        }
    };
    let mut cases = vec![
        captured("assume_role_push", base.clone(), "sts", sts(&push)),
        captured(
            "assume_role_push_base_session",
            base_with_token,
            "sts",
            sts(&push),
        ),
        captured("assume_role_pull", base.clone(), "sts", sts(&pull)),
        captured("assume_role_chain", base, "sts", sts(&chain)),
        captured("get_authorization_token", session, "ecr", |with| {
            provider.authorization_token_outbound(with, NOW_MS).unwrap()
        }),
    ];
    cases[0].params = assume_role_params(&push);
    cases[2].params = assume_role_params(&pull);
    cases[3].params = assume_role_params(&chain);
    cases
}

/// Runs botocore on the cases; `None` (with the reason) when its Python is not there.
fn botocore(cases: &[Signed]) -> Result<Vec<Value>, String> {
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "method": c.unsigned.method, "url": c.unsigned.url,
                "headers": c.unsigned.headers, "body": String::from_utf8(c.unsigned.body.clone()).unwrap(),
                "access_key": c.creds.access_key_id, "secret_key": c.creds.secret_access_key.expose(),
                "token": c.creds.session_token.as_ref().map(|t| t.expose().to_owned()),
                "region": "us-east-1", "service": c.service, "time": "20260101T000000Z",
                "assume_role_params": c.params,
            })
        })
        .collect();
    let root = env!("CARGO_MANIFEST_DIR");
    let python =
        std::env::var("BOTOCORE_PYTHON").unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
    let mut child = Command::new(&python)
        .arg(format!("{root}/tests/helpers/botocore_sign.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{python}: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::from(input).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(format!(
            "{python} tests/helpers/botocore_sign.py failed (is botocore installed?)"
        ));
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/botocore/{name}.json"))
}

fn golden(name: &str) -> Value {
    let path = golden_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/regen-botocore-golden.sh)", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Our signed request against botocore's answer, stage by stage.
fn assert_matches(ours: &Signed, theirs: &Value) {
    let name = ours.name;
    assert_eq!(
        ours.canonical_request,
        redact_token(theirs["canonical_request"].as_str().unwrap()),
        "{name}: canonical request"
    );
    let header = |n: &str| {
        ours.signed
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    let our_signature = header("authorization")
        .unwrap()
        .rsplit("Signature=")
        .next()
        .unwrap();
    let key = generate_signing_key(
        ours.creds.secret_access_key.expose(),
        time(),
        "us-east-1",
        ours.service,
    );
    let theirs_sts = theirs["string_to_sign"].as_str().unwrap();
    assert_eq!(
        calculate_signature(key, theirs_sts.as_bytes()),
        our_signature,
        "{name}: string to sign"
    );
    assert_eq!(
        header("authorization"),
        theirs["authorization"].as_str(),
        "{name}: Authorization"
    );
    for (k, v) in theirs["headers"].as_object().unwrap() {
        assert_eq!(header(k), v.as_str(), "{name}: header {k}");
    }
    // Nothing signed on our side that botocore did not sign.
    assert_eq!(
        ours.signed.headers.len(),
        theirs["headers"].as_object().unwrap().len(),
        "{name}: header count"
    );
    let body = String::from_utf8(ours.signed.body.clone()).unwrap();
    assert_eq!(body, theirs["body"], "{name}: body");
    // botocore's own Query serializer: the same parameters, each encoded byte for byte
    // alike (its parameter order follows the input, so compare them sorted).
    if let Some(theirs) = theirs["botocore_body"].as_str() {
        let sorted = |body: &str| {
            let mut params: Vec<String> = body.split('&').map(str::to_owned).collect();
            params.sort();
            params
        };
        assert_eq!(
            sorted(&body),
            sorted(theirs),
            "{name}: body vs botocore's own Query serializer"
        );
    }
}

#[test]
fn sts_and_ecr_requests_match_botocore_golden_files() {
    for case in cases() {
        assert_matches(&case, &golden(case.name));
    }
}

/// The golden files are botocore's current answers: run it live when it is installed.
/// `BOTOCORE_GOLDEN=write` rewrites the files instead (scripts/regen-botocore-golden.sh).
#[test]
fn golden_files_agree_with_live_botocore() {
    let cases = cases();
    let live = match botocore(&cases) {
        Ok(live) => live,
        Err(why) => {
            eprintln!("SKIPPED live botocore comparison: {why}; golden files still checked");
            return;
        }
    };
    let write = std::env::var("BOTOCORE_GOLDEN").as_deref() == Ok("write");
    for (case, theirs) in cases.iter().zip(&live) {
        if write {
            let text = serde_json::to_string_pretty(theirs).unwrap() + "\n";
            std::fs::write(golden_path(case.name), text).unwrap();
        }
        assert_eq!(
            theirs,
            &golden(case.name),
            "{}: golden file is stale",
            case.name
        );
        assert_matches(case, theirs);
    }
}
