// Post step: log the tool out of the registry the main step logged in to.
const { execFileSync } = require("node:child_process");

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
