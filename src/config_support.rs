//! What every config section needs, in a leaf: per-key error reporting, deserializers that
//! accept worker vars (always strings), and URL checks.
//!
//! Sections live beside their feature (`auth`, `cache`, `registry`, …) and import this
//! module; only `config` imports the sections, so there is no circle back.

use serde::de::DeserializeOwned;
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

/// Deserializes `value` and, on failure, reports the dotted key (prefixed by `prefix`)
/// with a reason that never repeats the offending value.
pub fn deserialize_at<T: DeserializeOwned>(prefix: &str, value: Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.inner().to_string();
        let join = |a: &str, b: &str| match (a.is_empty() || a == ".", b.is_empty()) {
            (true, _) => b.to_owned(),
            (false, true) => a.to_owned(),
            (false, false) => format!("{a}.{b}"),
        };
        let base = join(prefix, if path == "." { "" } else { &path });
        let field = inner.split('`').nth(1).unwrap_or_default();
        if inner.starts_with("missing field") {
            ConfigError::key(join(&base, field), "is required")
        } else if inner.starts_with("unknown field") {
            let key = if base.ends_with(field) {
                base
            } else {
                join(&base, field)
            };
            ConfigError::key(key, "is not a known key")
        } else if inner.starts_with("unknown variant") {
            ConfigError::key(base, "has an unsupported value")
        } else {
            ConfigError::key(base, "has the wrong type or an invalid value")
        }
    })
}

/// Deserializers that also accept strings, because worker vars are always strings
/// (`RISE_AUTH__LEEWAY_SECONDS=30`). Their errors never repeat the value.
pub mod lenient {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    struct U64Visitor;

    impl Visitor<'_> for U64Visitor {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-negative integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom("expected a non-negative integer"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::custom("expected a non-negative integer"))
        }
    }

    /// A `u64` given as a number or a decimal string.
    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(U64Visitor)
    }

    struct BoolVisitor;

    impl Visitor<'_> for BoolVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(E::custom("expected true or false")),
            }
        }
    }

    /// A `bool` given as a boolean or the string `true`/`false`.
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        d.deserialize_any(BoolVisitor)
    }

    /// [`bool`] for an optional key (with `#[serde(default)]`).
    pub fn option_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        bool(d).map(Some)
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
/// bench/README.md). Errors are worded as [`deserialize_at`]'s, never repeating a value:
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

    fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
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

    /// Every key was read: anything left is not a known key.
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.map.keys().next() {
            Some(stray) => Err(ConfigError::key(self.key(stray), "is not a known key")),
            None => Ok(()),
        }
    }
}
