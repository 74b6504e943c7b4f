//! The worker shell: the only code that touches the `worker` crate.
//!
//! Per isolate: config and key material are loaded once (first request) from the
//! embedded TOML layers, the worker vars and secrets. Per request: read the clock once,
//! convert the request, call [`crate::api::respond`], log the audit line, convert back.

mod fetch;

use std::future::Future;
use std::rc::Rc;

use js_sys::{Object, Reflect, JSON};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{console_log, Env};

use crate::api::respond;
use crate::broker::Broker;
use crate::config;
use crate::error::ConfigError;
use crate::http::{ApiRequest, ApiResponse};
use crate::runtime::{Clock, Context as RequestContext};
use crate::secrets::{SecretString, Secrets};

thread_local! {
    static BROKER: std::cell::OnceCell<Rc<Result<Broker, ConfigError>>> =
        const { std::cell::OnceCell::new() };
}

/// Worker secrets (and vars): read straight from the `env` object.
struct EnvSecrets<'a>(&'a Env);

impl Secrets for EnvSecrets<'_> {
    fn get(&self, name: &str) -> Option<SecretString> {
        env_string(self.0, name).map(SecretString::new)
    }
}

/// A string binding; objects (JSON `[vars]` tables in wrangler.toml) come back as JSON.
fn env_string(env: &Env, name: &str) -> Option<String> {
    let value = Reflect::get(env.as_ref(), &JsValue::from_str(name)).ok()?;
    if let Some(s) = value.as_string() {
        return Some(s);
    }
    if value.is_object() {
        return JSON::stringify(&value).ok().and_then(|s| s.as_string());
    }
    None
}

/// `RUN_MODE` and every `RISE_*` binding, as (name, value).
fn config_vars(env: &Env) -> Vec<(String, String)> {
    let keys = Object::keys(env.unchecked_ref::<Object>());
    keys.iter()
        .filter_map(|k| k.as_string())
        .filter(|k| k.starts_with(config::VAR_PREFIX))
        .filter_map(|k| env_string(env, &k).map(|v| (k, v)))
        .collect()
}

/// Builds the broker and imports its keys into WebCrypto: any failure names the key.
async fn load_broker(env: &Env) -> Result<Broker, ConfigError> {
    let vars = config_vars(env);
    let run_mode = env_string(env, "RUN_MODE");
    let config = config::load_embedded(
        run_mode.as_deref(),
        vars.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    let broker = Broker::new(config, &EnvSecrets(env))?;
    broker.prepare().await?;
    Ok(broker)
}

/// The isolate's broker, loaded by the first request. Requests that arrive while it
/// loads load their own; the first one stored is kept (loading is deterministic).
async fn broker(env: &Env) -> Rc<Result<Broker, ConfigError>> {
    if let Some(loaded) = BROKER.with(|cell| cell.get().cloned()) {
        return loaded;
    }
    let loaded = load_broker(env).await;
    match &loaded {
        Ok(b) => console_log!(
            "{{\"event\":\"config_loaded\",\"provider\":\"{}\"}}",
            b.config().registry.kind()
        ),
        // Names the key, never a value.
        Err(e) => console_log!(
            "{}",
            serde_json::json!({"event": "config_error", "error": e.to_string()})
        ),
    }
    BROKER.with(|cell| cell.get_or_init(|| Rc::new(loaded)).clone())
}

/// `Date.now()`. On Workers it advances only across I/O, which is exactly when the core
/// re-reads it (after upstream calls).
struct WorkerClock;

impl Clock for WorkerClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// The static `Date.now()`: one call into JS, where `worker::Date::now()` constructs a
/// `Date` object and then reads it (two).
fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// The exported `fetch` handler (what `#[event(fetch)]` would generate, minus its
/// detour): the handler future is polled once right here, and a request that needs no
/// I/O (a cache hit, every refusal) is answered with the `Response` itself. Only one
/// that waits on a promise (an upstream call, the first load) becomes a `Promise` on
/// wasm-bindgen's executor, which polls it again with a real waker — so no future is
/// lost, and the common case skips the executor's Promise, closure and microtask (in
/// the workerd profile of a hit they cost more than our own code). The runtime accepts
/// either from a fetch handler.
#[wasm_bindgen(js_name = fetch)]
pub fn fetch_export(req: web_sys::Request, env: Env, _ctx: JsValue) -> Result<JsValue, JsValue> {
    let mut handler = Box::pin(handle(req, env));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match handler.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(response) => response.map(JsValue::from),
        std::task::Poll::Pending => {
            Ok(wasm_bindgen_futures::future_to_promise(
                async move { handler.await.map(JsValue::from) },
            )
            .into())
        }
    }
}

/// The exported `scheduled` handler (`[triggers] crons` in wrangler.toml): the
/// provider's sweep — GitLab deletes the broker's own expired deploy tokens — as one log
/// line. Providers with nothing to sweep log nothing. A broker that cannot load logs its
/// config error, as the first request would.
#[wasm_bindgen(js_name = scheduled)]
pub fn scheduled_export(_event: JsValue, env: Env, _ctx: JsValue) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let broker = broker(&env).await;
        let Ok(broker) = broker.as_ref() else {
            return Ok(JsValue::UNDEFINED);
        };
        let secrets = EnvSecrets(&env);
        let http = fetch::WorkerFetch;
        let ctx = RequestContext {
            now_ms: now_ms(),
            clock: &WorkerClock,
            http: &http,
            secrets: &secrets,
            sleeper: &fetch::WorkerSleeper,
        };
        if let Some(line) = broker.sweep(&ctx).await {
            console_log!("{}", line);
        }
        Ok(JsValue::UNDEFINED)
    })
}

/// The runtime's `Request` and `Response` directly: `worker`'s wrappers would read
/// `request.cf` and rebuild the response, a tenth of a cache hit's CPU in the workerd
/// profile. An `Err` is a JS exception (building the `Response` failed): the runtime
/// answers 500.
async fn handle(req: web_sys::Request, env: Env) -> Result<web_sys::Response, JsValue> {
    let now_ms = now_ms();
    let broker = broker(&env).await;
    // The raw method string: the worker crate maps methods it does not know (QUERY,
    // PROPFIND, …) to GET, which must not reach the GET routes.
    let method = req.method();
    // The runtime's URL parser (WHATWG, as the runtime itself routes), not the `url`
    // crate: its IDNA tables would be linked into the Wasm for one parse of an already
    // normalized URL.
    let url = web_sys::Url::new(&req.url()).ok();
    let headers = req.headers();
    let request = ApiRequest {
        method,
        // A URL the runtime cannot parse (CONNECT's authority form) is no route of ours.
        path: url.as_ref().map(web_sys::Url::pathname).unwrap_or_default(),
        // `search` is `?query` or empty: no `?` means no query.
        query: url
            .as_ref()
            .map(web_sys::Url::search)
            .and_then(|s| s.strip_prefix('?').map(str::to_owned)),
        authorization: headers.get("authorization").ok().flatten(),
        request_id: headers.get("cf-ray").ok().flatten(),
    };
    let secrets = EnvSecrets(&env);
    let http = fetch::WorkerFetch;
    let ctx = RequestContext {
        now_ms,
        clock: &WorkerClock,
        http: &http,
        secrets: &secrets,
        sleeper: &fetch::WorkerSleeper,
    };
    let outcome = respond(broker.as_ref().as_ref(), &request, &ctx).await;
    if let Some(line) = outcome.audit_line() {
        console_log!("{}", line);
    }
    into_response(outcome.response)
}

/// A runtime `Headers` from (name, value) pairs: the incoming answer's and every
/// outbound request's.
fn js_headers<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<web_sys::Headers, JsValue> {
    let headers = web_sys::Headers::new()?;
    for (name, value) in pairs {
        headers.set(name, value)?;
    }
    Ok(headers)
}

fn into_response(api: ApiResponse) -> Result<web_sys::Response, JsValue> {
    let headers = js_headers(api.headers.iter().map(|(k, v)| (*k, v.as_str())))?;
    let init = web_sys::ResponseInit::new();
    init.set_status(api.status);
    init.set_headers(&headers);
    web_sys::Response::new_with_opt_str_and_init(Some(&api.body), &init)
}
