//! GitLab answers: a created deploy token (username, token, `expires_at` as RFC 3339 or a
//! date) and a deploy-token list as the sweeper reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rise_registry_broker::registry::gitlab::{expired_own_tokens, parse_create_response};

fuzz_target!(|data: &[u8]| {
    let _ = parse_create_response(data);
    let _ = expired_own_tokens(data, 1_767_225_600_000);
});
