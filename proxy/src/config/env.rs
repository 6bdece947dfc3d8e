//! Environment variables (and `.env` entries) as a figment layer.
//!
//! Each documented variable maps to its YAML twin. Values are handed over as the text the
//! operator wrote (never parsed as TOML, so `ADMIN_PASSWORD=123456` stays a string), except
//! ports, which become numbers when they are numbers, and the comma lists.

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

/// (environment variable, YAML path, kind)
pub const VARIABLES: &[(&str, &str, Kind)] = &[
    ("ADMIN_PASSWORD", "admin.password", Kind::Text),
    ("PROXY_HOST", "proxy.host", Kind::Text),
    ("PROXY_PORT", "proxy.port", Kind::Number),
    ("PROXY_PUBLIC_URL", "proxy.public_url", Kind::Text),
    ("ADMIN_HOST", "admin.host", Kind::Text),
    ("ADMIN_PORT", "admin.port", Kind::Number),
    ("METRICS_HOST", "metrics.host", Kind::Text),
    ("METRICS_PORT", "metrics.port", Kind::Number),
    ("DATABASE_URL", "database.url", Kind::Text),
    ("OLLAMA_URL", "ollama.urls", Kind::List),
    ("DEFAULT_MODEL", "ollama.default_model", Kind::Text),
    ("APP_TZ", "quota.timezone", Kind::Text),
    ("TOKEN_COUNTING", "quota.token_counting", Kind::Text),
    ("ALLOWED_ORIGINS", "cors.allowed_origins", Kind::List),
    ("LOG_FORMAT", "log.format", Kind::Text),
    ("LOG_LEVEL", "log.level", Kind::Text),
    ("ALERT_WEBHOOK_URL", "alerts.webhook_url", Kind::Text),
    ("ALERT_THRESHOLDS", "alerts.thresholds", Kind::List),
];

/// The variable naming the YAML file; read before the layers are built.
pub const CONFIG_PATH_VAR: &str = "LLM_QUOTA_CONFIG";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    List,
}

/// The env variable behind a YAML path, for messages.
pub fn variable_for(path: &str) -> Option<&'static str> {
    VARIABLES
        .iter()
        .find(|(_, p, _)| *p == path)
        .map(|(v, _, _)| *v)
}

/// A set of variables from one source (`environment variable` or `.env file`).
pub struct EnvLayer {
    source: &'static str,
    vars: Vec<(String, String)>,
}

impl EnvLayer {
    /// Keeps only the documented variables, in any letter case of the name.
    pub fn new(source: &'static str, vars: impl IntoIterator<Item = (String, String)>) -> EnvLayer {
        let vars = vars
            .into_iter()
            .filter(|(k, _)| {
                VARIABLES
                    .iter()
                    .any(|(name, _, _)| name.eq_ignore_ascii_case(k))
            })
            .collect();
        EnvLayer { source, vars }
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        let source = self.source;
        Metadata::named(source).interpolater(move |_: &Profile, keys: &[&str]| {
            let path = keys.join(".");
            match variable_for(&path) {
                Some(var) => var.to_owned(),
                None => path,
            }
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut root = Dict::new();
        for (name, raw) in &self.vars {
            let Some((_, path, kind)) = VARIABLES
                .iter()
                .find(|(var, _, _)| var.eq_ignore_ascii_case(name))
            else {
                continue;
            };
            let value = match kind {
                Kind::Text => Value::from(raw.clone()),
                Kind::Number => match raw.trim().parse::<u64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => Value::from(raw.clone()),
                },
                Kind::List => Value::from(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::from(s.to_owned()))
                        .collect::<Vec<_>>(),
                ),
            };
            insert_path(&mut root, path, value);
        }
        Ok(Profile::Default.collect(root))
    }
}

fn insert_path(root: &mut Dict, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut dict = root;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            dict.insert(part.to_owned(), value);
            return;
        }
        let entry = dict
            .entry(part.to_owned())
            .or_insert_with(|| Value::from(Dict::new()));
        if !matches!(entry, Value::Dict(..)) {
            *entry = Value::from(Dict::new());
        }
        let Value::Dict(_, inner) = entry else { return };
        dict = inner;
    }
}
