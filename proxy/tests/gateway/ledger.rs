//! The quota ledger through the real binary: leases shared exactly between instances,
//! returned at SIGTERM, usage durable across `kill -9`, one process per SQLite file.

use std::time::Duration;

use crate::support::{fake, postgres_url, split_burst, Db, Gateway, Options};

async fn postgres_pair(upstream: &str) -> (Gateway, Gateway) {
    let first = Gateway::start(
        upstream,
        Options {
            db: Db::Postgres,
            ..Default::default()
        },
    )
    .await;
    let second = Gateway::start(
        upstream,
        Options {
            db: Db::Shared(first.database_url.clone()),
            ..Default::default()
        },
    )
    .await;
    (first, second)
}

/// 60 concurrent requests on a limit of 20, split unevenly across two instances on one
/// PostgreSQL (55 to one, 5 to the other): exactly 20 pass, whichever instance holds the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uneven_split_across_two_instances_is_exact() {
    if postgres_url().is_none() {
        return; // run-tests prints how to enable the PostgreSQL tests
    }
    let upstream = fake();
    let (first, second) = postgres_pair(&upstream.url()).await;
    let key = first.create_key(&["--daily-requests", "20"]);
    assert_eq!(
        split_burst(&[&first, &second], &key, &[55, 5]).await,
        (20, 40)
    );
    first.wait_for_counters(1, |c| c.day_requests == 20).await;
    // And the other way round, on a fresh key.
    let key = first.create_key(&["--daily-requests", "20"]);
    assert_eq!(
        split_burst(&[&first, &second], &key, &[5, 55]).await,
        (20, 40)
    );
    first.wait_for_counters(2, |c| c.day_requests == 20).await;
}

/// An instance stopped with SIGTERM gives its unused lease back and writes its usage: the
/// other instance can then admit exactly the rest of the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_returns_the_unused_lease() {
    if postgres_url().is_none() {
        return;
    }
    let upstream = fake();
    let (mut first, second) = postgres_pair(&upstream.url()).await;
    let key = first.create_key(&["--daily-requests", "200"]);
    assert_eq!(split_burst(&[&first], &key, &[3]).await, (3, 0));
    first.terminate();
    let c = second.counters(1).await;
    assert_eq!(c.day_requests, 3, "SIGTERM wrote the usage");
    let mut admitted = 3;
    loop {
        match split_burst(&[&second], &key, &[10]).await {
            (10, 0) => admitted += 10,
            (ok, _) => {
                admitted += ok;
                break;
            }
        }
        assert!(admitted <= 200, "{admitted} admitted on a limit of 200");
    }
    assert_eq!(admitted, 200, "the stopped instance's lease came back");
}

/// `kill -9` after N finished requests: once the flush interval has passed, a restart shows
/// all N, and the restarted gateway (the file lock died with the process) never lets the key
/// pass its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_flushed_usage() {
    let upstream = fake();
    let mut first = Gateway::start(&upstream.url(), Options::default()).await;
    let key = first.create_key(&["--daily-requests", "50"]);
    assert_eq!(split_burst(&[&first], &key, &[12]).await, (12, 0));
    // The default flush interval is 10 ms; ten of them is ample for the flush to have run.
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.kill();
    let restarted = Gateway::start(
        &upstream.url(),
        Options {
            db: Db::Shared(first.database_url.clone()),
            ..Default::default()
        },
    )
    .await;
    let c = restarted.counters(1).await;
    assert_eq!(
        c.day_requests, 12,
        "every finished request survived kill -9"
    );
    let (ok, limited) = split_burst(&[&restarted], &key, &[60]).await;
    assert!(12 + ok <= 50, "{ok} more admitted after the restart");
    assert!(
        12 + ok >= 50 - 4,
        "under-admission is bounded by one block ({ok} admitted)"
    );
    assert_eq!(ok + limited, 60);
}

/// A second `serve` on the same SQLite file is refused with a message that says why and what
/// to do; the first keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_serve_on_one_sqlite_file_is_refused() {
    let upstream = fake();
    let first = Gateway::start(&upstream.url(), Options::default()).await;
    let (code, stderr) = first.serve_again().await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("another llm-quota serve is already using the SQLite database"),
        "{stderr}"
    );
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    let key = first.create_key(&[]);
    assert_eq!(split_burst(&[&first], &key, &[1]).await, (1, 0));
}

/// SIGTERM while streams run longer than the grace period: the process stops them, and what
/// each had streamed to its client is in the usage after the exit (not only the prompts).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_commits_what_cut_streams_had_sent() {
    use futures_util::StreamExt;
    let upstream = crate::support::fake_with(fake_ollama::FakeConfig {
        chunks: 400,
        chunk_delay: Duration::from_millis(20),
        ..Default::default()
    });
    let mut gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(generate_hi(&gw, &key).await.bytes_stream());
    }
    // Every stream has sent at least 10 tokens to its client.
    for stream in &mut streams {
        let mut lines = 0;
        while lines < 10 {
            let chunk = stream.next().await.unwrap().unwrap();
            lines += chunk.iter().filter(|b| **b == b'\n').count();
        }
    }
    let reader = tokio::spawn(async move {
        for mut stream in streams {
            while let Some(Ok(_)) = stream.next().await {}
        }
    });
    tokio::task::spawn_blocking(move || {
        gw.terminate();
        gw
    })
    .await
    .map(|gw| async move {
        let c = gw.counters(1).await;
        assert_eq!(c.day_requests, 3);
        let prompts = 3 * crate::support::tokens("hi");
        assert!(
            c.day_tokens >= prompts + 30,
            "only {} tokens recorded: the streamed completions were lost",
            c.day_tokens
        );
        assert!(c.day_tokens < prompts + 3 * 400, "{} tokens", c.day_tokens);
    })
    .unwrap()
    .await;
    let _ = reader.await;
}

/// SIGTERM cuts off a failed answer (the host sent a 500 and then hung): the shutdown settles
/// it by the same rule as `logging` does, so it generated nothing and is refunded: the request
/// does not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_refunds_a_failed_answer_it_cuts_off() {
    let upstream = crate::support::fake_with(fake_ollama::FakeConfig {
        error_then_stall: Some(500),
        ..Default::default()
    });
    let mut gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&[]);
    let r = generate_hi(&gw, &key).await;
    assert_eq!(r.status(), 500);
    let gw = tokio::task::spawn_blocking(move || {
        gw.terminate();
        gw
    })
    .await
    .unwrap();
    drop(r);
    let c = gw.counters(1).await;
    assert_eq!((c.day_requests, c.day_tokens), (0, 0), "{c:?}");
}

/// `/api/generate` of `hi` on llama3 (streamed), as the SIGTERM tests send it.
async fn generate_hi(gw: &Gateway, key: &str) -> reqwest::Response {
    gw.post(
        "/api/generate",
        key,
        serde_json::json!({"model": "llama3", "prompt": "hi"}),
    )
    .send()
    .await
    .unwrap()
}
