//! Micro-benchmark of the ledger's part of one request: admit + commit, sequentially and with
//! 64 concurrent tasks, on a SQLite file, with the flusher running. `cargo run --release -p
//! quota-engine --example ledger_bench`. Results go to docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use quota_engine::{
    db, keys, DatabaseUrl, GateDecision, Ledger, LedgerConfig, Limits, NewKey, Payer, Periods,
};
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::parse(&format!("sqlite://{}/b.db", dir.path().display())).unwrap();
    let conn = db::connect(&url).await.unwrap();
    db::migrate(&conn).await.unwrap();
    let limits = Limits {
        daily_requests: Some(1 << 40),
        daily_tokens: Some(1 << 50),
        ..Default::default()
    };
    let (key, _) = keys::create(
        &conn,
        &NewKey {
            name: "b".into(),
            limits,
            ..Default::default()
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let periods = Periods::from_name("Europe/Berlin")
        .unwrap()
        .at(chrono::Utc::now());
    let ledger = Ledger::new(conn.clone(), LedgerConfig::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let flusher = tokio::spawn(ledger.clone().run_flusher(async move {
        let _ = stopped.await;
    }));
    for conc in [1usize, 64] {
        let n = 20_000usize;
        let start = Instant::now();
        let tasks: Vec<_> = (0..conc)
            .map(|_| {
                let ledger = ledger.clone();
                let periods = periods.clone();
                tokio::spawn(async move {
                    for _ in 0..n / conc {
                        let GateDecision::Admitted(a) = ledger
                            .admit(
                                &Payer::key(key.id, limits),
                                &quota_engine::Ask {
                                    prompt_tokens: 10,
                                    ..Default::default()
                                },
                                &periods,
                            )
                            .await
                            .unwrap()
                        else {
                            panic!()
                        };
                        ledger
                            .commit(
                                &a,
                                &Payer::key(a.key_id, limits),
                                &periods,
                                quota_engine::ledger::Amount::tokens(20),
                            )
                            .await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let el = start.elapsed().as_secs_f64();
        println!(
            "concurrency {conc}: {:.0} admit+commit pairs/s",
            n as f64 / el
        );
    }
    let _ = stop.send(());
    flusher.await.unwrap();
}
