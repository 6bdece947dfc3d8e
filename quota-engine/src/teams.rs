//! Teams: one budget shared by several keys. A team has the limits a key has; a key belongs
//! to at most one team (`api_keys.team_id`), and every request of the key is admitted against
//! both (the ledger keeps a team's counters exactly as a key's, in `team_counters`).
//!
//! A team change touches its keys' `updated_at`, so every instance's key cache (which holds
//! each key with its team) picks it up within its staleness bound.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, TransactionTrait,
};

use crate::entity::{api_key, team};
use crate::gate::Limits;
use crate::keys::{validate_models, validate_name, LimitsPatch};
use crate::pacing::Pacing;
use crate::{EngineError, Result};

/// A team as the rest of the program sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub limits: Limits,
    pub pacing: Pacing,
    /// `None` = every local model; a key of the team may use a model only if both allow it.
    pub allowed_models: Option<Vec<String>>,
}

impl Team {
    /// Whether the team lets its keys use `model` (cloud models must be named, as for keys).
    pub fn allows_model(&self, model: &str) -> bool {
        crate::keys::models_allow(&self.allowed_models, model)
    }
}

/// What a new team is made of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewTeam {
    pub name: String,
    pub description: Option<String>,
    pub limits: Limits,
    pub pacing: Pacing,
    pub allowed_models: Option<Vec<String>>,
}

/// An edit of a team; `None` leaves a field as it is, `Some(None)` clears it (unlimited).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub limits: LimitsPatch,
    pub allowed_models: Option<Option<Vec<String>>>,
}

/// The longest description kept.
const MAX_DESCRIPTION: usize = 2_000;

fn validate_description(description: &Option<String>) -> Result<Option<String>> {
    let Some(text) = description else {
        return Ok(None);
    };
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(EngineError::Invalid(format!(
            "description: at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

fn decode(m: team::Model) -> Result<Team> {
    let allowed_models =
        match m.allowed_models {
            None => None,
            Some(text) => Some(serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
                EngineError::Corrupt(format!("allowed_models of team {}: {e}", m.id))
            })?),
        };
    Ok(Team {
        id: m.id,
        name: m.name,
        description: m.description,
        created_at: m.created_at,
        limits: Limits {
            daily_tokens: m.daily_token_limit,
            monthly_tokens: m.monthly_token_limit,
            daily_requests: m.daily_request_limit,
            monthly_requests: m.monthly_request_limit,
            daily_gpu_ms: m.daily_gpu_ms_limit,
            monthly_gpu_ms: m.monthly_gpu_ms_limit,
        },
        pacing: Pacing {
            requests_per_minute: m.requests_per_minute,
            tokens_per_minute: m.tokens_per_minute,
            max_parallel_requests: m.max_parallel_requests,
            priority: i64::from(m.priority),
        },
        allowed_models,
    })
}

/// A name another team has already (names are unique, compared as written).
async fn name_taken(db: &impl ConnectionTrait, name: &str, except: Option<i64>) -> Result<bool> {
    let mut query = team::Entity::find().filter(team::Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(team::Column::Id.ne(id));
    }
    Ok(query.count(db).await? > 0)
}

fn name_conflict(name: &str) -> EngineError {
    EngineError::Conflict(format!(
        "name: a team named {name:?} exists already; pick another name"
    ))
}

/// Creates a team (and its counters row).
pub async fn create(db: &impl TransactionTrait, new: &NewTeam, now: DateTime<Utc>) -> Result<Team> {
    let name = validate_name(&new.name)?;
    let description = validate_description(&new.description)?;
    new.limits.validate()?;
    new.pacing.validate()?;
    let allowed_models = validate_models(&new.allowed_models)?;
    let txn = db.begin().await?;
    if name_taken(&txn, &name, None).await? {
        return Err(name_conflict(&name));
    }
    let model = team::ActiveModel {
        name: Set(name),
        description: Set(description),
        created_at: Set(now),
        updated_at: Set(now),
        daily_token_limit: Set(new.limits.daily_tokens),
        monthly_token_limit: Set(new.limits.monthly_tokens),
        daily_request_limit: Set(new.limits.daily_requests),
        monthly_request_limit: Set(new.limits.monthly_requests),
        daily_gpu_ms_limit: Set(new.limits.daily_gpu_ms),
        monthly_gpu_ms_limit: Set(new.limits.monthly_gpu_ms),
        requests_per_minute: Set(new.pacing.requests_per_minute),
        tokens_per_minute: Set(new.pacing.tokens_per_minute),
        max_parallel_requests: Set(new.pacing.max_parallel_requests),
        priority: Set(new.pacing.priority_column()),
        allowed_models: Set(allowed_models),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| unique_violation(e, &new.name))?;
    crate::gate::ensure_counters_row(&txn, crate::gate::AccountId::Team(model.id)).await?;
    txn.commit().await?;
    decode(model)
}

/// Two concurrent creations of one name: the second insert fails on the unique index.
fn unique_violation(e: sea_orm::DbErr, name: &str) -> EngineError {
    let text = e.to_string().to_lowercase();
    if text.contains("unique") || text.contains("duplicate") {
        name_conflict(name)
    } else {
        e.into()
    }
}

/// Every team, by name.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Team>> {
    team::Entity::find()
        .order_by_asc(team::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}

pub async fn get(db: &impl ConnectionTrait, id: i64) -> Result<Team> {
    let model = team::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(EngineError::TeamNotFound(id))?;
    decode(model)
}

/// The team named `name` (as the CLI's `--team NAME` finds it).
pub async fn find_by_name(db: &impl ConnectionTrait, name: &str) -> Result<Option<Team>> {
    team::Entity::find()
        .filter(team::Column::Name.eq(name.trim()))
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// How many keys belong to each team, by team id.
pub async fn key_counts(db: &impl ConnectionTrait) -> Result<std::collections::HashMap<i64, u64>> {
    let mut counts = std::collections::HashMap::new();
    for team_id in api_key::Entity::find()
        .filter(api_key::Column::TeamId.is_not_null())
        .all(db)
        .await?
        .into_iter()
        .filter_map(|k| k.team_id)
    {
        *counts.entry(team_id).or_insert(0) += 1;
    }
    Ok(counts)
}

/// Edits a team; its keys' cached copies are refreshed everywhere (see the module doc).
pub async fn patch(
    db: &impl TransactionTrait,
    id: i64,
    patch: &TeamPatch,
    now: DateTime<Utc>,
) -> Result<Team> {
    let txn = db.begin().await?;
    let found = team::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(EngineError::TeamNotFound(id))?;
    let current = decode(found.clone())?;
    let limits = patch.limits.apply_limits(current.limits)?;
    let pacing = patch.limits.pacing.apply(current.pacing);
    pacing.validate()?;
    let mut model: team::ActiveModel = found.into();
    if let Some(name) = &patch.name {
        let name = validate_name(name)?;
        if name_taken(&txn, &name, Some(id)).await? {
            return Err(name_conflict(&name));
        }
        model.name = Set(name);
    }
    if let Some(description) = &patch.description {
        model.description = Set(validate_description(description)?);
    }
    if let Some(models) = &patch.allowed_models {
        model.allowed_models = Set(validate_models(models)?);
    }
    model.daily_token_limit = Set(limits.daily_tokens);
    model.monthly_token_limit = Set(limits.monthly_tokens);
    model.daily_request_limit = Set(limits.daily_requests);
    model.monthly_request_limit = Set(limits.monthly_requests);
    model.daily_gpu_ms_limit = Set(limits.daily_gpu_ms);
    model.monthly_gpu_ms_limit = Set(limits.monthly_gpu_ms);
    model.requests_per_minute = Set(pacing.requests_per_minute);
    model.tokens_per_minute = Set(pacing.tokens_per_minute);
    model.max_parallel_requests = Set(pacing.max_parallel_requests);
    model.priority = Set(pacing.priority_column());
    model.updated_at = Set(now);
    let name = patch.name.clone().unwrap_or_default();
    let updated = model
        .update(&txn)
        .await
        .map_err(|e| unique_violation(e, &name))?;
    touch_members(&txn, id, now).await?;
    txn.commit().await?;
    decode(updated)
}

/// Marks the team's keys changed, so that other instances reload them with the team.
async fn touch_members(db: &impl ConnectionTrait, team_id: i64, now: DateTime<Utc>) -> Result<()> {
    api_key::Entity::update_many()
        .col_expr(
            api_key::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(api_key::Column::TeamId.eq(team_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes a team with its counters. Refused ([`EngineError::Conflict`]) while keys belong to
/// it: moving or deleting them is the operator's decision. Returns the team deleted.
pub async fn delete(db: &impl TransactionTrait, id: i64) -> Result<Team> {
    let txn = db.begin().await?;
    let found = team::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(EngineError::TeamNotFound(id))?;
    let members = api_key::Entity::find()
        .filter(api_key::Column::TeamId.eq(id))
        .count(&txn)
        .await?;
    if members > 0 {
        return Err(EngineError::Conflict(format!(
            "team {:?} still has {members} key{}; move them to another team or none, or delete \
             them, first",
            found.name,
            if members == 1 { "" } else { "s" }
        )));
    }
    let team = decode(found)?;
    crate::gate::delete_counters_row(&txn, crate::gate::AccountId::Team(id)).await?;
    team::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(team)
}
