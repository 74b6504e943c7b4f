// Wasm compile and instantiate time of the shipped module, in V8 (workerd's engine; inside
// workerd the clock does not advance during CPU work, so it cannot time this itself).
// Each sample is a fresh process (V8 caches compiled modules per process). Imports are
// stubs: instantiation runs no Rust code (wasm-bindgen starts the module from its JS glue).
// Needs a Node whose V8 knows the module's exception-handling opcodes (`try_table`):
// Node 24 (bench/workerd.sh fetches it from npm into target/); Node 20 cannot compile it.
//   node bench/wasm-compile.mjs build/index_bg.wasm [samples]
// Prints the medians for V8's default (lazy: functions compile on first call) and with
// --no-wasm-lazy-compilation (every function compiled by Liftoff up front).
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";

const [path, samples = "15"] = process.argv.slice(2);
if (process.env.WASM_COMPILE_ONE) {
  const bytes = readFileSync(path);
  let t = performance.now();
  const module = new WebAssembly.Module(bytes);
  const compile = performance.now() - t;
  const imports = {};
  for (const { module: m, name, kind } of WebAssembly.Module.imports(module)) {
    imports[m] ??= {};
    imports[m][name] = kind === "function" ? () => { throw new Error(`stub ${m}.${name}`); }
      : kind === "table" ? new WebAssembly.Table({ initial: 1024, element: "externref" })
      : kind === "memory" ? new WebAssembly.Memory({ initial: 17 })
      : kind === "tag" ? (WebAssembly.JSTag ?? new WebAssembly.Tag({ parameters: ["externref"] }))
      : new WebAssembly.Global({ value: "i32", mutable: true }, 0);
  }
  t = performance.now();
  new WebAssembly.Instance(module, imports);
  console.log(JSON.stringify([compile, performance.now() - t]));
} else {
  const median = (xs) => +xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(2);
  const out = { bytes: readFileSync(path).length, samples: Number(samples) };
  for (const [mode, flags] of [["lazy", []], ["eager", ["--no-wasm-lazy-compilation"]]]) {
    const runs = Array.from({ length: Number(samples) }, () => {
      const r = spawnSync(process.execPath, [...flags, process.argv[1], path],
        { env: { ...process.env, WASM_COMPILE_ONE: "1" }, encoding: "utf8" });
      if (r.status !== 0) throw new Error(r.stderr);
      return JSON.parse(r.stdout);
    });
    out[`${mode}_compile_ms`] = median(runs.map((r) => r[0]));
    out[`${mode}_instantiate_ms`] = median(runs.map((r) => r[1]));
  }
  console.log(JSON.stringify(out));
}
