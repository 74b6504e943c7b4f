//! The query string of `/registry/credentials`: form decoding, `project` grammar, `access`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::api::parse_query;

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        if let Ok((project, _)) = parse_query(Some(query)) {
            // Whatever passes is one ECR path segment: it cannot reshape a policy.
            assert!(project
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
        }
    }
});
