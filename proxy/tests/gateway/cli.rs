use serde_json::Value;

use crate::support::{fake, Gateway, Options, BIN};

/// `keys create` prints the key alone on its last line; `keys list --json` lists it without
/// the plaintext or the hash; activate/deactivate flip it; `migrate` is idempotent.
#[tokio::test]
async fn keys_and_migrate() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let (code, out, _) = gw.cli(&[
        "keys",
        "create",
        "--name",
        "demo",
        "--daily-requests",
        "5",
        "--models",
        "llama3,qwen3",
        "--expires",
        "2099-01-31",
    ]);
    assert_eq!(code, 0);
    let key = out.lines().last().unwrap();
    assert!(key.starts_with("sk-") && key.len() >= 35, "{out}");
    let (code, json, _) = gw.cli(&["keys", "list", "--json"]);
    assert_eq!(code, 0);
    assert!(!json.contains(key) && !json.contains(&quota_engine::keys::hash_key(key)));
    let list: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(list[0]["name"], "demo");
    assert_eq!(list[0]["daily_request_limit"], 5);
    assert_eq!(
        list[0]["allowed_models"],
        serde_json::json!(["llama3", "qwen3"])
    );
    assert_eq!(list[0]["expires_at"], "2099-02-01T00:00:00+01:00");
    assert_eq!(list[0]["usage"]["day"]["requests"], 0);
    let (code, table, _) = gw.cli(&["keys", "list"]);
    assert_eq!(code, 0);
    assert!(table.contains("demo") && !table.contains(key));
    assert_eq!(gw.cli(&["keys", "deactivate", "1"]).0, 0);
    assert_eq!(gw.cli(&["keys", "activate", "1"]).0, 0);
    let (code, _, err) = gw.cli(&["keys", "activate", "99"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no API key with id 99"));
    assert_eq!(gw.cli(&["migrate"]).0, 0);
    assert_eq!(gw.cli(&["migrate"]).0, 0);
    let (_, json, _) = gw.cli(&["keys", "list", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&json)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Usage and configuration errors exit 2 with one line on stderr; serve needs a password.
#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["serve"], &[("DATABASE_URL", "sqlite://x.db")]);
    assert_eq!((code, err.trim()), (2, "error: ADMIN_PASSWORD is required"));
    let (code, _, err) = run(&["config", "check"], &[("APP_TZ", "Europe/Berlinn")]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("APP_TZ") && err.contains("Europe/Berlinn"),
        "{err}"
    );
    let (code, _, _) = run(&["keys", "frobnicate"], &[]);
    assert_eq!(code, 2);
    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("serve") && out.contains("keys"));
    let (code, out, _) = run(
        &["config", "check"],
        &[
            ("ADMIN_PASSWORD", "s3cret"),
            ("DATABASE_URL", "postgres://u:dbpass@h/d"),
        ],
    );
    assert_eq!(code, 0);
    assert!(!out.contains("s3cret") && !out.contains("dbpass"), "{out}");
    assert!(out.contains("configuration is valid"));
    let (code, _, err) = run(
        &["keys", "create", "--name", "x", "--expires", "tomorrow"],
        &[("DATABASE_URL", "sqlite://k.db")],
    );
    assert_eq!(code, 2, "{err}");
}
