//! Google Artifact Registry, keyless: the broker's own token → Google STS token exchange
//! (Workload Identity Federation) → an access token for one Artifact Registry repository,
//! optionally through one service account per project (`generateAccessToken`).
//!
//! Scope lives on Google's side: the repository's IAM policy grants
//! `roles/artifactregistry.writer` to `principal://…/subject/project:P:push` and
//! `…reader` to `…:pull` (docs/google-artifact-registry.md). The broker's part is to
//! present exactly that subject, for the project it authorized. Request shapes follow
//! Google's own client library (`google.oauth2.sts.Client.exchange_token`,
//! `impersonated_credentials`), which a test compares field by field (PROVIDERS.md §1).

use std::rc::Rc;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::federation;
use super::{
    fill, validate_location, validate_template, AuthMethod, CredentialRequest, ProviderConfig,
    ProviderError, RegistryConfig, RegistryCredentials, RegistryProvider, Services, UpstreamTrace,
};
use crate::config_support::{base_url, in_range, Fields};
use crate::error::ConfigError;
use crate::oidc::TokenIssuer;
use crate::runtime::{Context, OutboundRequest, OutboundResponse};
use crate::secrets::{SecretString, Secrets};
use crate::signer::KeyFamily;
use crate::upstream::call;
use crate::upstream::{
    form_post, json_error, json_request, reported_expiry, ErrorAnswer, IssuedToken, Step,
    UpstreamError,
};

const STS: Step = Step::new("Google", "STS token exchange");
const GENERATE_ACCESS_TOKEN: Step = Step::new("Google", "iamcredentials generateAccessToken");

/// RFC 8693 values, as google-auth sends them (`external_account.py`).
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const REQUESTED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The one scope Artifact Registry honours for docker clients.
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// `google.subject` may be at most 127 bytes (IAM attribute mapping limits).
pub const MAX_GOOGLE_SUBJECT_BYTES: usize = 127;
/// Google's answers carry no request id header we could quote; the error code is logged.
const RESPONSE_HEADERS: &[&str] = &[];

/// `[registry]` with `type = "gar"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarConfig {
    /// `us-central1`, `europe-west1`, or a multi-region (`us`, `europe`, `asia`).
    pub location: String,
    /// The Google Cloud project holding the repositories.
    pub gcp_project: String,
    /// `projects/N/locations/global/workloadIdentityPools/P/providers/X`.
    pub workload_identity_provider: String,
    /// The Artifact Registry repository holding the project's images (template,
    /// default `{project}`).
    pub repository: String,
    /// STS `audience` and the minted token's `aud`; default
    /// `//iam.googleapis.com/{workload_identity_provider}`.
    pub audience: Option<String>,
    /// Impersonate this service account (template), instead of direct access.
    pub service_account: Option<String>,
    /// Lifetime of an impersonated token (600–3600 s, default 3600).
    pub token_seconds: u64,
    /// Default `{location}-docker.pkg.dev`.
    pub registry_url: Option<String>,
    /// Base URL; default `https://sts.googleapis.com`.
    pub sts_endpoint: Option<String>,
    /// Base URL; default `https://iamcredentials.googleapis.com`.
    pub iamcredentials_endpoint: Option<String>,
    /// Per attempt (default 5000 ms), and attempts per call (default 3).
    pub timeout_ms: u64,
    pub max_attempts: u64,
}

/// Lower-case letters, digits and `-`, starting with a letter, ending with a letter or
/// digit: Google's grammar for locations, project ids, pool/provider and repository ids.
fn google_id(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn valid_provider_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    matches!(
        parts.as_slice(),
        ["projects", number, "locations", "global", "workloadIdentityPools", pool, "providers", provider]
            if !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
                && google_id(pool, 32)
                && google_id(provider, 32)
    )
}

impl GarConfig {
    fn registry_host(&self) -> String {
        self.registry_url
            .clone()
            .unwrap_or_else(|| format!("{}-docker.pkg.dev", self.location))
    }
}

impl ProviderConfig for GarConfig {
    const KIND: &'static str = "gar";

    fn parse(map: Map<String, Value>) -> Result<Self, ConfigError> {
        let mut f = Fields::new("registry", map);
        let config = GarConfig {
            location: f.string("location")?,
            gcp_project: f.string("gcp_project")?,
            workload_identity_provider: f.string("workload_identity_provider")?,
            repository: f.string_or("repository", "{project}")?,
            audience: f.opt_string("audience")?,
            service_account: f.opt_string("service_account")?,
            token_seconds: f.u64_or("token_seconds", 3600)?,
            registry_url: f.opt_string("registry_url")?,
            sts_endpoint: f.opt_string("sts_endpoint")?,
            iamcredentials_endpoint: f.opt_string("iamcredentials_endpoint")?,
            timeout_ms: f.u64_or("timeout_ms", 5_000)?,
            max_attempts: f.u64_or("max_attempts", 3)?,
        };
        f.finish()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !google_id(&self.location, 63) {
            return Err(ConfigError::key(
                "registry.location",
                "must be a Google Cloud location like `us-central1` or `us`",
            ));
        }
        if !google_id(&self.gcp_project, 30) || self.gcp_project.len() < 6 {
            return Err(ConfigError::key(
                "registry.gcp_project",
                "must be a Google Cloud project id (6–30 lower-case letters, digits, `-`)",
            ));
        }
        if !valid_provider_name(&self.workload_identity_provider) {
            return Err(ConfigError::key(
                "registry.workload_identity_provider",
                "must be `projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`",
            ));
        }
        validate_template("registry.repository", &self.repository, true)?;
        if let Some(sa) = &self.service_account {
            validate_template("registry.service_account", sa, true)?;
            let ok = sa.split_once('@').is_some_and(|(name, domain)| {
                !name.is_empty()
                    && domain.contains('.')
                    && sa.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.@{}_".contains(&b)
                    })
            });
            if !ok {
                return Err(ConfigError::key(
                    "registry.service_account",
                    "must be a service account e-mail, e.g. `push-{project}@my-proj.iam.gserviceaccount.com`",
                ));
            }
        }
        if let Some(audience) = &self.audience {
            if audience.is_empty() || audience.len() > 256 {
                return Err(ConfigError::key(
                    "registry.audience",
                    "must be 1–256 characters (one of the provider's allowed audiences)",
                ));
            }
        }
        in_range("registry.token_seconds", self.token_seconds, 600..=3600)?;
        validate_location(&self.registry_host(), "")?;
        if let Some(url) = &self.sts_endpoint {
            base_url("registry.sts_endpoint", url)?;
        }
        if let Some(url) = &self.iamcredentials_endpoint {
            base_url("registry.iamcredentials_endpoint", url)?;
        }
        crate::upstream::validate_limits(self.timeout_ms, self.max_attempts)?;
        Ok(())
    }

    fn build(
        &self,
        services: &Services,
        _secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        // Google verifies RS256 and ES256: the first key signs.
        let oidc = federation::issuer(services, KeyFamily::Any, Self::KIND)?;
        let endpoint = |key: &str, url: &Option<String>, default: &str| match url {
            Some(url) => base_url(key, url),
            None => Ok(default.to_owned()),
        };
        Ok(Box::new(GarProvider {
            audience: self.audience.clone().unwrap_or_else(|| {
                format!("//iam.googleapis.com/{}", self.workload_identity_provider)
            }),
            sts_endpoint: endpoint(
                "registry.sts_endpoint",
                &self.sts_endpoint,
                "https://sts.googleapis.com",
            )?,
            iamcredentials_endpoint: endpoint(
                "registry.iamcredentials_endpoint",
                &self.iamcredentials_endpoint,
                "https://iamcredentials.googleapis.com",
            )?,
            registry_url: self.registry_host(),
            config: self.clone(),
            oidc,
        }))
    }
}

impl From<GarConfig> for RegistryConfig {
    fn from(config: GarConfig) -> Self {
        RegistryConfig::Gar(config)
    }
}

/// The STS token exchange (`POST {base}/v1/token`): the form google-auth's
/// `sts.Client.exchange_token` sends, fields in its order, empty ones dropped, and no
/// `Authorization` header (Google: "using the header can cause the request to fail").
pub fn sts_request(
    sts_endpoint: &str,
    audience: &str,
    subject_token: &SecretString,
    timeout_ms: u64,
) -> OutboundRequest {
    form_post(
        format!("{sts_endpoint}/v1/token"),
        &[
            ("grant_type", GRANT_TYPE),
            ("audience", audience),
            ("scope", CLOUD_PLATFORM),
            ("requested_token_type", REQUESTED_TOKEN_TYPE),
            ("subject_token", subject_token.expose()),
            ("subject_token_type", SUBJECT_TOKEN_TYPE),
        ],
        timeout_ms,
        RESPONSE_HEADERS,
    )
}

/// The STS answer (`GoogleIdentityStsV1ExchangeTokenResponse`): `access_token` and
/// `expires_in` (seconds; a number, or a string as google-auth tolerates).
pub fn parse_sts_response(body: &[u8], now_ms: u64) -> Option<IssuedToken> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let token = value.get("access_token")?.as_str()?;
    let expires_in = match value.get("expires_in")? {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    bearer(token, now_ms.checked_add(expires_in.checked_mul(1000)?)?)
}

/// `generateAccessToken` for `service_account`, authorized by the STS token: the JSON
/// body google-auth's `impersonated_credentials` sends (`scope`, `lifetime` as `"Ns"`;
/// no delegates).
pub fn generate_access_token_request(
    iamcredentials_endpoint: &str,
    service_account: &str,
    sts_token: &SecretString,
    lifetime_seconds: u64,
    timeout_ms: u64,
) -> OutboundRequest {
    let body = json!({"scope": [CLOUD_PLATFORM], "lifetime": format!("{lifetime_seconds}s")});
    let bearer = format!("Bearer {}", sts_token.expose());
    json_request(
        "POST",
        format!(
            "{iamcredentials_endpoint}/v1/projects/-/serviceAccounts/{service_account}:generateAccessToken"
        ),
        Some(("authorization", &bearer)),
        Some(&body),
        timeout_ms,
        RESPONSE_HEADERS,
    )
}

/// `{"accessToken", "expireTime"}` (RFC 3339, e.g. `2026-11-30T16:00:00Z`).
pub fn parse_generate_access_token_response(body: &[u8]) -> Option<IssuedToken> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let token = value.get("accessToken")?.as_str()?;
    let expire = chrono::DateTime::parse_from_rfc3339(value.get("expireTime")?.as_str()?).ok()?;
    bearer(token, u64::try_from(expire.timestamp_millis()).ok()?)
}

/// A token fit to be a registry password: non-empty, printable ASCII, no spaces (it is
/// sent back in a `Basic` header and a JSON string).
fn bearer(token: &str, expires_at_ms: u64) -> Option<IssuedToken> {
    let printable = !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic());
    printable.then(|| IssuedToken {
        token: SecretString::new(token.to_owned()),
        expires_at_ms,
    })
}

fn google_error(response: &OutboundResponse) -> ErrorAnswer {
    // Google sends no request id header to quote.
    json_error(response, None)
}

/// Issues Artifact Registry credentials for one repository (see the module docs).
pub struct GarProvider {
    config: GarConfig,
    oidc: Rc<TokenIssuer>,
    audience: String,
    sts_endpoint: String,
    iamcredentials_endpoint: String,
    registry_url: String,
}

#[async_trait(?Send)]
impl RegistryProvider for GarProvider {
    fn kind(&self) -> &'static str {
        GarConfig::KIND
    }

    fn worst_case_ms(&self) -> u64 {
        let c = &self.config;
        crate::upstream::worst_case_ms(
            1 + u64::from(self.config.service_account.is_some()),
            c.max_attempts,
            c.timeout_ms,
        )
    }

    async fn credentials(
        &self,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<RegistryCredentials, ProviderError> {
        let c = &self.config;
        let repository = fill(&c.repository, request.project, request.access);
        if !google_id(&repository, 63) {
            return Err(ProviderError::NotConfigured(
                "this project's name is not a valid Artifact Registry repository id (`repository` template)",
            ));
        }
        // Always true with today's project grammar (≤ 63 bytes); checked so a longer
        // grammar or prefix can never mint a subject Google would truncate or refuse.
        if federation::subject(request).len() > MAX_GOOGLE_SUBJECT_BYTES {
            return Err(ProviderError::NotConfigured(
                "the token subject would exceed Google's 127-byte google.subject limit",
            ));
        }
        let subject_token = federation::plain_subject_token(
            &self.oidc,
            &self.audience,
            KeyFamily::Any,
            request,
            ctx.now_ms,
        )
        .await;
        let sts = sts_request(
            &self.sts_endpoint,
            &self.audience,
            &subject_token,
            c.timeout_ms,
        );
        let (response, attempts) = call(STS, c.max_attempts, google_error, sts, ctx, trace).await?;
        let mut token = parse_sts_response(&response.body, ctx.clock.now_ms())
            .ok_or_else(|| UpstreamError::unusable(STS, attempts, "UnreadableResponse"))?;
        let mut last_step = STS;
        if let Some(template) = &c.service_account {
            let account = fill(template, request.project, request.access);
            let generate = generate_access_token_request(
                &self.iamcredentials_endpoint,
                &account,
                &token.token,
                c.token_seconds,
                c.timeout_ms,
            );
            let (response, attempts) = call(
                GENERATE_ACCESS_TOKEN,
                c.max_attempts,
                google_error,
                generate,
                ctx,
                trace,
            )
            .await?;
            token = parse_generate_access_token_response(&response.body).ok_or_else(|| {
                UpstreamError::unusable(GENERATE_ACCESS_TOKEN, attempts, "UnreadableResponse")
            })?;
            last_step = GENERATE_ACCESS_TOKEN;
        }
        let expires_at = reported_expiry(token.expires_at_ms, ctx.clock.now_ms(), last_step)?;
        Ok(RegistryCredentials {
            registry_url: self.registry_url.clone(),
            // Google's documented username for an access token (any name works).
            username: "oauth2accesstoken".into(),
            password: token.token,
            expires_at_ms: Some(expires_at),
            repository: format!("{}/{}/{}", c.gcp_project, repository, request.project),
            auth_method: AuthMethod::LoginCredentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_names() {
        assert!(valid_provider_name(
            "projects/123456/locations/global/workloadIdentityPools/rise-pool/providers/broker"
        ));
        for bad in [
            "projects/abc/locations/global/workloadIdentityPools/rise-pool/providers/broker",
            "projects/1/locations/us/workloadIdentityPools/rise-pool/providers/broker",
            "projects/1/locations/global/workloadIdentityPools/Rise/providers/broker",
            "projects/1/locations/global/workloadIdentityPools/rise-pool/providers/",
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
        ] {
            assert!(!valid_provider_name(bad), "{bad}");
        }
        assert!(google_id("my-app", 63) && !google_id("my.app", 63) && !google_id("1app", 63));
    }

    #[test]
    fn parsers_take_what_google_sends_and_refuse_the_rest() {
        let sts = |body: &str| parse_sts_response(body.as_bytes(), 1_000_000);
        let ok = sts(r#"{"access_token":"ya29.x","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3599}"#).unwrap();
        assert_eq!(ok.expires_at_ms, 1_000_000 + 3_599_000);
        assert_eq!(ok.token.expose(), "ya29.x");
        assert_eq!(
            sts(r#"{"access_token":"t","expires_in":"60"}"#)
                .unwrap()
                .expires_at_ms,
            1_060_000
        );
        for bad in [
            r#"{"expires_in":60}"#,
            r#"{"access_token":"","expires_in":60}"#,
            r#"{"access_token":"a b","expires_in":60}"#,
            r#"{"access_token":"t"}"#,
            r#"{"access_token":"t","expires_in":-1}"#,
            r#"{"access_token":"t","expires_in":1e300}"#,
            "[]",
        ] {
            assert!(sts(bad).is_none(), "{bad}");
        }
        let gat = parse_generate_access_token_response(
            br#"{"accessToken":"ya29.sa","expireTime":"2026-11-30T16:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(gat.expires_at_ms, 1_796_054_400_000);
        assert!(parse_generate_access_token_response(
            br#"{"accessToken":"t","expireTime":"tomorrow"}"#
        )
        .is_none());
    }
}
