//! The HTTP surface: routes, query parsing and the order of checks.
//!
//! `GET /registry/credentials?project=P[&access=push|pull]`:
//! query (400) → config health (500) → bearer token (401) → authorization (403) →
//! issuance through [`crate::broker`] (2xx / 5xx). `GET /health` reports status,
//! provider and version. With `[oidc]`, `GET /.well-known/openid-configuration` and
//! `GET /.well-known/jwks.json` publish the broker's issuer metadata and public keys
//! (without it they do not exist: 404). Each credential request yields one [`AuditLine`], assembled
//! here and nowhere else.

use serde_json::json;

use crate::audit::{AuditLine, Decision};
use crate::auth::jwt::bearer_token;
use crate::auth::{authorize, AuthError};
use crate::broker::Broker;
use crate::error::{ConfigError, PublicError, PublicFailure, RequestError};
use crate::http::{ApiRequest, ApiResponse};
use crate::oidc::{self, TokenIssuer};
use crate::project::{Access, ProjectName};
use crate::registry::registry_token::TOKEN_PATH;
use crate::registry::{CredentialRequest, ProviderError};
use crate::runtime::Context;

/// A response plus the audit line to log for it (never holds a secret).
#[derive(Debug)]
pub struct Outcome {
    pub response: ApiResponse,
    pub audit: Option<AuditLine>,
}

impl Outcome {
    /// The audit line as the shell logs it (one JSON object), if there is one.
    pub fn audit_line(&self) -> Option<String> {
        self.audit.as_ref().map(AuditLine::to_json_line)
    }
}

/// Why a credential request was refused, by phase (typed, for the log and the answer).
#[derive(Debug)]
enum Refusal {
    Auth(AuthError),
    Provider(ProviderError),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Auth(e) => e.fmt(f),
            Refusal::Provider(e) => e.fmt(f),
        }
    }
}

impl PublicError for Refusal {
    fn public(&self) -> PublicFailure {
        match self {
            Refusal::Auth(e) => e.public(),
            Refusal::Provider(e) => e.public(),
        }
    }
}

/// The `Allow` value of each route.
const ROUTES: &[(&str, &str)] = &[
    ("/health", "GET"),
    ("/registry/credentials", "GET"),
    (oidc::DISCOVERY_PATH, "GET"),
    (oidc::JWKS_PATH, "GET"),
    (TOKEN_PATH, "GET"),
];

/// How long relying parties may keep the discovery document and key set. Short: a
/// rotation publishes the next key well before it signs, so this only bounds how long a
/// removed key stays trusted by a cache in between.
const OIDC_CACHE_CONTROL: &str = "public, max-age=300";

/// Handles one request. `broker` is the start-up result: an error answers every known
/// route with 500 `misconfigured` (naming the key), never a half-configured service.
/// Every answer carries `x-request-id`; every refusal, and every credential or token
/// request, has an audit line with the same `request_id`.
pub async fn respond(
    broker: Result<&Broker, &ConfigError>,
    request: &ApiRequest,
    ctx: &Context<'_>,
) -> Outcome {
    let mut outcome = route(broker, request, ctx).await;
    let request_id = request
        .request_id
        .as_deref()
        .map(log_safe_id)
        .filter(|id| !id.is_empty())
        .unwrap_or_else(random_request_id);
    outcome.response.set_header("x-request-id", &request_id);
    if let Some(audit) = &mut outcome.audit {
        audit.request_id = request_id;
    }
    outcome
}

async fn route(
    broker: Result<&Broker, &ConfigError>,
    request: &ApiRequest,
    ctx: &Context<'_>,
) -> Outcome {
    let Some((path, allow)) = ROUTES.iter().find(|(p, _)| *p == request.path) else {
        return refused("request", request, &RequestError::NotFound);
    };
    if request.method != "GET" {
        return refused(
            "request",
            request,
            &RequestError::MethodNotAllowed { allow },
        );
    }
    match *path {
        "/registry/credentials" => credentials(broker, request, ctx).await,
        TOKEN_PATH => registry_token(broker, request, ctx).await,
        _ => match broker {
            Ok(b) => match static_route(b, path) {
                Ok(response) => Outcome {
                    response,
                    audit: None,
                },
                Err(e) => refused("request", request, &e),
            },
            Err(e) => refused("request", request, e),
        },
    }
}

/// An error answer and its audit line: what was asked (method, path) and why it was
/// refused. Nothing from the request beyond those two, both reduced to log-safe text.
fn refused<E: PublicError + std::fmt::Display>(
    event: &'static str,
    request: &ApiRequest,
    error: &E,
) -> Outcome {
    let public = error.public();
    let audit = AuditLine {
        event,
        method: Some(log_safe_text(&request.method, 16)),
        path: Some(log_safe_text(&request.path, 200)),
        outcome: Decision::Refused,
        code: Some(public.code.as_str()),
        reason: Some(error.to_string()),
        ..AuditLine::default()
    };
    Outcome {
        response: ApiResponse::error(&public),
        audit: Some(audit),
    }
}

/// Printable ASCII only, at most `max` characters: request text in a log line.
fn log_safe_text(raw: &str, max: usize) -> String {
    raw.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .take(max)
        .collect()
}

/// `cf-ray` (e.g. `8f1c2d3e4a5b6c7d-AMS`) reduced to `[A-Za-z0-9-]`, at most 64.
fn log_safe_id(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

/// 64 random bits, hex: a request id when the runtime gives none (local runs).
fn random_request_id() -> String {
    // No entropy only costs uniqueness of an id, never correctness.
    crate::runtime::random_hex(8).unwrap_or_else(|| "0".repeat(16))
}

/// The routes that need no caller: health and the OIDC documents.
fn static_route(broker: &Broker, path: &str) -> Result<ApiResponse, RequestError> {
    let oidc_document = |document: fn(&TokenIssuer) -> serde_json::Value| match broker.oidc() {
        Some(issuer) => {
            let mut response = ApiResponse::json(200, &document(issuer));
            response.set_header("cache-control", OIDC_CACHE_CONTROL);
            Ok(response)
        }
        None => Err(RequestError::NotFound),
    };
    match path {
        oidc::DISCOVERY_PATH => oidc_document(TokenIssuer::discovery),
        oidc::JWKS_PATH => oidc_document(TokenIssuer::jwks),
        _ => Ok(ApiResponse::json(
            200,
            &json!({
                "status": "ok",
                "provider": broker.provider_kind(),
                "version": env!("CARGO_PKG_VERSION"),
            }),
        )),
    }
}

/// `GET /registry/token`: the Docker token endpoint, for a provider that is a token
/// server (404 otherwise). Every answer is audited.
async fn registry_token(
    broker: Result<&Broker, &ConfigError>,
    request: &ApiRequest,
    ctx: &Context<'_>,
) -> Outcome {
    let broker = match broker {
        Ok(b) => b,
        Err(e) => return refused("registry_token", request, e),
    };
    let Some(server) = broker.token_server() else {
        return refused("registry_token", request, &RequestError::NotFound);
    };
    let mut audit = AuditLine {
        event: "registry_token",
        provider: broker.provider_kind(),
        ..AuditLine::default()
    };
    let answer = server
        .token(
            request.authorization.as_deref(),
            request.query.as_deref(),
            ctx,
        )
        .await;
    let response = match answer {
        Ok(grant) => {
            audit.outcome = Decision::Issued;
            audit.sub = Some(grant.subject);
            audit.project = grant.project.to_string();
            audit.access = grant.access.as_str();
            audit.scopes = grant.granted;
            ApiResponse::json(200, &grant.body)
        }
        Err(refusal) => {
            audit.outcome = Decision::Refused;
            audit.code = Some(refusal.public.code.as_str());
            audit.reason = Some(refusal.reason);
            audit.sub = refusal.subject;
            ApiResponse::error(&refusal.public)
        }
    };
    Outcome {
        response,
        audit: Some(audit),
    }
}

/// `project` and `access` from the query; `project` must appear exactly once.
pub fn parse_query(query: Option<&str>) -> Result<(ProjectName, Access), RequestError> {
    let mut project = None;
    let mut access = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match key.as_ref() {
            "project" => &mut project,
            "access" => &mut access,
            _ => continue, // unknown parameters are ignored, for forward compatibility
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(match key.as_ref() {
                "project" => RequestError::InvalidProject("`project` given more than once"),
                _ => RequestError::InvalidAccess,
            });
        }
    }
    let project = ProjectName::parse(&project.ok_or(RequestError::MissingProject)?)?;
    let access = Access::parse(access.as_deref())?;
    Ok((project, access))
}

async fn credentials(
    broker: Result<&Broker, &ConfigError>,
    request: &ApiRequest,
    ctx: &Context<'_>,
) -> Outcome {
    let (project, access) = match parse_query(request.query.as_deref()) {
        Ok(parsed) => parsed,
        Err(e) => return refused("registry_credentials", request, &e),
    };
    let broker = match broker {
        Ok(b) => b,
        Err(e) => return refused("registry_credentials", request, e),
    };
    let mut audit = AuditLine {
        event: "registry_credentials",
        project: project.to_string(),
        access: access.as_str(),
        provider: broker.provider_kind(),
        ..AuditLine::default()
    };
    let result = issue(broker, request, &project, access, ctx, &mut audit).await;
    let response = match result {
        Ok(body) => {
            audit.outcome = Decision::Issued;
            ApiResponse::json(200, &body)
        }
        Err(refusal) => {
            audit.outcome = Decision::Refused;
            audit.code = Some(refusal.public().code.as_str());
            audit.reason = Some(refusal.to_string());
            ApiResponse::error(&refusal)
        }
    };
    Outcome {
        response,
        audit: Some(audit),
    }
}

/// Token (401) → authorization (403) → issuance, filling in the audit line on the way.
async fn issue(
    broker: &Broker,
    request: &ApiRequest,
    project: &ProjectName,
    access: Access,
    ctx: &Context<'_>,
    audit: &mut AuditLine,
) -> Result<serde_json::Value, Refusal> {
    let verifier = broker.verifier();
    let token = bearer_token(request.authorization.as_deref())
        .ok_or(Refusal::Auth(AuthError::MissingToken))?;
    let caller = verifier
        .verify(token, ctx.now_ms, ctx.http)
        .await
        .map_err(Refusal::Auth)?;
    audit.sub = Some(caller.audit_identity());
    audit.iss = Some(caller.issuer().to_owned());
    let claims_grant_access = verifier
        .issuer_config(caller.issuer())
        .is_some_and(|i| i.grants_by_claims());
    let grant = authorize(&broker.config().auth, &caller, claims_grant_access, project)
        .map_err(Refusal::Auth)?;
    audit.grant = Some(grant.as_str());
    verifier.remember(token, &caller, ctx.now_ms);
    let credential_request = CredentialRequest {
        caller: &caller,
        project,
        access,
    };
    let issued = broker.issue(&credential_request, ctx).await;
    audit.cache = Some(issued.cache);
    audit.shared = issued.shared;
    audit.refresh_error = issued.refresh_error;
    audit.subrequests = Some(issued.trace.subrequests);
    audit.aws_request_ids = issued.trace.request_ids;
    let credentials = issued.result.map_err(Refusal::Provider)?;
    // `expires_in` as of now, after whatever upstream calls this request made.
    let now_ms = ctx.clock.now_ms();
    audit.expires_in = credentials.expires_in(now_ms);
    Ok(credentials.to_json(now_ms))
}
