//! `/api/api-keys…`: list, create, show, activate, deactivate, edit, set limits, delete, and
//! the per-day usage series. Every change calls [`GatewayHooks::key_changed`] so the proxy of
//! this instance drops its cached copy of the key at once.
//!
//! [`GatewayHooks::key_changed`]: crate::GatewayHooks::key_changed

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use chrono::Utc;
use quota_engine::audit::{self, Action, Audited, Change};
use quota_engine::gate::{self, Counters};
use quota_engine::keys::{self, LimitsPatch};
use quota_engine::pacing::PacingPatch;
use quota_engine::{usage_log, ApiKey, KeyPatch, Limits, NewKey, Pacing};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{
    ApiJson, Client, GpuSeconds, KeyId, NonNegative, OptionalJson, Patch, Priority, Rfc3339,
};
use crate::views::{CreatedKeyView, DailyUsageView, KeyView, RotatedKeyView};
use crate::AdminState;

/// Days of the usage series when `?days` is left out, and the most it may ask for.
const DEFAULT_DAYS: u32 = 30;
const MAX_DAYS: u32 = 366;

pub fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/api/api-keys", get(list).post(create))
        .route("/api/api-keys/{id}", get(show).patch(edit).delete(remove))
        .route("/api/api-keys/{id}/activate", put(activate))
        .route("/api/api-keys/{id}/deactivate", put(deactivate))
        .route("/api/api-keys/{id}/quota", patch(set_quota))
        .route("/api/api-keys/{id}/usage", get(usage))
        .route("/api/api-keys/{id}/rotate", post(rotate))
}

/// `POST /api/api-keys`. Limits: non-negative integers, `null` or left out = unlimited.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A non-empty label (at most 200 characters).
    #[schema(example = "alice laptop")]
    pub name: String,
    /// RFC 3339 with offset; `null` or left out = never expires.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "2027-01-31T00:00:00+01:00")]
    pub expires_at: Option<Rfc3339>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub daily_token_limit: Option<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub monthly_token_limit: Option<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub daily_request_limit: Option<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub monthly_request_limit: Option<NonNegative>,
    /// GPU seconds a day (host time × its `gpu_weight`), at most three decimals.
    #[serde(default)]
    #[schema(value_type = Option<f64>, example = 3600.0)]
    pub daily_gpu_seconds_limit: Option<GpuSeconds>,
    /// GPU seconds a month, at most three decimals.
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub monthly_gpu_seconds_limit: Option<GpuSeconds>,
    /// Requests in any sliding 60 seconds; `null` or left out = unlimited.
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub requests_per_minute: Option<NonNegative>,
    /// Tokens in any sliding 60 seconds; `null` or left out = unlimited.
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub tokens_per_minute: Option<NonNegative>,
    /// Counted requests in flight at once (more wait); `null` or left out = unlimited.
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub max_parallel_requests: Option<NonNegative>,
    /// Weight in the fair queue, 1–10; `null` or left out = 1.
    #[serde(default)]
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 10)]
    pub priority: Option<Priority>,
    /// Non-empty model names; `null` or left out = every local model.
    #[serde(default)]
    pub allowed_models: Option<Vec<String>>,
    /// Whether the key may use the web search tools Ollama runs on the host's ollama.com
    /// account; left out = false.
    #[serde(default)]
    pub allow_web_search: bool,
    /// The team the key belongs to (its budget is shared with the team's other keys);
    /// `null` or left out = none.
    #[serde(default)]
    pub team_id: Option<i64>,
}

/// `PATCH /api/api-keys/{id}/quota`: any subset; `null` = unlimited, left out = unchanged.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaUpdate {
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub daily_token_limit: Patch<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub monthly_token_limit: Patch<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub daily_request_limit: Patch<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub monthly_request_limit: Patch<NonNegative>,
    /// GPU seconds a day, at most three decimals; `null` = unlimited.
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub daily_gpu_seconds_limit: Patch<GpuSeconds>,
    /// GPU seconds a month, at most three decimals; `null` = unlimited.
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub monthly_gpu_seconds_limit: Patch<GpuSeconds>,
    /// `null` = unlimited.
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub requests_per_minute: Patch<NonNegative>,
    /// `null` = unlimited.
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub tokens_per_minute: Patch<NonNegative>,
    /// `null` = unlimited.
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub max_parallel_requests: Patch<NonNegative>,
    /// 1–10; `null` = the default, 1.
    #[serde(default)]
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 10)]
    pub priority: Patch<Priority>,
}

/// `PATCH /api/api-keys/{id}`: any subset; left out = unchanged.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyUpdate {
    /// A non-empty label; `null` is refused.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
    /// RFC 3339 with offset; `null` = never expires.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "2027-01-31T00:00:00+01:00")]
    pub expires_at: Patch<Rfc3339>,
    /// Non-empty model names; `null` = every local model.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_models: Patch<Vec<String>>,
    /// Whether the key may use Ollama's web search tools; `null` is refused.
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    pub allow_web_search: Patch<bool>,
    /// The key's team; `null` = none. Its future usage counts against the new team.
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub team_id: Patch<i64>,
}

/// The key object with the key's usage in the current day and month.
async fn view_of(state: &AdminState, key: &ApiKey) -> ApiResult<KeyView> {
    let periods = state.periods.at(Utc::now());
    let counters = gate::current_counters(&state.db, key.id, &periods)
        .await?
        .unwrap_or_default();
    Ok(KeyView::new(
        key,
        counters,
        state.hooks.in_flight(key.id),
        &periods,
    ))
}

/// Every key, oldest first, with current usage.
#[utoipa::path(get, path = "/api/api-keys", operation_id = "list_keys", tag = "keys",
    responses(
        (status = 200, description = "every key, oldest first", body = Vec<KeyView>),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 429, description = "too many failed logins from this address", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn list(State(state): State<Arc<AdminState>>) -> ApiResult<Json<Vec<KeyView>>> {
    let periods = state.periods.at(Utc::now());
    let all = keys::list(&state.db).await?;
    let counters = gate::all_counters(&state.db, &periods).await?;
    let views = all
        .iter()
        .map(|k| {
            KeyView::new(
                k,
                counters.get(&k.id).copied().unwrap_or_default(),
                state.hooks.in_flight(k.id),
                &periods,
            )
        })
        .collect();
    Ok(Json(views))
}

/// Creates a key. The answer is the only one that ever contains the plaintext `key`.
#[utoipa::path(post, path = "/api/api-keys", operation_id = "create_key", tag = "keys", request_body = CreateKey,
    responses(
        (status = 201, description = "created; `Location` names the new key", body = CreatedKeyView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 422, description = "a field is invalid (the message names it)", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn create(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    ApiJson(body): ApiJson<CreateKey>,
) -> ApiResult<impl IntoResponse> {
    let limit = |l: Option<NonNegative>| l.map(|v| v.0);
    let new = NewKey {
        name: body.name,
        expires_at: body.expires_at.map(|t| t.0),
        limits: Limits {
            daily_tokens: limit(body.daily_token_limit),
            monthly_tokens: limit(body.monthly_token_limit),
            daily_requests: limit(body.daily_request_limit),
            monthly_requests: limit(body.monthly_request_limit),
            daily_gpu_ms: body.daily_gpu_seconds_limit.map(|s| s.0),
            monthly_gpu_ms: body.monthly_gpu_seconds_limit.map(|s| s.0),
        },
        pacing: Pacing {
            requests_per_minute: limit(body.requests_per_minute),
            tokens_per_minute: limit(body.tokens_per_minute),
            max_parallel_requests: limit(body.max_parallel_requests),
            priority: body.priority.map_or(1, |p| p.0),
        },
        allowed_models: body.allowed_models,
        allow_web_search: body.allow_web_search,
        team_id: body.team_id,
    };
    let now = Utc::now();
    let audited = Audited::begin(&state.db, now).await?;
    let (key, plaintext) = keys::create(audited.txn(), &new, now).await?;
    audited
        .commit(Change::created(&client, &key, state.periods.tz()))
        .await?;
    state.hooks.key_changed(key.id);
    tracing::info!(key_id = key.id, key_prefix = %key.key_prefix, "admin: key created");
    let view = KeyView::new(
        &key,
        Counters::default(),
        Default::default(),
        &state.periods.at(now),
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/api-keys/{}", key.id))],
        Json(CreatedKeyView {
            view,
            key: plaintext,
        }),
    ))
}

/// One key with current usage.
#[utoipa::path(get, path = "/api/api-keys/{id}", operation_id = "get_key", tag = "keys",
    params(("id" = i64, Path, description = "key id")),
    responses(
        (status = 200, description = "the key", body = KeyView),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no key with this id", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn show(
    State(state): State<Arc<AdminState>>,
    KeyId(id): KeyId,
) -> ApiResult<Json<KeyView>> {
    let key = keys::get(&state.db, id).await?;
    Ok(Json(view_of(&state, &key).await?))
}

/// A change of one key in progress: its transaction and the key as it was.
struct KeyChange {
    audited: Audited,
    before: ApiKey,
}

impl KeyChange {
    /// Starts a change of key `id` (404 when there is none).
    async fn begin(state: &AdminState, id: i64) -> ApiResult<KeyChange> {
        let mut audited = Audited::begin(&state.db, Utc::now()).await?;
        let before = keys::get_for_update(audited.txn(), id).await?;
        audited.restamp();
        Ok(KeyChange { audited, before })
    }

    fn txn(&self) -> &quota_engine::DatabaseTransaction {
        self.audited.txn()
    }

    fn now(&self) -> chrono::DateTime<Utc> {
        self.audited.now()
    }

    /// Records the fields that changed as `action` in the audit trail, commits both, and tells
    /// the gateway.
    async fn finish(
        self,
        state: &AdminState,
        client: &str,
        action: Action,
        after: &ApiKey,
    ) -> ApiResult<()> {
        let change = Change::of_key(client, action, &self.before, after, state.periods.tz());
        self.audited.commit(change).await?;
        state.hooks.key_changed(after.id);
        Ok(())
    }
}

async fn set_active(
    state: &AdminState,
    client: &str,
    id: i64,
    active: bool,
) -> ApiResult<Json<KeyView>> {
    let action = if active {
        Action::KeyActivated
    } else {
        Action::KeyDeactivated
    };
    let change = KeyChange::begin(state, id).await?;
    let key = keys::set_active(change.txn(), id, active, change.now()).await?;
    change.finish(state, client, action, &key).await?;
    tracing::info!(key_id = id, active, "admin: key activation changed");
    Ok(Json(view_of(state, &key).await?))
}

/// Lets the key in again (it is still refused while expired).
#[utoipa::path(put, path = "/api/api-keys/{id}/activate", operation_id = "activate_key", tag = "keys",
    params(("id" = i64, Path, description = "key id")),
    responses(
        (status = 200, description = "the key, `is_active: true`", body = KeyView),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no key with this id", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn activate(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    KeyId(id): KeyId,
) -> ApiResult<Json<KeyView>> {
    set_active(&state, &client, id, true).await
}

/// Refuses the key from now on, on this instance at once.
#[utoipa::path(put, path = "/api/api-keys/{id}/deactivate", operation_id = "deactivate_key", tag = "keys",
    params(("id" = i64, Path, description = "key id")),
    responses(
        (status = 200, description = "the key, `is_active: false`", body = KeyView),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no key with this id", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn deactivate(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    KeyId(id): KeyId,
) -> ApiResult<Json<KeyView>> {
    set_active(&state, &client, id, false).await
}

/// Sets any subset of the six limits, the per-minute limits, the parallel cap and the
/// priority.
#[utoipa::path(patch, path = "/api/api-keys/{id}/quota", operation_id = "update_key_quota", tag = "keys", request_body = QuotaUpdate,
    params(("id" = i64, Path, description = "key id")),
    responses(
        (status = 200, description = "the key with its new limits", body = KeyView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no key with this id", body = ErrorBody),
        (status = 422, description = "a limit is not a non-negative integer (GPU seconds: number with at most three decimals) or null, or the priority not 1–10", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn set_quota(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    KeyId(id): KeyId,
    ApiJson(body): ApiJson<QuotaUpdate>,
) -> ApiResult<Json<KeyView>> {
    let limit = |p: Patch<NonNegative>| p.map(|v| v.0).into_update();
    let update = LimitsPatch {
        daily_tokens: limit(body.daily_token_limit),
        monthly_tokens: limit(body.monthly_token_limit),
        daily_requests: limit(body.daily_request_limit),
        monthly_requests: limit(body.monthly_request_limit),
        daily_gpu_ms: body.daily_gpu_seconds_limit.map(|s| s.0).into_update(),
        monthly_gpu_ms: body.monthly_gpu_seconds_limit.map(|s| s.0).into_update(),
        pacing: PacingPatch {
            requests_per_minute: limit(body.requests_per_minute),
            tokens_per_minute: limit(body.tokens_per_minute),
            max_parallel_requests: limit(body.max_parallel_requests),
            priority: body.priority.map(|p| p.0).into_update(),
        },
    };
    let change = KeyChange::begin(&state, id).await?;
    let key = keys::update_limits(change.txn(), id, &update, change.now()).await?;
    change
        .finish(&state, &client, Action::KeyLimitsChanged, &key)
        .await?;
    tracing::info!(key_id = id, "admin: key limits changed");
    Ok(Json(view_of(&state, &key).await?))
}

/// Edits the name, the expiry, the allowed models, web search or the team.
#[utoipa::path(patch, path = "/api/api-keys/{id}", operation_id = "update_key", tag = "keys", request_body = KeyUpdate,
    params(("id" = i64, Path, description = "key id")),
    responses(
        (status = 200, description = "the edited key", body = KeyView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no key with this id", body = ErrorBody),
        (status = 422, description = "a field is invalid (the message names it)", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn edit(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    KeyId(id): KeyId,
    ApiJson(body): ApiJson<KeyUpdate>,
) -> ApiResult<Json<KeyView>> {
    let name = match body.name {
        Patch::Null => return Err(ApiError::invalid("name", "must be a non-empty string")),
        other => other.into_update().flatten(),
    };
    let allow_web_search = match body.allow_web_search {
        Patch::Null => {
            return Err(ApiError::invalid(
                "allow_web_search",
                "must be true or false",
            ))
        }
        other => other.into_update().flatten(),
    };
    let update = KeyPatch {
        name,
        expires_at: body.expires_at.map(|t| t.0).into_update(),
        allowed_models: body.allowed_models.into_update(),
        allow_web_search,
        team_id: body.team_id.into_update(),
    };
    let change = KeyChange::begin(&state, id).await?;
    let key = keys::patch(change.txn(), id, &update, change.now()).await?;
    change
        .finish(&state, &client, Action::KeyEdited, &key)
        .await?;
    tracing::info!(key_id = id, "admin: key edited");
    Ok(Json(view_of(&state, &key).await?))
}

/// Deletes the key with its counters and usage log. Answers 204 without a body.
#[utoipa::path(delete, path = "/api/api-keys/{id}", operation_id = "delete_key", tag = "keys",
    params(("id" = i64, Path, description = "key id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no key with this id", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn remove(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    KeyId(id): KeyId,
) -> ApiResult<StatusCode> {
    let audited = Audited::begin(&state.db, Utc::now()).await?;
    let key = keys::get_for_update(audited.txn(), id).await?;
    if !keys::delete(audited.txn(), id).await? {
        return Err(ApiError::key_not_found(id));
    }
    let change = Change {
        client: &client,
        action: Action::KeyDeleted,
        key: Some((id, &key.name)),
        before: Some(audit::key_settings(&key, state.periods.tz())),
        after: None,
    };
    audited.commit(change).await?;
    state.hooks.key_changed(id);
    tracing::info!(key_id = id, "admin: key deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/api-keys/{id}/rotate`; the body may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old secret keeps working, 0 to 2592000 (30 days); 0 or left out = it stops
    /// at once.
    #[serde(default)]
    #[schema(value_type = Option<u64>, maximum = 2592000, example = 3600)]
    pub grace_seconds: Option<NonNegative>,
}

/// Gives the key a new secret, shown in this answer only. The key keeps its id, name, limits
/// and usage; the old secret stops working at once, or after `grace_seconds`.
#[utoipa::path(post, path = "/api/api-keys/{id}/rotate", operation_id = "rotate_key", tag = "keys", request_body(content = Option<RotateKey>, description = "optional; an empty body rotates with no grace period"),
    params(("id" = i64, Path, description = "key id")),
    responses(
        (status = 200, description = "the key with its new secret in `key` (shown once) and `old_secret_valid_until`", body = RotatedKeyView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no key with this id", body = ErrorBody),
        (status = 422, description = "`grace_seconds` is not an integer from 0 to 2592000", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn rotate(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    KeyId(id): KeyId,
    OptionalJson(body): OptionalJson<RotateKey>,
) -> ApiResult<Json<RotatedKeyView>> {
    let grace = body.grace_seconds.map_or(0, |g| g.0);
    let grace = u64::try_from(grace).unwrap_or(u64::MAX);
    let audited = Audited::begin(&state.db, Utc::now()).await?;
    let rotated = keys::rotate(audited.txn(), id, grace, audited.now()).await?;
    audited
        .commit(Change::rotated(&client, &rotated, state.periods.tz()))
        .await?;
    state.hooks.key_changed(id);
    let key = &rotated.key;
    tracing::info!(key_id = id, key_prefix = %key.key_prefix, grace_seconds = grace, "admin: key rotated");
    let old_secret_valid_until = key
        .old_secret_valid_until
        .map(|t| crate::views::timestamp(t, state.periods.tz()));
    Ok(Json(RotatedKeyView {
        created: CreatedKeyView {
            view: view_of(&state, key).await?,
            key: rotated.plaintext,
        },
        old_secret_valid_until,
    }))
}

/// The key's usage per day of the operator's zone, oldest first, ending today; days without
/// requests are zeros.
#[utoipa::path(get, path = "/api/api-keys/{id}/usage", operation_id = "get_key_usage", tag = "keys",
    params(
        ("id" = i64, Path, description = "key id"),
        ("days" = Option<u32>, Query, minimum = 1, maximum = 366, description = "how many days, 1 to 366 (default 30)"),
    ),
    responses(
        (status = 200, description = "one entry per day, oldest first", body = Vec<DailyUsageView>),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no key with this id", body = ErrorBody),
        (status = 422, description = "`days` out of range", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn usage(
    State(state): State<Arc<AdminState>>,
    KeyId(id): KeyId,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<DailyUsageView>>> {
    let days = days_param(query.as_deref())?;
    keys::get(&state.db, id).await?;
    let today = Utc::now().with_timezone(&state.periods.tz()).date_naive();
    let series = usage_log::daily_series(&state.db, id, today, days).await?;
    Ok(Json(series.into_iter().map(Into::into).collect()))
}

/// `?days=N`: 1 to [`MAX_DAYS`], [`DEFAULT_DAYS`] when absent. Other parameters are ignored.
fn days_param(query: Option<&str>) -> ApiResult<u32> {
    let raw = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "days")
        .map(|(_, value)| value.into_owned());
    let Some(raw) = raw else {
        return Ok(DEFAULT_DAYS);
    };
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|d| (1..=MAX_DAYS).contains(d))
        .ok_or_else(|| {
            ApiError::invalid(
                "days",
                format!("must be an integer from 1 to {MAX_DAYS}, got {raw:?}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `days` defaults to 30 and accepts 1 to 366 only.
    #[test]
    fn days() {
        assert!(matches!(days_param(None), Ok(30)));
        assert!(matches!(days_param(Some("x=1")), Ok(30)));
        assert!(matches!(days_param(Some("days=7")), Ok(7)));
        assert!(matches!(days_param(Some("days=366")), Ok(366)));
        for bad in [
            "days=0", "days=367", "days=-1", "days=abc", "days=1.5", "days=",
        ] {
            assert!(
                matches!(days_param(Some(bad)), Err(ApiError::Unprocessable(m)) if m.starts_with("days: ")),
                "{bad}"
            );
        }
    }
}
