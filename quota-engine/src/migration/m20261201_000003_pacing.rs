//! Pacing: per-minute limits, a parallel-request cap and a fair-queue priority per key, and
//! the per-minute grants that instances sharing a database take out of a key's window.
//!
//! `pacing_grants` holds, per key, blocks of requests and tokens that an instance took at
//! `granted_at_ms` (the database's clock, milliseconds): the sum of a key's grants over the
//! last minute (plus the grants' lifetime) stays within its per-minute limits (see the pacing
//! module of the quota engine).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    RequestsPerMinute,
    TokensPerMinute,
    MaxParallelRequests,
    Priority,
}

#[derive(DeriveIden)]
enum PacingGrants {
    Table,
    Id,
    KeyId,
    GrantedAtMs,
    Requests,
    Tokens,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            ApiKeys::RequestsPerMinute,
            ApiKeys::TokensPerMinute,
            ApiKeys::MaxParallelRequests,
        ] {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(ColumnDef::new(column).big_integer().null())
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(
                    ColumnDef::new(ApiKeys::Priority)
                        .integer()
                        .not_null()
                        .default(1),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PacingGrants::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(PacingGrants::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(PacingGrants::KeyId).big_integer().not_null())
                .col(
                    ColumnDef::new(PacingGrants::GrantedAtMs)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(PacingGrants::Requests)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(PacingGrants::Tokens)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_pacing_grants_key_time")
                .table(PacingGrants::Table)
                .col(PacingGrants::KeyId)
                .col(PacingGrants::GrantedAtMs)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
