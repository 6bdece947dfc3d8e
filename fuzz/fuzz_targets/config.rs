//! The configuration loader on arbitrary YAML and environment values: it never panics; it
//! either loads a configuration or names what is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_quota::config::{load, Sources};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // YAML, then after a NUL byte `NAME=value` lines for the environment.
    let (yaml, env) = text.split_once('\0').unwrap_or((&text, ""));
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("fuzz.yaml");
    if std::fs::write(&path, yaml).is_err() {
        return;
    }
    let mut vars: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    vars.push(("ADMIN_PASSWORD".into(), "fuzz".into()));
    let sources = Sources {
        cli_config: Some(path),
        dotenv: Vec::new(),
        env: vars,
        workdir: dir.path().to_owned(),
    };
    match load(&sources) {
        Ok(config) => {
            let _ = config.redacted_lines();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
