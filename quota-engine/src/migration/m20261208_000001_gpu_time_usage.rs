//! GPU time in the usage per key, day and model (`usage_daily`): the time Ollama hosts spent on
//! a key's requests times each host's `gpu_weight` (`gpu_ms`), and what Ollama reported of it
//! (`load_ms`, `prompt_eval_ms`, `eval_ms`; the `/v1` routes report none), in milliseconds.
//! Zero for the days before: nobody measured it then.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UsageDaily {
    Table,
    GpuMs,
    LoadMs,
    PromptEvalMs,
    EvalMs,
}

const COLUMNS: [UsageDaily; 4] = [
    UsageDaily::GpuMs,
    UsageDaily::LoadMs,
    UsageDaily::PromptEvalMs,
    UsageDaily::EvalMs,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one column per ALTER TABLE.
        for column in COLUMNS {
            m.alter_table(
                Table::alter()
                    .table(UsageDaily::Table)
                    .add_column(ColumnDef::new(column).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS {
            m.alter_table(
                Table::alter()
                    .table(UsageDaily::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
