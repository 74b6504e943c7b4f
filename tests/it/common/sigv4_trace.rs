//! aws-sigv4 reports its canonical request only as a `tracing` event: a tiny subscriber
//! captures it, so SigV4 tests can say which stage differed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{span, Event, Metadata, Subscriber};

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

/// Runs `sign` and returns its result with the canonical request aws-sigv4 computed
/// (session token value redacted, as aws-sigv4 logs it; see [`redact_token`]).
pub fn canonical_request_of<T>(sign: impl FnOnce() -> T) -> (T, String) {
    let capture = Capture::default();
    let out = tracing::subscriber::with_default(capture.clone(), sign);
    let creq = capture
        .0
        .lock()
        .unwrap()
        .get("canonical_request")
        .cloned()
        .expect("aws-sigv4 traced its canonical request");
    (out, creq)
}

/// aws-sigv4's log form of a canonical request: session token value replaced.
pub fn redact_token(canonical: &str) -> String {
    canonical
        .lines()
        .map(|l| match l.strip_prefix("x-amz-security-token:") {
            Some(v) => format!("x-amz-security-token:** redacted (length={}) **", v.len()),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
