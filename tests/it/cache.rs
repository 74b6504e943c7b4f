//! The credential cache and single-flight, through the broker with a fake STS/ECR and a
//! frozen clock: hits, the refresh point, never serving a nearly expired credential,
//! shared concurrent misses, errors not cached, the size bound, and the token cache.

use crate::common::aws::*;
use crate::common::*;
use futures::future::join_all;
use rise_registry_broker::api::{respond, Outcome};
use rise_registry_broker::broker::Broker;
use rise_registry_broker::runtime::FixedClock;
use rise_registry_broker::runtime::{Context, TransportError};
use serde_json::Value;

const S: u64 = 1000;

fn request_at(b: &Broker, http: &FakeHttp, project: &str, now_ms: u64) -> (u16, Value, Value) {
    let t = dev_token(serde_json::json!({"projects": ["p0", "p1", "p2", "p3", "p4", "my-app"]}));
    let req = get(
        &format!("/registry/credentials?project={project}"),
        Some(&t),
    );
    let outcome = run_with(
        b,
        &req,
        http,
        &aws_secrets(),
        &RecordingSleeper::default(),
        now_ms,
    );
    (outcome.response.status, body(&outcome), audit(&outcome))
}

/// `n` requests for `my-app` started together; the fake upstream pends once per call so
/// they really overlap.
fn concurrently(b: &Broker, http: &FakeHttp, n: usize) -> Vec<Outcome> {
    http.yield_once.set(true);
    let t = dev_token(serde_json::json!({"projects": ["my-app"]}));
    let req = get("/registry/credentials?project=my-app", Some(&t));
    let (secrets, sleeper) = (aws_secrets(), RecordingSleeper::default());
    let env = Context {
        now_ms: NOW_MS,
        clock: &FixedClock(NOW_MS),
        http,
        secrets: &secrets,
        sleeper: &sleeper,
    };
    block_on(join_all((0..n).map(|_| respond(Ok(b), &req, &env))))
}

/// Upstream that always succeeds: sessions of 3600 s, ECR tokens of 12 h (from NOW).
fn healthy() -> FakeHttp {
    let http = FakeHttp::new();
    http.script(
        STS,
        (0..50)
            .map(|_| sts_ok("ASIASESSION000000001", 3600))
            .collect(),
    );
    http.script(ECR, (0..50).map(|_| ecr_ok(NOW_F + 43_200.0)).collect());
    http
}

#[test]
fn a_hit_makes_no_upstream_call_and_reports_the_true_remaining_time() {
    let b = broker(&[]);
    let http = healthy();
    let (status, first, audit) = request_at(&b, &http, "my-app", NOW_MS);
    assert_eq!((status, audit["cache"].as_str()), (200, Some("miss")));
    assert_eq!(first["credentials"]["expires_in"], 3540);
    let (status, second, audit) = request_at(&b, &http, "my-app", NOW_MS + 100 * S);
    assert_eq!((status, audit["cache"].as_str()), (200, Some("hit")));
    assert_eq!(
        audit["sub"], "alice@example.com",
        "the audit line is still per caller"
    );
    assert_eq!(second["credentials"]["expires_in"], 3440);
    assert_eq!(
        second["credentials"]["password"],
        first["credentials"]["password"]
    );
    assert_eq!(
        http.call_count(),
        2,
        "one AssumeRole + one GetAuthorizationToken in all"
    );
    // Pull is its own entry.
    let (_, _, audit) = request_at(&b, &http, "my-app&access=pull", NOW_MS + 100 * S);
    assert_eq!(audit["cache"], "miss");
}

#[test]
fn refreshes_once_half_the_life_is_gone() {
    let b = broker(&[]);
    let http = healthy();
    request_at(&b, &http, "my-app", NOW_MS); // life 3540 s, refresh below 1770 s left
    let (_, _, audit) = request_at(&b, &http, "my-app", NOW_MS + 1769 * S); // 1771 s left
    assert_eq!(audit["cache"], "hit");
    let (_, body, audit) = request_at(&b, &http, "my-app", NOW_MS + 1771 * S); // 1769 s left
    assert_eq!(audit["cache"], "miss");
    assert_eq!(http.call_count(), 4);
    // The fake's session ends at NOW+3600 again, so the new credential has 1769 s left.
    assert_eq!(body["credentials"]["expires_in"], 3600 - 1771 - 60);
}

#[test]
fn past_the_refresh_point_a_failed_refresh_serves_the_old_one_but_never_a_nearly_expired_one() {
    let b = broker(&[]);
    let http = FakeHttp::new();
    http.script(STS, vec![sts_ok("ASIASESSION000000001", 3600)]);
    http.script(ECR, vec![ecr_ok(NOW_F + 43_200.0)]);
    http.route_status(STS, 503); // every later STS call fails
    request_at(&b, &http, "my-app", NOW_MS);
    let (status, body, audit) = request_at(&b, &http, "my-app", NOW_MS + 2000 * S); // 1540 s left
    assert_eq!((status, audit["cache"].as_str()), (200, Some("stale")));
    assert_eq!(body["credentials"]["expires_in"], 1540);
    // 299 s left: below the 300 s floor, it is never served, whatever upstream does.
    let (status, body, _) = request_at(&b, &http, "my-app", NOW_MS + 3241 * S);
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("upstream_error"))
    );
    assert!(body.get("credentials").is_none());
}

#[test]
fn concurrent_misses_share_one_issuance() {
    let b = broker(&[]);
    let http = healthy();
    let outcomes = concurrently(&b, &http, 100);
    assert_eq!(http.calls_for(STS).len(), 1);
    assert_eq!(http.calls_for(ECR).len(), 1);
    let bodies: Vec<String> = outcomes.iter().map(|o| o.response.body.clone()).collect();
    assert!(bodies.iter().all(|b| b == &bodies[0]) && outcomes[0].response.status == 200);
    let misses = outcomes
        .iter()
        .filter(|o| audit(o)["cache"] == "miss")
        .count();
    let shared = outcomes
        .iter()
        .filter(|o| audit(o)["shared"] == true)
        .count();
    assert_eq!((misses, shared), (1, 99));
    let subrequests: u64 = outcomes
        .iter()
        .map(|o| audit(o)["subrequests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        subrequests, 2,
        "only the leader's audit line counts the two upstream calls"
    );
}

#[test]
fn concurrent_misses_share_one_error_and_errors_are_not_cached() {
    let b = broker(&[]);
    let http = FakeHttp::new();
    http.route_status(STS, 403);
    let outcomes = concurrently(&b, &http, 10);
    assert!(outcomes.iter().all(|o| o.response.status == 502));
    assert_eq!(http.calls_for(STS).len(), 1);
    // Not cached: the next request asks again.
    concurrently(&b, &http, 1);
    assert_eq!(http.calls_for(STS).len(), 2);
    assert_eq!(b.cached_credentials(), 0);
}

#[test]
fn the_size_bound_holds() {
    let b = broker(&[("RISE_CACHE__MAX_ENTRIES", "3")]);
    let http = healthy();
    for (i, project) in ["p0", "p1", "p2", "p3", "p4"].iter().enumerate() {
        let (status, _, _) = request_at(&b, &http, project, NOW_MS + i as u64 * S);
        assert_eq!(status, 200);
        assert!(b.cached_credentials() <= 3);
    }
    assert_eq!(b.cached_credentials(), 3);
    // The least recently used (p0, p1) were evicted; p4 is still there.
    let (_, _, audit) = request_at(&b, &http, "p4", NOW_MS + 10 * S);
    assert_eq!(audit["cache"], "hit");
    let (_, _, audit) = request_at(&b, &http, "p0", NOW_MS + 11 * S);
    assert_eq!(audit["cache"], "miss");
}

#[test]
fn cache_off_calls_upstream_every_time() {
    let b = broker(&[("RISE_CACHE__ENABLED", "false")]);
    let http = healthy();
    request_at(&b, &http, "my-app", NOW_MS);
    let (_, _, audit) = request_at(&b, &http, "my-app", NOW_MS + S);
    assert_eq!(audit["cache"], "off");
    assert_eq!(http.call_count(), 4);
}

#[test]
fn transport_errors_are_not_cached_either() {
    let b = broker(&[("RISE_REGISTRY__MAX_ATTEMPTS", "1")]);
    let http = FakeHttp::new();
    http.script(
        STS,
        vec![
            Err(TransportError::Timeout),
            sts_ok("ASIASESSION000000001", 3600),
        ],
    );
    http.script(ECR, vec![ecr_ok(NOW_F + 43_200.0)]);
    assert_eq!(request_at(&b, &http, "my-app", NOW_MS).0, 504);
    assert_eq!(request_at(&b, &http, "my-app", NOW_MS + S).0, 200);
}

/// Issue 11: a leader whose request is never polled again and never dropped (Workers
/// cancelling a request whose client left). The next request waits at most the leader's
/// worst case on its own timer, then issues itself; its credential is cached, and its audit
/// line says what happened (a miss with two upstream calls, not a shared hit).
#[test]
fn a_credential_leader_that_never_resumes_cannot_wedge_the_project() {
    use std::future::Future;
    let b = broker(&[("RISE_REGISTRY__MAX_ATTEMPTS", "1")]);
    let http = healthy();
    http.hang_once.borrow_mut().push(STS.to_owned());
    let t = dev_token(serde_json::json!({"projects": ["my-app"]}));
    let req = get("/registry/credentials?project=my-app", Some(&t));
    let (secrets, sleeper) = (aws_secrets(), RecordingSleeper::default());
    let ctx = |now_ms| Context {
        now_ms,
        clock: Box::leak(Box::new(FixedClock(now_ms))),
        http: &http,
        secrets: &secrets,
        sleeper: &sleeper,
    };
    let leader_ctx = ctx(NOW_MS);
    let mut leader = Box::pin(respond(Ok(&b), &req, &leader_ctx));
    let waker = futures::task::noop_waker();
    assert!(leader
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    assert_eq!(
        http.calls_to(STS),
        1,
        "the leader is stuck inside AssumeRole"
    );

    let follower_ctx = ctx(NOW_MS + 1_000);
    let outcome = block_on(respond(Ok(&b), &req, &follower_ctx));
    assert_eq!(outcome.response.status, 200, "{}", outcome.response.body);
    let line = audit(&outcome);
    assert_eq!(line["cache"], "miss");
    assert!(line.get("shared").is_none());
    assert_eq!(line["subrequests"], 2);
    // It waited the rest of the leader's worst case (2 calls × 1 attempt × 5 s), polling.
    let waited: u64 = sleeper.sleeps.borrow().iter().sum();
    assert_eq!(waited, 10_000 - 1_000);
    // Its credential is cached: the next caller is a hit, no new upstream call.
    let calls = http.call_count();
    let (status, _, line) = request_at(&b, &http, "my-app", NOW_MS + 2_000);
    assert_eq!((status, line["cache"].as_str()), (200, Some("hit")));
    assert_eq!(http.call_count(), calls);
    drop(leader);
}

/// A clock moved by hand, and an upstream that takes `per_call_ms` of it per call.
struct SlowUpstream<'a> {
    inner: &'a FakeHttp,
    clock: &'a std::cell::Cell<u64>,
    per_call_ms: u64,
}

struct CellClock<'a>(&'a std::cell::Cell<u64>);

impl rise_registry_broker::runtime::Clock for CellClock<'_> {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

#[async_trait::async_trait(?Send)]
impl rise_registry_broker::runtime::HttpClient for SlowUpstream<'_> {
    async fn send(
        &self,
        request: rise_registry_broker::runtime::OutboundRequest,
    ) -> Result<rise_registry_broker::runtime::OutboundResponse, TransportError> {
        self.clock.set(self.clock.get() + self.per_call_ms);
        self.inner.send(request).await
    }
}

fn slow_request(b: &Broker, http: &FakeHttp, start_ms: u64, per_call_ms: u64) -> (u16, Value) {
    let clock = std::cell::Cell::new(start_ms);
    let slow = SlowUpstream {
        inner: http,
        clock: &clock,
        per_call_ms,
    };
    let t = dev_token(serde_json::json!({"projects": ["my-app"]}));
    let req = get("/registry/credentials?project=my-app", Some(&t));
    let (secrets, sleeper) = (aws_secrets(), RecordingSleeper::default());
    let ctx = Context {
        now_ms: start_ms,
        clock: &CellClock(&clock),
        http: &slow,
        secrets: &secrets,
        sleeper: &sleeper,
    };
    let outcome = block_on(respond(Ok(b), &req, &ctx));
    (outcome.response.status, body(&outcome))
}

/// Issue 11: `expires_in` counts from when the answer is sent, not from when the request
/// started: two upstream calls of 200 s each leave 3600 − 400 − 60 s.
#[test]
fn expires_in_counts_the_time_upstream_took() {
    let b = broker(&[]);
    let http = healthy();
    let (status, body) = slow_request(&b, &http, NOW_MS, 200 * S);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["credentials"]["expires_in"], 3600 - 400 - 60);
    // So slow the session is over by the time the token arrives: refused, never served.
    let b = broker(&[]);
    let (status, body) = slow_request(&b, &healthy(), NOW_MS, 1_800 * S);
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("upstream_error"))
    );
}

/// Issue 11: a stale credential is served after a failed refresh only if it still clears
/// the floor once the (slow) refresh has failed.
#[test]
fn a_slow_failed_refresh_never_serves_a_credential_below_the_floor() {
    let b = broker(&[("RISE_REGISTRY__MAX_ATTEMPTS", "1")]);
    let http = FakeHttp::new();
    http.script(STS, vec![sts_ok("ASIASESSION000000001", 3600)]);
    http.script(ECR, vec![ecr_ok(NOW_F + 43_200.0)]);
    http.route_status(STS, 503);
    request_at(&b, &http, "my-app", NOW_MS);
    // 1540 s left at the start; the failing refresh takes 1300 s: 240 s left, below 300.
    let (status, body) = slow_request(&b, &http, NOW_MS + 2000 * S, 1_300 * S);
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("upstream_error")),
        "{body}"
    );
    // A quick failure still serves the stale one (1540 s left).
    let (status, body) = slow_request(&b, &http, NOW_MS + 2000 * S, 0);
    assert_eq!(
        (status, body["credentials"]["expires_in"].as_u64()),
        (200, Some(1540))
    );
}
