//! The last flush of each running ledger: `ledger_instances` holds, per ledger instance (a
//! random id per process), the sequence number of its last committed flush, written in the
//! flush's own transaction. A flush whose outcome is unknown (the connection broke around its
//! commit) is looked up here before its deltas are written again, so a retry never applies
//! them twice.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LedgerInstances {
    Table,
    Instance,
    Seq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(LedgerInstances::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(LedgerInstances::Instance)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(LedgerInstances::Seq)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await
    }
}
