//! wasm-bindgen tests in Node (the runner's default). See `wasm_shared/mod.rs`.
#![cfg(target_arch = "wasm32")]

mod wasm_shared;
