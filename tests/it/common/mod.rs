//! Shared helpers for the native integration tests.
#![allow(dead_code)]

pub mod aws;
pub mod sigv4_trace;

use rise_registry_broker::runtime::FixedClock;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header};
use rise_registry_broker::api::{respond, Outcome};
use rise_registry_broker::broker::Broker;
use rise_registry_broker::config;
use rise_registry_broker::http::ApiRequest;
use rise_registry_broker::runtime::{
    Context, HttpClient, OutboundRequest, OutboundResponse, Sleeper, TransportError,
};
use rise_registry_broker::secrets::MapSecrets;
use serde_json::{json, Value};

pub use futures::executor::block_on;

/// 2026-01-01T00:00:00Z in ms: the frozen clock of these tests.
pub const NOW_MS: u64 = 1_767_225_600_000;
pub const NOW_S: i64 = (NOW_MS / 1000) as i64;

/// A 32-byte HS256 key, base64.
pub const DEV_SECRET_B64: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXRlcyE=";

/// Scripted upstream: answers by URL, records every request.
#[derive(Default)]
pub struct FakeHttp {
    pub routes: RefCell<HashMap<String, OutboundResponse>>,
    /// Answers used once each, in order, before falling back to `routes`.
    pub scripts: RefCell<HashMap<String, VecDeque<Result<OutboundResponse, TransportError>>>>,
    pub calls: RefCell<Vec<OutboundRequest>>,
    /// Make every call pend once before answering, so concurrent requests interleave.
    pub yield_once: std::cell::Cell<bool>,
    /// URLs whose next call never answers and is never woken: a request the runtime
    /// cancelled without dropping it.
    pub hang_once: RefCell<Vec<String>>,
    /// Offer this timer to requests waiting on another's fetch (as the worker does).
    pub timer: Option<RecordingSleeper>,
}

/// A future that is pending exactly once.
pub async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

impl FakeHttp {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn route_json(&self, url: &str, body: &Value) {
        self.routes.borrow_mut().insert(
            url.to_owned(),
            OutboundResponse {
                status: 200,
                headers: vec![],
                body: body.to_string().into_bytes(),
            },
        );
    }

    pub fn route(&self, url: &str, response: OutboundResponse) {
        self.routes.borrow_mut().insert(url.to_owned(), response);
    }

    pub fn route_status(&self, url: &str, status: u16) {
        self.routes.borrow_mut().insert(
            url.to_owned(),
            OutboundResponse {
                status,
                headers: vec![],
                body: vec![],
            },
        );
    }

    pub fn script(&self, url: &str, answers: Vec<Result<OutboundResponse, TransportError>>) {
        self.scripts
            .borrow_mut()
            .insert(url.to_owned(), answers.into());
    }

    pub fn calls_for(&self, url: &str) -> Vec<OutboundRequest> {
        self.calls
            .borrow()
            .iter()
            .filter(|c| c.url == url)
            .cloned()
            .collect()
    }

    pub fn call_count(&self) -> usize {
        self.calls.borrow().len()
    }

    pub fn calls_to(&self, url: &str) -> usize {
        self.calls.borrow().iter().filter(|c| c.url == url).count()
    }
}

#[async_trait(?Send)]
impl HttpClient for FakeHttp {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, TransportError> {
        let url = request.url.clone();
        let limit = request.max_response_bytes;
        self.calls.borrow_mut().push(request);
        let hang = {
            let mut hang = self.hang_once.borrow_mut();
            let found = hang.iter().position(|u| *u == url);
            found.map(|i| hang.remove(i)).is_some()
        };
        if hang {
            futures::future::pending::<()>().await;
        }
        if self.yield_once.get() {
            yield_now().await;
        }
        let scripted = self
            .scripts
            .borrow_mut()
            .get_mut(&url)
            .and_then(VecDeque::pop_front);
        let answer = scripted.unwrap_or_else(|| {
            self.routes
                .borrow()
                .get(&url)
                .cloned()
                .ok_or_else(|| TransportError::Network(format!("no route for {url}")))
        });
        // As the shell does: a body past the request's limit is not read.
        match answer {
            Ok(response) if response.body.len() > limit => Err(TransportError::TooLarge),
            other => other,
        }
    }

    fn poll_timer(&self) -> Option<&dyn Sleeper> {
        self.timer.as_ref().map(|t| t as &dyn Sleeper)
    }
}

/// Records requested sleeps instead of sleeping.
#[derive(Default)]
pub struct RecordingSleeper {
    pub sleeps: RefCell<Vec<u64>>,
}

#[async_trait(?Send)]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, ms: u64) {
        self.sleeps.borrow_mut().push(ms);
        // A request waiting for ever is a wedge: fail instead of hanging the test run.
        assert!(
            self.sleeps.borrow().len() < 100_000,
            "slept 100,000 times: wedged"
        );
        // Pending once, like a real timer, so other tasks on this thread get to run.
        yield_now().await;
    }
}

pub fn secrets() -> MapSecrets {
    MapSecrets::default().with("RISE_JWT_SECRET", DEV_SECRET_B64)
}

/// Embedded config + vars → broker (panics on config errors: use `config::load` to test those).
pub fn broker_with_vars(vars: &[(&str, &str)]) -> Broker {
    let config = config::load_embedded(Some("development"), vars.iter().copied()).expect("config");
    Broker::new(config, &secrets()).expect("broker")
}

/// An HS256 token for the default `rise-dev` issuer, minted with jwt-compact.
pub fn dev_token(claims: Value) -> String {
    let mut base = json!({"iss": "rise-dev", "aud": "rise", "sub": "alice@example.com"});
    base.as_object_mut()
        .unwrap()
        .extend(claims.as_object().unwrap().clone());
    let mut claims = Claims::new(base);
    claims.expiration = chrono::DateTime::from_timestamp(NOW_S + 3600, 0);
    hs256(&claims)
}

pub fn hs256(claims: &Claims<Value>) -> String {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(DEV_SECRET_B64)
        .unwrap();
    Hs256
        .token(&Header::empty(), claims, &Hs256Key::new(key))
        .unwrap()
}

pub fn get(path_and_query: &str, token: Option<&str>) -> ApiRequest {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (path_and_query, None),
    };
    ApiRequest {
        method: "GET".into(),
        path: path.into(),
        query,
        authorization: token.map(|t| format!("Bearer {t}")),
        request_id: None,
    }
}

pub fn run(broker: &Broker, request: &ApiRequest, http: &FakeHttp) -> Outcome {
    run_with(
        broker,
        request,
        http,
        &secrets(),
        &RecordingSleeper::default(),
        NOW_MS,
    )
}

pub fn run_with(
    broker: &Broker,
    request: &ApiRequest,
    http: &FakeHttp,
    secrets: &MapSecrets,
    sleeper: &RecordingSleeper,
    now_ms: u64,
) -> Outcome {
    let ctx = Context {
        now_ms,
        clock: &FixedClock(now_ms),
        http,
        secrets,
        sleeper,
    };
    block_on(respond(Ok(broker), request, &ctx))
}

/// The audit line exactly as the shell logs it, parsed (`Null` when there is none).
pub fn audit(outcome: &Outcome) -> Value {
    outcome
        .audit_line()
        .map(|line| serde_json::from_str(&line).expect("audit line is JSON"))
        .unwrap_or(Value::Null)
}

pub fn body(outcome: &Outcome) -> Value {
    serde_json::from_str(&outcome.response.body).expect("JSON body")
}
