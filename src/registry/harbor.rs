//! Harbor 2.x. Harbor federates with no outside issuer (PROVIDERS.md §5e), so the broker
//! holds one Harbor identity (`HARBOR_USERNAME`/`HARBOR_PASSWORD`: a robot allowed to
//! create, list and delete robots, Harbor ≥ 2.12, or an admin) and per (project, access)
//! creates a **project-level robot** — pull, plus push for push — living `robot_days`,
//! named with [`NAME_PREFIX`] so that the sweeper deletes the broker's own robots once
//! expired and never anyone else's.
//!
//! Scope: Harbor scopes robots per Harbor **project**, not per repository (§5c): every
//! repository in `harbor_project` — docs/harbor.md recommends one Harbor project per
//! Rise project (the default). Lifetime: whole days (§5d); the broker reuses a robot for
//! about half its life (the credential cache) and deletes it once expired.

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::sweep::{self, SweepApi, NAME_PREFIX};
use super::{
    fill, validate_location, validate_template, AuthMethod, CredentialRequest, Fields,
    ProviderConfig, ProviderError, RegistryConfig, RegistryCredentials, RegistryProvider, Services,
    SweepReport, UpstreamTrace,
};
use crate::config_support::{base_url, in_range};
use crate::error::ConfigError;
use crate::project::{Access, ProjectName};
use crate::runtime::{Context, OutboundRequest, OutboundResponse};
use crate::secrets::{SecretString, Secrets};
use crate::upstream::retry::ErrorParser;
use crate::upstream::{
    call, json_request, json_token, reported_expiry, ErrorAnswer, Step, UpstreamError, Verdict,
};

const CREATE: Step = Step::new("Harbor", "create robot");
const LIST_PROJECTS: Step = Step::new("Harbor", "list projects");
const LIST_ROBOTS: Step = Step::new("Harbor", "list robots");
const DELETE_ROBOT: Step = Step::new("Harbor", "delete robot");

pub const USERNAME_SECRET: &str = "HARBOR_USERNAME";
pub const PASSWORD_SECRET: &str = "HARBOR_PASSWORD";

/// `[registry]` with `type = "harbor"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarborConfig {
    /// Harbor's base URL, e.g. `https://harbor.example.com`.
    pub url: String,
    /// The registry host (default: the host of `url`).
    pub registry_url: String,
    /// The Harbor project (template, default `{project}`).
    pub harbor_project: String,
    /// Repository inside it (template, default `{project}`).
    pub repository: String,
    /// Robot lifetime in whole days (1–7, default 1).
    pub robot_days: u64,
    pub timeout_ms: u64,
    pub max_attempts: u64,
}

impl ProviderConfig for HarborConfig {
    const KIND: &'static str = "harbor";

    fn parse(map: Map<String, Value>) -> Result<Self, ConfigError> {
        let mut f = Fields::new("registry", map);
        let url = f.string("url")?;
        let host = url.split_once("://").map_or("", |(_, h)| h);
        let config = HarborConfig {
            registry_url: f.string_or("registry_url", host.trim_end_matches('/'))?,
            url,
            harbor_project: f.string_or("harbor_project", "{project}")?,
            repository: f.string_or("repository", "{project}")?,
            robot_days: f.u64_or("robot_days", 1)?,
            timeout_ms: f.u64_or("timeout_ms", 5_000)?,
            max_attempts: f.u64_or("max_attempts", 3)?,
        };
        f.finish()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        base_url("registry.url", &self.url)?;
        validate_location(&self.registry_url, "")?;
        validate_template("registry.harbor_project", &self.harbor_project, false)?;
        validate_template("registry.repository", &self.repository, true)?;
        // Harbor project names are one lower-case segment.
        let literal = self
            .harbor_project
            .replace("{project}", "")
            .replace("{access}", "");
        if !literal
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            || self.harbor_project.is_empty()
        {
            return Err(ConfigError::key(
                "registry.harbor_project",
                "must give a Harbor project name: lower-case letters, digits, `.`, `_`, `-`",
            ));
        }
        in_range("registry.robot_days", self.robot_days, 1..=7)?;
        crate::upstream::validate_limits(self.timeout_ms, self.max_attempts)?;
        Ok(())
    }

    fn build(
        &self,
        _services: &Services,
        secrets: &dyn Secrets,
    ) -> Result<Box<dyn RegistryProvider>, ConfigError> {
        // Read again per call; checked here so a missing one stops the broker at start.
        basic_auth(secrets)?;
        Ok(Box::new(HarborProvider {
            api: format!("{}/api/v2.0", base_url("registry.url", &self.url)?),
            config: self.clone(),
        }))
    }
}

impl From<HarborConfig> for RegistryConfig {
    fn from(config: HarborConfig) -> Self {
        RegistryConfig::Harbor(config)
    }
}

/// `Basic base64(username:password)` from the two secrets; a missing one is named.
fn basic_auth(secrets: &dyn Secrets) -> Result<SecretString, ConfigError> {
    let get = |name: &str| {
        secrets
            .get(name)
            .filter(|s| !s.expose().is_empty())
            .ok_or_else(|| ConfigError::missing_secret(name))
    };
    let (user, password) = (get(USERNAME_SECRET)?, get(PASSWORD_SECRET)?);
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        user.expose(),
        password.expose()
    ));
    Ok(SecretString::new(format!("Basic {encoded}")))
}

fn api_request(
    method: &'static str,
    url: String,
    auth: &SecretString,
    body: Option<&Value>,
    timeout_ms: u64,
    response_headers: &'static [&'static str],
) -> OutboundRequest {
    let auth = Some(("authorization", auth.expose()));
    json_request(method, url, auth, body, timeout_ms, response_headers)
}

/// The `RobotCreate` body (Harbor's swagger) for one (project, access).
pub fn robot_create_body(
    name: &str,
    harbor_project: &str,
    project: &ProjectName,
    access: Access,
    days: u64,
) -> Value {
    let mut actions = vec![json!({"resource": "repository", "action": "pull"})];
    if access == Access::Push {
        actions.push(json!({"resource": "repository", "action": "push"}));
    }
    json!({
        "name": name,
        "description": format!("rise registry broker: {project} {}", access.as_str()),
        "level": "project",
        "duration": days,
        "disable": false,
        "permissions": [{"kind": "project", "namespace": harbor_project, "access": actions}],
    })
}

/// `RobotCreated`: the full robot name (`robot$…`), its secret, and `expires_at` (ms).
pub fn parse_created(body: &[u8]) -> Option<(String, SecretString, u64)> {
    let secret = json_token(body, "secret")?;
    let value: Value = serde_json::from_slice(body).ok()?;
    let name = value.get("name")?.as_str()?;
    let name_ok =
        !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic());
    let expires_s = value.get("expires_at")?.as_u64()?;
    name_ok.then(|| (name.to_owned(), secret, expires_s.saturating_mul(1000)))
}

/// The robots of a list answer the sweeper deletes: the broker's (`+rise-broker-` in the
/// name) whose `expires_at` (seconds; -1 = never) has passed.
pub fn expired_own_robots(body: &[u8], now_ms: u64) -> Option<Vec<u64>> {
    let list: Vec<Value> = serde_json::from_slice(body).ok()?;
    let marker = format!("+{NAME_PREFIX}");
    Some(
        list.iter()
            .filter(|r| {
                r.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.contains(&marker))
            })
            .filter(|r| {
                r.get("expires_at")
                    .and_then(Value::as_i64)
                    // Exact to the second (unlike GitLab's): the name's expiry is not
                    // needed, and -1 (never) is never deleted.
                    .is_some_and(|at| at >= 0 && (at as u64).saturating_mul(1000) <= now_ms)
            })
            .filter_map(|r| r.get("id").and_then(Value::as_u64))
            .collect(),
    )
}

/// Harbor's `{"errors": [{"code", "message"}]}` message is free text: only the status
/// counts (401/403 denied, 404 an error).
fn harbor_error(response: &OutboundResponse) -> ErrorAnswer {
    ErrorAnswer {
        verdict: (response.status == 404).then_some(Verdict::Other),
        ..ErrorAnswer::default()
    }
}

pub struct HarborProvider {
    config: HarborConfig,
    /// `{url}/api/v2.0`.
    api: String,
}

/// The sweep's view of Harbor's API: projects, their robots.
struct HarborSweep<'a> {
    api: &'a str,
    auth: SecretString,
    timeout_ms: u64,
}

impl SweepApi for HarborSweep<'_> {
    fn steps(&self) -> [Step; 3] {
        [LIST_PROJECTS, LIST_ROBOTS, DELETE_ROBOT]
    }

    fn parse_error(&self) -> ErrorParser {
        harbor_error
    }

    fn containers(&self, page: u32) -> OutboundRequest {
        let url = format!("{}/projects?page={page}&page_size=100", self.api);
        api_request(
            "GET",
            url,
            &self.auth,
            None,
            self.timeout_ms,
            &["x-total-count"],
        )
    }

    fn parse_containers(&self, response: &OutboundResponse) -> Option<(Vec<u64>, Option<u32>)> {
        let list: Vec<Value> = serde_json::from_slice(&response.body).ok()?;
        let ids = list
            .iter()
            .filter_map(|p| p.get("project_id").and_then(Value::as_u64))
            .collect();
        let total = response
            .header("x-total-count")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .map(|count| count.div_ceil(100));
        Some((ids, total))
    }

    fn credentials(&self, project: u64) -> OutboundRequest {
        // Project robots are listed only with `Level=project` and the project's id.
        let url = format!(
            "{}/robots?q=Level%3Dproject%2CProjectID%3D{project}&page_size=100",
            self.api
        );
        api_request("GET", url, &self.auth, None, self.timeout_ms, &[])
    }

    fn expired_own(&self, body: &[u8], now_ms: u64) -> Option<Vec<u64>> {
        expired_own_robots(body, now_ms)
    }

    fn delete(&self, _project: u64, robot: u64) -> OutboundRequest {
        let url = format!("{}/robots/{robot}", self.api);
        api_request("DELETE", url, &self.auth, None, self.timeout_ms, &[])
    }
}

#[async_trait(?Send)]
impl RegistryProvider for HarborProvider {
    fn kind(&self) -> &'static str {
        HarborConfig::KIND
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
        let auth = basic_auth(ctx.secrets).map_err(ProviderError::Misconfigured)?;
        let harbor_project = fill(&c.harbor_project, request.project, request.access);
        let name = sweep::minted_name(request, ctx.now_ms / 1000 + c.robot_days * 86_400);
        let body = robot_create_body(
            &name,
            &harbor_project,
            request.project,
            request.access,
            c.robot_days,
        );
        let create = api_request(
            "POST",
            format!("{}/robots", self.api),
            &auth,
            Some(&body),
            c.timeout_ms,
            &[],
        );
        let (response, attempts) =
            call(CREATE, c.max_attempts, harbor_error, create, ctx, trace).await?;
        let (username, password, expires_at_ms) = parse_created(&response.body)
            .ok_or_else(|| UpstreamError::unusable(CREATE, attempts, "UnreadableResponse"))?;
        let expires_at = reported_expiry(expires_at_ms, ctx.clock.now_ms(), CREATE)?;
        Ok(RegistryCredentials {
            registry_url: c.registry_url.clone(),
            username,
            password,
            expires_at_ms: Some(expires_at),
            repository: format!(
                "{harbor_project}/{}",
                fill(&c.repository, request.project, request.access)
            ),
            auth_method: AuthMethod::LoginCredentials,
        })
    }

    async fn sweep(&self, ctx: &Context<'_>) -> Option<Result<SweepReport, ProviderError>> {
        let auth = match basic_auth(ctx.secrets) {
            Ok(auth) => auth,
            Err(e) => return Some(Err(ProviderError::Misconfigured(e))),
        };
        let api = HarborSweep {
            api: &self.api,
            auth,
            timeout_ms: self.config.timeout_ms,
        };
        Some(sweep::sweep(&api, ctx).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweeper_picks_only_its_own_expired_robots() {
        let now = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let list = json!([
            {"id": 1, "name": "robot$my-app+rise-broker-my-app-push-aa", "expires_at": 1_767_225_000},
            {"id": 2, "name": "robot$my-app+rise-broker-my-app-pull-bb", "expires_at": 1_767_300_000},
            {"id": 3, "name": "robot$my-app+ci", "expires_at": 1_700_000_000},
            {"id": 4, "name": "robot$my-app+rise-broker-x-push-cc", "expires_at": -1},
        ]);
        assert_eq!(
            expired_own_robots(list.to_string().as_bytes(), now),
            Some(vec![1])
        );
    }

    #[test]
    fn robot_bodies_and_answers() {
        let p = ProjectName::parse("my-app").unwrap();
        let body = robot_create_body("rise-broker-my-app-pull-00", "my-app", &p, Access::Pull, 1);
        assert_eq!(
            body["permissions"][0]["access"],
            json!([{"resource": "repository", "action": "pull"}])
        );
        assert_eq!(body["level"], "project");
        let created = parse_created(
            br#"{"id":5,"name":"robot$my-app+rise-broker-my-app-pull-00","secret":"s3cret","creation_time":"2026-01-01T00:00:00Z","expires_at":1767312000}"#,
        )
        .unwrap();
        assert_eq!(created.0, "robot$my-app+rise-broker-my-app-pull-00");
        assert_eq!(created.2, 1_767_312_000_000);
        assert!(parse_created(br#"{"name":"r","secret":"s"}"#).is_none());
    }
}
