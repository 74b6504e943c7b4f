//! Secrets: values that can never be printed, and where they come from.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroize;

/// A secret string. `Debug`/`Display` print `[redacted]`; the memory is zeroed on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    /// The only way to read the value: call sites are easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Read access to worker secrets (`wrangler secret put`, `.dev.vars` locally).
pub trait Secrets {
    fn get(&self, name: &str) -> Option<SecretString>;
}

/// An in-memory secret store, for tests and for the wasm test harness.
#[derive(Default, Clone)]
pub struct MapSecrets(pub BTreeMap<String, SecretString>);

impl MapSecrets {
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.0.insert(name.to_owned(), SecretString::new(value));
        self
    }
}

impl Secrets for MapSecrets {
    fn get(&self, name: &str) -> Option<SecretString> {
        self.0.get(name).cloned()
    }
}

impl fmt::Debug for MapSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}
