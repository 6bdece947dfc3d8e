//! GPU-time quotas: a key's daily and monthly GPU-time limits (`api_keys.daily_gpu_ms_limit`,
//! `monthly_gpu_ms_limit`, null = unlimited) and the GPU time its counters row holds, used and
//! leased, like requests and tokens (`usage_counters.{day,month}_gpu_ms`,
//! `{day,month}_leased_gpu_ms`). In milliseconds; the admin API shows seconds.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    DailyGpuMsLimit,
    MonthlyGpuMsLimit,
}

#[derive(DeriveIden, Clone, Copy)]
enum UsageCounters {
    Table,
    DayGpuMs,
    MonthGpuMs,
    DayLeasedGpuMs,
    MonthLeasedGpuMs,
}

const LIMITS: [ApiKeys; 2] = [ApiKeys::DailyGpuMsLimit, ApiKeys::MonthlyGpuMsLimit];
const COUNTERS: [UsageCounters; 4] = [
    UsageCounters::DayGpuMs,
    UsageCounters::MonthGpuMs,
    UsageCounters::DayLeasedGpuMs,
    UsageCounters::MonthLeasedGpuMs,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one column per ALTER TABLE.
        for column in LIMITS {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(ColumnDef::new(column).big_integer().null())
                    .to_owned(),
            )
            .await?;
        }
        for column in COUNTERS {
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

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in COUNTERS {
            m.alter_table(
                Table::alter()
                    .table(UsageCounters::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        for column in LIMITS {
            m.alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
