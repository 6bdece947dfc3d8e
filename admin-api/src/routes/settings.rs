//! `/api/settings`: the runtime overrides of `ollama_urls` and `default_model`.
//!
//! An override is stored in the database (so every instance sharing it picks it up within
//! seconds) and handed to [`GatewayHooks::settings_changed`] at once (so this instance applies
//! it before the answer leaves). `null` clears an override: the configured value applies again.
//!
//! [`GatewayHooks::settings_changed`]: crate::GatewayHooks::settings_changed

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use quota_engine::audit;
use quota_engine::settings::{self, Overrides};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{ApiJson, Client, Patch};
use crate::views::SettingsView;
use crate::AdminState;

pub fn router() -> Router<Arc<AdminState>> {
    Router::new().route("/api/settings", get(show).put(update))
}

/// `PUT /api/settings`: any subset; `null` clears an override, left out = unchanged.
/// `ollama_url` is a shorthand for `ollama_urls` (one URL, or several separated by commas).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "http://gpu-box:11434")]
    pub ollama_url: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub ollama_urls: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "llama3")]
    pub default_model: Patch<String>,
}

fn view(state: &AdminState, overrides: &Overrides) -> SettingsView {
    SettingsView::new(
        overrides,
        &state.configured_ollama_urls,
        &state.configured_default_model,
        state.periods.tz(),
    )
}

/// The values in force, which are overrides, and the configured values.
#[utoipa::path(get, path = "/api/settings", operation_id = "get_settings", tag = "settings",
    responses(
        (status = 200, description = "the settings in force", body = SettingsView),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn show(State(state): State<Arc<AdminState>>) -> ApiResult<Json<SettingsView>> {
    let overrides = settings::load(&state.db).await?;
    Ok(Json(view(&state, &overrides)))
}

/// Sets or clears overrides; they apply on this instance before the answer is sent.
#[utoipa::path(put, path = "/api/settings", operation_id = "update_settings", tag = "settings", request_body = SettingsUpdate,
    responses(
        (status = 200, description = "the settings now in force", body = SettingsView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 422, description = "a value is invalid (the message names the field)", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn update(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    ApiJson(body): ApiJson<SettingsUpdate>,
) -> ApiResult<Json<SettingsView>> {
    let urls = urls_update(body.ollama_url, body.ollama_urls)?;
    let model = model_update(body.default_model)?;
    let change = audit::Audited::begin(&state.db, Utc::now()).await?;
    let (txn, now) = (change.txn(), change.now());
    let before = settings::load(txn).await?;
    for (name, change) in [
        (settings::OLLAMA_URLS, urls.map(serde_json::Value::from)),
        (settings::DEFAULT_MODEL, model.map(serde_json::Value::from)),
    ] {
        match change {
            Patch::Absent => {}
            Patch::Null => settings::set(txn, name, None, now).await?,
            Patch::Value(v) => settings::set(txn, name, Some(v), now).await?,
        }
    }
    let overrides = settings::load(txn).await?;
    let (old, new) = audit::changed_fields(&audited(&before), &audited(&overrides));
    change
        .commit(audit::Change {
            client: &client,
            action: audit::Action::SettingsChanged,
            key: None,
            before: Some(old),
            after: Some(new),
        })
        .await?;
    state.hooks.settings_changed(overrides.clone());
    tracing::info!(
        ollama_urls = ?overrides.ollama_urls,
        default_model = ?overrides.default_model,
        "admin: settings overrides changed"
    );
    Ok(Json(view(&state, &overrides)))
}

/// The overrides as the audit trail shows them (`null` = no override).
fn audited(overrides: &Overrides) -> serde_json::Value {
    serde_json::json!({
        "ollama_urls": overrides.ollama_urls,
        "default_model": overrides.default_model,
    })
}

/// The `ollama_urls` change asked for by `ollama_url` and/or `ollama_urls`, validated. Both
/// may be sent only when they agree (`ollama_url` = the first of `ollama_urls`).
fn urls_update(single: Patch<String>, list: Patch<Vec<String>>) -> ApiResult<Patch<Vec<String>>> {
    let single = match single {
        Patch::Value(text) => Patch::Value(validate_urls(
            "ollama_url",
            text.split(',').map(str::to_owned),
        )?),
        Patch::Null => Patch::Null,
        Patch::Absent => Patch::Absent,
    };
    let list = match list {
        Patch::Value(urls) => Patch::Value(validate_urls("ollama_urls", urls)?),
        Patch::Null => Patch::Null,
        Patch::Absent => Patch::Absent,
    };
    match (single, list) {
        (Patch::Absent, only) | (only, Patch::Absent) => Ok(only),
        (Patch::Null, Patch::Null) => Ok(Patch::Null),
        (Patch::Value(one), Patch::Value(all))
            if one == all || one.first() == all.first() && one.len() == 1 =>
        {
            Ok(Patch::Value(all))
        }
        _ => Err(ApiError::invalid(
            "ollama_url",
            "contradicts ollama_urls; send only one of them",
        )),
    }
}

/// Each entry must be `http://host[:port]` without a path; at least one, no duplicates. The
/// stored form has no trailing `/`.
fn validate_urls(field: &str, raw: impl IntoIterator<Item = String>) -> ApiResult<Vec<String>> {
    let mut urls: Vec<String> = Vec::new();
    for entry in raw {
        let url = validate_url(field, &entry)?;
        if urls.contains(&url) {
            return Err(ApiError::invalid(field, format!("{url} is listed twice")));
        }
        urls.push(url);
    }
    if urls.is_empty() {
        return Err(ApiError::invalid(
            field,
            "must name at least one URL; send null to use the configured ones",
        ));
    }
    Ok(urls)
}

fn validate_url(field: &str, raw: &str) -> ApiResult<String> {
    let text = raw.trim();
    let expected = "expected http://host[:port] without a path, e.g. http://localhost:11434";
    let bad = |why: &str| ApiError::invalid(field, format!("{text:?} {why}; {expected}"));
    if !text.contains("://") {
        return Err(bad("is not an absolute URL"));
    }
    let url = url::Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.scheme() != "http" {
        return Err(bad(&format!("has the scheme {:?}", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("carries credentials"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a path or query"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn model_update(model: Patch<String>) -> ApiResult<Patch<String>> {
    match model {
        Patch::Value(name) => {
            let name = name.trim();
            if name.is_empty() {
                return Err(ApiError::invalid(
                    "default_model",
                    "must be a non-empty model name, or null to use the configured one",
                ));
            }
            Ok(Patch::Value(name.to_owned()))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn message(e: ApiError) -> String {
        match e {
            ApiError::Unprocessable(m) => m,
            other => panic!("{other:?}"),
        }
    }

    /// Only `http://host[:port]` passes; the message names the field.
    #[test]
    fn url_rules() {
        assert_eq!(
            validate_url("ollama_urls", " http://gpu:11434/ ").unwrap(),
            "http://gpu:11434"
        );
        assert_eq!(
            validate_url("f", "http://[::1]:1").unwrap(),
            "http://[::1]:1"
        );
        for bad in [
            "gpu:11434",
            "https://gpu:11434",
            "http://gpu:11434/api",
            "http://gpu:11434?x=1",
            "http://u:p@gpu:11434",
            "ftp://gpu",
            "",
        ] {
            let m = message(validate_url("ollama_urls", bad).unwrap_err());
            assert!(m.starts_with("ollama_urls: "), "{bad}: {m}");
        }
    }

    /// `ollama_url` may be comma-separated; with `ollama_urls` it must agree.
    #[test]
    fn single_and_list() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            urls_update(Patch::Value("http://a:1, http://b:2".into()), Patch::Absent).unwrap(),
            Patch::Value(v(&["http://a:1", "http://b:2"]))
        );
        assert_eq!(
            urls_update(
                Patch::Value("http://a:1".into()),
                Patch::Value(v(&["http://a:1", "http://b:2"]))
            )
            .unwrap(),
            Patch::Value(v(&["http://a:1", "http://b:2"]))
        );
        assert_eq!(urls_update(Patch::Null, Patch::Null).unwrap(), Patch::Null);
        let m = message(
            urls_update(
                Patch::Value("http://c:1".into()),
                Patch::Value(v(&["http://a:1"])),
            )
            .unwrap_err(),
        );
        assert!(m.starts_with("ollama_url: "), "{m}");
        let m = message(urls_update(Patch::Absent, Patch::Value(vec![])).unwrap_err());
        assert!(m.starts_with("ollama_urls: "), "{m}");
        let m = message(
            urls_update(
                Patch::Absent,
                Patch::Value(v(&["http://a:1", "http://a:1/"])),
            )
            .unwrap_err(),
        );
        assert!(m.contains("twice"), "{m}");
    }
}
