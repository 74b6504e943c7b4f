//! Verified bearer tokens, remembered until their `exp` (plus leeway), so a deploy's
//! repeated calls skip signature verification and claim parsing.
//!
//! Keyed by the token itself: a hit compares every byte, with no digest to compute on
//! each request (SHA-256 in Wasm was 6 % of a cache hit's CPU in the workerd profile) and
//! no collision to reason about. The memory bound counts the token bytes (see the cache
//! config check). Safe because an entry is only made after full
//! verification; it is never used past the token's expiry, and never across a key
//! rotation: each entry records the key-set generation it was verified with, and a remote
//! issuer's generation changes on every successful JWKS fetch. Bounded: when full, expired
//! entries go first, then the one closest to expiry.

use std::cell::RefCell;
use std::collections::HashMap;

use super::VerifiedCaller;

#[derive(Debug, Clone)]
struct Entry {
    caller: VerifiedCaller,
    valid_until_ms: u64,
    generation: u64,
}

pub struct TokenCache {
    capacity: usize,
    entries: RefCell<HashMap<Box<str>, Entry>>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            capacity,
            entries: RefCell::new(HashMap::new()),
        }
    }

    /// The caller verified earlier, if still within its validity and verified with the
    /// key-set generation `current_generation(issuer)` reports now.
    pub fn get(
        &self,
        token: &str,
        now_ms: u64,
        current_generation: impl Fn(&str) -> u64,
    ) -> Option<VerifiedCaller> {
        let mut entries = self.entries.borrow_mut();
        let entry = entries.get(token)?;
        if now_ms > entry.valid_until_ms
            || current_generation(entry.caller.issuer()) != entry.generation
        {
            entries.remove(token);
            return None;
        }
        Some(entry.caller.clone())
    }

    pub fn insert(
        &self,
        token: &str,
        caller: VerifiedCaller,
        valid_until_ms: u64,
        generation: u64,
        now_ms: u64,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.borrow_mut();
        if !entries.contains_key(token) && entries.len() >= self.capacity {
            let victim = entries
                .iter()
                .find(|(_, e)| e.valid_until_ms < now_ms)
                .or_else(|| entries.iter().min_by_key(|(_, e)| e.valid_until_ms))
                .map(|(k, _)| k.clone());
            if let Some(k) = victim {
                entries.remove(&k);
            }
        }
        entries.insert(
            token.into(),
            Entry {
                caller,
                valid_until_ms,
                generation,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
