//! Running the gateway for a team: key rotation with a grace period, the audit trail, and an
//! index for usage reports over a date range.
//!
//! - `api_keys.previous_key_hash` / `previous_key_valid_until`: the digest of a rotated key's
//!   old secret and until when it is still accepted (both null when there is none).
//! - `audit_log`: one row per admin change (and per alert sent), with the values before and
//!   after as JSON text; never a secret.
//! - `idx_usage_daily_day`: reports read `usage_daily` by day range, across keys.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    PreviousKeyHash,
    PreviousKeyValidUntil,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Client,
    Action,
    KeyId,
    KeyName,
    Before,
    After,
}

#[derive(DeriveIden)]
enum UsageDaily {
    Table,
    Day,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(ColumnDef::new(ApiKeys::PreviousKeyHash).string().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(
                    ColumnDef::new(ApiKeys::PreviousKeyValidUntil)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_api_keys_previous_hash")
                .table(ApiKeys::Table)
                .col(ApiKeys::PreviousKeyHash)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(AuditLog::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(AuditLog::At)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(AuditLog::Client).string().not_null())
                .col(ColumnDef::new(AuditLog::Action).string().not_null())
                .col(ColumnDef::new(AuditLog::KeyId).big_integer().null())
                .col(ColumnDef::new(AuditLog::KeyName).string().null())
                .col(ColumnDef::new(AuditLog::Before).text().null())
                .col(ColumnDef::new(AuditLog::After).text().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_audit_log_key")
                .table(AuditLog::Table)
                .col(AuditLog::KeyId)
                .col(AuditLog::Id)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_usage_daily_day")
                .table(UsageDaily::Table)
                .col(UsageDaily::Day)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
