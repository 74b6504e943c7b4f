// Post step: log the tool out of the registry the main step logged in to, or (with
// `credential-helper: true`) take the `credHelpers` entries the main step added out again.
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");

const registry = process.env.STATE_registry;
if (registry) {
  let tool = process.env.STATE_tool;
  if (!tool) {
    tool = ["docker", "podman", "skopeo", "buildah"].find((t) => {
      try { execFileSync("sh", ["-c", `command -v ${t}`], { stdio: "ignore" }); return true; } catch { return false; }
    });
  }
  const args = (process.env.STATE_args || "").split(" ").filter(Boolean);
  try {
    execFileSync(tool, ["logout", ...args, registry], { stdio: "inherit" });
    console.log(`logged ${tool} out of ${registry}`);
  } catch (err) {
    console.log(`::warning::logout from ${registry} failed: ${err.message}`);
  }
}

const helperRegistry = process.env.STATE_helper_registry;
if (helperRegistry) {
  let files = [];
  try { files = JSON.parse(process.env.STATE_helper_files || "[]"); } catch { files = []; }
  for (const file of files) {
    try {
      const config = JSON.parse(fs.readFileSync(file, "utf8"));
      if (config.credHelpers && config.credHelpers[helperRegistry] === "rise") {
        delete config.credHelpers[helperRegistry];
        if (Object.keys(config.credHelpers).length === 0) delete config.credHelpers;
        fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
      }
      console.log(`credential helper: ${helperRegistry} taken out of ${file}`);
    } catch (err) {
      console.log(`::warning::could not take ${helperRegistry} out of ${file}: ${err.message}`);
    }
  }
}
