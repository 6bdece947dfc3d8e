//! Leases: room that an instance has taken from a key's counters to admit locally.
//!
//! The `*_leased_*` columns hold room that instances have moved out of the shared row and not
//! yet used or given back (see the ledger in `crate::ledger`); `lease_demand` is bumped by an
//! instance that found no room while others held some, asking them to give theirs back.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UsageCounters {
    Table,
    DayLeasedRequests,
    DayLeasedTokens,
    MonthLeasedRequests,
    MonthLeasedTokens,
    LeaseDemand,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            UsageCounters::DayLeasedRequests,
            UsageCounters::DayLeasedTokens,
            UsageCounters::MonthLeasedRequests,
            UsageCounters::MonthLeasedTokens,
            UsageCounters::LeaseDemand,
        ] {
            m.alter_table(
                Table::alter()
                    .table(UsageCounters::Table)
                    .add_column(ColumnDef::new(column).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
