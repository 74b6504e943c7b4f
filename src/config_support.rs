//! What every config section needs, in a leaf: the key-by-key reader [`Fields`] (errors
//! name the key; numbers and booleans may be strings, as worker vars always are), range
//! and URL checks.
//!
//! Sections live beside their feature (`auth`, `cache`, `registry`, …) and import this
//! module; only `config` imports the sections, so there is no circle back.

use serde_json::Value;

use crate::error::ConfigError;

/// `value` within `range`, or an error naming `key` and the bounds (never the value).
pub fn in_range(
    key: &str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::key(
            key,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

/// True for `http://` URLs on loopback, which are allowed for local emulators and tests.
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// Checks that `url` is `https://host…` (or loopback `http://` for local runs).
pub fn validate_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let https_host = url
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .is_some_and(|host| !host.is_empty() && !host.contains('@'));
    if https_host || is_loopback_http(url) {
        Ok(())
    } else {
        Err(ConfigError::key(
            key,
            "must be an https:// URL (http:// only on loopback)",
        ))
    }
}

/// An endpoint override: a base URL (`https://host[:port]`, `http://` only on loopback),
/// no path, query or credentials — the provider appends the documented path. Returned
/// without a trailing `/`.
pub fn base_url(key: &str, url: &str) -> Result<String, ConfigError> {
    validate_url(key, url)?;
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed.split_once("://").map_or("", |(_, rest)| rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(ConfigError::key(
            key,
            "must be a base URL: scheme://host[:port] without a path",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A config table read key by key, for sections that do not derive `Deserialize`: one
/// shared, non-generic reader instead of serde's per-type code (each derived section
/// costs ~10 KB of Wasm with its `serde_path_to_error` wrapper; measured in
/// bench/README.md). Errors never repeat a value:
/// a missing key "is required", a stray one "is not a known key" (checked by
/// [`Fields::finish`]), a wrong one "has the wrong type or an invalid value". Numbers and
/// booleans may be strings, as worker vars always are.
pub struct Fields {
    prefix: String,
    map: serde_json::Map<String, Value>,
}

impl Fields {
    /// `prefix`: the table's dotted key (`registry`, `registry.client_ids.my-app`).
    pub fn new(prefix: impl Into<String>, map: serde_json::Map<String, Value>) -> Self {
        Fields {
            prefix: prefix.into(),
            map,
        }
    }

    /// The table's dotted key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn wrong(&self, key: &str) -> ConfigError {
        ConfigError::key(self.key(key), "has the wrong type or an invalid value")
    }

    /// The raw value of an optional key (tables such as `client_ids`).
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    pub fn opt_string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(key)),
        }
    }

    pub fn string(&mut self, key: &str) -> Result<String, ConfigError> {
        self.opt_string(key)?
            .ok_or_else(|| ConfigError::key(self.key(key), "is required"))
    }

    pub fn string_or(&mut self, key: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.opt_string(key)?.unwrap_or_else(|| default.to_owned()))
    }

    pub fn u64_or(&mut self, key: &str, default: u64) -> Result<u64, ConfigError> {
        match self.map.remove(key) {
            None => Ok(default),
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| self.wrong(key)),
            Some(Value::String(s)) => s.trim().parse().map_err(|_| self.wrong(key)),
            Some(_) => Err(self.wrong(key)),
        }
    }

    pub fn bool_or(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.map.remove(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) if s.trim() == "true" => Ok(true),
            Some(Value::String(s)) if s.trim() == "false" => Ok(false),
            Some(_) => Err(self.wrong(key)),
        }
    }

    /// A list of strings (`signing_keys`); `None` when absent.
    pub fn opt_string_list(&mut self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(self.wrong(key)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.wrong(key)),
        }
    }

    /// An array of tables (`[[auth.issuers]]`), each read under `{prefix}.{key}[i]`;
    /// empty when absent.
    pub fn table_list(&mut self, key: &str) -> Result<Vec<Fields>, ConfigError> {
        match self.map.remove(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| Fields::table(&format!("{}[{i}]", self.key(key)), item))
                .collect(),
            Some(_) => Err(self.wrong(key)),
        }
    }

    /// A table of strings (`claims`), in key order; `None` when absent.
    pub fn opt_string_map(
        &mut self,
        key: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, ConfigError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    _ => Err(ConfigError::key(
                        format!("{}.{k}", self.key(key)),
                        "has the wrong type or an invalid value",
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(self.wrong(key)),
        }
    }

    /// An optional boolean (absent → `None`), lenient like [`Fields::bool_or`].
    pub fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
        if !self.map.contains_key(key) {
            return Ok(None);
        }
        self.bool_or(key, false).map(Some)
    }

    /// A table given as `key`'s value: its keys read under `{prefix}` (`[cache]`, …).
    pub fn table(prefix: &str, value: Value) -> Result<Fields, ConfigError> {
        match value {
            Value::Object(map) => Ok(Fields::new(prefix, map)),
            _ => Err(ConfigError::key(prefix, "must be a table")),
        }
    }

    /// Every key was read: anything left is not a known key.
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.map.keys().next() {
            Some(stray) => Err(ConfigError::key(self.key(stray), "is not a known key")),
            None => Ok(()),
        }
    }
}
