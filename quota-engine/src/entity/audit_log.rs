use sea_orm::entity::prelude::*;

/// One admin change or alert: who (the admin client's address, `cli`, `gateway`), what
/// (`key.created`…), on which key, and the changed values before and after as JSON text.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    pub client: String,
    pub action: String,
    pub key_id: Option<i64>,
    pub key_name: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
