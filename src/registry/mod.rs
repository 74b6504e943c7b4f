//! Registry providers: the three extension points of the product description.
//!
//! - [`RegistryProvider`]: issues credentials for one project and access level;
//! - [`RegistryConfig`]: the `[registry]` section, tagged by `type`;
//! - [`create_registry_provider`]: turns a config into a provider.
//!
//! To add a provider: a module with its config struct and provider type, a variant here,
//! an arm in `from_table` and one in `create_registry_provider`.

pub mod docker;
pub mod ecr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::VerifiedCaller;
use crate::aws::retry::Sleeper;
use crate::aws::UpstreamError;
use crate::config::{deserialize_at, ConfigError};
use crate::error::{PublicError, PublicFailure};
use crate::http::HttpClient;
use crate::project::{Access, ProjectName};
use crate::secrets::{SecretString, Secrets};

pub use docker::{DockerConfig, DockerProvider};
pub use ecr::{EcrConfig, EcrProvider};

/// The `[registry]` section. `type` selects the provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RegistryConfig {
    Docker(DockerConfig),
    Ecr(EcrConfig),
}

impl RegistryConfig {
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
        let config = match kind.as_str() {
            "docker" => RegistryConfig::Docker(deserialize_at("registry", Value::Object(map))?),
            "ecr" => RegistryConfig::Ecr(deserialize_at("registry", Value::Object(map))?),
            _ => {
                return Err(ConfigError::key(
                    "registry.type",
                    "must be `docker` or `ecr`",
                ))
            }
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            RegistryConfig::Docker(c) => c.validate(),
            RegistryConfig::Ecr(c) => c.validate(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RegistryConfig::Docker(_) => "docker",
            RegistryConfig::Ecr(_) => "ecr",
        }
    }
}

/// Builds the provider for a validated config.
pub fn create_registry_provider(config: &RegistryConfig) -> Box<dyn RegistryProvider> {
    match config {
        RegistryConfig::Docker(c) => Box::new(DockerProvider::new(c.clone())),
        RegistryConfig::Ecr(c) => Box::new(EcrProvider::new(c.clone())),
    }
}

/// What a provider is asked for: an authorized caller, a valid project and an access level.
pub struct CredentialRequest<'a> {
    pub caller: &'a VerifiedCaller,
    pub project: &'a ProjectName,
    pub access: Access,
}

/// The IO a provider may do during one request: all of it passed in.
pub struct ProviderContext<'a> {
    /// Milliseconds since the Unix epoch, read once by the shell.
    pub now_ms: u64,
    pub http: &'a dyn HttpClient,
    pub secrets: &'a dyn Secrets,
    /// Waits between retries.
    pub sleeper: &'a dyn Sleeper,
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

/// Issued credentials, rendered by [`RegistryCredentials::to_json`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCredentials {
    pub registry_url: String,
    pub username: String,
    pub password: SecretString,
    /// Whole seconds the credential keeps working; `None` when nothing is issued.
    pub expires_in: Option<u64>,
    pub repository: String,
    pub auth_method: AuthMethod,
    /// AWS request ids of the calls made (audit log only).
    pub upstream_request_ids: Vec<String>,
    /// Outbound calls (Worker subrequests) this issuance cost.
    pub subrequests: u32,
}

impl RegistryCredentials {
    /// The 200 body of DESIGN.md "HTTP API".
    pub fn to_json(&self) -> Value {
        let mut credentials = serde_json::json!({
            "registry_url": self.registry_url,
            "username": self.username,
            "password": self.password.expose(),
        });
        if let Some(expires_in) = self.expires_in {
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

/// Why a provider could not issue credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    Misconfigured(ConfigError),
    Upstream(UpstreamError),
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderError::Misconfigured(e) => e.fmt(f),
            ProviderError::Upstream(e) => e.fmt(f),
        }
    }
}

impl PublicError for ProviderError {
    fn public(&self) -> PublicFailure {
        match self {
            ProviderError::Misconfigured(e) => e.public(),
            ProviderError::Upstream(e) => e.public(),
        }
    }
}

/// A registry back end.
#[async_trait(?Send)]
pub trait RegistryProvider {
    /// `docker`, `ecr`, … (reported by `/health`).
    fn kind(&self) -> &'static str;

    async fn credentials(
        &self,
        request: &CredentialRequest<'_>,
        ctx: &ProviderContext<'_>,
    ) -> Result<RegistryCredentials, ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The tagged serde form and the loader's per-key dispatch agree.
    #[test]
    fn serde_tagged_form_matches_from_table() {
        for table in [
            json!({"type": "docker", "registry_url": "localhost:5000", "namespace": "rise-apps"}),
            json!({"type": "ecr", "region": "us-east-1", "account_id": "123456789012",
                   "push_role_arn": "arn:aws:iam::123456789012:role/push", "session_duration_seconds": 900}),
        ] {
            let via_serde: RegistryConfig = serde_json::from_value(table.clone()).unwrap();
            assert_eq!(RegistryConfig::from_table(table).unwrap(), via_serde);
        }
        assert!(RegistryConfig::from_table(json!({"type": "quay"})).is_err());
        assert!(serde_json::from_value::<RegistryConfig>(json!({"type": "quay"})).is_err());
    }
}
