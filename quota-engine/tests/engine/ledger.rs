use quota_engine::gate::{self, Counters, LimitKind, Payer};
use quota_engine::ledger::{Amount, Metered};
use quota_engine::{keys, Ask, GateDecision, Limits, NewKey};

use crate::support::{at, berlin, databases, ledger};

/// A request of `prompt_tokens` with no answer to bound (the ledger's request-level tests).
pub fn prompt(prompt_tokens: i64) -> Ask {
    Ask {
        prompt_tokens,
        ..Ask::default()
    }
}

/// The key's counters after the ledger's flush.
pub async fn counters(
    l: &quota_engine::Ledger,
    id: i64,
    periods: &quota_engine::PeriodKeys,
) -> Counters {
    l.flush().await.unwrap();
    gate::current_counters(l.db(), id, periods)
        .await
        .unwrap()
        .unwrap()
}

pub fn spawn_flusher(l: &quota_engine::Ledger) -> tokio::task::JoinHandle<()> {
    tokio::spawn(l.clone().run_flusher(std::future::pending()))
}

pub async fn key_with(db: &quota_engine::DatabaseConnection, limits: Limits) -> i64 {
    let new = NewKey {
        name: "t".into(),
        limits,
        ..Default::default()
    };
    keys::create(db, &new, at("2026-11-29T10:00:00Z"))
        .await
        .unwrap()
        .0
        .id
}

/// 60 concurrent requests on a daily request limit of 20: exactly 20 are admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_r_of_many_concurrent_requests_pass() {
    for t in databases().await {
        let l = ledger(&t);
        let limits = Limits {
            daily_requests: Some(20),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let l = l.clone();
                let periods = periods.clone();
                tokio::spawn(async move {
                    l.admit(&Payer::key(id, limits), &prompt(0), &periods)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), GateDecision::Admitted(_)) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 20, "{}", t.name);
        let counters = counters(&l, id, &periods).await;
        assert_eq!(counters.day_requests, 20, "{}", t.name);
    }
}

/// Two ledgers on independent connection pools (two gateway instances) share one limit
/// exactly, even when the load is split unevenly (55/5): the instance that runs out asks the
/// other for its unused lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_limit() {
    for t in databases().await {
        let l = ledger(&t);
        let other = quota_engine::Ledger::new(t.second_pool().await, l.config().clone());
        let limits = Limits {
            monthly_requests: Some(25),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let (a, b) = (spawn_flusher(&l), spawn_flusher(&other));
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let l = if i % 12 == 0 {
                    other.clone()
                } else {
                    l.clone()
                };
                let periods = periods.clone();
                tokio::spawn(async move {
                    l.admit(&Payer::key(id, limits), &prompt(0), &periods)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += usize::from(matches!(task.await.unwrap(), GateDecision::Admitted(_)));
        }
        a.abort();
        b.abort();
        other.shutdown().await.unwrap();
        if t.name == "postgres" {
            assert_eq!(admitted, 25, "{}", t.name);
        } else {
            // Two processes never share a SQLite file (serve refuses the second); two ledgers
            // in one test still never pass the limit.
            assert!(admitted <= 25, "{admitted} admitted on a limit of 25");
        }
        assert!(counters(&l, id, &periods).await.month_requests <= 25);
    }
}

/// 40 concurrent commits lose no update: every token lands in the day and month counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_lose_nothing() {
    for t in databases().await {
        let l = ledger(&t);
        let id = key_with(&t.db, Limits::default()).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let mut admissions = Vec::new();
        for _ in 0..40 {
            match l
                .admit(&Payer::key(id, Limits::default()), &prompt(3), &periods)
                .await
                .unwrap()
            {
                GateDecision::Admitted(a) => admissions.push(a),
                GateDecision::Refused(r) => panic!("refused: {r}"),
            }
        }
        let tasks: Vec<_> = admissions
            .into_iter()
            .map(|a| {
                let l = l.clone();
                let periods = periods.clone();
                tokio::spawn(async move {
                    l.commit(
                        &a,
                        &Payer::key(a.key_id, Limits::default()),
                        &periods,
                        Amount::tokens(3 + 10),
                    )
                    .await
                    .tokens
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let c = counters(&l, id, &periods).await;
        assert_eq!(
            c,
            Counters {
                day_requests: 40,
                day_tokens: 520,
                month_requests: 40,
                month_tokens: 520,
                ..Counters::default()
            },
            "{}",
            t.name
        );
    }
}

/// A limit lowered below the current usage refuses the next request, with a message that
/// names the limit, the usage and the reset instant in the operator's zone.
#[tokio::test]
async fn lowered_limit_refuses() {
    for t in databases().await {
        let l = ledger(&t);
        let id = key_with(&t.db, Limits::default()).await;
        let now = at("2026-11-29T10:00:00Z");
        let periods = berlin().at(now);
        for _ in 0..5 {
            let d = l
                .admit(&Payer::key(id, Limits::default()), &prompt(0), &periods)
                .await
                .unwrap();
            let GateDecision::Admitted(a) = d else {
                panic!("refused")
            };
            l.commit(
                &a,
                &Payer::key(a.key_id, Limits::default()),
                &periods,
                Amount::tokens(2000),
            )
            .await;
        }
        let lowered = Limits {
            daily_tokens: Some(10_000),
            daily_requests: Some(3),
            ..Default::default()
        };
        let GateDecision::Refused(r) = l
            .admit(&Payer::key(id, lowered), &prompt(0), &periods)
            .await
            .unwrap()
        else {
            panic!("admitted over a lowered limit ({})", t.name)
        };
        assert_eq!(r.kind, LimitKind::DailyRequests);
        assert_eq!(
            r.to_string(),
            "daily request quota exceeded (limit 3, used 5), resets 2026-11-30T00:00:00+01:00"
        );
        assert_eq!(r.retry_after_secs(now), 13 * 3600);
        let tokens_only = Limits {
            daily_tokens: Some(10_000),
            ..Default::default()
        };
        let GateDecision::Refused(r) = l
            .admit(&Payer::key(id, tokens_only), &prompt(0), &periods)
            .await
            .unwrap()
        else {
            panic!("admitted over the token limit ({})", t.name)
        };
        assert_eq!(
            r.to_string(),
            "daily token quota exceeded (limit 10000, used 10000), resets 2026-11-30T00:00:00+01:00"
        );
        let c = counters(&l, id, &periods).await;
        assert_eq!(c.day_requests, 5, "refusals count nothing ({})", t.name);
    }
}

/// A prompt that would not fit in what remains of a token quota is refused; one that fits
/// passes and its tokens are reserved at once.
#[tokio::test]
async fn prompt_tokens_must_fit() {
    for t in databases().await {
        let l = ledger(&t);
        let limits = Limits {
            monthly_tokens: Some(100),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let GateDecision::Admitted(a) = l
            .admit(&Payer::key(id, limits), &prompt(60), &periods)
            .await
            .unwrap()
        else {
            panic!("refused")
        };
        assert_eq!(a.counters.month_tokens, 60);
        assert_eq!(a.headroom(&limits, None, &periods).tokens, Some((100, 40)));
        assert_eq!(
            a.headroom(&limits, None, &periods).tokens_reset_at,
            Some(periods.month_resets_at.with_timezone(&chrono::Utc))
        );
        let GateDecision::Refused(r) = l
            .admit(&Payer::key(id, limits), &prompt(41), &periods)
            .await
            .unwrap()
        else {
            panic!("a 41-token prompt fit in 40 ({})", t.name)
        };
        assert_eq!(r.kind, LimitKind::MonthlyTokens);
        assert_eq!(r.resets_at.to_rfc3339(), "2026-12-01T00:00:00+01:00");
        assert!(matches!(
            l.admit(&Payer::key(id, limits), &prompt(40), &periods)
                .await
                .unwrap(),
            GateDecision::Admitted(_)
        ));
    }
}

/// A new day brings a fresh daily budget while the month keeps counting; a new month resets
/// both. The clock is injected.
#[tokio::test]
async fn new_periods_bring_fresh_budget() {
    for t in databases().await {
        let l = ledger(&t);
        let limits = Limits {
            daily_requests: Some(2),
            monthly_requests: Some(3),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let p = berlin();
        let day1 = p.at(at("2026-11-29T22:59:00Z")); // 23:59 local on the 29th
        let day2 = p.at(at("2026-11-29T23:00:00Z")); // 00:00 local on the 30th
        let dec = p.at(at("2026-11-30T23:00:00Z")); // 00:00 local on 1 December
        let admitted = |d: GateDecision| matches!(d, GateDecision::Admitted(_));
        assert!(admitted(
            l.admit(&Payer::key(id, limits), &prompt(0), &day1)
                .await
                .unwrap()
        ));
        assert!(admitted(
            l.admit(&Payer::key(id, limits), &prompt(0), &day1)
                .await
                .unwrap()
        ));
        assert!(!admitted(
            l.admit(&Payer::key(id, limits), &prompt(0), &day1)
                .await
                .unwrap()
        ));
        assert!(admitted(
            l.admit(&Payer::key(id, limits), &prompt(0), &day2)
                .await
                .unwrap()
        ));
        let GateDecision::Refused(r) = l
            .admit(&Payer::key(id, limits), &prompt(0), &day2)
            .await
            .unwrap()
        else {
            panic!("monthly limit not enforced ({})", t.name)
        };
        assert_eq!(r.kind, LimitKind::MonthlyRequests);
        assert!(admitted(
            l.admit(&Payer::key(id, limits), &prompt(0), &dec)
                .await
                .unwrap()
        ));
    }
}

/// A refund takes back the request and its reserved tokens; a commit after midnight goes to
/// the day the request started in, not to the new day.
#[tokio::test]
async fn refund_and_midnight_commit() {
    for t in databases().await {
        let l = ledger(&t);
        let limits = Limits {
            daily_requests: Some(1),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let p = berlin();
        let today = p.at(at("2026-11-29T12:00:00Z"));
        let GateDecision::Admitted(a) = l
            .admit(&Payer::key(id, limits), &prompt(7), &today)
            .await
            .unwrap()
        else {
            panic!("refused")
        };
        l.refund(&a);
        assert_eq!(counters(&l, id, &today).await, Counters::default());
        let GateDecision::Admitted(a) = l
            .admit(&Payer::key(id, limits), &prompt(7), &today)
            .await
            .unwrap()
        else {
            panic!("the refund did not free the request ({})", t.name)
        };
        let tomorrow = p.at(at("2026-11-30T12:00:00Z"));
        assert!(matches!(
            l.admit(&Payer::key(id, limits), &prompt(0), &tomorrow)
                .await
                .unwrap(),
            GateDecision::Admitted(_)
        ));
        l.commit(
            &a,
            &Payer::key(a.key_id, limits),
            &today,
            Amount::tokens(50),
        )
        .await;
        let c = counters(&l, id, &tomorrow).await;
        assert_eq!((c.day_requests, c.day_tokens), (1, 0), "{}", t.name);
        assert_eq!((c.month_requests, c.month_tokens), (2, 50), "{}", t.name);
    }
}

/// A limit of zero refuses everything; unlimited keys report no headroom.
#[tokio::test]
async fn zero_and_unlimited() {
    for t in databases().await {
        let l = ledger(&t);
        let zero = Limits {
            daily_requests: Some(0),
            ..Default::default()
        };
        let id = key_with(&t.db, zero).await;
        let periods = berlin().at(at("2026-11-29T12:00:00Z"));
        assert!(matches!(
            l.admit(&Payer::key(id, zero), &prompt(0), &periods)
                .await
                .unwrap(),
            GateDecision::Refused(_)
        ));
        let GateDecision::Admitted(a) = l
            .admit(&Payer::key(id, Limits::default()), &prompt(0), &periods)
            .await
            .unwrap()
        else {
            panic!("refused")
        };
        assert_eq!(
            a.headroom(&Limits::default(), None, &periods),
            Default::default()
        );
    }
}

/// Commits and refunds reach the database with a flush, and the ledger still refuses
/// over the limit afterwards: 60 concurrent admissions on a limit of 20 → exactly 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flushed_usage_is_exact() {
    for t in databases().await {
        let l = ledger(&t);
        let limits = Limits {
            daily_requests: Some(20),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let l = l.clone();
                let periods = periods.clone();
                tokio::spawn(async move {
                    match l
                        .admit(&Payer::key(id, limits), &prompt(2), &periods)
                        .await
                        .unwrap()
                    {
                        GateDecision::Admitted(a) => {
                            l.commit(
                                &a,
                                &Payer::key(a.key_id, limits),
                                &periods,
                                Amount::tokens(7),
                            )
                            .await;
                            1
                        }
                        GateDecision::Refused(_) => 0,
                    }
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += task.await.unwrap();
        }
        assert_eq!(admitted, 20, "{}", t.name);
        let c = counters(&l, id, &periods).await;
        assert_eq!((c.day_requests, c.day_tokens), (20, 140), "{}", t.name);
        let GateDecision::Refused(_) = l
            .admit(&Payer::key(id, limits), &prompt(0), &periods)
            .await
            .unwrap()
        else {
            panic!("over the limit")
        };
        let unlimited = Limits::default();
        let GateDecision::Admitted(a) = l
            .admit(&Payer::key(id, unlimited), &prompt(5), &periods)
            .await
            .unwrap()
        else {
            panic!("refused")
        };
        l.refund(&a);
        let c = counters(&l, id, &periods).await;
        assert_eq!((c.day_requests, c.day_tokens), (20, 140), "{}", t.name);
    }
}

/// A ledger that stops gives its unused lease back: a second instance can then use the whole
/// rest of the limit, and the first instance's leftover shows as neither used nor held.
#[tokio::test]
async fn shutdown_returns_the_lease() {
    for t in databases().await {
        let l = ledger(&t);
        let limits = Limits {
            daily_requests: Some(1_000),
            daily_tokens: Some(1_000_000),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let GateDecision::Admitted(_) = l
            .admit(&Payer::key(id, limits), &prompt(10), &periods)
            .await
            .unwrap()
        else {
            panic!("refused")
        };
        assert!(
            l.lease_of(id).requests > 0,
            "a block was leased ({})",
            t.name
        );
        l.shutdown().await.unwrap();
        assert_eq!(l.lease_of(id), Default::default());
        let other = quota_engine::Ledger::new(t.second_pool().await, l.config().clone());
        let mut admitted = 0;
        while let GateDecision::Admitted(_) = other
            .admit(&Payer::key(id, limits), &prompt(0), &periods)
            .await
            .unwrap()
        {
            admitted += 1;
            assert!(admitted < 2_000, "runaway");
        }
        assert_eq!(admitted, 999, "{}", t.name);
    }
}

/// A ledger that dies without flushing (kill -9) never lets the next one pass the limit:
/// its lease stays held, so the limit is never exceeded even though its usage was lost.
#[tokio::test]
async fn a_lost_ledger_never_lets_the_next_pass_the_limit() {
    for t in databases().await {
        let l = ledger(&t);
        let limits = Limits {
            daily_requests: Some(100),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let mut first = 0;
        for _ in 0..10 {
            if let GateDecision::Admitted(_) = l
                .admit(&Payer::key(id, limits), &prompt(0), &periods)
                .await
                .unwrap()
            {
                first += 1;
            }
        }
        assert_eq!(first, 10);
        drop(l); // dies: nothing flushed, nothing given back
        let next = quota_engine::Ledger::new(t.second_pool().await, Default::default());
        let mut admitted = 0;
        while let GateDecision::Admitted(_) = next
            .admit(&Payer::key(id, limits), &prompt(0), &periods)
            .await
            .unwrap()
        {
            admitted += 1;
        }
        assert!(
            first + admitted <= 100,
            "{first} + {admitted} on a limit of 100"
        );
        assert!(
            first + admitted >= 100 - 8,
            "under-admission is bounded by one block"
        );
    }
}

/// An answer that ran past a token limit is charged only up to it (the limit holds), and the
/// key is then refused with the token limit named, also while requests still have room,
/// never a database error.
#[tokio::test]
async fn an_overrun_token_limit_refuses_cleanly() {
    for t in databases().await {
        let l = ledger(&t);
        let limits = Limits {
            daily_requests: Some(10),
            daily_tokens: Some(100),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let GateDecision::Admitted(a) = l
            .admit(&Payer::key(id, limits), &prompt(50), &periods)
            .await
            .unwrap()
        else {
            panic!("refused")
        };
        let GateDecision::Admitted(b) = l
            .admit(&Payer::key(id, limits), &prompt(10), &periods)
            .await
            .unwrap()
        else {
            panic!("refused")
        };
        // The answer ran past the limit; its charge stops where the room ended (b still
        // held 10 tokens then), and b's refund is room again.
        assert_eq!(
            l.commit(
                &a,
                &Payer::key(a.key_id, limits),
                &periods,
                Amount::tokens(200)
            )
            .await
            .tokens,
            90,
            "{}",
            t.name
        );
        l.refund(&b);
        let GateDecision::Admitted(_) = l
            .admit(&Payer::key(id, limits), &prompt(10), &periods)
            .await
            .unwrap()
        else {
            panic!("the refunded room was lost ({})", t.name)
        };
        let GateDecision::Refused(r) = l
            .admit(&Payer::key(id, limits), &prompt(1), &periods)
            .await
            .unwrap()
        else {
            panic!("admitted past an exhausted token limit ({})", t.name)
        };
        assert_eq!(r.kind, LimitKind::DailyTokens, "{}", t.name);
        let c = counters(&l, id, &periods).await;
        assert_eq!((c.day_requests, c.day_tokens), (2, 100), "{}", t.name);
    }
}

/// A request timed just before a midnight that the key's lease has already passed is told to
/// take its periods anew (the proxy retries once), instead of moving the quota back a day.
#[tokio::test]
async fn a_request_from_before_midnight_is_stale() {
    for t in databases().await {
        let l = ledger(&t);
        let limits = Limits {
            daily_requests: Some(10),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let p = berlin();
        let before = p.at(at("2026-11-29T22:59:59Z"));
        let after = p.at(at("2026-11-29T23:00:00Z"));
        assert!(matches!(
            l.admit(&Payer::key(id, limits), &prompt(0), &after)
                .await
                .unwrap(),
            GateDecision::Admitted(_)
        ));
        assert!(matches!(
            l.admit(&Payer::key(id, limits), &prompt(0), &before).await,
            Err(quota_engine::EngineError::StalePeriods)
        ));
        // Another instance whose clock is behind is refused the grant too: the row stays in
        // the new day.
        let other = quota_engine::Ledger::new(t.second_pool().await, l.config().clone());
        assert!(matches!(
            other
                .admit(&Payer::key(id, limits), &prompt(0), &before)
                .await,
            Err(quota_engine::EngineError::StalePeriods)
        ));
        let c = counters(&l, id, &after).await;
        assert_eq!(c.day_requests, 1, "{}", t.name);
    }
}

/// One answer streaming `tokens` output tokens the way the proxy meters it: each time the
/// running count reaches the reservation it asks for another block, and it stops when the
/// quota has none (or the answer is done). Returns the tokens it committed.
pub async fn stream_answer(
    l: &quota_engine::Ledger,
    payer: &Payer,
    periods: &quota_engine::PeriodKeys,
    mut admission: quota_engine::Admission,
    prompt_tokens: i64,
    tokens: i64,
) -> i64 {
    let cap = admission.output_cap.unwrap_or(i64::MAX).min(tokens);
    let mut produced = 0;
    while produced < cap {
        produced += 1;
        if prompt_tokens + produced >= admission.reserved_tokens {
            match l.extend(Metered::Tokens, &mut admission, payer, periods, 256) {
                quota_engine::Extension::Exhausted => break,
                quota_engine::Extension::Pending => tokio::task::yield_now().await,
                quota_engine::Extension::Granted(_) => {}
            }
        }
    }
    l.commit(
        &admission,
        payer,
        periods,
        Amount::tokens(prompt_tokens + produced),
    )
    .await
    .tokens
}

/// Hard token quotas: 20 concurrent answers of 400 tokens on a key with 1,000 tokens left
/// bring its committed usage to at most 1,000 and within one reservation block of it, on
/// SQLite and across two ledgers sharing PostgreSQL; the output cap of each admission leaves
/// room for its prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_never_pass_a_token_limit() {
    for t in databases().await {
        let l = ledger(&t);
        let other = if t.name == "postgres" {
            quota_engine::Ledger::new(t.second_pool().await, l.config().clone())
        } else {
            l.clone()
        };
        let limits = Limits {
            daily_tokens: Some(1_000),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let (fa, fb) = (spawn_flusher(&l), spawn_flusher(&other));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let l = if i % 2 == 0 { l.clone() } else { other.clone() };
                let periods = periods.clone();
                tokio::spawn(async move {
                    let ask = Ask {
                        prompt_tokens: 10,
                        generates: true,
                        client_output_limit: None,
                    };
                    match l
                        .admit(&Payer::key(id, limits), &ask, &periods)
                        .await
                        .unwrap()
                    {
                        GateDecision::Admitted(a) => {
                            assert!(a.output_cap.is_some_and(|cap| cap + 10 <= 1_000));
                            stream_answer(&l, &Payer::key(id, limits), &periods, a, 10, 400).await
                        }
                        GateDecision::Refused(r) => {
                            assert_eq!(r.kind, LimitKind::DailyTokens);
                            0
                        }
                    }
                })
            })
            .collect();
        let mut committed = 0;
        for task in tasks {
            committed += task.await.unwrap();
        }
        fa.abort();
        fb.abort();
        other.shutdown().await.unwrap();
        let c = counters(&l, id, &periods).await;
        assert_eq!(c.day_tokens, committed, "{}", t.name);
        assert!(
            (1_000 - 256..=1_000).contains(&c.day_tokens),
            "{}: {} tokens committed",
            t.name,
            c.day_tokens
        );
        assert_eq!(l.in_flight(id), quota_engine::ledger::Amount::default());
    }
}

/// One answer running `ms` of GPU time the way the proxy meters it: each time its time
/// reaches the reservation it asks for another block (here every 100 ms of its time), and it
/// stops when the quota has none. Returns the GPU milliseconds it committed.
async fn run_on_gpu(
    l: &quota_engine::Ledger,
    limits: &Limits,
    periods: &quota_engine::PeriodKeys,
    mut admission: quota_engine::Admission,
    ms: i64,
) -> i64 {
    let payer = Payer::key(admission.key_id, *limits);
    let mut used = 0;
    while used < ms {
        used = (used + 100).min(ms);
        if used >= admission.reserved_gpu_ms {
            match l.extend(Metered::GpuMs, &mut admission, &payer, periods, 500) {
                quota_engine::Extension::Exhausted if used > admission.reserved_gpu_ms => break,
                quota_engine::Extension::Pending => tokio::task::yield_now().await,
                _ => {}
            }
        }
    }
    let used = Amount {
        gpu_ms: used,
        ..Amount::default()
    };
    l.commit(&admission, &payer, periods, used).await.gpu_ms
}

/// GPU-time quotas: 20 concurrent answers of 2 s on a key with 3 s a day bring its committed
/// GPU time to at most 3 s, on SQLite and across two ledgers sharing PostgreSQL; a refusal
/// names the GPU-time limit, and nothing stays in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_never_pass_a_gpu_time_limit() {
    for t in databases().await {
        let l = ledger(&t);
        let other = if t.name == "postgres" {
            quota_engine::Ledger::new(t.second_pool().await, l.config().clone())
        } else {
            l.clone()
        };
        let limits = Limits {
            daily_gpu_ms: Some(3_000),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let (fa, fb) = (spawn_flusher(&l), spawn_flusher(&other));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let l = if i % 2 == 0 { l.clone() } else { other.clone() };
                let periods = periods.clone();
                tokio::spawn(async move {
                    let ask = Ask {
                        generates: true,
                        ..Ask::default()
                    };
                    match l
                        .admit(&Payer::key(id, limits), &ask, &periods)
                        .await
                        .unwrap()
                    {
                        GateDecision::Admitted(a) => {
                            assert!(a.gpu_cap_ms.is_some_and(|cap| cap <= 3_000));
                            run_on_gpu(&l, &limits, &periods, a, 2_000).await
                        }
                        GateDecision::Refused(r) => {
                            assert_eq!(r.kind, LimitKind::DailyGpu);
                            assert!(r.to_string().contains("daily GPU-time quota exceeded"));
                            0
                        }
                    }
                })
            })
            .collect();
        let mut committed = 0;
        for task in tasks {
            committed += task.await.unwrap();
        }
        fa.abort();
        fb.abort();
        other.shutdown().await.unwrap();
        let c = counters(&l, id, &periods).await;
        assert_eq!(c.day_gpu_ms, committed, "{}", t.name);
        assert!(
            (2_000..=3_000).contains(&c.day_gpu_ms),
            "{}: {} ms committed",
            t.name,
            c.day_gpu_ms
        );
        assert_eq!(l.in_flight(id), quota_engine::ledger::Amount::default());
    }
}
