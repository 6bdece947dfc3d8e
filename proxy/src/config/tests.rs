#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with_yaml(yaml: &str) -> (tempfile::TempDir, Sources) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join(DEFAULT_CONFIG_PATH), yaml).unwrap();
    let sources = Sources {
        workdir: dir.path().to_path_buf(),
        ..Default::default()
    };
    (dir, sources)
}

fn empty() -> Sources {
    Sources {
        workdir: PathBuf::from("/nonexistent-llm-quota-test"),
        ..Default::default()
    }
}

/// With nothing configured, the documented defaults apply.
#[test]
fn defaults() {
    let c = load(&empty()).unwrap();
    assert_eq!(c.admin_password, None);
    assert_eq!(c.proxy.address(), "0.0.0.0:8000");
    assert_eq!(c.admin.address(), "127.0.0.1:8001");
    assert_eq!(c.metrics.address(), "127.0.0.1:9464");
    assert_eq!(
        c.database_url,
        DatabaseUrl::Sqlite("data/llm-quota.db".into())
    );
    assert_eq!(c.upstreams[0].url, "http://localhost:11434");
    assert_eq!(c.upstreams[0].authority, "localhost:11434");
    assert_eq!(c.default_model, "llama3");
    assert_eq!(c.timezone, "Europe/Berlin");
    assert_eq!(c.allowed_origins, vec!["http://localhost:5173".to_string()]);
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.max_request_body_bytes, 32 * 1024 * 1024);
    assert_eq!(c.read_timeout, Duration::from_secs(600));
    assert_eq!(c.token_counting, TokenCounting::Tiktoken);
    assert_eq!(
        (c.min_output_tokens, c.output_reservation_tokens),
        (16, 256)
    );
}

/// The hard-quota settings are range-checked against each other, with the key in the message.
#[test]
fn output_settings_are_checked() {
    let (_dir, s) = with_yaml("quota:\n  min_output_tokens: 300\n");
    let e = load(&s).unwrap_err().0;
    assert!(
        e.contains("quota.min_output_tokens") && e.contains("256"),
        "{e}"
    );
    let (_dir, s) = with_yaml("quota:\n  output_reservation_tokens: 0\n");
    let e = load(&s).unwrap_err().0;
    assert!(e.contains("quota.output_reservation_tokens"), "{e}");
    let (_dir, s) = with_yaml("quota:\n  min_output_tokens: 1\n  output_reservation_tokens: 8\n");
    let c = load(&s).unwrap();
    assert_eq!((c.min_output_tokens, c.output_reservation_tokens), (1, 8));
}

/// The GPU block is seconds with up to three decimals, 0.001 to 3600; 5 by default.
#[test]
fn gpu_block_seconds() {
    let (_dir, s) = with_yaml("");
    assert_eq!(load(&s).unwrap().gpu_block_ms, 5_000);
    let (_dir, s) = with_yaml("quota:\n  gpu_block_seconds: 0.25\n");
    assert_eq!(load(&s).unwrap().gpu_block_ms, 250);
    for bad in ["0", "-1", "3601"] {
        let (_dir, s) = with_yaml(&format!("quota:\n  gpu_block_seconds: {bad}\n"));
        let e = load(&s).unwrap_err().0;
        assert!(e.contains("quota.gpu_block_seconds"), "{bad}: {e}");
    }
}

/// Process env beats `.env`, which beats the YAML file, which beats the defaults.
#[test]
fn precedence() {
    let (_dir, mut s) = with_yaml("proxy:\n  port: 7000\n  host: 127.0.0.1\nollama:\n  default_model: from-yaml\nquota:\n  timezone: UTC\n");
    s.dotenv = vars(&[("PROXY_PORT", "7100"), ("DEFAULT_MODEL", "from-dotenv")]);
    s.env = vars(&[("PROXY_PORT", "7200"), ("HOME", "/root"), ("PATH", "/bin")]);
    let c = load(&s).unwrap();
    assert_eq!(c.proxy.port, 7200);
    assert_eq!(c.proxy.host, "127.0.0.1");
    assert_eq!(c.default_model, "from-dotenv");
    assert_eq!(c.timezone, "UTC");
    assert_eq!(c.sources.len(), 4);
}

/// `ADMIN_PASSWORD=123456` stays the string "123456" (figment would parse it as a number),
/// from the environment and from YAML alike; so do leading zeros.
#[test]
fn numeric_password_stays_a_string() {
    let mut s = empty();
    s.env = vars(&[("ADMIN_PASSWORD", "123456")]);
    assert_eq!(load(&s).unwrap().admin_password.as_deref(), Some("123456"));
    s.env = vars(&[("ADMIN_PASSWORD", "007")]);
    assert_eq!(load(&s).unwrap().admin_password.as_deref(), Some("007"));
    let (_dir, s) = with_yaml("admin:\n  password: 123456\n");
    assert_eq!(load(&s).unwrap().admin_password.as_deref(), Some("123456"));
}

/// Comma lists: several Ollama URLs and CORS origins from one variable.
#[test]
fn comma_lists() {
    let mut s = empty();
    s.env = vars(&[
        ("OLLAMA_URL", "http://10.0.0.1:11434, http://gpu2:11434/"),
        (
            "ALLOWED_ORIGINS",
            "http://localhost:5173,https://admin.example.com",
        ),
    ]);
    let c = load(&s).unwrap();
    let urls: Vec<_> = c.upstreams.iter().map(|u| u.url.as_str()).collect();
    assert_eq!(urls, ["http://10.0.0.1:11434", "http://gpu2:11434"]);
    assert_eq!(c.allowed_origins.len(), 2);
}

/// YAML upstreams may carry a weight and a concurrency cap.
#[test]
fn detailed_upstreams() {
    let (_dir, s) = with_yaml("ollama:\n  urls:\n    - http://a:11434\n    - url: http://b:11434\n      weight: 3\n      max_concurrency: 4\n");
    let c = load(&s).unwrap();
    assert_eq!(c.upstreams[1].weight, 3);
    assert_eq!(c.upstreams[1].max_concurrency, Some(4));
    assert_eq!(c.upstreams[0].gpu_weight, GpuWeight::ONE);
}

/// `gpu_weight`: any number from 0 to 1000; anything else is refused naming the field.
#[test]
fn gpu_weights() {
    let yaml =
        |w: &str| format!("ollama:\n  urls:\n    - {{url: http://b:11434, gpu_weight: {w}}}\n");
    let (_dir, s) = with_yaml(&yaml("2.5"));
    assert_eq!(load(&s).unwrap().upstreams[0].gpu_weight.get(), 2.5);
    let (_dir, s) = with_yaml(&yaml("0"));
    assert_eq!(load(&s).unwrap().upstreams[0].gpu_weight.get(), 0.0);
    let (_dir, s) = with_yaml(&yaml("-1"));
    let e = load(&s).unwrap_err().to_string();
    assert!(
        e.contains("gpu_weight must be a number from 0 to 1000"),
        "{e}"
    );
    let (_dir, s) = with_yaml(&yaml("1e12"));
    assert!(
        load(&s).is_err(),
        "an absurd weight would overflow the counters"
    );
    let (_dir, s) = with_yaml(&yaml("-0.0"));
    let weight = load(&s).unwrap().upstreams[0].gpu_weight.get();
    assert_eq!(weight.to_bits(), 0.0f64.to_bits());
}

/// Every accepted DATABASE_URL form loads.
#[test]
fn database_url_forms() {
    for (raw, expected) in [
        (
            "sqlite:///./test.db",
            DatabaseUrl::Sqlite("./test.db".into()),
        ),
        (
            "sqlite://data/x.db",
            DatabaseUrl::Sqlite("data/x.db".into()),
        ),
        (
            "postgres://u:p@h/d",
            DatabaseUrl::Postgres("postgres://u:p@h/d".into()),
        ),
        (
            "postgresql://u@h/d",
            DatabaseUrl::Postgres("postgresql://u@h/d".into()),
        ),
    ] {
        let mut s = empty();
        s.env = vars(&[("DATABASE_URL", raw)]);
        assert_eq!(load(&s).unwrap().database_url, expected);
    }
}

/// An unknown YAML key is refused, naming the key and the file.
#[test]
fn unknown_yaml_key() {
    let (_dir, s) = with_yaml("proxy:\n  prot: 8000\n");
    let e = load(&s).unwrap_err().0;
    assert!(e.contains("llm-quota.yaml"), "{e}");
    assert!(e.contains("prot"), "{e}");
}

/// An unknown time zone names the key and where it came from.
#[test]
fn unknown_time_zone() {
    let (_dir, s) = with_yaml("quota:\n  timezone: Europe/Berlinn\n");
    let e = load(&s).unwrap_err().0;
    assert!(e.ends_with("quota.timezone: unknown time zone \"Europe/Berlinn\": use an IANA name such as Europe/Berlin or UTC"), "{e}");
    assert!(e.contains("conf/llm-quota.yaml"), "{e}");
    let mut s = empty();
    s.env = vars(&[("APP_TZ", "Mars/Olympus")]);
    let e = load(&s).unwrap_err().0;
    assert!(
        e.starts_with("environment variable APP_TZ: unknown time zone"),
        "{e}"
    );
}

/// A bad port names the variable.
#[test]
fn bad_port() {
    let mut s = empty();
    s.env = vars(&[("PROXY_PORT", "80a")]);
    let e = load(&s).unwrap_err().0;
    assert!(e.contains("PROXY_PORT"), "{e}");
    s.env = vars(&[("ADMIN_PORT", "70000")]);
    let e = load(&s).unwrap_err().0;
    assert!(e.contains("ADMIN_PORT"), "{e}");
    s.dotenv = vars(&[("METRICS_PORT", "x")]);
    s.env = vec![];
    let e = load(&s).unwrap_err().0;
    assert!(e.starts_with(".env file"), "{e}");
}

/// Malformed URLs are refused with the expected form.
#[test]
fn malformed_urls() {
    for (var, value, needle) in [
        ("OLLAMA_URL", "localhost:11434", "OLLAMA_URL"),
        ("OLLAMA_URL", "http://h:11434/api", "no path"),
        ("OLLAMA_URL", "https://h", "https"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("ALLOWED_ORIGINS", "localhost:5173", "ALLOWED_ORIGINS"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
    ] {
        let mut s = empty();
        s.env = vars(&[(var, value)]);
        let e = load(&s).unwrap_err().0;
        assert!(e.contains(needle), "{var}={value}: {e}");
    }
}

/// `--config` naming a missing file is an error, not a silent fallback.
#[test]
fn missing_config_file() {
    let s = Sources {
        cli_config: Some("/nope/x.yaml".into()),
        ..empty()
    };
    assert!(load(&s).unwrap_err().0.contains("/nope/x.yaml"));
}

/// The shipped conf/llm-quota.yaml parses into exactly the defaults the code documents, so
/// the two cannot drift apart.
#[test]
fn shipped_config_matches_defaults() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let s = Sources {
        workdir: root,
        ..Default::default()
    };
    let mut shipped = load(&s).unwrap();
    let mut defaults = load(&empty()).unwrap();
    shipped.sources.clear();
    defaults.sources.clear();
    defaults.admin_password = shipped.admin_password.clone();
    assert_eq!(shipped, defaults);
}

/// The redacted dump never contains the password or a database password.
#[test]
fn redaction() {
    let mut s = empty();
    s.env = vars(&[
        ("ADMIN_PASSWORD", "hunter2"),
        ("DATABASE_URL", "postgres://u:pgsecret@h/d"),
    ]);
    let dump = format!("{:?}", load(&s).unwrap().redacted_lines());
    assert!(
        !dump.contains("hunter2") && !dump.contains("pgsecret"),
        "{dump}"
    );
    assert!(dump.contains("postgres://u:***@h/d"));
}

/// Alerts: the webhook from the environment, thresholds sorted and range-checked (from YAML
/// numbers or a comma list), the scan interval bounded, and the webhook's path never shown.
#[test]
fn alerts_settings() {
    let c = load(&empty()).unwrap();
    assert_eq!(c.alerts, AlertsConfig::default());
    let mut s = empty();
    s.env = vars(&[
        (
            "ALERT_WEBHOOK_URL",
            "https://hooks.slack.com/services/T0/B0/SECRETPATH",
        ),
        ("ALERT_THRESHOLDS", "1, 0.5,0.9"),
    ]);
    let c = load(&s).unwrap();
    assert_eq!(c.alerts.thresholds, [0.5, 0.9, 1.0]);
    assert_eq!(
        c.alerts.webhook_url.as_ref().map(url::Url::as_str),
        Some("https://hooks.slack.com/services/T0/B0/SECRETPATH")
    );
    let dump = format!("{:?}", c.redacted_lines());
    assert!(!dump.contains("SECRETPATH"), "{dump}");
    assert!(dump.contains("https://hooks.slack.com/*** (set)"), "{dump}");

    let (_dir, s) = with_yaml("alerts:\n  thresholds: [0.75]\n  scan_interval_seconds: 1\n");
    let c = load(&s).unwrap();
    assert_eq!(c.alerts.thresholds, [0.75]);
    assert_eq!(c.alerts.scan_interval, Duration::from_secs(1));

    for (yaml, path) in [
        ("alerts:\n  thresholds: [0]\n", "alerts.thresholds"),
        ("alerts:\n  thresholds: [\"lots\"]\n", "alerts.thresholds"),
        ("alerts:\n  webhook_url: ftp://x/y\n", "alerts.webhook_url"),
        (
            "alerts:\n  scan_interval_seconds: 0\n",
            "alerts.scan_interval_seconds",
        ),
    ] {
        let (_dir, s) = with_yaml(yaml);
        let e = load(&s).unwrap_err().0;
        assert!(e.contains(path), "{yaml}: {e}");
    }
}
