//! JWKS documents as fetched from an issuer: JSON parsing and key-set building.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::auth::jwks::KeySet;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(set) = KeySet::from_jwks(&doc) {
            let _ = set.lookup(Some("k1"));
            let _ = set.lookup(None);
        }
    }
});
