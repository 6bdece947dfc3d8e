//! Teams: one budget shared by several keys.
//!
//! - `teams`: a team's name (unique), description and the limits a key has (tokens, requests
//!   and GPU milliseconds per day and month, per-minute limits, the parallel cap, the
//!   fair-queue priority, allowed models), null = unlimited.
//! - `api_keys.team_id`: the team a key belongs to (null = none), indexed for "the keys of a
//!   team".
//! - `team_counters`: a team's counters row, the same columns as a key's `usage_counters`
//!   (used and leased per kind and period, the lease demand): the ledger keeps teams exactly
//!   as it keeps keys.
//! - `usage_daily.team_id`: the team the key belonged to when the usage was written (reports
//!   grouped by team do not move when a key moves).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Teams {
    Table,
    Id,
    Name,
    Description,
    CreatedAt,
    UpdatedAt,
    DailyTokenLimit,
    MonthlyTokenLimit,
    DailyRequestLimit,
    MonthlyRequestLimit,
    DailyGpuMsLimit,
    MonthlyGpuMsLimit,
    RequestsPerMinute,
    TokensPerMinute,
    MaxParallelRequests,
    Priority,
    AllowedModels,
}

#[derive(DeriveIden, Clone, Copy)]
enum TeamCounters {
    Table,
    TeamId,
    DayPeriod,
    MonthPeriod,
    DayRequests,
    DayTokens,
    DayGpuMs,
    MonthRequests,
    MonthTokens,
    MonthGpuMs,
    DayLeasedRequests,
    DayLeasedTokens,
    DayLeasedGpuMs,
    MonthLeasedRequests,
    MonthLeasedTokens,
    MonthLeasedGpuMs,
    LeaseDemand,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    TeamId,
}

#[derive(DeriveIden)]
enum UsageDaily {
    Table,
    TeamId,
}

const TEAM_LIMITS: [Teams; 9] = [
    Teams::DailyTokenLimit,
    Teams::MonthlyTokenLimit,
    Teams::DailyRequestLimit,
    Teams::MonthlyRequestLimit,
    Teams::DailyGpuMsLimit,
    Teams::MonthlyGpuMsLimit,
    Teams::RequestsPerMinute,
    Teams::TokensPerMinute,
    Teams::MaxParallelRequests,
];

const COUNTS: [TeamCounters; 13] = [
    TeamCounters::DayRequests,
    TeamCounters::DayTokens,
    TeamCounters::DayGpuMs,
    TeamCounters::MonthRequests,
    TeamCounters::MonthTokens,
    TeamCounters::MonthGpuMs,
    TeamCounters::DayLeasedRequests,
    TeamCounters::DayLeasedTokens,
    TeamCounters::DayLeasedGpuMs,
    TeamCounters::MonthLeasedRequests,
    TeamCounters::MonthLeasedTokens,
    TeamCounters::MonthLeasedGpuMs,
    TeamCounters::LeaseDemand,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut teams = Table::create();
        teams
            .table(Teams::Table)
            .if_not_exists()
            .col(
                ColumnDef::new(Teams::Id)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ColumnDef::new(Teams::Name).string().not_null().unique_key())
            .col(ColumnDef::new(Teams::Description).text().null())
            .col(
                ColumnDef::new(Teams::CreatedAt)
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .col(
                ColumnDef::new(Teams::UpdatedAt)
                    .timestamp_with_time_zone()
                    .not_null(),
            );
        for column in TEAM_LIMITS {
            teams.col(ColumnDef::new(column).big_integer().null());
        }
        teams
            .col(
                ColumnDef::new(Teams::Priority)
                    .integer()
                    .not_null()
                    .default(1),
            )
            .col(ColumnDef::new(Teams::AllowedModels).text().null());
        m.create_table(teams.to_owned()).await?;

        let mut counters = Table::create();
        counters
            .table(TeamCounters::Table)
            .if_not_exists()
            .col(
                ColumnDef::new(TeamCounters::TeamId)
                    .big_integer()
                    .not_null()
                    .primary_key(),
            )
            .col(
                ColumnDef::new(TeamCounters::DayPeriod)
                    .string()
                    .not_null()
                    .default(""),
            )
            .col(
                ColumnDef::new(TeamCounters::MonthPeriod)
                    .string()
                    .not_null()
                    .default(""),
            );
        for column in COUNTS {
            counters.col(ColumnDef::new(column).big_integer().not_null().default(0));
        }
        counters.foreign_key(
            ForeignKey::create()
                .from(TeamCounters::Table, TeamCounters::TeamId)
                .to(Teams::Table, Teams::Id)
                .on_delete(ForeignKeyAction::Cascade),
        );
        m.create_table(counters.to_owned()).await?;

        // SQLite adds one column per ALTER TABLE, and cannot add a foreign key to a table:
        // the engine refuses to delete a team that keys still belong to.
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(ColumnDef::new(ApiKeys::TeamId).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_api_keys_team")
                .table(ApiKeys::Table)
                .col(ApiKeys::TeamId)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(UsageDaily::Table)
                .add_column(ColumnDef::new(UsageDaily::TeamId).big_integer().null())
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(UsageDaily::Table)
                .drop_column(UsageDaily::TeamId)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("idx_api_keys_team")
                .table(ApiKeys::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .drop_column(ApiKeys::TeamId)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(TeamCounters::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Teams::Table).to_owned())
            .await?;
        Ok(())
    }
}
