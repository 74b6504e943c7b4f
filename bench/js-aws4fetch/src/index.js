// Baseline: the same endpoint as the Rust broker, written the way a Workers user would by
// hand — aws4fetch for SigV4, jose for the JWT, a Map as per-isolate cache. Same config
// (worker vars/secrets), same responses. Used by bench/run.sh only.
import { AwsClient } from "aws4fetch";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, errors } from "jose";

const PROJECT = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const cache = new Map();
let secretKey;
let jwks;

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
const fail = (status, code, error, headers) => json(status, { error, code }, headers);
const challenge = (d) => ({ "www-authenticate": `Bearer realm="rise", error="invalid_token", error_description="${d}"` });

function tag(xml, name) {
  const m = xml.match(new RegExp(`<${name}>([^<]*)</${name}>`));
  return m ? m[1].replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'") : undefined;
}

// BENCH_STRICT=true: what the broker must do on every upstream call (DESIGN: timeouts are
// retried and answered 504; no redirect is followed) — a deadline per call (the broker's
// default `registry.timeout_ms`) and redirects not followed. Off by default, as written
// for session 1's comparison.
const guard = (env) =>
  env.BENCH_STRICT === "true" ? { signal: AbortSignal.timeout(5000), redirect: "manual" } : {};

async function issue(env, project, access, sub) {
  const region = env.RISE_REGISTRY__REGION, account = env.RISE_REGISTRY__ACCOUNT_ID;
  const prefix = env.RISE_REGISTRY__REPO_PREFIX || "";
  const repo = `${prefix}${project}`;
  const actions = access === "pull"
    ? ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    : ["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
       "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"];
  const policy = JSON.stringify({ Version: "2012-10-17", Statement: [
    { Sid: "GetAuthorizationToken", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: "*" },
    { Sid: "ProjectRepository", Effect: "Allow", Action: actions, Resource: `arn:aws:ecr:${region}:${account}:repository/${repo}` },
  ] });
  const identity = (sub || "").replace(/[^\w+=,.@-]/g, "-").slice(0, 64).padEnd(2, "-");
  const base = new AwsClient({ accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
                               sessionToken: env.AWS_SESSION_TOKEN, service: "sts", region });
  const stsResp = await base.fetch(env.RISE_REGISTRY__STS_ENDPOINT || `https://sts.${region}.amazonaws.com/`, {
    method: "POST", ...guard(env),
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: new URLSearchParams({ Action: "AssumeRole", Version: "2011-06-15", RoleArn: env.RISE_REGISTRY__PUSH_ROLE_ARN,
      RoleSessionName: `rise-${identity}`.slice(0, 64), DurationSeconds: "3600", Policy: policy, SourceIdentity: identity }).toString(),
  });
  const xml = await stsResp.text();
  if (!stsResp.ok) return fail(502, "upstream_error", "AWS call sts:AssumeRole (push_role_arn) failed");
  const session = new AwsClient({ accessKeyId: tag(xml, "AccessKeyId"), secretAccessKey: tag(xml, "SecretAccessKey"),
                                  sessionToken: tag(xml, "SessionToken"), service: "ecr", region });
  const sessionEnd = Date.parse(tag(xml, "Expiration"));
  const ecrResp = await session.fetch(env.RISE_REGISTRY__ECR_ENDPOINT || `https://api.ecr.${region}.amazonaws.com/`, {
    method: "POST", ...guard(env),
    headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken" },
    body: "{}",
  });
  if (!ecrResp.ok) return fail(502, "upstream_error", "AWS call ecr:GetAuthorizationToken failed");
  const data = (await ecrResp.json()).authorizationData[0];
  const decoded = atob(data.authorizationToken);
  const colon = decoded.indexOf(":");
  const expiresAt = Math.min(data.expiresAt * 1000, sessionEnd);
  return {
    registry_url: `${account}.dkr.ecr.${region}.amazonaws.com`, username: decoded.slice(0, colon),
    password: decoded.slice(colon + 1), repository: repo, issuedAt: Date.now(), expiresAt: expiresAt - 60_000,
  };
}

function render(c, now) {
  return json(200, {
    credentials: { registry_url: c.registry_url, username: c.username, password: c.password,
                   expires_in: Math.floor((c.expiresAt - now) / 1000) },
    repository: c.repository, image: `${c.registry_url}/${c.repository}`, auth_method: "login_credentials",
  });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname !== "/health" && url.pathname !== "/registry/credentials") return fail(404, "not_found", "no such endpoint");
    if (request.method !== "GET") return fail(405, "method_not_allowed", "method not allowed; use GET", { allow: "GET" });
    if (url.pathname === "/health") return json(200, { status: "ok", provider: "ecr", version: "baseline" });
    const projects = url.searchParams.getAll("project");
    if (projects.length === 0 || projects[0] === "") return fail(400, "missing_project", "query parameter `project` is required");
    const project = projects[0];
    if (projects.length > 1 || project.length > 63 || !PROJECT.test(project)) return fail(400, "invalid_project", "invalid project name");
    const access = url.searchParams.get("access") ?? "push";
    if (access !== "push" && access !== "pull") return fail(400, "invalid_access", "query parameter `access` must be `push` or `pull`");
    const auth = request.headers.get("authorization") || "";
    const m = auth.match(/^bearer\s+(\S+)$/i);
    if (!m) return fail(401, "missing_token", "an Authorization: Bearer token is required", challenge("bearer token required"));
    secretKey ??= Uint8Array.from(atob(env.RISE_JWT_SECRET), (c) => c.charCodeAt(0));
    // A second issuer with RS256/ES256 keys (BENCH_JWKS), like the broker's JWKS issuers.
    jwks ??= env.BENCH_JWKS ? createLocalJWKSet(JSON.parse(env.BENCH_JWKS)) : null;
    let claims;
    try {
      const hs = decodeProtectedHeader(m[1]).alg === "HS256";
      const options = hs ? { issuer: "rise-dev", algorithms: ["HS256"] } : { issuer: "bench-jwks", algorithms: ["RS256", "ES256"] };
      ({ payload: claims } = await jwtVerify(m[1], hs ? secretKey : jwks, { ...options, audience: "rise", clockTolerance: 60, requiredClaims: ["exp"] }));
    } catch (e) {
      if (e instanceof errors.JWTExpired) return fail(401, "token_expired", "the bearer token has expired", challenge("token expired"));
      return fail(401, "invalid_token", "the bearer token is not valid", challenge("invalid token"));
    }
    if (!Array.isArray(claims.projects) || !claims.projects.includes(project)) return fail(403, "forbidden", "not allowed to access this project");
    const cacheOn = env.RISE_CACHE__ENABLED !== "false";
    const key = `${project}:${access}`;
    const now = Date.now();
    const hit = cacheOn && cache.get(key);
    if (hit && hit.expiresAt - now >= 300_000 && (hit.expiresAt - now) * 2 >= hit.expiresAt - hit.issuedAt) {
      // Optional per-request audit line like the Rust broker's (BENCH_AUDIT_LOG=true), to
      // see what console.log costs under wrangler dev.
      if (env.BENCH_AUDIT_LOG === "true") {
        console.log(JSON.stringify({ event: "registry_credentials", project, access, provider: "ecr", sub: claims.sub,
          iss: claims.iss, grant: "projects_claim", cache: "hit", outcome: "issued", expires_in: Math.floor((hit.expiresAt - now) / 1000) }));
      }
      return render(hit, now);
    }
    const fresh = await issue(env, project, access, claims.sub);
    if (fresh instanceof Response) return fresh;
    if (cacheOn) cache.set(key, fresh);
    // The same audit line on a miss (the broker writes one for every request).
    if (env.BENCH_AUDIT_LOG === "true") {
      console.log(JSON.stringify({ event: "registry_credentials", project, access, provider: "ecr", sub: claims.sub,
        iss: claims.iss, grant: "projects_claim", cache: cacheOn ? "miss" : "off", outcome: "issued",
        subrequests: 2, expires_in: Math.floor((fresh.expiresAt - now) / 1000) }));
    }
    return render(fresh, now);
  },
};
