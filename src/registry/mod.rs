//! Registry providers, behind the three extension points of the product description:
//!
//! - [`RegistryProvider`]: issues credentials for one project and access level;
//! - [`RegistryConfig`]: the `[registry]` section, one variant per `type`;
//! - [`create_registry_provider`]: turns a config into a provider.
//!
//! A provider is one file: its config struct implements [`ProviderConfig`] (the `type`
//! string, validation, construction) and its provider type implements
//! [`RegistryProvider`]. Registering it here is one line in each of: the `mod` list,
//! the [`RegistryConfig`] enum, [`RegistryConfig::section`] and [`KINDS`].

pub mod acr;
pub mod artifactory;
pub mod docker;
pub mod ecr;
pub mod federation;
pub mod gar;
pub mod gitlab;
pub mod harbor;
pub mod quay;
pub mod registry_token;
pub mod static_token;
pub mod sweep;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::VerifiedCaller;
pub use crate::config_support::Fields;
use crate::error::{ConfigError, PublicError, PublicFailure};
use crate::oidc::TokenIssuer;
use crate::project::{Access, ProjectName};
use crate::runtime::Context;
use crate::secrets::{SecretString, Secrets};
use crate::upstream::UpstreamError;
pub use crate::upstream::UpstreamTrace;

pub use acr::AcrConfig;
pub use artifactory::ArtifactoryConfig;
pub use docker::DockerConfig;
pub use ecr::EcrConfig;
pub use gar::GarConfig;
pub use gitlab::GitlabConfig;
pub use harbor::HarborConfig;
pub use quay::QuayConfig;
pub use registry_token::RegistryTokenConfig;
pub use static_token::StaticConfig;

/// The `[registry]` section. `type` selects the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryConfig {
    Docker(DockerConfig),
    Ecr(EcrConfig),
    RegistryToken(RegistryTokenConfig),
    Gar(GarConfig),
    Acr(AcrConfig),
    Static(StaticConfig),
    Quay(QuayConfig),
    Artifactory(ArtifactoryConfig),
    Gitlab(GitlabConfig),
    Harbor(HarborConfig),
}

/// Every provider's `type` and parser, in the order error messages list them.
const KINDS: &[Kind] = &[
    Kind::of::<DockerConfig>(),
    Kind::of::<EcrConfig>(),
    Kind::of::<RegistryTokenConfig>(),
    Kind::of::<GarConfig>(),
    Kind::of::<AcrConfig>(),
    Kind::of::<StaticConfig>(),
    Kind::of::<QuayConfig>(),
    Kind::of::<ArtifactoryConfig>(),
    Kind::of::<GitlabConfig>(),
    Kind::of::<HarborConfig>(),
];

impl RegistryConfig {
    /// The section as its provider's config.
    fn section(&self) -> &dyn Section {
        match self {
            RegistryConfig::Docker(c) => c,
            RegistryConfig::Ecr(c) => c,
            RegistryConfig::RegistryToken(c) => c,
            RegistryConfig::Gar(c) => c,
            RegistryConfig::Acr(c) => c,
            RegistryConfig::Static(c) => c,
            RegistryConfig::Quay(c) => c,
            RegistryConfig::Artifactory(c) => c,
            RegistryConfig::Gitlab(c) => c,
            RegistryConfig::Harbor(c) => c,
        }
    }

    /// Dispatches on `type` by hand (instead of serde's buffered tagged enum) so that an
    /// error inside the section names the exact key, e.g. `registry.region`.
    pub fn from_table(table: Value) -> Result<Self, ConfigError> {
        let Value::Object(mut map) = table else {
            return Err(ConfigError::key("registry", "must be a table"));
        };
        let kind = match map.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err(ConfigError::key("registry.type", "must be a string")),
            None => return Err(ConfigError::key("registry.type", "is required")),
        };
        match KINDS.iter().find(|k| k.kind == kind) {
            Some(k) => (k.parse)(map),
            None => {
                let known: Vec<String> = KINDS.iter().map(|k| format!("`{}`", k.kind)).collect();
                Err(ConfigError::key(
                    "registry.type",
                    format!("must be one of {}", known.join(", ")),
                ))
            }
        }
    }

    /// The `type` string (`docker`, `ecr`, …).
    pub fn kind(&self) -> &'static str {
        self.section().kind()
    }
}

/// What providers may use besides their own section, built once per isolate.
#[derive(Debug, Default, Clone)]
pub struct Services {
    /// The broker's OIDC issuer, when `[oidc]` is configured.
    pub oidc: Option<std::rc::Rc<TokenIssuer>>,
}

/// Builds the provider for a validated config. Fails (naming the key or secret) when the
/// provider needs a service that is not configured or a secret that is not set, so the
/// broker (and `/health`) reports it at start-up rather than on some request.
pub fn create_registry_provider(
    config: &RegistryConfig,
    services: &Services,
    secrets: &dyn Secrets,
) -> Result<Box<dyn RegistryProvider>, ConfigError> {
    config.section().build(services, secrets)
}

/// What a provider's config section implements, in the provider's own file.
pub trait ProviderConfig: Into<RegistryConfig> + Sized + 'static {
    /// The `[registry] type` value that selects this provider.
    const KIND: &'static str;
    /// The section's keys (without `type`) → the config, read with [`Fields`] (one
    /// shared reader instead of serde's per-type code: a smaller Wasm); errors name the
    /// key.
    fn parse(map: Map<String, Value>) -> Result<Self, ConfigError>;
    /// Checks beyond the types (ranges, formats); errors name the key.
    fn validate(&self) -> Result<(), ConfigError>;
    /// The provider, once every secret it will read is known to be set.
    fn build(
        &self,
        services: &Services,
        secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError>;
}

/// The object-safe face of [`ProviderConfig`].
trait Section {
    fn kind(&self) -> &'static str;
    fn build(
        &self,
        services: &Services,
        secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError>;
}

impl<T: ProviderConfig> Section for T {
    fn kind(&self) -> &'static str {
        T::KIND
    }
    fn build(
        &self,
        services: &Services,
        secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        ProviderConfig::build(self, services, secrets)
    }
}

/// A `type` string and the parser for its section.
struct Kind {
    kind: &'static str,
    parse: fn(Map<String, Value>) -> Result<RegistryConfig, ConfigError>,
}

impl Kind {
    const fn of<T: ProviderConfig>() -> Kind {
        Kind {
            kind: T::KIND,
            parse: parse::<T>,
        }
    }
}

fn parse<T: ProviderConfig>(map: Map<String, Value>) -> Result<RegistryConfig, ConfigError> {
    let config = T::parse(map)?;
    config.validate()?;
    Ok(config.into())
}

/// Checks a `registry_url` (host[:port], no scheme or path) and a `namespace` (empty, or
/// `/`-separated segments of the project grammar): shared by the providers that point at
/// a registry of the operator's.
pub fn validate_location(registry_url: &str, namespace: &str) -> Result<(), ConfigError> {
    let host_ok = !registry_url.is_empty()
        && registry_url
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !host_ok {
        return Err(ConfigError::key(
            "registry.registry_url",
            "must be a registry host[:port] without scheme or path",
        ));
    }
    if !namespace.is_empty() && !namespace.split('/').all(|s| ProjectName::parse(s).is_ok()) {
        return Err(ConfigError::key(
            "registry.namespace",
            "must be `/`-separated lower-case path segments",
        ));
    }
    Ok(())
}

/// `{namespace}/{project}`, or just the project with an empty namespace.
pub fn namespaced(namespace: &str, project: &ProjectName) -> String {
    if namespace.is_empty() {
        project.to_string()
    } else {
        format!("{namespace}/{project}")
    }
}

/// Fills a config template: `{project}` → the validated project name, `{access}` →
/// `push` or `pull`.
pub fn fill(template: &str, project: &ProjectName, access: Access) -> String {
    template
        .replace("{project}", project.as_str())
        .replace("{access}", access.as_str())
}

/// Checks a template at config load: only `{project}` and `{access}` are placeholders,
/// and `{project}` must be there when `needs_project` (a template that names one thing
/// for every project would give every project the same credential).
pub fn validate_template(
    key: &str,
    template: &str,
    needs_project: bool,
) -> Result<(), ConfigError> {
    let rest = template.replace("{project}", "").replace("{access}", "");
    if rest.contains(['{', '}']) {
        return Err(ConfigError::key(
            key,
            "may use only the placeholders `{project}` and `{access}`",
        ));
    }
    if needs_project && !template.contains("{project}") {
        return Err(ConfigError::key(key, "must contain `{project}`"));
    }
    Ok(())
}

/// What a provider is asked for: an authorized caller, a valid project and an access level.
pub struct CredentialRequest<'a> {
    pub caller: &'a VerifiedCaller,
    pub project: &'a ProjectName,
    pub access: Access,
}

/// How the CLI should authenticate with what it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// `docker login` with the returned username/password.
    LoginCredentials,
    /// The client's own registry auth (`~/.docker/config.json`).
    ClientAuth,
}

/// Issued credentials, rendered by [`RegistryCredentials::to_json`]. `Debug` is safe:
/// the password is a [`SecretString`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCredentials {
    pub registry_url: String,
    pub username: String,
    pub password: SecretString,
    /// When the credential stops working (ms since the epoch, safety margin already
    /// taken off); `None` when nothing is issued.
    pub expires_at_ms: Option<u64>,
    pub repository: String,
    pub auth_method: AuthMethod,
}

impl RegistryCredentials {
    /// Whole seconds left at `now_ms`.
    pub fn expires_in(&self, now_ms: u64) -> Option<u64> {
        self.expires_at_ms
            .map(|at| at.saturating_sub(now_ms) / 1000)
    }

    /// The 200 body of DESIGN.md "HTTP API", with `expires_in` as of `now_ms`.
    pub fn to_json(&self, now_ms: u64) -> Value {
        let mut credentials = serde_json::json!({
            "registry_url": self.registry_url,
            "username": self.username,
            "password": self.password.expose(),
        });
        if let Some(expires_in) = self.expires_in(now_ms) {
            credentials["expires_in"] = expires_in.into();
        }
        serde_json::json!({
            "credentials": credentials,
            "repository": self.repository,
            "image": format!("{}/{}", self.registry_url, self.repository),
            "auth_method": self.auth_method,
        })
    }
}

/// What one sweep did, for its log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Upstream containers looked at (GitLab projects).
    pub examined: u32,
    /// The broker's own expired credentials deleted.
    pub deleted: u32,
    /// Deletions that failed (retried by the next run).
    pub failed: u32,
    /// Outbound calls made (bounded per run).
    pub subrequests: u32,
    /// The call budget ran out before everything was looked at.
    pub truncated: bool,
}

/// Why a provider could not issue credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    Misconfigured(ConfigError),
    Upstream(UpstreamError),
    /// The config has nothing for this (authorized) project, e.g. no Azure identity in
    /// `client_ids`: a 403 before any upstream call. The text is safe to show.
    NotConfigured(&'static str),
}

impl From<UpstreamError> for ProviderError {
    fn from(error: UpstreamError) -> Self {
        ProviderError::Upstream(error)
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderError::Misconfigured(e) => e.fmt(f),
            ProviderError::Upstream(e) => e.fmt(f),
            ProviderError::NotConfigured(why) => f.write_str(why),
        }
    }
}

impl PublicError for ProviderError {
    fn public(&self) -> PublicFailure {
        match self {
            ProviderError::Misconfigured(e) => e.public(),
            ProviderError::Upstream(e) => e.public(),
            ProviderError::NotConfigured(why) => {
                PublicFailure::new(crate::error::ErrorCode::Forbidden, *why)
            }
        }
    }
}

/// A Docker registry token server (distribution's "Token Authentication Specification").
#[async_trait(?Send)]
pub trait TokenServer {
    /// `GET /registry/token?service=…&scope=…` with `Authorization: Basic …`.
    async fn token(
        &self,
        authorization: Option<&str>,
        query: Option<&str>,
        ctx: &Context<'_>,
    ) -> Result<TokenGrant, TokenRefusal>;
}

/// A registry token issued: the 200 body, and what the audit line records.
pub struct TokenGrant {
    /// Holds the registry token itself: never printed.
    pub body: Value,
    pub subject: String,
    pub project: ProjectName,
    pub access: Access,
    /// The granted scopes, `repository:name:actions`.
    pub granted: Vec<String>,
}

// Hand-written: the body carries the registry token (`token`, `access_token`).
impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("body", &"[redacted]")
            .field("subject", &self.subject)
            .field("project", &self.project)
            .field("access", &self.access)
            .field("granted", &self.granted)
            .finish()
    }
}

/// A token request turned away: what the caller sees, and why (for the log only).
#[derive(Debug)]
pub struct TokenRefusal {
    pub public: PublicFailure,
    pub reason: String,
    pub subject: Option<String>,
}

/// A registry back end.
#[async_trait(?Send)]
pub trait RegistryProvider {
    /// `docker`, `ecr`, … (reported by `/health`).
    fn kind(&self) -> &'static str;

    /// The longest one issuance can take (all attempts, timeouts and backoff): requests
    /// waiting on another's issuance stop waiting after this and issue themselves.
    fn worst_case_ms(&self) -> u64;

    /// Whether credentials may be cached per (project, access) and served to other
    /// callers. `false` for credentials bound to the caller who asked.
    fn cacheable(&self) -> bool {
        true
    }

    /// The Docker registry token endpoint (`GET /registry/token`), for providers that
    /// are the registry's token server.
    fn token_server(&self) -> Option<&dyn TokenServer> {
        None
    }

    /// The scheduled handler's work for providers that mint credentials which live on
    /// upstream after the broker stops using them (GitLab deploy tokens): delete this
    /// broker's own expired ones — never anyone else's — within a bounded number of
    /// calls. `None`: nothing to sweep.
    async fn sweep(&self, _ctx: &Context<'_>) -> Option<Result<SweepReport, ProviderError>> {
        None
    }

    /// Issues credentials; records every upstream call in `trace`, success or not.
    async fn credentials(
        &self,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<RegistryCredentials, ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MapSecrets;
    use serde_json::json;

    #[test]
    fn kinds_are_unique_and_dispatch_to_their_variant() {
        for (i, k) in KINDS.iter().enumerate() {
            assert!(KINDS[..i].iter().all(|o| o.kind != k.kind), "{}", k.kind);
        }
        let docker = RegistryConfig::from_table(
            json!({"type": "docker", "registry_url": "localhost:5000", "namespace": "rise-apps"}),
        )
        .unwrap();
        assert_eq!(docker.kind(), "docker");
        let services = Services::default();
        let secrets = MapSecrets::default()
            .with("AWS_ACCESS_KEY_ID", "AKID")
            .with("AWS_SECRET_ACCESS_KEY", "secret");
        let kind = |c| {
            create_registry_provider(c, &services, &secrets)
                .unwrap()
                .kind()
        };
        assert_eq!(kind(&docker), "docker");
        let ecr = RegistryConfig::from_table(json!({"type": "ecr", "region": "us-east-1",
            "account_id": "123456789012", "push_role_arn": "arn:aws:iam::123456789012:role/push"}))
        .unwrap();
        assert_eq!((ecr.kind(), kind(&ecr)), ("ecr", "ecr"));
        let err = RegistryConfig::from_table(json!({"type": "harbour"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config key `registry.type` must be one of `docker`, `ecr`, `registry_token`, `gar`, `acr`, `static`, `quay`, `artifactory`, `gitlab`, `harbor`"
        );
    }
}
