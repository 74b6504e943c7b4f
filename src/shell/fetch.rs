//! [`HttpClient`] over the Workers `fetch`, with a per-request timeout.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::{select, Either};
use futures_util::StreamExt as _;
use worker::{
    AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect,
};

use crate::runtime::{HttpClient, OutboundRequest, OutboundResponse, Sleeper, TransportError};

pub struct WorkerFetch;

/// Reads the body chunk by chunk and stops once it passes `limit` (a declared
/// `Content-Length` over the limit stops it before the first byte).
async fn read_limited(
    resp: &mut worker::Response,
    limit: usize,
) -> Result<Vec<u8>, TransportError> {
    let net = |e: worker::Error| TransportError::Network(e.to_string());
    let declared = resp.headers().get("content-length").ok().flatten();
    if declared
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(TransportError::TooLarge);
    }
    let mut stream = resp.stream().map_err(net)?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(net)?;
        if body.len() + chunk.len() > limit {
            return Err(TransportError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Retry backoff on the Workers timer.
pub struct WorkerSleeper;

#[async_trait(?Send)]
impl Sleeper for WorkerSleeper {
    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}

fn method(name: &str) -> Method {
    match name {
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        _ => Method::Get,
    }
}

#[async_trait(?Send)]
impl HttpClient for WorkerFetch {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, TransportError> {
        let net = |e: worker::Error| TransportError::Network(e.to_string());
        let headers = Headers::new();
        for (name, value) in &request.headers {
            headers.set(name, value).map_err(net)?;
        }
        let mut init = RequestInit::new();
        // Never follow a redirect: credentials, tokens and signatures would go wherever
        // an upstream (or whoever answers in its name) points. A 3xx is an error answer.
        init.with_method(method(request.method))
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        if !request.body.is_empty() {
            let body = js_sys::Uint8Array::from(request.body.as_slice());
            init.with_body(Some(body.into()));
        }
        let req = Request::new_with_init(&request.url, &init).map_err(net)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let call = async {
            let fetch = Fetch::Request(req);
            let mut resp = fetch.send_with_signal(&signal).await.map_err(net)?;
            let status = resp.status_code();
            let headers = resp.headers().entries().collect::<Vec<_>>();
            let body = read_limited(&mut resp, request.max_response_bytes).await?;
            Ok(OutboundResponse {
                status,
                headers,
                body,
            })
        };
        let timer = Delay::from(Duration::from_millis(request.timeout_ms));
        futures_util::pin_mut!(call);
        match select(call, timer).await {
            Either::Left((result, _)) => {
                if result.is_err() {
                    controller.abort(); // stop the body transfer we walked away from
                }
                result
            }
            Either::Right(((), _)) => {
                controller.abort();
                Err(TransportError::Timeout)
            }
        }
    }

    fn poll_timer(&self) -> Option<&dyn Sleeper> {
        Some(&WorkerSleeper)
    }
}
