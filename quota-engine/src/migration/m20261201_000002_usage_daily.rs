//! Usage per key, day and model, added to as requests finish: what the charts and reports read.
//! Earlier versions wrote one `usage_log` row per request; those rows are summed in here once,
//! and the table is kept as it was (nothing writes it any more).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UsageDaily {
    Table,
    KeyId,
    Day,
    Model,
    Requests,
    PromptTokens,
    CompletionTokens,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let count = |c: UsageDaily| {
            ColumnDef::new(c)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned()
        };
        m.create_table(
            Table::create()
                .table(UsageDaily::Table)
                .if_not_exists()
                .col(ColumnDef::new(UsageDaily::KeyId).big_integer().not_null())
                .col(ColumnDef::new(UsageDaily::Day).string().not_null())
                .col(ColumnDef::new(UsageDaily::Model).string().not_null())
                .col(count(UsageDaily::Requests))
                .col(count(UsageDaily::PromptTokens))
                .col(count(UsageDaily::CompletionTokens))
                .primary_key(
                    Index::create()
                        .col(UsageDaily::KeyId)
                        .col(UsageDaily::Day)
                        .col(UsageDaily::Model),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_usage_daily_key")
                        .from(UsageDaily::Table, UsageDaily::KeyId)
                        .to(ApiKeys::Table, ApiKeys::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO usage_daily (key_id, day, model, requests, prompt_tokens, completion_tokens) \
                 SELECT key_id, day, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) \
                 FROM usage_log GROUP BY key_id, day, model",
            )
            .await?;
        Ok(())
    }
}
