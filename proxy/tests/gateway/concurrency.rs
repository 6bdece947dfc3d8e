use crate::support::{fake, postgres_url, split_burst, Db, Gateway, Options};

/// `n` concurrent requests spread evenly over `gws`.
async fn burst(gws: &[&Gateway], key: &str, n: usize) -> (usize, usize) {
    let counts: Vec<usize> = (0..gws.len())
        .map(|i| n / gws.len() + usize::from(i < n % gws.len()))
        .collect();
    split_burst(gws, key, &counts).await
}

/// 60 concurrent requests on a daily request limit of 20: exactly 20 pass (SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_twenty_of_sixty_sqlite() {
    let upstream = fake();
    let gw = Gateway::start(&upstream.url(), Options::default()).await;
    let key = gw.create_key(&["--daily-requests", "20"]);
    assert_eq!(burst(&[&gw], &key, 60).await, (20, 40));
    assert_eq!(
        upstream
            .requests()
            .iter()
            .filter(|r| r.path == "/api/generate")
            .count(),
        20
    );
}

/// Two gateway processes sharing one PostgreSQL: exactly 20 of 60 pass between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_twenty_of_sixty_across_two_instances_on_postgres() {
    if postgres_url().is_none() {
        return; // run-tests prints how to enable the PostgreSQL tests
    }
    let upstream = fake();
    let first = Gateway::start(
        &upstream.url(),
        Options {
            db: Db::Postgres,
            ..Default::default()
        },
    )
    .await;
    let second = Gateway::start(
        &upstream.url(),
        Options {
            db: Db::Shared(first.database_url.clone()),
            ..Default::default()
        },
    )
    .await;
    let key = first.create_key(&["--daily-requests", "20"]);
    assert_eq!(burst(&[&first, &second], &key, 60).await, (20, 40));
    first.wait_for_counters(1, |c| c.day_requests == 20).await;
}
