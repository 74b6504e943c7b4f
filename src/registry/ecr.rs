//! The ECR provider: scoped push/pull credentials via STS AssumeRole + GetAuthorizationToken.

use std::cell::RefCell;
use std::rc::Rc;

use async_trait::async_trait;

use super::federation;
use super::{
    AuthMethod, CredentialRequest, ProviderConfig, ProviderError, RegistryConfig,
    RegistryCredentials, RegistryProvider, Services, UpstreamTrace,
};
use crate::auth::sanitize_identity;
use crate::aws::ecr::{self as aws_ecr, EcrAuthorization};
use crate::aws::policy::SessionPolicy;
use crate::aws::step::{
    ECR_GET_AUTHORIZATION_TOKEN, STS_ASSUME_ROLE, STS_ASSUME_ROLE_WITH_WEB_IDENTITY, STS_CHAIN,
};
use crate::aws::sts::{self, AssumeRoleRequest, AssumeRoleWithWebIdentityRequest, AssumedRole};
use crate::aws::{sigv4, AwsCredentials, SOURCE_IDENTITY_CLAIM};
use crate::config_support::{in_range, validate_url};
use crate::error::ConfigError;
use crate::oidc::TokenIssuer;
use crate::project::{Access, ProjectName, MAX_PROJECT_LEN};
use crate::runtime::{Context, OutboundRequest, OutboundResponse};
use crate::secrets::{SecretString, Secrets};
use crate::signer::KeyFamily;
use crate::upstream::retry::{self, Call, ErrorParser, RetryPolicy};
use crate::upstream::{
    log_safe, record, reported_expiry, ErrorAnswer, Step, UpstreamError, UpstreamKind,
};

/// Bounds AWS puts on `DurationSeconds` for AssumeRole.
pub const MIN_SESSION_SECONDS: u64 = 900;
pub const MAX_SESSION_SECONDS: u64 = 43_200;
/// Longest ECR repository name.
pub const MAX_REPOSITORY_LEN: usize = 256;

/// Where the broker's own AWS identity comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CredentialSource {
    /// A long-lived IAM user key in the worker secrets `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` signs `sts:AssumeRole`.
    #[default]
    AccessKey,
    /// No AWS secret at all: the broker mints an OIDC token (`[oidc]`) for each issuance
    /// and calls `sts:AssumeRoleWithWebIdentity`, which AWS does not sign.
    WebIdentity,
}

/// `[registry]` with `type = "ecr"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrConfig {
    pub region: String,
    pub account_id: String,
    /// Prepended to the project name: `rise/` → `rise/my-app`. May be empty.
    pub repo_prefix: String,
    /// Optional role assumed first with the base credentials; the push role is then
    /// assumed from that session (role chaining).
    pub role_arn: Option<String>,
    pub push_role_arn: String,
    pub session_duration_seconds: u64,
    /// Send `SourceIdentity` (needs `sts:SetSourceIdentity` in the push role's trust policy).
    pub source_identity: bool,
    pub sts_endpoint: Option<String>,
    pub ecr_endpoint: Option<String>,
    /// `access_key` (default) or `web_identity`.
    pub credentials: CredentialSource,
    /// `aud` of the minted web identity tokens: the IAM OIDC provider's client ID.
    pub web_identity_audience: String,
    /// Per-attempt timeout for each AWS call.
    pub timeout_ms: u64,
    /// Attempts per AWS call, including the first (each one is a subrequest).
    pub max_attempts: u64,
    /// Push sessions may also create (and tag) the project's repository, exact ARN only:
    /// for registries with a `CREATE_ON_PUSH` repository creation template.
    pub create_on_push: bool,
}

impl ProviderConfig for EcrConfig {
    const KIND: &'static str = "ecr";

    fn parse(map: serde_json::Map<String, serde_json::Value>) -> Result<Self, ConfigError> {
        let mut f = crate::config_support::Fields::new("registry", map);
        let credentials = match f.opt_string("credentials")?.as_deref() {
            None | Some("access_key") => CredentialSource::AccessKey,
            Some("web_identity") => CredentialSource::WebIdentity,
            Some(_) => {
                return Err(ConfigError::key(
                    "registry.credentials",
                    "has an unsupported value",
                ))
            }
        };
        let config = EcrConfig {
            region: f.string("region")?,
            account_id: f.string("account_id")?,
            repo_prefix: f.string_or("repo_prefix", "")?,
            role_arn: f.opt_string("role_arn")?,
            push_role_arn: f.string("push_role_arn")?,
            session_duration_seconds: f.u64_or("session_duration_seconds", 3600)?,
            source_identity: f.bool_or("source_identity", true)?,
            sts_endpoint: f.opt_string("sts_endpoint")?,
            ecr_endpoint: f.opt_string("ecr_endpoint")?,
            credentials,
            web_identity_audience: f.string_or("web_identity_audience", "sts.amazonaws.com")?,
            timeout_ms: f.u64_or("timeout_ms", 5_000)?,
            max_attempts: f.u64_or("max_attempts", 3)?,
            create_on_push: f.bool_or("create_on_push", false)?,
        };
        f.finish()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !valid_region(&self.region) {
            return Err(ConfigError::key(
                "registry.region",
                "must look like `us-east-1`",
            ));
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::key("registry.account_id", "must be 12 digits"));
        }
        if !valid_prefix(&self.repo_prefix) {
            return Err(ConfigError::key(
                "registry.repo_prefix",
                "must be lower-case path segments ending in `/` (or empty)",
            ));
        }
        if self.repo_prefix.len() + MAX_PROJECT_LEN > MAX_REPOSITORY_LEN {
            return Err(ConfigError::key(
                "registry.repo_prefix",
                "is too long for ECR repository names",
            ));
        }
        // `{project}` may stand for the project name (one role per project): the ARN must
        // stay valid with the longest project name in its place.
        let longest = self
            .push_role_arn
            .replace(PROJECT_PLACEHOLDER, &"p".repeat(MAX_PROJECT_LEN));
        let role_name_ok = longest
            .rsplit_once(":role/")
            .is_some_and(|(_, path)| path.rsplit('/').next().unwrap_or("").len() <= 64);
        if !valid_role_arn(&longest) || !role_name_ok {
            return Err(ConfigError::key(
                "registry.push_role_arn",
                "must be an IAM role ARN (with `{project}`: the role name after the last `/` ≤ 64 characters for any project; put a prefix in the path)",
            ));
        }
        if let Some(arn) = &self.role_arn {
            if !valid_role_arn(arn) {
                return Err(ConfigError::key(
                    "registry.role_arn",
                    "must be an IAM role ARN",
                ));
            }
        }
        if !(MIN_SESSION_SECONDS..=MAX_SESSION_SECONDS).contains(&self.session_duration_seconds) {
            return Err(ConfigError::key(
                "registry.session_duration_seconds",
                "must be between 900 and 43200",
            ));
        }
        if let Some(url) = &self.sts_endpoint {
            validate_url("registry.sts_endpoint", url)?;
        }
        if let Some(url) = &self.ecr_endpoint {
            validate_url("registry.ecr_endpoint", url)?;
        }
        in_range("registry.timeout_ms", self.timeout_ms, 100..=60_000)?;
        if self.credentials == CredentialSource::WebIdentity {
            // The web identity session is already the least-privileged one; a chained hop
            // would cap it at one hour and need an AWS key again.
            if self.role_arn.is_some() {
                return Err(ConfigError::key(
                    "registry.role_arn",
                    "cannot be combined with credentials = \"web_identity\"",
                ));
            }
            if self.web_identity_audience.is_empty() {
                return Err(ConfigError::key(
                    "registry.web_identity_audience",
                    "must not be empty",
                ));
            }
        }
        in_range("registry.max_attempts", self.max_attempts, 1..=5)?;
        Ok(())
    }

    fn build(
        &self,
        services: &Services,
        secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        let oidc = match self.credentials {
            CredentialSource::AccessKey => {
                // Read again per issuance; checked here so a missing key is a start-up
                // error (and `/health` says so) instead of a surprise on the first push.
                base_credentials(secrets)?;
                None
            }
            CredentialSource::WebIdentity => Some(services.oidc.clone().ok_or_else(|| {
                ConfigError::key(
                    "registry.credentials",
                    "is `web_identity`, which needs the [oidc] section",
                )
            })?),
        };
        Ok(Box::new(EcrProvider::new(self.clone(), oidc)))
    }
}

impl From<EcrConfig> for RegistryConfig {
    fn from(config: EcrConfig) -> Self {
        RegistryConfig::Ecr(config)
    }
}

impl EcrConfig {
    /// `{account}.dkr.ecr.{region}.amazonaws.com` (`.amazonaws.com.cn` in China).
    pub fn registry_host(&self) -> String {
        crate::aws::regional_host(&format!("{}.dkr.ecr", self.account_id), &self.region)
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, …
fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

fn valid_prefix(prefix: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    let Some(body) = prefix.strip_suffix('/') else {
        return false;
    };
    body.split('/')
        .all(|seg| crate::project::ProjectName::parse(seg).is_ok())
}

/// `arn:aws:iam::123456789012:role/path/name` (also `aws-cn`, `aws-us-gov`).
fn valid_role_arn(arn: &str) -> bool {
    let Some(rest) = ["arn:aws:iam::", "arn:aws-cn:iam::", "arn:aws-us-gov:iam::"]
        .iter()
        .find_map(|p| arn.strip_prefix(p))
    else {
        return false;
    };
    let Some((account, name)) = rest.split_once(":role/") else {
        return false;
    };
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
}

/// A cached `role_arn` session is replaced when less than this is left.
const CHAIN_REFRESH_MS: u64 = 5 * 60_000;
/// Answers to the push-role AssumeRole that mean the cached `role_arn` session is no
/// longer good.
const REVOKED_SESSION_CODES: &[&str] = &[
    "AccessDenied",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
];
/// AWS caps a chained role session at one hour.
const CHAINED_MAX_SECONDS: u64 = 3600;

/// Issues ECR credentials scoped to one repository:
/// [base creds →(AssumeRole role_arn, cached)] → AssumeRole push_role_arn with the session
/// policy → GetAuthorizationToken with that session.
pub struct EcrProvider {
    config: EcrConfig,
    sts_endpoint: String,
    ecr_endpoint: String,
    /// The `role_arn` hop, shared by all callers (it carries no caller identity).
    chained: RefCell<Option<AwsCredentials>>,
    /// The token issuer, for `credentials = "web_identity"`.
    oidc: Option<Rc<TokenIssuer>>,
}

impl EcrProvider {
    pub fn new(config: EcrConfig, oidc: Option<Rc<TokenIssuer>>) -> Self {
        let sts_endpoint = config
            .sts_endpoint
            .clone()
            .unwrap_or_else(|| sts::default_endpoint(&config.region));
        let ecr_endpoint = config
            .ecr_endpoint
            .clone()
            .unwrap_or_else(|| aws_ecr::default_endpoint(&config.region));
        EcrProvider {
            config,
            sts_endpoint,
            ecr_endpoint,
            chained: RefCell::new(None),
            oidc,
        }
    }

    fn call<'a>(&self, step: Step, ctx: &Context<'a>, parse_error: ErrorParser) -> Call<'a> {
        Call {
            step,
            policy: RetryPolicy::new(self.config.max_attempts as u32),
            http: ctx.http,
            sleeper: ctx.sleeper,
            parse_error,
        }
    }

    /// The signed STS AssumeRole request, exactly as sent (the botocore comparison signs
    /// through this too).
    pub fn assume_role_outbound(
        &self,
        request: &AssumeRoleRequest,
        with: &AwsCredentials,
        now_ms: u64,
    ) -> Result<OutboundRequest, sigv4::SigningError> {
        let mut outbound = request.to_outbound(&self.sts_endpoint, self.config.timeout_ms);
        sigv4::sign(&mut outbound, with, &self.config.region, "sts", now_ms)?;
        Ok(outbound)
    }

    /// The signed ECR GetAuthorizationToken request, exactly as sent.
    pub fn authorization_token_outbound(
        &self,
        with: &AwsCredentials,
        now_ms: u64,
    ) -> Result<OutboundRequest, sigv4::SigningError> {
        let mut outbound =
            aws_ecr::get_authorization_token_request(&self.ecr_endpoint, self.config.timeout_ms);
        sigv4::sign(&mut outbound, with, &self.config.region, "ecr", now_ms)?;
        Ok(outbound)
    }

    /// The AssumeRoleWithWebIdentity request, exactly as sent (unsigned: the token is the
    /// credential).
    pub fn web_identity_outbound(
        &self,
        request: &AssumeRoleWithWebIdentityRequest,
    ) -> OutboundRequest {
        request.to_outbound(&self.sts_endpoint, self.config.timeout_ms)
    }

    /// One signed AssumeRole call (with retries) and its parsed answer.
    async fn assume_role(
        &self,
        step: Step,
        request: &AssumeRoleRequest,
        with: &AwsCredentials,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<AssumedRole, ProviderError> {
        let build = |now_ms| {
            self.assume_role_outbound(request, with, now_ms)
                .map_err(|_| UpstreamError::new(step, UpstreamKind::Error))
        };
        self.sts_call(step, ctx, trace, build).await
    }

    /// Mints the web identity token for this request and exchanges it for the push session.
    async fn assume_role_with_web_identity(
        &self,
        oidc: &TokenIssuer,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<AssumedRole, ProviderError> {
        let token = web_identity_token(oidc, &self.config, request, ctx.now_ms).await;
        let assume = web_identity_request(
            &self.config,
            &request.caller.audit_identity(),
            request.project,
            request.access,
            token,
        )
        .map_err(ProviderError::Misconfigured)?;
        let build = |_now_ms| Ok(self.web_identity_outbound(&assume));
        self.sts_call(STS_ASSUME_ROLE_WITH_WEB_IDENTITY, ctx, trace, build)
            .await
    }

    /// One STS call (with retries) and its parsed `Credentials`.
    async fn sts_call(
        &self,
        step: Step,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
        build: impl Fn(u64) -> Result<OutboundRequest, UpstreamError>,
    ) -> Result<AssumedRole, ProviderError> {
        let call = self.call(step, ctx, sts_error);
        let result = retry::send(&call, ctx.now_ms, build).await;
        let (response, attempts) = record(trace, result)?;
        let body = String::from_utf8_lossy(&response.body);
        let assumed =
            sts::parse_assume_role_response(&body).map_err(|_| unusable(step, attempts))?;
        trace.request_ids.extend(assumed.request_id.clone());
        Ok(assumed)
    }

    async fn authorization_token(
        &self,
        with: &AwsCredentials,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<EcrAuthorization, ProviderError> {
        let step = ECR_GET_AUTHORIZATION_TOKEN;
        let call = self.call(step, ctx, ecr_error);
        let build = |now_ms| {
            self.authorization_token_outbound(with, now_ms)
                .map_err(|_| UpstreamError::new(step, UpstreamKind::Error))
        };
        let result = retry::send(&call, ctx.now_ms, build).await;
        let (response, attempts) = record(trace, result)?;
        trace
            .request_ids
            .extend(response.header("x-amzn-requestid").map(log_safe));
        aws_ecr::parse_get_authorization_token_response(&response.body)
            .map_err(|_| unusable(step, attempts))
    }

    /// `access_key` mode: [base keys →(AssumeRole role_arn, cached)] → AssumeRole
    /// push_role_arn with the session policy.
    async fn assume_push_role(
        &self,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<AssumedRole, ProviderError> {
        let base = base_credentials(ctx.secrets).map_err(ProviderError::Misconfigured)?;
        let (source, max_seconds) = match &self.config.role_arn {
            Some(arn) => (
                self.chained_session(arn, &base, ctx, trace).await?,
                CHAINED_MAX_SECONDS,
            ),
            None => (base, MAX_SESSION_SECONDS),
        };
        let assume = push_role_request(
            &self.config,
            &request.caller.audit_identity(),
            request.project,
            request.access,
            max_seconds,
        )
        .map_err(ProviderError::Misconfigured)?;
        let result = self
            .assume_role(STS_ASSUME_ROLE, &assume, &source, ctx, trace)
            .await;
        if let Err(ProviderError::Upstream(error)) = &result {
            // The cached `role_arn` session may have been revoked (role session policy,
            // deleted key, "revoke sessions"): never reuse it after AWS refused it.
            if error
                .code
                .as_deref()
                .is_some_and(|code| REVOKED_SESSION_CODES.contains(&code))
            {
                self.chained.borrow_mut().take();
            }
        }
        result
    }

    /// The `role_arn` session: cached until five minutes before it expires.
    async fn chained_session(
        &self,
        role_arn: &str,
        base: &AwsCredentials,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<AwsCredentials, ProviderError> {
        let cached = self.chained.borrow().clone();
        if let Some(creds) = cached.filter(|c| {
            c.expires_at_ms
                .is_some_and(|e| e > ctx.now_ms + CHAIN_REFRESH_MS)
        }) {
            return Ok(creds);
        }
        let assumed = self
            .assume_role(STS_CHAIN, &chain_role_request(role_arn), base, ctx, trace)
            .await?;
        *self.chained.borrow_mut() = Some(assumed.credentials.clone());
        Ok(assumed.credentials)
    }
}

fn unusable(step: Step, attempts: u32) -> ProviderError {
    ProviderError::Upstream(UpstreamError::unusable(
        step,
        attempts,
        "UnreadableResponse",
    ))
}

fn sts_error(response: &OutboundResponse) -> ErrorAnswer {
    match sts::parse_error_response(&String::from_utf8_lossy(&response.body)) {
        Some(e) => ErrorAnswer {
            verdict: Some(crate::aws::verdict(&e.code)),
            code: Some(e.code),
            request_id: e.request_id,
        },
        None => ErrorAnswer {
            request_id: response.header("x-amzn-requestid").map(log_safe),
            ..ErrorAnswer::default()
        },
    }
}

fn ecr_error(response: &OutboundResponse) -> ErrorAnswer {
    let code = aws_ecr::parse_error_code(&response.body);
    ErrorAnswer {
        verdict: code.as_deref().map(crate::aws::verdict),
        code,
        request_id: response.header("x-amzn-requestid").map(log_safe),
    }
}

/// Base credentials from worker secrets; a missing one is named (never its value).
pub fn base_credentials(secrets: &dyn Secrets) -> Result<AwsCredentials, ConfigError> {
    let get = |name: &str| secrets.get(name).filter(|s| !s.expose().is_empty());
    let access_key_id =
        get("AWS_ACCESS_KEY_ID").ok_or_else(|| ConfigError::missing_secret("AWS_ACCESS_KEY_ID"))?;
    let secret_access_key = get("AWS_SECRET_ACCESS_KEY")
        .ok_or_else(|| ConfigError::missing_secret("AWS_SECRET_ACCESS_KEY"))?;
    Ok(AwsCredentials {
        access_key_id: access_key_id.expose().to_owned(),
        secret_access_key,
        session_token: get("AWS_SESSION_TOKEN"),
        expires_at_ms: None,
    })
}

/// The AssumeRole call on `push_role_arn` for one caller, project and access level:
/// session name and source identity from the caller, the scoped session policy, and the
/// configured duration (capped at `max_seconds`, one hour for a chained session).
pub fn push_role_request(
    config: &EcrConfig,
    identity: &str,
    project: &ProjectName,
    access: Access,
    max_seconds: u64,
) -> Result<AssumeRoleRequest, ConfigError> {
    Ok(AssumeRoleRequest {
        role_arn: push_role_arn(config, project),
        role_session_name: role_session_name(identity),
        source_identity: config.source_identity.then(|| identity.to_owned()),
        duration_seconds: config.session_duration_seconds.min(max_seconds),
        policy: Some(session_policy(config, project, access)?),
    })
}

/// The AssumeRoleWithWebIdentity call on `push_role_arn`: the same session name, session
/// policy and duration as [`push_role_request`], with the broker-minted `token`.
pub fn web_identity_request(
    config: &EcrConfig,
    identity: &str,
    project: &ProjectName,
    access: Access,
    token: SecretString,
) -> Result<AssumeRoleWithWebIdentityRequest, ConfigError> {
    Ok(AssumeRoleWithWebIdentityRequest {
        role_arn: push_role_arn(config, project),
        role_session_name: role_session_name(identity),
        web_identity_token: token,
        duration_seconds: config.session_duration_seconds,
        policy: Some(session_policy(config, project, access)?),
    })
}

/// The web identity token for one issuance, on the one federation path
/// (`super::federation`): `aud` = `web_identity_audience`, `sub` =
/// `project:{project}:{access}` (what an IAM trust policy matches with `StringLike` on
/// `{issuer host}:sub`), the caller in the caller claim, and — with `source_identity` —
/// the caller as AWS's source identity claim. AWS verifies RS256 and ES256 alike.
pub async fn web_identity_token(
    oidc: &TokenIssuer,
    config: &EcrConfig,
    request: &CredentialRequest<'_>,
    now_ms: u64,
) -> SecretString {
    let mut extra = serde_json::Map::new();
    if config.source_identity {
        extra.insert(
            SOURCE_IDENTITY_CLAIM.into(),
            request.caller.audit_identity().into(),
        );
    }
    let profile = federation::Profile {
        audience: &config.web_identity_audience,
        family: KeyFamily::Any,
        lifetime_seconds: oidc.token_seconds(),
    };
    federation::subject_token(oidc, profile, request, extra, now_ms).await
}

/// The exact-ARN session policy (DESIGN.md "ECR provider"), size-checked.
fn session_policy(
    config: &EcrConfig,
    project: &ProjectName,
    access: Access,
) -> Result<String, ConfigError> {
    let policy = SessionPolicy::for_repository(
        &config.region,
        &config.account_id,
        &config.repo_prefix,
        project,
        access,
    );
    let policy = if config.create_on_push {
        policy.with_create_on_push(access)
    } else {
        policy
    };
    policy.to_json().map_err(|_| {
        ConfigError::key(
            "registry.repo_prefix",
            "makes the session policy exceed 2048 characters",
        )
    })
}

/// Stands for the project name in `push_role_arn` (a role per project).
pub const PROJECT_PLACEHOLDER: &str = "{project}";

/// `push_role_arn` for `project` (`{project}` replaced by the validated name).
pub fn push_role_arn(config: &EcrConfig, project: &ProjectName) -> String {
    config
        .push_role_arn
        .replace(PROJECT_PLACEHOLDER, project.as_str())
}

/// The first hop of role chaining: `role_arn` with the base credentials, shared by all
/// callers (no caller identity, no session policy), for the longest chained session.
pub fn chain_role_request(role_arn: &str) -> AssumeRoleRequest {
    AssumeRoleRequest {
        role_arn: role_arn.to_owned(),
        role_session_name: "rise-broker".into(),
        source_identity: None,
        duration_seconds: CHAINED_MAX_SECONDS,
        policy: None,
    }
}

/// `RoleSessionName`: `rise-` + the caller's sanitised identity, at most 64 characters.
pub fn role_session_name(identity: &str) -> String {
    sanitize_identity(&format!("rise-{identity}"))
}

#[async_trait(?Send)]
impl RegistryProvider for EcrProvider {
    fn kind(&self) -> &'static str {
        EcrConfig::KIND
    }

    fn worst_case_ms(&self) -> u64 {
        let c = &self.config;
        let calls = if c.role_arn.is_some() { 3 } else { 2 };
        crate::upstream::worst_case_ms(calls, c.max_attempts, c.timeout_ms)
    }

    async fn credentials(
        &self,
        request: &CredentialRequest<'_>,
        ctx: &Context<'_>,
        trace: &mut UpstreamTrace,
    ) -> Result<RegistryCredentials, ProviderError> {
        let c = &self.config;
        let assumed = match &self.oidc {
            Some(oidc) => {
                self.assume_role_with_web_identity(oidc, request, ctx, trace)
                    .await?
            }
            None => self.assume_push_role(request, ctx, trace).await?,
        };
        let auth = self
            .authorization_token(&assumed.credentials, ctx, trace)
            .await?;
        // The token works until the earlier of its own expiry and the session's.
        let session_end = assumed
            .credentials
            .expires_at_ms
            .unwrap_or(auth.expires_at_ms);
        let expires_at = reported_expiry(
            auth.expires_at_ms.min(session_end),
            ctx.clock.now_ms(),
            ECR_GET_AUTHORIZATION_TOKEN,
        )?;
        Ok(RegistryCredentials {
            registry_url: c.registry_host(),
            username: auth.username,
            password: auth.password,
            expires_at_ms: Some(expires_at),
            repository: format!("{}{}", c.repo_prefix, request.project),
            auth_method: AuthMethod::LoginCredentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_arns() {
        for r in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
        ] {
            assert!(valid_region(r), "{r}");
        }
        for r in [
            "us-east",
            "US-EAST-1",
            "us_east_1",
            "",
            "us-east-1a",
            "-east-1",
        ] {
            assert!(!valid_region(r), "{r}");
        }
        assert!(valid_role_arn(
            "arn:aws:iam::123456789012:role/rise-ecr-push"
        ));
        assert!(valid_role_arn(
            "arn:aws:iam::123456789012:role/path/to/role"
        ));
        assert!(!valid_role_arn("arn:aws:iam::123456789012:user/bob"));
        assert!(!valid_role_arn("arn:aws:iam::12345678901:role/x"));
        assert!(!valid_role_arn("arn:aws:iam::123456789012:role/"));
        assert!(!valid_role_arn("arn:aws:iam::123456789012:role/a*"));
        assert!(valid_prefix("") && valid_prefix("rise/") && valid_prefix("a/b/"));
    }

    #[test]
    fn registry_host_per_partition() {
        let config = |region: &str| EcrConfig {
            region: region.into(),
            account_id: "123456789012".into(),
            repo_prefix: String::new(),
            role_arn: None,
            push_role_arn: "arn:aws:iam::123456789012:role/p".into(),
            session_duration_seconds: 3600,
            source_identity: true,
            sts_endpoint: None,
            ecr_endpoint: None,
            timeout_ms: 5000,
            max_attempts: 3,
            credentials: CredentialSource::AccessKey,
            web_identity_audience: "sts.amazonaws.com".into(),
            create_on_push: false,
        };
        assert_eq!(
            config("us-east-1").registry_host(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
        // China is `.amazonaws.com.cn`.
        assert_eq!(
            config("cn-north-1").registry_host(),
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        );
        assert!(!valid_prefix("rise") && !valid_prefix("/") && !valid_prefix("Rise/"));
    }
}
