// GitHub OIDC token (needs `permissions: id-token: write`) → the broker, then either
// scripts/registry-login.sh (`<tool> login`, the default) or, with `credential-helper: true`,
// a `credHelpers` entry for the registry host so that docker, podman, skopeo and buildah ask
// `docker-credential-rise` for a fresh credential each time (docs/credential-helper.md).
// The OIDC token and the password are masked before anything could print them.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const input = (name) => (process.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] || "").trim();

async function oidcToken() {
  const url = process.env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const bearer = process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!url || !bearer) throw new Error("no GitHub OIDC token: the job needs `permissions: id-token: write`");
  const audience = input("audience") || "rise";
  const response = await fetch(`${url}&audience=${encodeURIComponent(audience)}`, {
    headers: { Authorization: `Bearer ${bearer}` },
  });
  if (!response.ok) throw new Error(`GitHub OIDC token request failed: HTTP ${response.status}`);
  const { value: token } = await response.json();
  console.log(`::add-mask::${token}`);
  return token;
}

function credentialHelperMode() {
  const value = input("credential-helper").toLowerCase();
  if (value === "" || value === "false") return false;
  if (value === "true") return true;
  throw new Error(`credential-helper must be true or false (got "${value}")`);
}

// Default: the login script, unchanged (`<tool> login` with the password on stdin).
function login(token) {
  const output = execFileSync("bash", [path.join(__dirname, "..", "scripts", "registry-login.sh"),
    input("project"), input("access") || "push"], {
    env: { ...process.env, RISE_BROKER_URL: input("broker-url"), RISE_TOKEN: token, RISE_MASK: "1",
           RISE_LOGIN_TOOL: input("login-tool"), RISE_LOGIN_ARGS: input("login-args") },
    stdio: ["ignore", "pipe", "inherit"],
  }).toString();
  process.stdout.write(output);
  const registry = /^registry=(.*)$/m.exec(output)?.[1] || "";
  // For the post step: which tool to log out of which registry.
  if (process.env.GITHUB_STATE) {
    fs.appendFileSync(process.env.GITHUB_STATE,
      `registry=${registry}\ntool=${input("login-tool")}\nargs=${input("login-args")}\n`);
  }
}

// The files whose `credHelpers` the clients read: docker's config.json, and the
// containers auth file (podman, skopeo, buildah) when its place is known.
function configFiles() {
  const docker = path.join(process.env.DOCKER_CONFIG || path.join(os.homedir(), ".docker"), "config.json");
  const files = [docker];
  if (process.env.REGISTRY_AUTH_FILE) files.push(process.env.REGISTRY_AUTH_FILE);
  else if (process.env.XDG_RUNTIME_DIR) files.push(path.join(process.env.XDG_RUNTIME_DIR, "containers", "auth.json"));
  return files;
}

function readConfig(file) {
  if (!fs.existsSync(file)) return {};
  const text = fs.readFileSync(file, "utf8").trim();
  return text ? JSON.parse(text) : {};
}

function writeConfig(file, config) {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

// With `credential-helper: true`: nothing is logged in and nothing secret is written. One
// broker call tells the registry host (and checks the setup: a refusal fails this step);
// then the `credHelpers` entry and the helper's settings for the later steps.
function requireHelper() {
  try {
    execFileSync("sh", ["-c", "command -v docker-credential-rise"], { stdio: "ignore" });
  } catch {
    throw new Error("credential-helper: true needs docker-credential-rise on PATH: install it in an "
      + "earlier step (cargo install --path credential-helper, see docs/credential-helper.md)");
  }
}

async function credentialHelper(token) {
  const access = input("access") || "push";
  if (access !== "push" && access !== "pull") throw new Error(`access must be push or pull (got "${access}")`);
  const settings = {
    RISE_BROKER_URL: input("broker-url").replace(/\/+$/, ""),
    RISE_PROJECT: input("project"),
    RISE_ACCESS: access,
    RISE_AUDIENCE: input("audience") || "rise",
  };
  for (const [name, value] of Object.entries(settings)) {
    if (!value || /[\r\n]/.test(value)) throw new Error(`${name} is empty or has a line break`);
  }
  const url = `${settings.RISE_BROKER_URL}/registry/credentials?project=${encodeURIComponent(settings.RISE_PROJECT)}`
    + `&access=${access}`;
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  const body = await response.json().catch(() => ({}));
  if (body?.credentials?.password) console.log(`::add-mask::${body.credentials.password}`);
  if (!response.ok) {
    throw new Error(`rise broker refused: ${body.code || `HTTP ${response.status}`}: ${body.error || "no error body"}`);
  }
  const registry = body?.credentials?.registry_url;
  if (!registry) throw new Error("the broker's answer has no credentials.registry_url");
  const files = configFiles();
  for (const file of files) {
    const config = readConfig(file);
    config.credHelpers = { ...(config.credHelpers || {}), [registry]: "rise" };
    writeConfig(file, config);
    console.log(`credential helper: ${file} sends ${registry} to docker-credential-rise`);
  }
  if (process.env.GITHUB_ENV) {
    fs.appendFileSync(process.env.GITHUB_ENV,
      Object.entries(settings).map(([name, value]) => `${name}=${value}\n`).join(""));
  }
  console.log(`registry=${registry}\nimage=${body.image || ""}\nexpires_in=`);
  if (process.env.GITHUB_OUTPUT) {
    fs.appendFileSync(process.env.GITHUB_OUTPUT, `registry=${registry}\nimage=${body.image || ""}\nexpires_in=\n`);
  }
  // For the post step: which entries to take out again.
  if (process.env.GITHUB_STATE) {
    fs.appendFileSync(process.env.GITHUB_STATE,
      `helper_registry=${registry}\nhelper_files=${JSON.stringify(files)}\n`);
  }
}

async function main() {
  const helper = credentialHelperMode();
  if (helper) requireHelper();
  const token = await oidcToken();
  if (helper) await credentialHelper(token);
  else login(token);
}

main().catch((err) => {
  console.log(`::error::${err.message}`);
  process.exit(1);
});
