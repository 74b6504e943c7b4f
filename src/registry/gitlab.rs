//! GitLab's container registry. GitLab federates with no outside issuer (PROVIDERS.md
//! §A3), so the broker holds one secret, `GITLAB_TOKEN` (`api` scope, Maintainer of the
//! projects), and per (project, access) creates a **project deploy token** —
//! `read_registry`, plus `write_registry` for push — expiring after `token_hours`, named
//! with the prefix [`NAME_PREFIX`] so that the sweeper (the scheduled handler) can delete
//! the broker's own expired tokens and never anyone else's (GitLab may treat `expires_at`
//! at day granularity, §A2, so expired tokens are deleted rather than left to lapse).
//!
//! Scope: one GitLab project, every image path under it (§A2, §A5) — docs/gitlab.md
//! recommends one GitLab project per Rise project. The narrower `/jwt/auth` registry
//! token (one image path, 5–15 minutes) is not used: podman and containerd ignore
//! pre-obtained registry tokens, and GitLab answers a denial with 200 and an empty
//! `access` claim (§A1, §A4).

use async_trait::async_trait;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use super::sweep::{self, SweepApi, NAME_PREFIX};
use super::{
    fill, validate_location, validate_template, AuthMethod, CredentialRequest, Fields,
    ProviderConfig, ProviderError, RegistryConfig, RegistryCredentials, RegistryProvider, Services,
    SweepReport, UpstreamTrace,
};
use crate::config_support::{base_url, in_range};
use crate::error::ConfigError;
use crate::project::Access;
use crate::runtime::{Context, OutboundRequest, OutboundResponse};
use crate::secrets::{SecretString, Secrets};
use crate::upstream::retry::ErrorParser;
use crate::upstream::{
    call, json_request, json_token, reported_expiry, ErrorAnswer, Step, UpstreamError, Verdict,
};

const CREATE: Step = Step::new("GitLab", "create deploy token");
const LIST_PROJECTS: Step = Step::new("GitLab", "list projects");
const LIST_TOKENS: Step = Step::new("GitLab", "list deploy tokens");
const DELETE_TOKEN: Step = Step::new("GitLab", "delete deploy token");

/// The secret holding the broker's GitLab token.
pub const TOKEN_SECRET: &str = "GITLAB_TOKEN";

/// Path characters kept as they are; `/` (and everything else) is percent-encoded, as
/// GitLab's API takes a project's full path as `:id`.
const PATH_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// `[registry]` with `type = "gitlab"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabConfig {
    /// GitLab's base URL, e.g. `https://gitlab.com`.
    pub url: String,
    /// The registry host, e.g. `registry.gitlab.com`.
    pub registry_url: String,
    /// The GitLab project holding the project's images (template, default `{project}`).
    pub project_path: String,
    /// Deploy token lifetime (1–24 h, default 1).
    pub token_hours: u64,
    pub timeout_ms: u64,
    pub max_attempts: u64,
}

impl ProviderConfig for GitlabConfig {
    const KIND: &'static str = "gitlab";

    fn parse(map: Map<String, Value>) -> Result<Self, ConfigError> {
        let mut f = Fields::new("registry", map);
        let config = GitlabConfig {
            url: f.string("url")?,
            registry_url: f.string("registry_url")?,
            project_path: f.string_or("project_path", "{project}")?,
            token_hours: f.u64_or("token_hours", 1)?,
            timeout_ms: f.u64_or("timeout_ms", 5_000)?,
            max_attempts: f.u64_or("max_attempts", 3)?,
        };
        f.finish()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        base_url("registry.url", &self.url)?;
        validate_location(&self.registry_url, "")?;
        validate_template("registry.project_path", &self.project_path, true)?;
        let segments_ok = self.project_path.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .replace("{project}", "p")
                    .replace("{access}", "p")
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
        if !segments_ok {
            return Err(ConfigError::key(
                "registry.project_path",
                "must be a GitLab project path: `/`-separated names of letters, digits, `-`, `_`, `.`",
            ));
        }
        in_range("registry.token_hours", self.token_hours, 1..=24)?;
        crate::upstream::validate_limits(self.timeout_ms, self.max_attempts)?;
        Ok(())
    }

    fn build(
        &self,
        _services: &Services,
        secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        // Read again per call; checked here so a missing token stops the broker at start.
        gitlab_token(secrets)?;
        Ok(Box::new(GitlabProvider {
            api: format!("{}/api/v4", base_url("registry.url", &self.url)?),
            config: self.clone(),
        }))
    }
}

impl From<GitlabConfig> for RegistryConfig {
    fn from(config: GitlabConfig) -> Self {
        RegistryConfig::Gitlab(config)
    }
}

fn gitlab_token(secrets: &dyn Secrets) -> Result<SecretString, ConfigError> {
    secrets
        .get(TOKEN_SECRET)
        .filter(|s| !s.expose().trim().is_empty())
        .ok_or_else(|| ConfigError::missing_secret(TOKEN_SECRET))
}

/// A call to GitLab's REST API with the broker's token.
fn api_request(
    method: &'static str,
    url: String,
    token: &SecretString,
    body: Option<&Value>,
    timeout_ms: u64,
    response_headers: &'static [&'static str],
) -> OutboundRequest {
    let auth = Some(("private-token", token.expose()));
    json_request(method, url, auth, body, timeout_ms, response_headers)
}

/// `POST /projects/:id/deploy_tokens` for one (project, access), expiring at
/// `expires_at_s` (seconds since the epoch).
pub fn create_request(
    api: &str,
    project_path: &str,
    name: &str,
    access: Access,
    expires_at_s: i64,
    token: &SecretString,
    timeout_ms: u64,
) -> OutboundRequest {
    let scopes: &[&str] = match access {
        Access::Push => &["read_registry", "write_registry"],
        Access::Pull => &["read_registry"],
    };
    let expires_at = chrono::DateTime::from_timestamp(expires_at_s, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = json!({"name": name, "scopes": scopes, "expires_at": expires_at});
    let id = utf8_percent_encode(project_path, PATH_ENCODE);
    api_request(
        "POST",
        format!("{api}/projects/{id}/deploy_tokens"),
        token,
        Some(&body),
        timeout_ms,
        &[],
    )
}

/// A created deploy token: its `id`, `username` and `token`, and `expires_at` (ms) when
/// GitLab states one.
pub fn parse_create_response(body: &[u8]) -> Option<(u64, String, SecretString, Option<u64>)> {
    let token = json_token(body, "token")?;
    let value: Value = serde_json::from_slice(body).ok()?;
    let username = value.get("username")?.as_str()?;
    let username_ok = !username.is_empty()
        && username.len() <= 255
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if !username_ok {
        return None;
    }
    let expires_at_ms = match value.get("expires_at") {
        Some(Value::String(at)) => Some(parse_time(at)?),
        _ => None,
    };
    let id = value.get("id")?.as_u64()?;
    Some((id, username.to_owned(), token, expires_at_ms))
}

/// RFC 3339, or a bare date (midnight UTC), as GitLab writes `expires_at`.
fn parse_time(at: &str) -> Option<u64> {
    let ms = match chrono::DateTime::parse_from_rfc3339(at) {
        Ok(t) => t.timestamp_millis(),
        // `YYYY-MM-DD` read by hand: chrono's format-string parser would add ~6 KB of Wasm.
        Err(_) => {
            let mut parts = at.splitn(3, '-').map(|p| p.parse::<u32>().ok());
            let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
            if at.len() != 10 {
                return None;
            }
            chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?
                .and_hms_opt(0, 0, 0)?
                .and_utc()
                .timestamp_millis()
        }
    };
    u64::try_from(ms).ok()
}

/// The deploy tokens of a list answer that the sweeper deletes: named with
/// [`NAME_PREFIX`], and expired (GitLab's `expired`, `revoked`, `expires_at` past, or
/// the expiry in the name past).
pub fn expired_own_tokens(body: &[u8], now_ms: u64) -> Option<Vec<u64>> {
    let list: Vec<Value> = serde_json::from_slice(body).ok()?;
    Some(
        list.iter()
            .filter(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with(NAME_PREFIX))
            })
            .filter(|t| {
                t.get("expired").and_then(Value::as_bool) == Some(true)
                    || t.get("revoked").and_then(Value::as_bool) == Some(true)
                    || t.get("expires_at")
                        .and_then(Value::as_str)
                        .and_then(parse_time)
                        .is_some_and(|at| at <= now_ms)
                    // The expiry the broker asked for, in the name: GitLab may keep
                    // `expires_at` to the day (PROVIDERS.md §A2).
                    || t.get("name")
                        .and_then(Value::as_str)
                        .and_then(sweep::name_expiry_ms)
                        .is_some_and(|at| at <= now_ms)
            })
            .filter_map(|t| t.get("id").and_then(Value::as_u64))
            .collect(),
    )
}

/// GitLab's errors are `{"message": …}` free text (it may quote the request): only the
/// status counts — 401/403 denied, 404 an error (no such project), 429 throttled.
fn gitlab_error(response: &OutboundResponse) -> ErrorAnswer {
    ErrorAnswer {
        verdict: (response.status == 404).then_some(Verdict::Other),
        ..ErrorAnswer::default()
    }
}

pub struct GitlabProvider {
    config: GitlabConfig,
    /// `{url}/api/v4`.
    api: String,
}

/// The sweep's view of GitLab's API: projects the token maintains, their deploy tokens.
struct GitlabSweep<'a> {
    api: &'a str,
    token: SecretString,
    timeout_ms: u64,
}

impl SweepApi for GitlabSweep<'_> {
    fn steps(&self) -> [Step; 3] {
        [LIST_PROJECTS, LIST_TOKENS, DELETE_TOKEN]
    }

    fn parse_error(&self) -> ErrorParser {
        gitlab_error
    }

    fn containers(&self, page: u32) -> OutboundRequest {
        let url = format!(
            "{}/projects?min_access_level=40&simple=true&per_page=100&page={page}",
            self.api
        );
        api_request(
            "GET",
            url,
            &self.token,
            None,
            self.timeout_ms,
            &["x-total-pages"],
        )
    }

    fn parse_containers(&self, response: &OutboundResponse) -> Option<(Vec<u64>, Option<u32>)> {
        let list: Vec<Value> = serde_json::from_slice(&response.body).ok()?;
        let ids = list
            .iter()
            .filter_map(|p| p.get("id").and_then(Value::as_u64))
            .collect();
        // GitLab omits it past 10,000 items: then the first page only, rotated.
        let total = response
            .header("x-total-pages")
            .and_then(|n| n.trim().parse().ok());
        Some((ids, total))
    }

    fn credentials(&self, project: u64) -> OutboundRequest {
        let url = format!("{}/projects/{project}/deploy_tokens?per_page=100", self.api);
        api_request("GET", url, &self.token, None, self.timeout_ms, &[])
    }

    fn expired_own(&self, body: &[u8], now_ms: u64) -> Option<Vec<u64>> {
        expired_own_tokens(body, now_ms)
    }

    fn delete(&self, project: u64, token: u64) -> OutboundRequest {
        let url = format!("{}/projects/{project}/deploy_tokens/{token}", self.api);
        api_request("DELETE", url, &self.token, None, self.timeout_ms, &[])
    }
}

#[async_trait(?Send)]
impl RegistryProvider for GitlabProvider {
    fn kind(&self) -> &'static str {
        GitlabConfig::KIND
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
        let token = gitlab_token(ctx.secrets).map_err(ProviderError::Misconfigured)?;
        let project_path = fill(&c.project_path, request.project, request.access);
        let requested_s = ctx.now_ms / 1000 + c.token_hours * 3600;
        let name = sweep::minted_name(request, requested_s);
        let create = create_request(
            &self.api,
            &project_path,
            &name,
            request.access,
            requested_s as i64,
            &token,
            c.timeout_ms,
        );
        let (response, attempts) =
            call(CREATE, c.max_attempts, gitlab_error, create, ctx, trace).await?;
        let (id, username, password, stated_ms) = parse_create_response(&response.body)
            .ok_or_else(|| UpstreamError::unusable(CREATE, attempts, "UnreadableResponse"))?;
        let Some(stated_ms) = stated_ms else {
            // GitLab made a token that never expires (it ignored `expires_at`): never
            // hand that out; delete it now (the sweeper deletes it later if this fails).
            let path = utf8_percent_encode(&project_path, PATH_ENCODE);
            let url = format!("{}/projects/{path}/deploy_tokens/{id}", self.api);
            let delete = api_request("DELETE", url, &token, None, c.timeout_ms, &[]);
            let _ = call(DELETE_TOKEN, 1, gitlab_error, delete, ctx, trace).await;
            return Err(UpstreamError::unusable(CREATE, attempts, "NoExpiry").into());
        };
        // The earlier of what was asked and what GitLab says: a day-granular `expires_at`
        // must never make the broker report more life than it asked for.
        let expires_at_ms = stated_ms.min(requested_s * 1000);
        let expires_at = reported_expiry(expires_at_ms, ctx.clock.now_ms(), CREATE)?;
        Ok(RegistryCredentials {
            registry_url: c.registry_url.clone(),
            username,
            password,
            expires_at_ms: Some(expires_at),
            repository: project_path,
            auth_method: AuthMethod::LoginCredentials,
        })
    }

    async fn sweep(&self, ctx: &Context<'_>) -> Option<Result<SweepReport, ProviderError>> {
        let token = match gitlab_token(ctx.secrets) {
            Ok(token) => token,
            Err(e) => return Some(Err(ProviderError::Misconfigured(e))),
        };
        let api = GitlabSweep {
            api: &self.api,
            token,
            timeout_ms: self.config.timeout_ms,
        };
        Some(sweep::sweep(&api, ctx).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweeper_picks_only_its_own_expired_tokens() {
        let now = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let list = json!([
            {"id": 1, "name": "rise-broker-my-app-push-0a1b2c3d", "expires_at": "2025-12-31T23:00:00.000Z", "expired": false, "revoked": false},
            {"id": 2, "name": "rise-broker-my-app-pull-0a1b2c3d", "expires_at": "2026-01-01T01:00:00.000Z", "expired": false, "revoked": false},
            {"id": 3, "name": "someone-else", "expires_at": "2025-01-01T00:00:00.000Z", "expired": true, "revoked": false},
            {"id": 4, "name": "rise-broker-x-push-1", "expires_at": null, "expired": false, "revoked": true},
            {"id": 5, "name": "rise-broker-x-push-2", "expires_at": "2026-01-01", "expired": false, "revoked": false},
            {"id": 6, "name": "rise-broker-x-push-3", "expires_at": null, "expired": false, "revoked": false},
        ]);
        assert_eq!(
            expired_own_tokens(list.to_string().as_bytes(), now),
            Some(vec![1, 4, 5])
        );
        assert_eq!(expired_own_tokens(b"{}", now), None);
    }

    #[test]
    fn created_tokens_are_read_strictly() {
        let ok = parse_create_response(
            br#"{"id":7,"name":"rise-broker-a-push-1","username":"gitlab+deploy-token-7","expires_at":"2026-01-01T01:00:00.000Z","token":"gldt-abc","revoked":false,"expired":false,"scopes":["read_registry","write_registry"]}"#,
        )
        .unwrap();
        assert_eq!(ok.0, 7);
        assert_eq!(ok.1, "gitlab+deploy-token-7");
        assert_eq!(ok.2.expose(), "gldt-abc");
        assert_eq!(ok.3, Some(1_767_229_200_000));
        assert!(parse_create_response(br#"{"username":"u"}"#).is_none());
        assert!(parse_create_response(br#"{"username":"a b","token":"t"}"#).is_none());
        assert_eq!(
            parse_create_response(br#"{"id":1,"username":"u","token":"t","expires_at":null}"#)
                .unwrap()
                .3,
            None
        );
    }

    #[test]
    fn project_paths_are_encoded_as_gitlab_ids() {
        let token = SecretString::new("glpat-x".to_owned());
        let r = create_request(
            "https://gitlab.example.com/api/v4",
            "rise-group/my.app",
            "rise-broker-my.app-pull-00",
            Access::Pull,
            1_767_229_200,
            &token,
            5000,
        );
        assert_eq!(
            r.url,
            "https://gitlab.example.com/api/v4/projects/rise-group%2Fmy.app/deploy_tokens"
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"name": "rise-broker-my.app-pull-00", "scopes": ["read_registry"],
                   "expires_at": "2026-01-01T01:00:00Z"})
        );
    }
}
