// GitHub OIDC token (needs `permissions: id-token: write`) → scripts/registry-login.sh.
// The OIDC token and the password are masked before anything could print them.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const input = (name) => (process.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] || "").trim();

async function main() {
  const url = process.env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const bearer = process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!url || !bearer) throw new Error("no GitHub OIDC token: the job needs `permissions: id-token: write`");
  const audience = input("audience") || "rise";
  const response = await fetch(`${url}&audience=${encodeURIComponent(audience)}`, {
    headers: { Authorization: `bearer ${bearer}` },
  });
  if (!response.ok) throw new Error(`GitHub OIDC token request failed: HTTP ${response.status}`);
  const { value: token } = await response.json();
  console.log(`::add-mask::${token}`);
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

main().catch((err) => {
  console.log(`::error::${err.message}`);
  process.exit(1);
});
