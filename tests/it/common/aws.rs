//! A scripted fake STS/ECR for the ECR provider and cache tests: an ECR broker pointed at
//! it, canned AssumeRole / GetAuthorizationToken answers, and the secrets involved.
#![allow(dead_code)]

use base64::Engine as _;
use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use rise_registry_broker::runtime::{OutboundResponse, TransportError};
use rise_registry_broker::secrets::MapSecrets;
use serde_json::json;

use rise_registry_broker::api::Outcome;

use super::{dev_token, get, run_with, secrets, FakeHttp, RecordingSleeper, NOW_MS};

pub const STS: &str = "https://sts.test/";
pub const ECR: &str = "https://ecr.test/";
pub const BASE_AKID: &str = "AKIABASEEXAMPLE00001";
pub const BASE_SECRET: &str = "base/secret/never-printed-0001";
pub const SESSION_SECRET: &str = "session/secret/never-printed-0002";
pub const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN";
pub const PASSWORD: &str = "ecr-password-never-in-logs";

/// The ECR provider pointed at the fake STS/ECR, with `extra` vars replacing or adding keys.
pub fn ecr_vars<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        ("RISE_REGISTRY__TYPE", "ecr"),
        ("RISE_REGISTRY__REGION", "us-east-1"),
        ("RISE_REGISTRY__ACCOUNT_ID", "123456789012"),
        ("RISE_REGISTRY__REPO_PREFIX", "rise/"),
        (
            "RISE_REGISTRY__PUSH_ROLE_ARN",
            "arn:aws:iam::123456789012:role/rise-ecr-push",
        ),
        ("RISE_REGISTRY__STS_ENDPOINT", STS),
        ("RISE_REGISTRY__ECR_ENDPOINT", ECR),
    ];
    vars.retain(|(k, _)| extra.iter().all(|(e, _)| e != k));
    vars.extend_from_slice(extra);
    vars
}

pub fn broker(extra: &[(&str, &str)]) -> Broker {
    let vars = ecr_vars(extra);
    Broker::new(
        config::load_embedded(Some("development"), vars).unwrap(),
        &aws_secrets(),
    )
    .unwrap()
}

pub fn aws_secrets() -> MapSecrets {
    secrets()
        .with("AWS_ACCESS_KEY_ID", BASE_AKID)
        .with("AWS_SECRET_ACCESS_KEY", BASE_SECRET)
}

/// Scripted answers for one endpoint, in order.
pub type Answers = Vec<Result<OutboundResponse, TransportError>>;

pub fn ok(
    body: String,
    headers: Vec<(String, String)>,
) -> Result<OutboundResponse, TransportError> {
    Ok(OutboundResponse {
        status: 200,
        headers,
        body: body.into_bytes(),
    })
}

pub fn err(status: u16, body: &str) -> Result<OutboundResponse, TransportError> {
    Ok(OutboundResponse {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    })
}

pub fn iso(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// An AssumeRole answer whose session ends `expires_in_s` from now.
pub fn sts_ok(akid: &str, expires_in_s: u64) -> Result<OutboundResponse, TransportError> {
    ok(
        format!(
            r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><AssumedRoleId>AROA:rise</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/rise-ecr-push/rise</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{akid}</AccessKeyId>
      <SecretAccessKey>{SESSION_SECRET}</SecretAccessKey>
      <SessionToken>{SESSION_TOKEN}&amp;x</SessionToken>
      <Expiration>{}</Expiration>
    </Credentials>
    <PackedPolicySize>7</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>sts-req-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#,
            iso(NOW_MS + expires_in_s * 1000)
        ),
        vec![],
    )
}

/// A GetAuthorizationToken answer expiring `expires_in_s` from now (float seconds).
pub fn ecr_ok(expires_at_s: f64) -> Result<OutboundResponse, TransportError> {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{PASSWORD}"));
    ok(
        json!({"authorizationData": [{"authorizationToken": token, "expiresAt": expires_at_s,
               "proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"}]})
        .to_string(),
        vec![("x-amzn-RequestId".into(), "ecr-req-1".into())],
    )
}

pub const NOW_F: f64 = (NOW_MS / 1000) as f64;

pub fn sts_error(code: &str) -> String {
    format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>The security token {BASE_AKID} is bad</Message></Error><RequestId>sts-err-1</RequestId></ErrorResponse>")
}

/// `GET /registry/credentials?{query}` for a caller allowed `my-app`, with the AWS secrets.
pub fn request_with_aws(
    b: &Broker,
    http: &FakeHttp,
    query: &str,
    sleeper: &RecordingSleeper,
) -> Outcome {
    let t = token_for(&["my-app"]);
    let request = get(&format!("/registry/credentials?{query}"), Some(&t));
    run_with(b, &request, http, &aws_secrets(), sleeper, NOW_MS)
}

pub fn token_for(projects: &[&str]) -> String {
    dev_token(json!({"projects": projects}))
}
