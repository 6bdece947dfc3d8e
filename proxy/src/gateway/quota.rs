//! `GET /api/quota` and `GET /v1/quota`: the calling key's own budget, answered by the
//! gateway and never counted. The key object of the admin API (without `id`), plus what
//! remains of each limit (GPU time in seconds), the tokens its requests in flight hold
//! reserved, and its team's name and what remains of the team's limits (never the other
//! keys).

use bytes::Bytes;
use chrono::Utc;
use quota_engine::gate::{AccountId, Counters};
use quota_engine::key_view::seconds;
use quota_engine::pacing::{pace_id, MinuteRemaining};
use quota_engine::{gate, ApiKey, Limits};
use serde_json::{json, Value};

use super::errors::ProxyError;
use crate::state::AppState;

pub async fn own_quota(state: &AppState, key: &ApiKey) -> Result<Bytes, ProxyError> {
    let periods = state.config.periods.at(Utc::now());
    let counters = match gate::current_counters(&state.db, key.id, &periods).await {
        Ok(counters) => counters.unwrap_or_default(),
        Err(e) => {
            tracing::error!(error = %e, key_id = key.id, "quota read failed");
            return Err(e.into());
        }
    };
    let held = state.ledger.in_flight(key.id);
    let view = quota_engine::key_view::KeyView::new(key, counters, held.into(), &periods);
    let mut body = serde_json::to_value(&view)
        .map_err(|e| ProxyError::internal(format!("cannot encode the quota: {e}")))?;
    let minute = state.pacer.remaining(key.id, &key.pacing);
    let team = match &key.team {
        None => Value::Null,
        Some(team) => {
            let counters =
                match gate::current_counters(&state.db, AccountId::Team(team.id), &periods).await {
                    Ok(counters) => counters.unwrap_or_default(),
                    Err(e) => {
                        tracing::error!(error = %e, team_id = team.id, "team quota read failed");
                        return Err(e.into());
                    }
                };
            let minute = state
                .pacer
                .remaining(pace_id(AccountId::Team(team.id)), &team.pacing);
            json!({
                "name": team.name,
                "remaining": remaining(&team.limits, &counters, minute),
            })
        }
    };
    if let Value::Object(object) = &mut body {
        object.remove("id");
        object.insert(
            "remaining".into(),
            remaining(&key.limits, &counters, minute),
        );
        object.insert("reserved_tokens".into(), json!(held.tokens));
        object.insert("team".into(), team);
    }
    Ok(Bytes::from(body.to_string()))
}

/// What remains of each limit (GPU time in seconds; `null` where unlimited).
fn remaining(limits: &Limits, counters: &Counters, minute: MinuteRemaining) -> Value {
    let left = |limit: Option<i64>, used: i64| limit.map(|l| (l - used).max(0));
    let left_seconds = |limit: Option<i64>, used: i64| left(limit, used).map(seconds::of);
    json!({
        "day": {
            "requests": left(limits.daily_requests, counters.day_requests),
            "tokens": left(limits.daily_tokens, counters.day_tokens),
            "gpu_seconds": left_seconds(limits.daily_gpu_ms, counters.day_gpu_ms),
        },
        "month": {
            "requests": left(limits.monthly_requests, counters.month_requests),
            "tokens": left(limits.monthly_tokens, counters.month_tokens),
            "gpu_seconds": left_seconds(limits.monthly_gpu_ms, counters.month_gpu_ms),
        },
        // This instance's window (with several instances, each one's own share).
        "minute": {"requests": minute.requests, "tokens": minute.tokens},
    })
}
