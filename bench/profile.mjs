// CPU profile of a running workerd through its inspector (Chrome DevTools protocol):
// samples while a load runs, then prints self time per function (top N) and per group
// (the Rust crate or JS). Wasm functions carry their Rust names when the module keeps its
// name section (RISE_WASM_KEEP_NAMES=1 scripts/build.sh).
//   node profile.mjs <inspector port> <seconds> <load command…>
// Needs Node ≥ 22 (global WebSocket); bench/profile.sh runs it with target/node24.
import { spawn } from "node:child_process";

const [port, seconds, ...load] = process.argv.slice(2);
const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((r) => ws.addEventListener("open", r));
let id = 0;
const pending = new Map();
ws.addEventListener("message", (e) => {
  const msg = JSON.parse(e.data);
  if (pending.has(msg.id)) { pending.get(msg.id)(msg.result); pending.delete(msg.id); }
});
const call = (method, params = {}) => new Promise((r) => {
  pending.set(++id, r);
  ws.send(JSON.stringify({ id, method, params }));
});
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 50 });
await call("Profiler.start");
// The load's output: wrk's request count turns shares of the profile into µs per request.
let loadOut = "";
await new Promise((r) => {
  const child = spawn(load[0], load.slice(1), { stdio: ["ignore", "pipe", "ignore"] });
  child.stdout.on("data", (d) => (loadOut += d));
  child.on("exit", r);
});
const requests = Number(loadOut.match(/(\d+) requests in/)?.[1] ?? 0);
const { profile } = await call("Profiler.stop");
ws.close();
if (process.env.PROFILE_OUT) (await import("node:fs")).writeFileSync(process.env.PROFILE_OUT, JSON.stringify(profile));

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = profile.timeDeltas;
// The first sample's delta runs from Profiler.start, not from the previous sample: it
// would charge the wait before the load to whichever function is sampled first.
profile.samples.forEach((nodeId, i) => {
  if (i === 0) return;
  const f = byId.get(nodeId).callFrame;
  const name = f.functionName || `(anonymous ${f.url.split("/").pop()}:${f.lineNumber})`;
  self.set(name, (self.get(name) ?? 0) + (dt[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
const group = (name) => {
  if (name === "(idle)" || name === "(program)" || name === "(garbage collector)") return name;
  const m = name.match(/^\$?(?:_ZN)?\d*([a-z_][a-z0-9_]*)(?:::|\d)/);
  if (name.includes("::")) return name.replace(/^<+/, "").split("::")[0];
  return m && !name.startsWith("(") ? `wasm:${m[1]}` : "JS/runtime";
};
const groups = new Map();
for (const [name, t] of self) groups.set(group(name), (groups.get(group(name)) ?? 0) + t);
const pct = (t) => `${((100 * t) / total).toFixed(1)} %`;
const busy = total - (self.get("(idle)") ?? 0);
if (requests) console.log(`${requests} requests; JS-thread busy time ${(busy / requests).toFixed(1)} µs/request (profiler on)\n`);
console.log("| group | self time |\n|---|---|");
for (const [g, t] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`| ${g} | ${pct(t)} |`);
console.log("\n| function | self time |\n|---|---|");
for (const [n, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 40))) {
  console.log(`| ${n.slice(0, 140).replace(/\|/g, "\\|")} | ${pct(t)} |`);
}
