use sea_orm::entity::prelude::*;

/// A team: one budget shared by the keys whose `team_id` names it. The limits are a key's
/// (null = unlimited); its counters live in `team_counters`, kept by the ledger like a key's.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "teams")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub daily_token_limit: Option<i64>,
    pub monthly_token_limit: Option<i64>,
    pub daily_request_limit: Option<i64>,
    pub monthly_request_limit: Option<i64>,
    /// GPU-time limits, in milliseconds.
    pub daily_gpu_ms_limit: Option<i64>,
    pub monthly_gpu_ms_limit: Option<i64>,
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    /// The team's weight in the fair queue, 1–10, shared by its keys.
    pub priority: i32,
    /// JSON array of model names; `None` = every local model.
    pub allowed_models: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
