use sea_orm::entity::prelude::*;

/// One finished request. `day` is the local calendar day (in `APP_TZ` at the time of the
/// request) so that the per-day charts group without time-zone arithmetic in SQL.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub key_id: i64,
    pub created_at: DateTimeUtc,
    pub day: String,
    pub route: String,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub status: i32,
    pub duration_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
