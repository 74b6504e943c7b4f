//! The token path: shape checks, header/claims parsing and signature verification
//! against a fixed key set (HS256, plus RS256/ES256/EdDSA keys in an inline JWKS). No
//! input may panic or reach the network (the HTTP client refuses every call).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::auth::Verifier;
use rise_registry_broker::config;
use rise_registry_broker::runtime::{HttpClient, OutboundRequest, OutboundResponse, TransportError};
use rise_registry_broker::secrets::MapSecrets;

struct NoHttp;

#[async_trait::async_trait(?Send)]
impl HttpClient for NoHttp {
    async fn send(&self, _: OutboundRequest) -> Result<OutboundResponse, TransportError> {
        panic!("a token made the verifier fetch");
    }
}

const JWKS: &str = include_str!("../seeds/jwks.json");

fn verifier() -> Verifier {
    {
        let issuers = serde_json::json!([
            {"issuer": "rise-dev", "audience": "rise", "hs256_secret": "RISE_JWT_SECRET"},
            {"issuer": "https://idp.test", "audience": "rise", "jwks": JWKS},
        ])
        .to_string();
        let config =
            config::load_embedded(Some("development"), [("RISE_AUTH__ISSUERS", issuers.as_str())])
                .unwrap();
        let secrets = MapSecrets::default()
            .with("RISE_JWT_SECRET", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0zMi1ieXRlcyE=");
        Verifier::from_config(&config.auth, &secrets).unwrap()
    }
}

thread_local! {
    // Single-threaded by design (as the worker is): built once per fuzzing thread.
    static VERIFIER: Verifier = verifier();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        VERIFIER.with(|v| {
            let _ = futures::executor::block_on(v.verify_uncached(token, 1_767_225_600_000, &NoHttp));
        });
    }
});
