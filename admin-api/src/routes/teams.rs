//! `/api/teams…`: list, create, show, edit and delete teams (one budget shared by several
//! keys). Every change is audited and calls [`GatewayHooks::team_changed`], so the proxy of
//! this instance reloads the team's keys at once.
//!
//! [`GatewayHooks::team_changed`]: crate::GatewayHooks::team_changed

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use quota_engine::audit::{Audited, Change};
use quota_engine::gate::{self, AccountId, Counters};
use quota_engine::keys::LimitsPatch;
use quota_engine::pacing::PacingPatch;
use quota_engine::teams::{self, NewTeam, TeamPatch};
use quota_engine::{Limits, Pacing, Team};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::input::{ApiJson, Client, GpuSeconds, KeyId, NonNegative, Patch, Priority};
use crate::views::TeamView;
use crate::AdminState;

pub fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/api/teams", get(list).post(create))
        .route("/api/teams/{id}", get(show).patch(edit).delete(remove))
}

/// `POST /api/teams`. Limits: non-negative integers (GPU seconds: up to three decimals),
/// `null` or left out = unlimited.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    /// A non-empty name, unique among teams (at most 200 characters).
    #[schema(example = "data")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub daily_token_limit: Option<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>, example = 20000000)]
    pub monthly_token_limit: Option<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub daily_request_limit: Option<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub monthly_request_limit: Option<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub daily_gpu_seconds_limit: Option<GpuSeconds>,
    #[serde(default)]
    #[schema(value_type = Option<f64>, example = 36000.0)]
    pub monthly_gpu_seconds_limit: Option<GpuSeconds>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub requests_per_minute: Option<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub tokens_per_minute: Option<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub max_parallel_requests: Option<NonNegative>,
    /// 1–10; `null` or left out = 1.
    #[serde(default)]
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 10)]
    pub priority: Option<Priority>,
    /// Non-empty model names; `null` or left out = every local model.
    #[serde(default)]
    pub allowed_models: Option<Vec<String>>,
}

/// `PATCH /api/teams/{id}`: any subset; `null` = unlimited (description: none), left out =
/// unchanged.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamUpdate {
    /// A non-empty name, unique among teams; `null` is refused.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub description: Patch<String>,
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
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub daily_gpu_seconds_limit: Patch<GpuSeconds>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub monthly_gpu_seconds_limit: Patch<GpuSeconds>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub requests_per_minute: Patch<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub tokens_per_minute: Patch<NonNegative>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub max_parallel_requests: Patch<NonNegative>,
    /// 1–10; `null` = the default, 1.
    #[serde(default)]
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 10)]
    pub priority: Patch<Priority>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_models: Patch<Vec<String>>,
}

/// The team object with its key count and current usage.
async fn view_of(state: &AdminState, team: &Team) -> ApiResult<TeamView> {
    let periods = state.periods.at(Utc::now());
    let counters = gate::current_counters(&state.db, AccountId::Team(team.id), &periods)
        .await?
        .unwrap_or_default();
    let key_count = teams::key_counts(&state.db)
        .await?
        .get(&team.id)
        .copied()
        .unwrap_or(0);
    Ok(TeamView::new(
        team,
        key_count,
        counters,
        state.hooks.team_in_flight(team.id),
        &periods,
    ))
}

/// Every team, by name, with its key count and current usage.
#[utoipa::path(get, path = "/api/teams", operation_id = "list_teams", tag = "teams",
    responses(
        (status = 200, description = "every team, by name", body = Vec<TeamView>),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn list(State(state): State<Arc<AdminState>>) -> ApiResult<Json<Vec<TeamView>>> {
    let periods = state.periods.at(Utc::now());
    let all = teams::list(&state.db).await?;
    let counts = teams::key_counts(&state.db).await?;
    let counters = gate::all_team_counters(&state.db, &periods).await?;
    Ok(Json(
        all.iter()
            .map(|t| {
                TeamView::new(
                    t,
                    counts.get(&t.id).copied().unwrap_or(0),
                    counters.get(&t.id).copied().unwrap_or_default(),
                    state.hooks.team_in_flight(t.id),
                    &periods,
                )
            })
            .collect(),
    ))
}

/// Creates a team.
#[utoipa::path(post, path = "/api/teams", operation_id = "create_team", tag = "teams", request_body = CreateTeam,
    responses(
        (status = 201, description = "created; `Location` names the new team", body = TeamView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 409, description = "a team with this name exists", body = ErrorBody),
        (status = 422, description = "a field is invalid (the message names it)", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn create(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    ApiJson(body): ApiJson<CreateTeam>,
) -> ApiResult<impl IntoResponse> {
    let limit = |l: Option<NonNegative>| l.map(|v| v.0);
    let new = NewTeam {
        name: body.name,
        description: body.description,
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
    };
    let now = Utc::now();
    let audited = Audited::begin(&state.db, now).await?;
    let team = teams::create(audited.txn(), &new, now).await?;
    audited
        .commit(Change::of_team(&client, None, Some(&team)))
        .await?;
    tracing::info!(team_id = team.id, team = %team.name, "admin: team created");
    let view = TeamView::new(
        &team,
        0,
        Counters::default(),
        Default::default(),
        &state.periods.at(now),
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/teams/{}", team.id))],
        Json(view),
    ))
}

/// One team with its key count and current usage.
#[utoipa::path(get, path = "/api/teams/{id}", operation_id = "get_team", tag = "teams",
    params(("id" = i64, Path, description = "team id")),
    responses(
        (status = 200, description = "the team", body = TeamView),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no team with this id", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn show(
    State(state): State<Arc<AdminState>>,
    KeyId(id): KeyId,
) -> ApiResult<Json<TeamView>> {
    let team = teams::get(&state.db, id).await?;
    Ok(Json(view_of(&state, &team).await?))
}

/// Edits any subset of a team's name, description, limits, pacing and allowed models.
#[utoipa::path(patch, path = "/api/teams/{id}", operation_id = "update_team", tag = "teams", request_body = TeamUpdate,
    params(("id" = i64, Path, description = "team id")),
    responses(
        (status = 200, description = "the edited team", body = TeamView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no team with this id", body = ErrorBody),
        (status = 409, description = "another team has this name", body = ErrorBody),
        (status = 422, description = "a field is invalid (the message names it)", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn edit(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    KeyId(id): KeyId,
    ApiJson(body): ApiJson<TeamUpdate>,
) -> ApiResult<Json<TeamView>> {
    let name = match body.name {
        Patch::Null => return Err(ApiError::invalid("name", "must be a non-empty string")),
        other => other.into_update().flatten(),
    };
    let limit = |p: Patch<NonNegative>| p.map(|v| v.0).into_update();
    let patch = TeamPatch {
        name,
        description: body.description.into_update(),
        limits: LimitsPatch {
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
        },
        allowed_models: body.allowed_models.into_update(),
    };
    let mut audited = Audited::begin(&state.db, Utc::now()).await?;
    let before = teams::get(audited.txn(), id).await?;
    let now = audited.restamp();
    let team = teams::patch(audited.txn(), id, &patch, now).await?;
    audited
        .commit(Change::of_team(&client, Some(&before), Some(&team)))
        .await?;
    state.hooks.team_changed(id);
    tracing::info!(team_id = id, "admin: team edited");
    Ok(Json(view_of(&state, &team).await?))
}

/// Deletes a team; refused with 409 while keys belong to it. Answers 204 without a body.
#[utoipa::path(delete, path = "/api/teams/{id}", operation_id = "delete_team", tag = "teams",
    params(("id" = i64, Path, description = "team id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "no or wrong admin password", body = ErrorBody),
        (status = 404, description = "no team with this id", body = ErrorBody),
        (status = 409, description = "keys still belong to the team (the message says how many)", body = ErrorBody),
    ),
    security(("admin_password" = [])))]
pub async fn remove(
    State(state): State<Arc<AdminState>>,
    Client(client): Client,
    KeyId(id): KeyId,
) -> ApiResult<StatusCode> {
    let audited = Audited::begin(&state.db, Utc::now()).await?;
    let team = teams::delete(audited.txn(), id).await?;
    audited
        .commit(Change::of_team(&client, Some(&team), None))
        .await?;
    state.hooks.team_changed(id);
    tracing::info!(team_id = id, "admin: team deleted");
    Ok(StatusCode::NO_CONTENT)
}
