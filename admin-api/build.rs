//! Tells `rust-embed` where the built UI is and makes cargo rebuild admin-api (so the UI is
//! embedded again) when `ui/dist` appears, changes or goes away. A proc macro cannot watch a
//! folder itself.
//!
//! `LLM_QUOTA_UI_DIST` is the canonical path of `ui/dist`, computed from the canonical `ui/`
//! folder, so it is right even before `ui/dist` exists: a debug binary compiled without the
//! UI reads it from there at run time as soon as `npm run build` has written it.
//!
//! Watched: `ui/dist` when it exists; otherwise the `ui/` folder (so a later `npm run build`
//! is noticed); without a `ui/` folder at all (the crate alone), only this file.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let ui = manifest.join("..").join("ui");
    let dist = match ui.canonicalize() {
        Ok(ui) => {
            let dist = ui.join("dist");
            if dist.is_dir() {
                println!("cargo:rerun-if-changed={}", dist.display());
            } else {
                println!("cargo:rerun-if-changed={}", ui.display());
            }
            dist
        }
        Err(_) => PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("no-ui"),
    };
    println!("cargo:rustc-env=LLM_QUOTA_UI_DIST={}", dist.display());
}
