use sea_orm::entity::prelude::*;

/// A key's usage of one model on one local calendar day (in `APP_TZ` when the requests were
/// admitted), so that charts and reports group without time-zone arithmetic in SQL.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_daily")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// GPU time in milliseconds (host time × `gpu_weight`), and Ollama's own breakdown.
    pub gpu_ms: i64,
    pub load_ms: i64,
    pub prompt_eval_ms: i64,
    pub eval_ms: i64,
    /// The team the key belonged to when this usage was last written (null = none).
    pub team_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
