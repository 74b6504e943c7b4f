//! Layered configuration: embedded TOML files + worker vars → a validated [`Config`].
//!
//! Layers, lowest first (DESIGN.md "Config"):
//! 1. `config/default.toml`
//! 2. `config/{RUN_MODE}.toml` when the `RUN_MODE` var is set (an unknown mode is an error:
//!    a typo must not silently run the defaults in production)
//! 3. `config/local.toml` when it existed at build time (gitignored)
//! 4. worker vars `RISE_<SECTION>__<KEY>` (a JSON object/array value replaces the key whole)
//!
//! Tables merge key by key, arrays and scalars replace. A table whose `type` changes
//! (e.g. `registry` going from docker to ecr) is replaced whole, so keys of the old
//! provider cannot leak into the new one. Unknown keys, wrong types and missing required
//! keys are errors that name the key and never echo its value.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::auth::AuthConfig;
use crate::cache::CacheConfig;
use crate::error::{PublicError, PublicFailure};
use crate::registry::RegistryConfig;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_config.rs"));
}

/// Prefix of the worker vars that override config keys.
pub const VAR_PREFIX: &str = "RISE_";

/// The validated configuration the broker runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub registry: RegistryConfig,
    pub auth: AuthConfig,
    pub cache: CacheConfig,
}

/// A configuration problem. `reason` never contains a configured value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A key (dotted path, e.g. `registry.region`) is missing, unknown or invalid.
    Key { key: String, reason: String },
    /// A worker secret named by the config (or required by a provider) is not set or invalid.
    Secret { name: String, reason: &'static str },
}

impl ConfigError {
    pub fn key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub fn missing_secret(name: impl Into<String>) -> Self {
        ConfigError::Secret {
            name: name.into(),
            reason: "is not set",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Key { key, reason } => write!(f, "config key `{key}` {reason}"),
            ConfigError::Secret { name, reason } => write!(f, "worker secret `{name}` {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl PublicError for ConfigError {
    fn public(&self) -> PublicFailure {
        // Names the key or secret, never a value: safe to show to the caller.
        PublicFailure::new(
            500,
            "misconfigured",
            format!("broker is misconfigured: {self}"),
        )
    }
}

/// Loads the embedded layers plus `vars` (all worker vars; only `RISE_*__*` ones are used).
pub fn load_embedded<'a>(
    run_mode: Option<&str>,
    vars: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Config, ConfigError> {
    load(embedded::FILES, run_mode, vars)
}

/// Loads `files` (name → layer as JSON) layered by `run_mode`, then `vars` on top.
pub fn load<'a>(
    files: &[(&str, &str)],
    run_mode: Option<&str>,
    vars: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Config, ConfigError> {
    let merged = merged_layers(files, run_mode, vars)?;
    from_value(merged)
}

/// Merges the layers into one JSON tree.
fn merged_layers<'a>(
    files: &[(&str, &str)],
    run_mode: Option<&str>,
    vars: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Value, ConfigError> {
    let file = |name: &str| files.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
    let mut merged = parse_layer("default", file("default").unwrap_or("{}"))?;
    if let Some(mode) = run_mode.map(str::trim).filter(|m| !m.is_empty()) {
        let text = match mode {
            "default" | "local" => None,
            _ => file(mode),
        }
        .ok_or_else(|| ConfigError::key("RUN_MODE", "names no embedded config file"))?;
        merge(&mut merged, parse_layer(mode, text)?);
    }
    if let Some(text) = file("local") {
        merge(&mut merged, parse_layer("local", text)?);
    }
    merge(&mut merged, vars_overlay(vars)?);
    Ok(merged)
}

fn parse_layer(name: &str, json: &str) -> Result<Value, ConfigError> {
    serde_json::from_str::<Value>(json)
        .map_err(|_| ConfigError::key(format!("config/{name}.toml"), "is not a valid layer"))
}

/// Builds the overlay tree from `RISE_<SECTION>__<KEY>[__<KEY>…]` vars.
fn vars_overlay<'a>(
    vars: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Value, ConfigError> {
    let mut overlay = Value::Object(Map::new());
    let mut vars: Vec<_> = vars.into_iter().collect();
    vars.sort(); // deterministic, whatever order the runtime lists them in
    for (name, raw) in vars {
        let Some(path) = var_path(name) else { continue };
        let value = var_value(name, raw)?;
        let mut node = &mut overlay;
        for (i, segment) in path.iter().enumerate() {
            let map = node.as_object_mut().expect("overlay nodes are objects");
            if i + 1 == path.len() {
                map.insert(segment.clone(), value.clone());
                break;
            }
            let child = map
                .entry(segment.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                return Err(ConfigError::key(
                    name,
                    "conflicts with another var for the same key",
                ));
            }
            node = child;
        }
    }
    Ok(overlay)
}

/// `RISE_REGISTRY__TYPE` → `["registry", "type"]`; `None` for vars that are not config
/// overrides (no `__`, e.g. the secret `RISE_JWT_SECRET`).
fn var_path(name: &str) -> Option<Vec<String>> {
    let rest = name.strip_prefix(VAR_PREFIX)?;
    if !rest.contains("__") {
        return None;
    }
    let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
    let valid =
        |s: &String| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    path.iter().all(valid).then_some(path)
}

/// A var is a string, unless it is a JSON object or array (which replaces the key whole).
fn var_value(name: &str, raw: &str) -> Result<Value, ConfigError> {
    let trimmed = raw.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str(raw).map_err(|_| ConfigError::key(name, "is not valid JSON"))
    } else {
        Ok(Value::String(raw.to_owned()))
    }
}

/// Deep merge: tables merge, everything else replaces; a table whose `type` differs is
/// replaced whole.
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing)
                        if existing.is_object()
                            && value.is_object()
                            && !type_changes(existing, &value) =>
                    {
                        merge(existing, value)
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

fn type_changes(base: &Value, overlay: &Value) -> bool {
    match (base.get("type"), overlay.get("type")) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// The top level as written; `registry` is dispatched on its `type` separately so errors
/// inside it name the exact key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    registry: Value,
    #[serde(default)]
    auth: AuthConfig,
    #[serde(default)]
    cache: CacheConfig,
}

/// Turns a merged tree into a validated [`Config`].
pub fn from_value(value: Value) -> Result<Config, ConfigError> {
    let raw: RawConfig = deserialize_at("", value)?;
    let registry = RegistryConfig::from_table(raw.registry)?;
    let config = Config {
        registry,
        auth: raw.auth,
        cache: raw.cache,
    };
    config.auth.validate()?;
    config.cache.validate()?;
    Ok(config)
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
