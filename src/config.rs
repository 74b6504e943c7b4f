//! Layered configuration: embedded TOML files + worker vars → a validated [`Config`].
//!
//! Layers, lowest first (DESIGN.md "Config"):
//! 1. `config/default.toml`
//! 2. `config/{RUN_MODE}.toml` when the `RUN_MODE` var is set (an unknown mode is an error:
//!    a typo must not silently run the defaults in production)
//! 3. `config/local.toml` when it existed at build time (gitignored), and only when
//!    `RUN_MODE` is `development`
//! 4. worker vars `RISE_<SECTION>__<KEY>` (a JSON object/array value replaces the key whole)
//!
//! Tables merge key by key, arrays and scalars replace. A table whose `type` changes
//! (e.g. `registry` going from docker to ecr) is replaced whole, so keys of the old
//! provider cannot leak into the new one. Unknown keys, wrong types and missing required
//! keys are errors that name the key and never echo its value.

use serde_json::{Map, Value};

use crate::auth::AuthConfig;
use crate::cache::CacheConfig;
use crate::config_support::Fields;
use crate::error::ConfigError;
use crate::oidc::OidcConfig;
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
    /// The broker's own OIDC issuer; optional.
    pub oidc: Option<OidcConfig>,
}

/// The run mode of `wrangler dev`: the only one with the dev issuer, the local docker
/// registry and `config/local.toml`.
pub const DEVELOPMENT: &str = "development";

/// Loads the embedded layers plus `vars` (all worker vars; only `RISE_*__*` ones are used).
/// `RUN_MODE` must be set: a `wrangler deploy` that forgot `--env production` stops here
/// instead of serving the development defaults to the internet.
pub fn load_embedded<'a>(
    run_mode: Option<&str>,
    vars: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Config, ConfigError> {
    let mode = run_mode
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            ConfigError::key(
                "RUN_MODE",
                "is not set: `development` under wrangler dev (scripts/dev.sh), \
             `production` for `wrangler deploy --env production`",
            )
        })?;
    load(embedded::FILES, Some(mode), vars)
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
    let run_mode = run_mode.map(str::trim).filter(|m| !m.is_empty());
    if let Some(mode) = run_mode {
        let text = match mode {
            "default" | "local" => None,
            _ => file(mode),
        }
        .ok_or_else(|| ConfigError::key("RUN_MODE", "names no embedded config file"))?;
        merge(&mut merged, parse_layer(mode, text)?);
    }
    // A developer's local.toml never reaches a production build's config.
    if let Some(text) = file("local").filter(|_| run_mode == Some(DEVELOPMENT)) {
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
/// A provider template that starts with a placeholder (`{project}-push`) is a string too:
/// a value that starts like JSON, does not parse, and begins with a placeholder.
fn var_value(name: &str, raw: &str) -> Result<Value, ConfigError> {
    let trimmed = raw.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str(raw).or_else(|_| {
            const PLACEHOLDERS: [&str; 4] = ["{project}", "{access}", "{PROJECT}", "{ACCESS}"];
            if PLACEHOLDERS.iter().any(|p| trimmed.starts_with(p)) {
                Ok(Value::String(raw.to_owned()))
            } else {
                Err(ConfigError::key(name, "is not valid JSON"))
            }
        })
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

/// Turns a merged tree into a validated [`Config`]. Every section is read key by key
/// (`config_support::Fields`): `registry` dispatched on its `type`, so errors name the
/// exact key, and no serde code per section in the Wasm.
pub fn from_value(value: Value) -> Result<Config, ConfigError> {
    let Value::Object(map) = value else {
        return Err(ConfigError::key("config", "must be a table"));
    };
    let mut top = Fields::new("", map);
    let registry = top
        .take("registry")
        .ok_or_else(|| ConfigError::key("registry", "is required"))?;
    let auth = top.take("auth");
    let cache = top.take("cache");
    let oidc = top.take("oidc");
    top.finish()?;
    let config = Config {
        registry: RegistryConfig::from_table(registry)?,
        auth: auth.map(AuthConfig::parse).transpose()?.unwrap_or_default(),
        cache: cache
            .map(CacheConfig::parse)
            .transpose()?
            .unwrap_or_default(),
        oidc: oidc.map(OidcConfig::parse).transpose()?,
    };
    config.auth.validate()?;
    config.cache.validate()?;
    config
        .cache
        .validate_token_entries(config.auth.max_token_bytes)?;
    if let Some(oidc) = &config.oidc {
        oidc.validate()?;
        // The broker's own tokens (web identity, registry login secrets, registry tokens)
        // must never count as a caller's: trusting its own issuer would let a token it
        // minted for a cloud or a registry come back and ask for credentials.
        if let Some(i) = config
            .auth
            .issuers
            .iter()
            .position(|i| i.issuer.trim_end_matches('/') == oidc.issuer)
        {
            return Err(ConfigError::key(
                format!("auth.issuers[{i}].issuer"),
                "is the broker's own `[oidc] issuer`: its tokens must never act as callers",
            ));
        }
    }
    Ok(config)
}
