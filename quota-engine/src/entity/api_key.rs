use sea_orm::entity::prelude::*;

/// An API key. The plaintext is never stored: `key_hash` is its SHA-256 hex digest and
/// `key_prefix` the first characters, for people to recognise it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    #[sea_orm(unique)]
    pub key_hash: String,
    pub key_prefix: String,
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
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
    /// The key's weight in the fair queue, 1–10.
    pub priority: i32,
    /// JSON array of model names; `None` = every model.
    pub allowed_models: Option<String>,
    /// Whether the key may use the web search tools Ollama runs on the host's ollama.com
    /// account.
    pub allow_web_search: bool,
    /// After a rotation with a grace period: the old secret's digest, accepted until
    /// `previous_key_valid_until`.
    pub previous_key_hash: Option<String>,
    pub previous_key_valid_until: Option<DateTimeUtc>,
    /// The team the key belongs to (its budget is shared with the team's other keys).
    pub team_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
