//! The docker provider: any Docker-compatible registry the client already logged in to.
//! Nothing is issued; the broker tells the CLI where the project's repository lives.

use async_trait::async_trait;

use super::{
    namespaced, validate_location, AuthMethod, CredentialRequest, ProviderConfig, ProviderError,
    RegistryConfig, RegistryCredentials, RegistryProvider, Services, UpstreamTrace,
};
use crate::error::ConfigError;
use crate::project::ProjectName;
use crate::runtime::Context;
use crate::secrets::{SecretString, Secrets};

/// `[registry]` with `type = "docker"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// Registry host (and port), no scheme: `localhost:5000`, `docker.io`.
    pub registry_url: String,
    /// Path inside the registry under which projects live; may be empty.
    pub namespace: String,
}

impl ProviderConfig for DockerConfig {
    const KIND: &'static str = "docker";

    fn parse(map: serde_json::Map<String, serde_json::Value>) -> Result<Self, ConfigError> {
        let mut f = crate::config_support::Fields::new("registry", map);
        let config = DockerConfig {
            registry_url: f.string("registry_url")?,
            namespace: f.string_or("namespace", "")?,
        };
        f.finish()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate_location(&self.registry_url, &self.namespace)
    }

    fn build(
        &self,
        _services: &Services,
        _secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        Ok(Box::new(DockerProvider::new(self.clone())))
    }
}

impl From<DockerConfig> for RegistryConfig {
    fn from(config: DockerConfig) -> Self {
        RegistryConfig::Docker(config)
    }
}

impl DockerConfig {
    /// `{namespace}/{project}`, or just the project with an empty namespace.
    pub fn repository(&self, project: &ProjectName) -> String {
        namespaced(&self.namespace, project)
    }
}

pub struct DockerProvider {
    config: DockerConfig,
}

impl DockerProvider {
    pub fn new(config: DockerConfig) -> Self {
        DockerProvider { config }
    }
}

#[async_trait(?Send)]
impl RegistryProvider for DockerProvider {
    fn kind(&self) -> &'static str {
        DockerConfig::KIND
    }

    fn worst_case_ms(&self) -> u64 {
        0 // no upstream call
    }

    async fn credentials(
        &self,
        request: &CredentialRequest<'_>,
        _ctx: &Context<'_>,
        _trace: &mut UpstreamTrace,
    ) -> Result<RegistryCredentials, ProviderError> {
        Ok(RegistryCredentials {
            registry_url: self.config.registry_url.clone(),
            username: String::new(),
            password: SecretString::default(),
            expires_at_ms: None,
            repository: self.config.repository(request.project),
            auth_method: AuthMethod::ClientAuth,
        })
    }
}
