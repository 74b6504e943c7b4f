//! Quay.io and Red Hat Quay ≥ 3.13, keyless through robot account federation: the
//! broker's own RS256 token (`sub = project:{project}:{access}`) is the password of a
//! `GET /oauth2/federation/robot/token` with Basic `{organization}+{robot}`, and Quay
//! answers a robot token valid one hour (PROVIDERS.md §4).
//!
//! Scope lives on Quay's side: one robot per (project, access), each federated with
//! exactly that subject and holding `write` (push) or `read` (pull) on the project's
//! repository only (docs/quay.md).

use std::rc::Rc;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::federation::{self, jwt_expiry_ms};
use super::{
    fill, validate_location, validate_template, AuthMethod, CredentialRequest, ProviderConfig,
    ProviderError, RegistryConfig, RegistryCredentials, RegistryProvider, Services, UpstreamTrace,
};
use crate::config_support::{base_url, Fields};
use crate::error::ConfigError;
use crate::oidc::TokenIssuer;
use crate::project::{Access, ProjectName};
use crate::runtime::{Context, OutboundRequest, OutboundResponse};
use crate::secrets::{SecretString, Secrets};
use crate::signer::KeyFamily;
use crate::upstream::{call, json_token, reported_expiry, ErrorAnswer, Step, UpstreamError};

const FEDERATION: Step = Step::new("Quay", "robot federation token exchange");

/// `[registry]` with `type = "quay"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuayConfig {
    /// `quay.io` or your Quay's host.
    pub registry_url: String,
    pub organization: String,
    /// Robot short name (template, default `{project}_{access}`); in it, `.` and `-` of
    /// the project become `_`.
    pub robot: String,
    /// Repository inside the organization (template, default `{project}`).
    pub repository: String,
    /// `aud` of the minted token. Quay checks it only when the federation entry lists
    /// audiences (its API accepts none today); default none (DESIGN.md): no `aud` claim.
    /// Relying parties that check `aud` (AWS, Google, Entra, the broker's own token
    /// endpoint) refuse such a token, so it is of no use elsewhere.
    pub audience: Option<String>,
    /// Base URL; default `https://{registry_url}`.
    pub quay_endpoint: Option<String>,
    pub timeout_ms: u64,
    pub max_attempts: u64,
}

/// Quay's robot short-name grammar: `[a-z][a-z0-9_]{1,254}`.
fn robot_name(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=255).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

impl QuayConfig {
    /// The robot for (project, access): `.` and `-` become `_`, which robot names need —
    /// so `my-app` and `my_app` share robots (docs/quay.md: avoid such pairs).
    pub fn robot(&self, project: &ProjectName, access: Access) -> String {
        let project = project.as_str().replace(['.', '-'], "_");
        self.robot
            .replace("{project}", &project)
            .replace("{access}", access.as_str())
    }
}

impl ProviderConfig for QuayConfig {
    const KIND: &'static str = "quay";

    fn parse(map: Map<String, Value>) -> Result<Self, ConfigError> {
        let mut f = Fields::new("registry", map);
        let config = QuayConfig {
            registry_url: f.string("registry_url")?,
            organization: f.string("organization")?,
            robot: f.string_or("robot", "{project}_{access}")?,
            repository: f.string_or("repository", "{project}")?,
            audience: f.opt_string("audience")?,
            quay_endpoint: f.opt_string("quay_endpoint")?,
            timeout_ms: f.u64_or("timeout_ms", 5_000)?,
            max_attempts: f.u64_or("max_attempts", 3)?,
        };
        f.finish()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate_location(&self.registry_url, "")?;
        if !robot_name(&self.organization.replace('-', "_")) {
            return Err(ConfigError::key(
                "registry.organization",
                "must be a Quay organization name",
            ));
        }
        validate_template("registry.robot", &self.robot, true)?;
        // One robot per access level: without `{access}` a pull would get a push robot.
        if !self.robot.contains("{access}") {
            return Err(ConfigError::key(
                "registry.robot",
                "must contain `{access}` (one robot per access level)",
            ));
        }
        let longest = self.robot(
            &ProjectName::parse(&"p".repeat(crate::project::MAX_PROJECT_LEN)).expect("valid"),
            Access::Push,
        );
        if !robot_name(&longest) {
            return Err(ConfigError::key(
                "registry.robot",
                "must give a robot name of lower-case letters, digits and `_`, starting with a letter",
            ));
        }
        validate_template("registry.repository", &self.repository, true)?;
        if let Some(url) = &self.quay_endpoint {
            base_url("registry.quay_endpoint", url)?;
        }
        crate::upstream::validate_limits(self.timeout_ms, self.max_attempts)?;
        Ok(())
    }

    fn build(
        &self,
        services: &Services,
        _secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        // Quay: ALLOWED_ALGORITHMS = RS256, RS384 — the first RSA key signs.
        let oidc = federation::issuer(services, KeyFamily::Rsa, Self::KIND)?;
        let endpoint = match &self.quay_endpoint {
            Some(url) => base_url("registry.quay_endpoint", url)?,
            None => format!("https://{}", self.registry_url),
        };
        Ok(Box::new(QuayProvider {
            url: format!("{endpoint}/oauth2/federation/robot/token"),
            audience: self.audience.clone().unwrap_or_default(),
            config: self.clone(),
            oidc,
        }))
    }
}

impl From<QuayConfig> for RegistryConfig {
    fn from(config: QuayConfig) -> Self {
        RegistryConfig::Quay(config)
    }
}

/// `GET /oauth2/federation/robot/token` with Basic `{robot account}:{broker token}`.
pub fn federation_request(
    url: &str,
    robot_account: &str,
    token: &SecretString,
    timeout_ms: u64,
) -> OutboundRequest {
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{robot_account}:{}", token.expose()));
    let mut request = OutboundRequest::get(url);
    request
        .headers
        .push(("authorization".into(), format!("Basic {basic}")));
    request.timeout_ms = timeout_ms;
    request
}

/// `{"token": "<Quay JWT>"}`.
pub fn parse_federation_response(body: &[u8]) -> Option<SecretString> {
    json_token(body, "token")
}

/// Quay's `{"error": "<sentence>"}` is free text that may quote the request: only the
/// status is used (401/403 → denied).
fn quay_error(_response: &OutboundResponse) -> ErrorAnswer {
    ErrorAnswer::default()
}

pub struct QuayProvider {
    config: QuayConfig,
    oidc: Rc<TokenIssuer>,
    url: String,
    audience: String,
}

#[async_trait(?Send)]
impl RegistryProvider for QuayProvider {
    fn kind(&self) -> &'static str {
        QuayConfig::KIND
    }

    fn worst_case_ms(&self) -> u64 {
        let c = &self.config;
        crate::upstream::worst_case_ms(1, c.max_attempts, c.timeout_ms)
    }

    async fn credentials(
        &self,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<RegistryCredentials, ProviderError> {
        let c = &self.config;
        let robot = c.robot(request.project, request.access);
        if !robot_name(&robot) {
            return Err(ProviderError::NotConfigured(
                "this project's robot name is not valid for Quay (a project starting with a digit needs a `robot` prefix)",
            ));
        }
        let robot_account = format!("{}+{robot}", c.organization);
        let token = federation::plain_subject_token(
            &self.oidc,
            &self.audience,
            KeyFamily::Rsa,
            request,
            ctx.now_ms,
        )
        .await;
        let outbound = federation_request(&self.url, &robot_account, &token, c.timeout_ms);
        let (response, attempts) =
            call(FEDERATION, c.max_attempts, quay_error, outbound, ctx, trace).await?;
        let password = parse_federation_response(&response.body)
            .ok_or_else(|| UpstreamError::unusable(FEDERATION, attempts, "UnreadableResponse"))?;
        let expires_at_ms = jwt_expiry_ms(password.expose())
            .ok_or_else(|| UpstreamError::unusable(FEDERATION, attempts, "NoExpiry"))?;
        let expires_at = reported_expiry(expires_at_ms, ctx.clock.now_ms(), FEDERATION)?;
        Ok(RegistryCredentials {
            registry_url: c.registry_url.clone(),
            username: robot_account,
            password,
            expires_at_ms: Some(expires_at),
            repository: format!(
                "{}/{}",
                c.organization,
                fill(&c.repository, request.project, request.access)
            ),
            auth_method: AuthMethod::LoginCredentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robot_names() {
        let c = QuayConfig {
            registry_url: "quay.io".into(),
            organization: "rise".into(),
            robot: "{project}_{access}".into(),
            repository: "{project}".into(),
            audience: None,
            quay_endpoint: None,
            timeout_ms: 5000,
            max_attempts: 3,
        };
        assert!(c.validate().is_ok());
        let p = ProjectName::parse("my-app.web").unwrap();
        assert_eq!(c.robot(&p, Access::Pull), "my_app_web_pull");
        for bad in ["{project}", "ci-{project}_{access}", "{access}"] {
            let c = QuayConfig {
                robot: bad.into(),
                ..c.clone()
            };
            assert!(c.validate().is_err(), "{bad}");
        }
        // A project starting with a digit needs a prefix.
        let c = QuayConfig {
            robot: "r_{project}_{access}".into(),
            ..c
        };
        assert!(c.validate().is_ok());
        assert!(!robot_name("9app_push") && robot_name("r_9app_push"));
    }
}
