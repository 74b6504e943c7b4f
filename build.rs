//! Embeds every `config/*.toml` into the binary (the worker has no file system), parsed
//! here and stored as JSON, so the Wasm carries no TOML parser and a syntax error fails
//! the build instead of a request. `config/local.toml` is gitignored and embedded only
//! when present at build time.
use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new("config");
    println!("cargo:rerun-if-changed=config");
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("config/ directory")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_owned)
        })
        .collect();
    names.sort();
    let mut out = String::from(
        "/// Embedded config layers: (name, JSON converted from config/<name>.toml).\n\
         pub const FILES: &[(&str, &str)] = &[\n",
    );
    for name in &names {
        println!("cargo:rerun-if-changed=config/{name}.toml");
        let path = dir.join(format!("{name}.toml"));
        let text = fs::read_to_string(&path).expect("readable config file");
        let value: serde_json::Value = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid TOML: {e}", path.display()));
        out.push_str(&format!("    ({name:?}, {:?}),\n", value.to_string()));
    }
    out.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("embedded_config.rs");
    fs::write(dest, out).unwrap();
}
