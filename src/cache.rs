//! The per-isolate credential cache: a plain struct that takes `now`.
//!
//! Keyed by (provider settings, project, access). An entry is
//! - served while more than `refresh_percent` % of its life remains (a hit);
//! - refreshed once less remains (the next request fetches anew, like
//!   amazon-ecr-credential-helper at 50 %);
//! - never served once less than `min_remaining_seconds` remain, whatever happens
//!   upstream (the helper's known bug is serving expired tokens).
//!
//! Credentials carry their absolute expiry, so `expires_in` is always computed at the
//! moment of answering, and [`CredentialCache::servable`] re-checks the floor then (an
//! upstream call in between may have taken minutes). Failures are never stored. The
//! number of entries is bounded: expired entries go first, then the least recently used.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::config_support::{in_range, Fields};
use crate::error::ConfigError;
use crate::project::Access;
use crate::registry::RegistryCredentials;

/// `[cache]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    pub enabled: bool,
    /// Credentials kept per isolate (each ~1–3 KiB for ECR).
    pub max_entries: u64,
    /// Refresh once less than this share (in %) of the credential's life remains.
    pub refresh_percent: u64,
    /// Never serve a credential with less than this left.
    pub min_remaining_seconds: u64,
    /// Verified bearer tokens remembered (by SHA-256) until their `exp`.
    pub token_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_entries: 1024,
            refresh_percent: 50,
            min_remaining_seconds: 300,
            token_entries: 1000,
        }
    }
}

impl CacheConfig {
    /// `[cache]` as written (every key optional), read with [`Fields`].
    pub fn parse(value: serde_json::Value) -> Result<Self, ConfigError> {
        let mut f = Fields::table("cache", value)?;
        let d = CacheConfig::default();
        let config = CacheConfig {
            enabled: f.bool_or("enabled", d.enabled)?,
            max_entries: f.u64_or("max_entries", d.max_entries)?,
            refresh_percent: f.u64_or("refresh_percent", d.refresh_percent)?,
            min_remaining_seconds: f.u64_or("min_remaining_seconds", d.min_remaining_seconds)?,
            token_entries: f.u64_or("token_entries", d.token_entries)?,
        };
        f.finish()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_CREDENTIAL_ENTRIES).contains(&self.max_entries) {
            return Err(ConfigError::key(
                "cache.max_entries",
                format!("must be between 1 and {MAX_CREDENTIAL_ENTRIES}"),
            ));
        }
        in_range("cache.refresh_percent", self.refresh_percent, 1..=99)?;
        if self.min_remaining_seconds > 3600 {
            return Err(ConfigError::key(
                "cache.min_remaining_seconds",
                "must be at most 3600",
            ));
        }
        Ok(())
    }

    /// The verified-token cache must fit its budget with tokens of up to
    /// `max_token_bytes` (checked with `[auth]`, which sets that size).
    pub fn validate_token_entries(&self, max_token_bytes: u64) -> Result<(), ConfigError> {
        let fits = TOKEN_CACHE_BUDGET_BYTES / token_entry_bytes(max_token_bytes);
        if self.token_entries > fits {
            return Err(ConfigError::key(
                "cache.token_entries",
                format!("must be at most {fits} with auth.max_token_bytes = {max_token_bytes} (16 MiB budget)"),
            ));
        }
        Ok(())
    }
}

/// Memory budgets inside a 128 MB isolate. A cached credential is at most ~4 KiB (an ECR
/// password is ~2.5 KiB, plus names and URLs): 4096 of them stay under 16 MiB.
pub const MAX_CREDENTIAL_ENTRIES: u64 = 4096;
/// The verified-token cache keeps each caller's claims: at most twice the token's size
/// (parsed JSON) plus ~256 bytes of bookkeeping, within 16 MiB in all.
pub const TOKEN_CACHE_BUDGET_BYTES: u64 = 16 * 1024 * 1024;

fn token_entry_bytes(max_token_bytes: u64) -> u64 {
    2 * max_token_bytes + 256
}

/// What the cache is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Fingerprint of the provider settings (a config change never reuses entries).
    pub provider: u64,
    pub project: String,
    pub access: Access,
}

#[derive(Debug, Clone)]
struct Entry {
    credentials: RegistryCredentials,
    issued_at_ms: u64,
    expires_at_ms: u64,
    last_used_ms: u64,
}

/// Result of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Servable and not due for refresh.
    Hit(RegistryCredentials),
    /// Past the refresh point but still servable: fetch anew, and serve this one only if
    /// the fetch fails.
    Refresh(RegistryCredentials),
    /// Nothing servable: fetch.
    Miss,
}

pub struct CredentialCache {
    config: CacheConfig,
    entries: RefCell<HashMap<CacheKey, Entry>>,
}

impl CredentialCache {
    pub fn new(config: CacheConfig) -> Self {
        CredentialCache {
            config,
            entries: RefCell::new(HashMap::new()),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, key: &CacheKey, now_ms: u64) -> Lookup {
        let mut entries = self.entries.borrow_mut();
        let Some(entry) = entries.get_mut(key) else {
            return Lookup::Miss;
        };
        let remaining = entry.expires_at_ms.saturating_sub(now_ms);
        let life = entry
            .expires_at_ms
            .saturating_sub(entry.issued_at_ms)
            .max(1);
        let too_short = remaining < self.floor_ms();
        if too_short {
            entries.remove(key);
            return Lookup::Miss;
        }
        entry.last_used_ms = now_ms;
        let credentials = entry.credentials.clone();
        // Refresh once less than refresh_percent of the life remains.
        if remaining * 100 < life * self.config.refresh_percent {
            Lookup::Refresh(credentials)
        } else {
            Lookup::Hit(credentials)
        }
    }

    /// Stores credentials that expire; others (docker) are not cached.
    pub fn insert(&self, key: CacheKey, credentials: &RegistryCredentials, now_ms: u64) {
        let Some(expires_at_ms) = credentials.expires_at_ms else {
            return;
        };
        let mut entries = self.entries.borrow_mut();
        // An issuance that started before the stored one (a leader that hung and came back
        // late) must not replace the newer credential.
        if entries.get(&key).is_some_and(|e| e.issued_at_ms > now_ms) {
            return;
        }
        if !entries.contains_key(&key) && entries.len() as u64 >= self.config.max_entries {
            Self::evict_one(&mut entries, now_ms);
        }
        entries.insert(
            key,
            Entry {
                credentials: credentials.clone(),
                issued_at_ms: now_ms,
                expires_at_ms,
                last_used_ms: now_ms,
            },
        );
    }

    /// Whether `credentials` may still be served at `now_ms`: the never-serve floor.
    pub fn servable(&self, credentials: &RegistryCredentials, now_ms: u64) -> bool {
        credentials
            .expires_at_ms
            .is_none_or(|at| at.saturating_sub(now_ms) >= self.floor_ms())
    }

    /// The least life a credential must have left to be served: `min_remaining_seconds`,
    /// and never less than one second whatever the config says — with the setting at 0,
    /// an expired credential would otherwise count as "0 s left ≥ 0 s" and be served.
    fn floor_ms(&self) -> u64 {
        self.config
            .min_remaining_seconds
            .saturating_mul(1000)
            .max(1000)
    }

    /// Drops an expired entry if there is one, else the least recently used.
    fn evict_one(entries: &mut HashMap<CacheKey, Entry>, now_ms: u64) {
        let victim = entries
            .iter()
            .find(|(_, e)| e.expires_at_ms <= now_ms)
            .or_else(|| entries.iter().min_by_key(|(_, e)| e.last_used_ms))
            .map(|(k, _)| k.clone());
        if let Some(key) = victim {
            entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::AuthMethod;
    use crate::secrets::SecretString;

    fn credentials(expires_at_ms: u64) -> RegistryCredentials {
        RegistryCredentials {
            registry_url: "r.test".into(),
            username: "u".into(),
            password: SecretString::new("p".to_owned()),
            expires_at_ms: Some(expires_at_ms),
            repository: "my-app".into(),
            auth_method: AuthMethod::LoginCredentials,
        }
    }

    /// `min_remaining_seconds = 0` must not make an expired credential servable: at its
    /// expiry (0 s left) and in its last second it is refused, a second before it is not.
    #[test]
    fn zero_min_remaining_never_serves_an_expired_credential() {
        let cache = CredentialCache::new(CacheConfig {
            min_remaining_seconds: 0,
            ..CacheConfig::default()
        });
        let key = CacheKey {
            provider: 1,
            project: "my-app".into(),
            access: Access::Push,
        };
        let expires = 1_000_000;
        cache.insert(key.clone(), &credentials(expires), 0);
        assert!(cache.servable(&credentials(expires), expires - 1000));
        assert!(!cache.servable(&credentials(expires), expires - 999));
        assert!(!cache.servable(&credentials(expires), expires));
        assert!(!cache.servable(&credentials(expires), expires + 5000));
        assert!(matches!(
            cache.get(&key, expires - 1000),
            Lookup::Refresh(_)
        ));
        assert_eq!(cache.get(&key, expires), Lookup::Miss);
        // The configured floor still applies above the one-second minimum.
        let strict = CredentialCache::new(CacheConfig::default());
        assert!(!strict.servable(&credentials(expires), expires - 299_999));
        assert!(strict.servable(&credentials(expires), expires - 300_000));
    }
}
