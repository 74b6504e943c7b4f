//! Worker vars over the embedded config: `NAME=VALUE` lines (JSON values included) →
//! layering, per-key deserialization and validation. Errors must name a key, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let vars: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let _ = config::load_embedded(Some("development"), vars.iter().copied());
});
