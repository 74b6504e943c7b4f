//! Verified bearer tokens, remembered by the SHA-256 of the whole token until their `exp`
//! (plus leeway), so a deploy's repeated calls skip signature verification and claim
//! parsing. The digest, not the token, is the key: the memory budget per entry
//! (`crate::cache::TOKEN_CACHE_BUDGET_BYTES`) counts the claims only, and no bearer token
//! outlives its request. (Keying by the token itself saves the hash — ~6 % of a hit's CPU
//! in the workerd profile — but would break that budget; measured and reverted. The hash
//! is sha2 0.11's, half the time of 0.10's in V8: see Cargo.toml.)
//!
//! Safe because the entry is keyed by every byte of the token and only made after full
//! verification; it is never used past the token's expiry, and never across a key
//! rotation: each entry records the key-set generation it was verified with, and a remote
//! issuer's generation changes on every successful JWKS fetch. Bounded: when full, expired
//! entries go first, then the one closest to expiry.

use std::cell::RefCell;
use std::collections::HashMap;

use sha2_0_11::{Digest, Sha256};

use super::VerifiedCaller;

#[derive(Debug, Clone)]
struct Entry {
    caller: VerifiedCaller,
    valid_until_ms: u64,
    generation: u64,
}

pub struct TokenCache {
    capacity: usize,
    entries: RefCell<HashMap<[u8; 32], Entry>>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            capacity,
            entries: RefCell::new(HashMap::new()),
        }
    }

    /// Capacity 0 (`cache.enabled = false`) remembers nothing.
    pub fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The caller verified earlier, if still within its validity and verified with the
    /// key-set generation `current_generation(issuer)` reports now.
    pub fn get(
        &self,
        digest: &[u8; 32],
        now_ms: u64,
        current_generation: impl Fn(&str) -> u64,
    ) -> Option<VerifiedCaller> {
        let mut entries = self.entries.borrow_mut();
        let entry = entries.get(digest)?;
        if now_ms > entry.valid_until_ms
            || current_generation(entry.caller.issuer()) != entry.generation
        {
            entries.remove(digest);
            return None;
        }
        Some(entry.caller.clone())
    }

    pub fn insert(
        &self,
        digest: [u8; 32],
        caller: VerifiedCaller,
        valid_until_ms: u64,
        generation: u64,
        now_ms: u64,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.borrow_mut();
        if !entries.contains_key(&digest) && entries.len() >= self.capacity {
            let victim = entries
                .iter()
                .find(|(_, e)| e.valid_until_ms < now_ms)
                .or_else(|| entries.iter().min_by_key(|(_, e)| e.valid_until_ms))
                .map(|(k, _)| *k);
            if let Some(k) = victim {
                entries.remove(&k);
            }
        }
        entries.insert(
            digest,
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
