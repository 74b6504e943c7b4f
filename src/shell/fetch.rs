//! [`HttpClient`] over the runtime's `fetch` (the `web_sys` binding), with the runtime's
//! `AbortSignal.timeout` as the per-request deadline.

use async_trait::async_trait;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::runtime::{HttpClient, OutboundRequest, OutboundResponse, Sleeper, TransportError};

pub struct WorkerFetch;

/// Reads the body up to `limit`. A declared `Content-Length` over the limit stops it
/// before the first byte; one within it frames the body (the runtime delivers exactly
/// that many bytes or fails the read), so it is read in one call — the common case for
/// STS, ECR and JWKS answers, and measurably cheaper than the stream loop. But only
/// without a `Content-Encoding`: the runtime decodes gzip/br bodies while
/// `Content-Length` stays the *encoded* size (seen under workerd: 20,422 bytes declared,
/// 20,971,531 decoded), so a one-call read of a compressed body would buffer whatever it
/// inflates to. Encoded or undeclared bodies are read chunk by chunk (decoded chunks) and
/// abandoned once they pass `limit`.
async fn read_limited(
    resp: web_sys::Response,
    limit: usize,
    fail: &dyn Fn(JsValue) -> TransportError,
) -> Result<Vec<u8>, TransportError> {
    // Walking away from a body: tell the runtime to stop the transfer.
    let too_large = |resp: &web_sys::Response| {
        if let Some(body) = resp.body() {
            let _ = body.cancel();
        }
        TransportError::TooLarge
    };
    let headers = resp.headers();
    let declared = headers
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<usize>().ok());
    let encoded = headers
        .get("content-encoding")
        .ok()
        .flatten()
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"));
    match declared {
        // An encoded body is at least as large decoded as its declared encoded size.
        Some(n) if n > limit => return Err(too_large(&resp)),
        Some(_) if !encoded => {
            let buffer = JsFuture::from(resp.array_buffer().map_err(js_error)?)
                .await
                .map_err(fail)?;
            let buffer: js_sys::ArrayBuffer = buffer.unchecked_into();
            // Belt and braces: never copy more than the limit into Wasm memory, whatever
            // the framing.
            if buffer.byte_length() as usize > limit {
                return Err(TransportError::TooLarge);
            }
            return Ok(js_sys::Uint8Array::new(&buffer).to_vec());
        }
        _ => {}
    }
    let Some(stream) = resp.body() else {
        return Ok(Vec::new());
    };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut body = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(fail)?;
        if js_sys::Reflect::get(&chunk, &JsValue::from_str("done"))
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true)
        {
            return Ok(body);
        }
        let value = js_sys::Reflect::get(&chunk, &JsValue::from_str("value")).map_err(fail)?;
        let bytes: js_sys::Uint8Array = value.unchecked_into();
        if body.len() + bytes.length() as usize > limit {
            let _ = reader.cancel();
            return Err(TransportError::TooLarge);
        }
        body.extend_from_slice(&bytes.to_vec());
    }
}

/// Retry backoff and a single-flight follower's polling, on the runtime's `setTimeout`
/// awaited as a promise. Not `worker::Delay`: it keeps the waker of its first poll only,
/// and the shell polls the handler once with a no-op waker before handing it to the
/// executor (see `fetch_export`), so a follower first polled there would never wake —
/// workerd cancels such a request as hung. `JsFuture` wakes the latest waker.
pub struct WorkerSleeper;

#[async_trait(?Send)]
impl Sleeper for WorkerSleeper {
    async fn sleep(&self, ms: u64) {
        let ms = i32::try_from(ms).unwrap_or(i32::MAX);
        let timer = js_sys::Promise::new(&mut |resolve, _reject| {
            let scheduled = js_sys::global()
                .unchecked_into::<web_sys::WorkerGlobalScope>()
                .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
            // No timer: go on at once rather than wait forever (a shorter backoff, never
            // a request the runtime has to cancel as hung).
            if scheduled.is_err() {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        });
        let _ = JsFuture::from(timer).await;
    }
}

/// The runtime's global `fetch(url, init)` (structural call: workerd's global scope has
/// it). No `Request` object of ours: the runtime builds its own from the same arguments.
fn global_fetch(url: &str, init: &web_sys::RequestInit) -> js_sys::Promise {
    js_sys::global()
        .unchecked_into::<web_sys::WorkerGlobalScope>()
        .fetch_with_str_and_init(url, init)
}

fn js_error(e: JsValue) -> TransportError {
    TransportError::Network(
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| "fetch failed".into()),
    )
}

/// The request's `RequestInit`: the `web_sys` types directly, one JS call per member (the
/// `worker` wrappers convert through extra objects; the profile showed it).
fn runtime_init(
    request: &OutboundRequest,
    signal: &web_sys::AbortSignal,
) -> Result<web_sys::RequestInit, JsValue> {
    let headers = super::js_headers(
        request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )?;
    let init = web_sys::RequestInit::new();
    init.set_method(request.method);
    init.set_headers(&headers);
    // Never follow a redirect: credentials, tokens and signatures would go wherever
    // an upstream (or whoever answers in its name) points. A 3xx is an error answer.
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_signal(Some(signal));
    if !request.body.is_empty() {
        init.set_body(&js_sys::Uint8Array::from(request.body.as_slice()));
    }
    Ok(init)
}

#[async_trait(?Send)]
impl HttpClient for WorkerFetch {
    /// The deadline is the runtime's own `AbortSignal.timeout`: it covers the headers and
    /// the body read alike (the fetch and `arrayBuffer`/`read` reject once it fires), with
    /// no timer or closure of ours per call (the profile showed a `Delay` per request).
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, TransportError> {
        let ms = u32::try_from(request.timeout_ms).unwrap_or(u32::MAX);
        let signal = web_sys::AbortSignal::timeout_with_u32(ms);
        // A rejection after the deadline fired is the timeout, whatever the error says.
        let fail = |e: JsValue| {
            if signal.aborted() {
                TransportError::Timeout
            } else {
                js_error(e)
            }
        };
        let init = runtime_init(&request, &signal).map_err(js_error)?;
        let resp: web_sys::Response = JsFuture::from(global_fetch(&request.url, &init))
            .await
            .map_err(fail)?
            .unchecked_into();
        let status = resp.status();
        let all = resp.headers();
        let headers = request
            .response_headers
            .iter()
            .filter_map(|&name| Some((name.to_owned(), all.get(name).ok()??)))
            .collect();
        let body = read_limited(resp, request.max_response_bytes, &fail).await?;
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }

    fn poll_timer(&self) -> Option<&dyn Sleeper> {
        Some(&WorkerSleeper)
    }
}
