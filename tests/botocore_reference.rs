//! The STS and ECR requests the worker builds, signed by the worker's code path and by
//! botocore's `SigV4Auth` (the reference signer), compared byte for byte: canonical
//! request, string to sign, `Authorization`, every signed header and the body.
//!
//! botocore runs in `tests/helpers/botocore_sign.py` from the project's `.venv`
//! (`scripts/setup.sh test` installs it; `BOTOCORE_PYTHON` overrides the interpreter).
//! aws-sigv4 reports its canonical request and string to sign only as trace events, so a
//! small `tracing` subscriber captures the canonical request. aws-sigv4 logs it with the
//! session token redacted, so botocore's gets the same redaction before comparing. The
//! string to sign (which holds the SHA-256 of the unredacted canonical request) is not
//! logged on the header-signing path; instead botocore's string to sign is HMAC'd with
//! the SigV4 signing key (aws-sigv4's public `generate_signing_key`/`calculate_signature`)
//! and must give exactly the signature in our `Authorization` header — equal HMACs mean
//! equal strings to sign, hence equal canonical requests, tokens included.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use rise_registry_broker::aws::{ecr, sigv4, AwsCredentials};
use rise_registry_broker::config;
use rise_registry_broker::http::OutboundRequest;
use rise_registry_broker::project::{Access, ProjectName};
use rise_registry_broker::registry::ecr::push_role_request;
use rise_registry_broker::registry::RegistryConfig;
use rise_registry_broker::secrets::SecretString;
use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing::{span, Event, Metadata, Subscriber};

/// 2026-01-01T00:00:00Z
const NOW_MS: u64 = 1_767_225_600_000;

fn time() -> std::time::SystemTime {
    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(NOW_MS)
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<HashMap<String, String>>>);

impl Visit for Capture {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "canonical_request" {
            self.0
                .lock()
                .unwrap()
                .insert(field.name().to_owned(), format!("{value:?}"));
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        event.record(&mut self.clone());
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

struct Signed {
    name: &'static str,
    /// The AssumeRole parameters, for botocore's own serializer.
    params: Option<Value>,
    unsigned: OutboundRequest,
    signed: OutboundRequest,
    creds: AwsCredentials,
    service: &'static str,
    canonical_request: String,
}

fn sign_captured(
    name: &'static str,
    unsigned: OutboundRequest,
    creds: AwsCredentials,
    service: &'static str,
) -> Signed {
    let capture = Capture::default();
    let mut signed = unsigned.clone();
    tracing::subscriber::with_default(capture.clone(), || {
        sigv4::sign(&mut signed, &creds, "us-east-1", service, NOW_MS).unwrap();
    });
    let fields = capture.0.lock().unwrap().clone();
    Signed {
        name,
        params: None,
        unsigned,
        signed,
        creds,
        service,
        canonical_request: fields
            .get("canonical_request")
            .cloned()
            .expect("aws-sigv4 traced its canonical request"),
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
    match config::load_embedded(None, vars).unwrap().registry {
        RegistryConfig::Ecr(c) => c,
        _ => unreachable!(),
    }
}

fn botocore(cases: &[Signed]) -> Vec<Value> {
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
        .unwrap_or_else(|e| {
            panic!("{python}: {e} — run `scripts/setup.sh test` to create .venv with botocore")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::from(input).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "botocore helper failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// aws-sigv4's log form of a canonical request: session token value replaced.
fn redact_token(canonical: &str) -> String {
    canonical
        .lines()
        .map(|l| match l.strip_prefix("x-amz-security-token:") {
            Some(v) => format!("x-amz-security-token:** redacted (length={}) **", v.len()),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sts_and_ecr_requests_match_botocore_byte_for_byte() {
    let config = ecr_config();
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
    let sts_url = "https://sts.us-east-1.amazonaws.com/";
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
    let cases = vec![
        sign_captured(
            "assume_role_push",
            push.to_outbound(sts_url, 5000),
            base.clone(),
            "sts",
        ),
        sign_captured(
            "assume_role_push_base_session",
            push.to_outbound(sts_url, 5000),
            base_with_token,
            "sts",
        ),
        sign_captured(
            "assume_role_pull",
            pull.to_outbound(sts_url, 5000),
            base,
            "sts",
        ),
        sign_captured(
            "get_authorization_token",
            ecr::get_authorization_token_request(&ecr::default_endpoint("us-east-1"), 5000),
            session,
            "ecr",
        ),
    ];
    let params = |r: &rise_registry_broker::aws::sts::AssumeRoleRequest| {
        let mut p = json!({"RoleArn": r.role_arn, "RoleSessionName": r.role_session_name,
                           "DurationSeconds": r.duration_seconds, "Policy": r.policy});
        if let Some(si) = &r.source_identity {
            p["SourceIdentity"] = json!(si);
        }
        Some(p)
    };
    let mut cases = cases;
    cases[0].params = params(&push);
    cases[2].params = params(&pull);
    let reference = botocore(&cases);
    assert_eq!(reference.len(), cases.len());
    for (ours, theirs) in cases.iter().zip(&reference) {
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
        assert_eq!(
            header("authorization"),
            theirs["authorization"].as_str(),
            "{name}: Authorization"
        );
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
        for (k, v) in theirs["headers"].as_object().unwrap() {
            assert_eq!(header(k), v.as_str(), "{name}: header {k}");
        }
        // Nothing signed on our side that botocore did not sign.
        assert_eq!(
            ours.signed.headers.len(),
            theirs["headers"].as_object().unwrap().len(),
            "{name}: header count"
        );
        assert_eq!(
            String::from_utf8(ours.signed.body.clone()).unwrap(),
            theirs["body"],
            "{name}: body"
        );
    }
}
