//! The ECR provider against a scripted fake STS/ECR with a frozen clock: request shapes,
//! expires_in arithmetic, chaining and its cache, retries and the error mapping.

use crate::common::aws::*;
use crate::common::*;
use rise_registry_broker::broker::Broker;
use rise_registry_broker::runtime::{OutboundRequest, TransportError};
use serde_json::{json, Value};

fn issue(b: &Broker, http: &FakeHttp, query: &str) -> (u16, Value, Value, Vec<u64>) {
    let sleeper = RecordingSleeper::default();
    let outcome = request_with_aws(b, http, query, &sleeper);
    let audit = audit(&outcome);
    let all_text = format!("{} {}", outcome.response.body, audit);
    for secret in [BASE_SECRET, SESSION_SECRET, SESSION_TOKEN, BASE_AKID] {
        assert!(!all_text.contains(secret), "leaked {secret}: {all_text}");
    }
    assert!(!audit.to_string().contains(PASSWORD));
    let sleeps = sleeper.sleeps.borrow().clone();
    (outcome.response.status, body(&outcome), audit, sleeps)
}

fn form(request: &OutboundRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn param<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn header<'a>(request: &'a OutboundRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn issues_scoped_credentials_with_two_signed_calls() {
    let b = broker(&[]);
    let http = FakeHttp::new();
    http.script(STS, vec![sts_ok("ASIASESSION000000001", 3600)]);
    http.script(ECR, vec![ecr_ok(NOW_F + 43_200.0)]);
    let (status, body, audit, _) = issue(&b, &http, "project=my-app");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "credentials": {"registry_url": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                            "username": "AWS", "password": PASSWORD, "expires_in": 3540},
            "repository": "rise/my-app",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/rise/my-app",
            "auth_method": "login_credentials"
        })
    );
    assert_eq!(audit["subrequests"], 2);
    assert_eq!(audit["aws_request_ids"], json!(["sts-req-1", "ecr-req-1"]));

    let sts = &http.calls_for(STS)[0];
    assert_eq!(sts.method, "POST");
    assert_eq!(
        header(sts, "content-type"),
        Some("application/x-www-form-urlencoded; charset=utf-8")
    );
    let f = form(sts);
    assert_eq!(param(&f, "Action"), Some("AssumeRole"));
    assert_eq!(param(&f, "Version"), Some("2011-06-15"));
    assert_eq!(
        param(&f, "RoleArn"),
        Some("arn:aws:iam::123456789012:role/rise-ecr-push")
    );
    assert_eq!(param(&f, "RoleSessionName"), Some("rise-alice@example.com"));
    assert_eq!(param(&f, "SourceIdentity"), Some("alice@example.com"));
    assert_eq!(param(&f, "DurationSeconds"), Some("3600"));
    let policy: Value = serde_json::from_str(param(&f, "Policy").unwrap()).unwrap();
    assert_eq!(
        policy["Statement"][1]["Resource"],
        "arn:aws:ecr:us-east-1:123456789012:repository/rise/my-app"
    );
    assert_eq!(
        policy["Statement"][1]["Action"].as_array().unwrap().len(),
        7
    );
    let auth = header(sts, "authorization").unwrap();
    assert!(
        auth.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential={BASE_AKID}/20260101/us-east-1/sts/aws4_request"
        )),
        "{auth}"
    );
    assert_eq!(header(sts, "x-amz-date"), Some("20260101T000000Z"));
    assert_eq!(header(sts, "x-amz-security-token"), None);

    let ecr = &http.calls_for(ECR)[0];
    assert_eq!(ecr.body, b"{}");
    assert_eq!(
        header(ecr, "x-amz-target"),
        Some("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken")
    );
    assert_eq!(
        header(ecr, "content-type"),
        Some("application/x-amz-json-1.1")
    );
    let auth = header(ecr, "authorization").unwrap();
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=ASIASESSION000000001/20260101/us-east-1/ecr/aws4_request"
        ),
        "{auth}"
    );
    assert!(
        auth.contains("x-amz-security-token"),
        "session token is signed: {auth}"
    );
    // The XML entity in the session token was unescaped by the parser.
    assert_eq!(
        header(ecr, "x-amz-security-token"),
        Some(format!("{SESSION_TOKEN}&x").as_str())
    );
}

#[test]
fn expires_in_is_the_earlier_expiry_minus_the_margin() {
    for (session_s, ecr_s, want) in [
        (3600, 43_200.0, 3540),
        (43_200, 1800.5, 1740),
        (900, 900.0, 840),
    ] {
        let b = broker(&[("RISE_REGISTRY__SESSION_DURATION_SECONDS", "43200")]);
        let http = FakeHttp::new();
        http.script(STS, vec![sts_ok("ASIASESSION000000001", session_s)]);
        http.script(ECR, vec![ecr_ok(NOW_F + ecr_s)]);
        let (status, body, _, _) = issue(&b, &http, "project=my-app");
        assert_eq!(status, 200);
        assert_eq!(
            body["credentials"]["expires_in"], want,
            "session {session_s}s, ecr {ecr_s}s"
        );
    }
}

#[test]
fn pull_gets_read_only_actions_and_source_identity_can_be_off() {
    let b = broker(&[("RISE_REGISTRY__SOURCE_IDENTITY", "false")]);
    let http = FakeHttp::new();
    http.script(STS, vec![sts_ok("ASIASESSION000000001", 3600)]);
    http.script(ECR, vec![ecr_ok(NOW_F + 43_200.0)]);
    let (status, _, _, _) = issue(&b, &http, "project=my-app&access=pull");
    assert_eq!(status, 200);
    let f = form(&http.calls_for(STS)[0]);
    assert_eq!(param(&f, "SourceIdentity"), None);
    let policy: Value = serde_json::from_str(param(&f, "Policy").unwrap()).unwrap();
    let actions: Vec<&str> = policy["Statement"][1]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer"
        ]
    );
}

#[test]
fn role_chaining_costs_one_more_call_and_is_cached() {
    let b = broker(&[
        (
            "RISE_REGISTRY__ROLE_ARN",
            "arn:aws:iam::123456789012:role/rise-backend",
        ),
        ("RISE_REGISTRY__SESSION_DURATION_SECONDS", "43200"),
        // The credential cache would answer the second request: off, to see the role cache.
        ("RISE_CACHE__ENABLED", "false"),
    ]);
    let http = FakeHttp::new();
    http.script(
        STS,
        vec![
            sts_ok("ASIACHAIN00000000001", 3600),
            sts_ok("ASIASESSION000000001", 3600),
            sts_ok("ASIASESSION000000002", 3600),
        ],
    );
    http.script(
        ECR,
        vec![ecr_ok(NOW_F + 43_200.0), ecr_ok(NOW_F + 43_200.0)],
    );
    let (status, _, audit, _) = issue(&b, &http, "project=my-app");
    assert_eq!((status, audit["subrequests"].as_u64()), (200, Some(3)));
    let calls = http.calls_for(STS);
    let first = form(&calls[0]);
    assert_eq!(
        param(&first, "RoleArn"),
        Some("arn:aws:iam::123456789012:role/rise-backend")
    );
    assert_eq!(param(&first, "Policy"), None);
    let second = form(&calls[1]);
    assert_eq!(
        param(&second, "RoleArn"),
        Some("arn:aws:iam::123456789012:role/rise-ecr-push")
    );
    assert_eq!(
        param(&second, "DurationSeconds"),
        Some("3600"),
        "chained sessions are capped at 1 h"
    );
    assert!(header(&calls[1], "authorization")
        .unwrap()
        .contains("Credential=ASIACHAIN00000000001/"));
    // Warm: the chained session is reused.
    let (status, _, audit, _) = issue(&b, &http, "project=my-app");
    assert_eq!((status, audit["subrequests"].as_u64()), (200, Some(2)));
    assert_eq!(http.calls_for(STS).len(), 3);
}

/// Issue 11: once AWS refuses the push AssumeRole made from the cached `role_arn`
/// session (revoked, expired, key gone), that session is dropped and the next issuance
/// assumes `role_arn` afresh; other failures keep it.
#[test]
fn a_refused_chained_session_is_dropped() {
    for (code, drops) in [
        ("AccessDenied", true),
        ("ExpiredToken", true),
        ("InvalidClientTokenId", true),
        ("MalformedPolicyDocument", false),
    ] {
        let b = broker(&[
            (
                "RISE_REGISTRY__ROLE_ARN",
                "arn:aws:iam::123456789012:role/rise-backend",
            ),
            ("RISE_CACHE__ENABLED", "false"),
            ("RISE_REGISTRY__MAX_ATTEMPTS", "1"),
        ]);
        let http = FakeHttp::new();
        http.script(
            STS,
            vec![
                sts_ok("ASIACHAIN00000000001", 3600),
                sts_ok("ASIASESSION000000001", 3600),
                err(403, &sts_error(code)),
                sts_ok("ASIACHAIN00000000002", 3600),
                sts_ok("ASIASESSION000000002", 3600),
            ],
        );
        http.script(
            ECR,
            vec![ecr_ok(NOW_F + 43_200.0), ecr_ok(NOW_F + 43_200.0)],
        );
        assert_eq!(issue(&b, &http, "project=my-app").0, 200);
        assert_eq!(issue(&b, &http, "project=my-app").0, 502, "{code}");
        let (status, _, audit, _) = issue(&b, &http, "project=my-app");
        assert_eq!(status, 200, "{code}");
        let calls = http.calls_for(STS);
        let last_two: Vec<_> = calls[3..]
            .iter()
            .map(|c| param(&form(c), "RoleArn").map(str::to_owned))
            .collect();
        if drops {
            assert_eq!(audit["subrequests"], 3, "{code}: role_arn assumed again");
            assert_eq!(
                last_two[0].as_deref(),
                Some("arn:aws:iam::123456789012:role/rise-backend")
            );
        } else {
            assert_eq!(audit["subrequests"], 2, "{code}: cached session kept");
            assert_eq!(
                last_two[0].as_deref(),
                Some("arn:aws:iam::123456789012:role/rise-ecr-push")
            );
        }
    }
}

#[test]
fn throttling_is_retried_with_bounded_jitter() {
    let b = broker(&[]);
    let http = FakeHttp::new();
    http.script(
        STS,
        vec![
            err(400, &sts_error("Throttling")),
            err(400, &sts_error("Throttling")),
            sts_ok("ASIASESSION000000001", 3600),
        ],
    );
    http.script(
        ECR,
        vec![
            err(
                400,
                r#"{"__type":"ThrottlingException","message":"slow down"}"#,
            ),
            ecr_ok(NOW_F + 43_200.0),
        ],
    );
    let (status, _, audit, sleeps) = issue(&b, &http, "project=my-app");
    assert_eq!(status, 200);
    assert_eq!(http.calls_for(STS).len(), 3);
    assert_eq!(http.calls_for(ECR).len(), 2);
    assert_eq!(audit["subrequests"], 5);
    assert_eq!(sleeps.len(), 3);
    assert!(
        sleeps[0] <= 100 && sleeps[1] <= 200 && sleeps[2] <= 100,
        "{sleeps:?}"
    );
}

#[test]
fn error_mapping() {
    let cases: Vec<(Answers, u16, &str, usize)> = vec![
        (
            vec![err(403, &sts_error("AccessDenied"))],
            502,
            "upstream_denied",
            1,
        ),
        (
            vec![err(403, &sts_error("InvalidClientTokenId"))],
            502,
            "upstream_denied",
            1,
        ),
        (
            vec![err(403, &sts_error("SignatureDoesNotMatch"))],
            502,
            "upstream_denied",
            1,
        ),
        (
            vec![err(400, &sts_error("MalformedPolicyDocument"))],
            502,
            "upstream_error",
            1,
        ),
        (
            vec![err(400, &sts_error("PackedPolicyTooLarge"))],
            502,
            "upstream_error",
            1,
        ),
        (
            vec![err(403, &sts_error("RegionDisabledException"))],
            502,
            "upstream_denied",
            1,
        ),
        (
            vec![err(500, "oops"), err(503, ""), err(502, "")],
            502,
            "upstream_error",
            3,
        ),
        (
            vec![err(400, &sts_error("Throttling")); 3],
            503,
            "upstream_throttled",
            3,
        ),
        (
            vec![Err(TransportError::Timeout); 3],
            504,
            "upstream_timeout",
            3,
        ),
        (
            vec![Err(TransportError::Network("reset".into())); 3],
            502,
            "upstream_error",
            3,
        ),
        (
            vec![ok("<not-sts/>".into(), vec![])],
            502,
            "upstream_error",
            1,
        ),
    ];
    for (answers, status, code, attempts) in cases {
        let b = broker(&[]);
        let http = FakeHttp::new();
        http.script(STS, answers);
        let sleeper = RecordingSleeper::default();
        let outcome = request_with_aws(&b, &http, "project=my-app", &sleeper);
        let body = body(&outcome);
        assert_eq!(
            (outcome.response.status, body["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
        assert_eq!(http.calls_for(STS).len(), attempts, "{code}");
        assert_eq!(http.calls_for(ECR).len(), 0);
        assert!(
            body["error"].as_str().unwrap().contains("sts:AssumeRole"),
            "names the step: {body}"
        );
        assert!(
            !outcome.response.body.contains("security token"),
            "AWS message is never relayed"
        );
        if status == 503 {
            assert_eq!(outcome.response.header("retry-after"), Some("5"));
        }
        let audit = audit(&outcome).to_string();
        assert!(
            !audit.contains(BASE_AKID) && !audit.contains("is bad"),
            "{audit}"
        );
    }
}

#[test]
fn ecr_token_already_expired_is_refused() {
    // moto answers with expiresAt = 2015-01-01: a correct broker must not hand that out.
    let b = broker(&[]);
    let http = FakeHttp::new();
    http.script(STS, vec![sts_ok("ASIASESSION000000001", 3600)]);
    http.script(ECR, vec![ecr_ok(1_420_070_400.0)]);
    let (status, body, audit, _) = issue(&b, &http, "project=my-app");
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (502, "upstream_error"),
        "{body}"
    );
    assert!(!body.to_string().contains(PASSWORD));
    assert!(audit["reason"]
        .as_str()
        .unwrap()
        .contains("TokenAlreadyExpired"));
}

#[test]
fn ecr_denied_is_not_retried() {
    let b = broker(&[]);
    let http = FakeHttp::new();
    http.script(STS, vec![sts_ok("ASIASESSION000000001", 3600)]);
    http.script(
        ECR,
        vec![err(
            400,
            r#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"no"}"#,
        )],
    );
    let (status, body, _, _) = issue(&b, &http, "project=my-app");
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (502, "upstream_denied")
    );
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("ecr:GetAuthorizationToken"));
    assert_eq!(http.calls_for(ECR).len(), 1);
}

#[test]
fn missing_base_secret_is_named_and_nothing_is_sent() {
    let b = broker(&[]);
    for (secrets, missing) in [
        (
            secrets().with("AWS_ACCESS_KEY_ID", BASE_AKID),
            "AWS_SECRET_ACCESS_KEY",
        ),
        (
            secrets().with("AWS_SECRET_ACCESS_KEY", BASE_SECRET),
            "AWS_ACCESS_KEY_ID",
        ),
    ] {
        let http = FakeHttp::new();
        let t = token_for(&["my-app"]);
        let outcome = run_with(
            &b,
            &get("/registry/credentials?project=my-app", Some(&t)),
            &http,
            &secrets,
            &RecordingSleeper::default(),
            NOW_MS,
        );
        assert_eq!(outcome.response.status, 500);
        let body = body(&outcome);
        assert_eq!(body["code"], "misconfigured");
        assert!(body["error"].as_str().unwrap().contains(missing));
        assert!(
            !outcome.response.body.contains(BASE_SECRET)
                && !outcome.response.body.contains(BASE_AKID)
        );
        assert_eq!(http.call_count(), 0);
    }
}

#[test]
fn forbidden_callers_cause_no_upstream_call() {
    let b = broker(&[]);
    let http = FakeHttp::new();
    let t = token_for(&["other"]);
    let outcome = run_with(
        &b,
        &get("/registry/credentials?project=my-app", Some(&t)),
        &http,
        &aws_secrets(),
        &RecordingSleeper::default(),
        NOW_MS,
    );
    assert_eq!(outcome.response.status, 403);
    assert_eq!(http.call_count(), 0);
}

/// Issue 11: `/health` is not `ok` while the AWS secrets the config needs are missing —
/// the broker does not start, and every route answers 500 naming the secret.
#[test]
fn missing_aws_secrets_stop_the_broker_at_start() {
    let vars = [
        ("RISE_REGISTRY__TYPE", "ecr"),
        ("RISE_REGISTRY__REGION", "us-east-1"),
        ("RISE_REGISTRY__ACCOUNT_ID", "123456789012"),
        (
            "RISE_REGISTRY__PUSH_ROLE_ARN",
            "arn:aws:iam::123456789012:role/push",
        ),
    ];
    let config = rise_registry_broker::config::load_embedded(Some("development"), vars).unwrap();
    let only_key = secrets().with("AWS_ACCESS_KEY_ID", BASE_AKID);
    let err = Broker::new(config, &only_key).unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker secret `AWS_SECRET_ACCESS_KEY` is not set"
    );
    let http = FakeHttp::new();
    let ctx = rise_registry_broker::runtime::Context {
        now_ms: NOW_MS,
        clock: &rise_registry_broker::runtime::FixedClock(NOW_MS),
        http: &http,
        secrets: &only_key,
        sleeper: &RecordingSleeper::default(),
    };
    let health = block_on(rise_registry_broker::api::respond(
        Err(&err),
        &get("/health", None),
        &ctx,
    ));
    assert_eq!(health.response.status, 500);
    assert!(health.response.body.contains("AWS_SECRET_ACCESS_KEY"));
    assert!(!health.response.body.contains(BASE_AKID));
}
