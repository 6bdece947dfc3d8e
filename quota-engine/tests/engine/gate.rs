use quota_engine::gate::{self, Counters, LimitKind};
use quota_engine::{keys, GateDecision, Limits, NewKey};

use crate::support::{at, berlin, databases};

async fn key_with(db: &quota_engine::DatabaseConnection, limits: Limits) -> i64 {
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
        let limits = Limits {
            daily_requests: Some(20),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let db = t.db.clone();
                let periods = periods.clone();
                tokio::spawn(
                    async move { gate::admit(&db, id, &limits, 0, &periods).await.unwrap() },
                )
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), GateDecision::Admitted(_)) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 20, "{}", t.name);
        let counters = gate::current_counters(&t.db, id, &periods)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counters.day_requests, 20, "{}", t.name);
    }
}

/// Two independent connection pools (two gateway instances) share one limit exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_limit() {
    for t in databases().await {
        let other = t.second_pool().await;
        let limits = Limits {
            monthly_requests: Some(25),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let tasks: Vec<_> = (0..80)
            .map(|i| {
                let db = if i % 2 == 0 {
                    t.db.clone()
                } else {
                    other.clone()
                };
                let periods = periods.clone();
                tokio::spawn(
                    async move { gate::admit(&db, id, &limits, 0, &periods).await.unwrap() },
                )
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += usize::from(matches!(task.await.unwrap(), GateDecision::Admitted(_)));
        }
        assert_eq!(admitted, 25, "{}", t.name);
    }
}

/// 40 concurrent commits lose no update: every token lands in the day and month counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_lose_nothing() {
    for t in databases().await {
        let id = key_with(&t.db, Limits::default()).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let mut admissions = Vec::new();
        for _ in 0..40 {
            match gate::admit(&t.db, id, &Limits::default(), 3, &periods)
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
                let db = t.db.clone();
                tokio::spawn(async move { gate::commit(&db, &a, 3 + 10).await.unwrap() })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let c = gate::current_counters(&t.db, id, &periods)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            c,
            Counters {
                day_requests: 40,
                day_tokens: 520,
                month_requests: 40,
                month_tokens: 520
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
        let id = key_with(&t.db, Limits::default()).await;
        let now = at("2026-11-29T10:00:00Z");
        let periods = berlin().at(now);
        for _ in 0..5 {
            let d = gate::admit(&t.db, id, &Limits::default(), 0, &periods)
                .await
                .unwrap();
            let GateDecision::Admitted(a) = d else {
                panic!("refused")
            };
            gate::commit(&t.db, &a, 2000).await.unwrap();
        }
        let lowered = Limits {
            daily_tokens: Some(10_000),
            daily_requests: Some(3),
            ..Default::default()
        };
        let GateDecision::Refused(r) = gate::admit(&t.db, id, &lowered, 0, &periods).await.unwrap()
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
        let GateDecision::Refused(r) = gate::admit(&t.db, id, &tokens_only, 0, &periods)
            .await
            .unwrap()
        else {
            panic!("admitted over the token limit ({})", t.name)
        };
        assert_eq!(
            r.to_string(),
            "daily token quota exceeded (limit 10000, used 10000), resets 2026-11-30T00:00:00+01:00"
        );
        let c = gate::current_counters(&t.db, id, &periods)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.day_requests, 5, "refusals count nothing ({})", t.name);
    }
}

/// A prompt that would not fit in what remains of a token quota is refused; one that fits
/// passes and its tokens are reserved at once.
#[tokio::test]
async fn prompt_tokens_must_fit() {
    for t in databases().await {
        let limits = Limits {
            monthly_tokens: Some(100),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let GateDecision::Admitted(a) =
            gate::admit(&t.db, id, &limits, 60, &periods).await.unwrap()
        else {
            panic!("refused")
        };
        assert_eq!(a.counters.month_tokens, 60);
        assert_eq!(a.headroom(&limits).tokens, Some((100, 40)));
        let GateDecision::Refused(r) = gate::admit(&t.db, id, &limits, 41, &periods).await.unwrap()
        else {
            panic!("a 41-token prompt fit in 40 ({})", t.name)
        };
        assert_eq!(r.kind, LimitKind::MonthlyTokens);
        assert_eq!(r.resets_at.to_rfc3339(), "2026-12-01T00:00:00+01:00");
        assert!(matches!(
            gate::admit(&t.db, id, &limits, 40, &periods).await.unwrap(),
            GateDecision::Admitted(_)
        ));
    }
}

/// A new day brings a fresh daily budget while the month keeps counting; a new month resets
/// both. The clock is injected.
#[tokio::test]
async fn new_periods_bring_fresh_budget() {
    for t in databases().await {
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
            gate::admit(&t.db, id, &limits, 0, &day1).await.unwrap()
        ));
        assert!(admitted(
            gate::admit(&t.db, id, &limits, 0, &day1).await.unwrap()
        ));
        assert!(!admitted(
            gate::admit(&t.db, id, &limits, 0, &day1).await.unwrap()
        ));
        assert!(admitted(
            gate::admit(&t.db, id, &limits, 0, &day2).await.unwrap()
        ));
        let GateDecision::Refused(r) = gate::admit(&t.db, id, &limits, 0, &day2).await.unwrap()
        else {
            panic!("monthly limit not enforced ({})", t.name)
        };
        assert_eq!(r.kind, LimitKind::MonthlyRequests);
        assert!(admitted(
            gate::admit(&t.db, id, &limits, 0, &dec).await.unwrap()
        ));
    }
}

/// A refund takes back the request and its reserved tokens; a commit after midnight goes to
/// the day the request started in, not to the new day.
#[tokio::test]
async fn refund_and_midnight_commit() {
    for t in databases().await {
        let limits = Limits {
            daily_requests: Some(1),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let p = berlin();
        let today = p.at(at("2026-11-29T12:00:00Z"));
        let GateDecision::Admitted(a) = gate::admit(&t.db, id, &limits, 7, &today).await.unwrap()
        else {
            panic!("refused")
        };
        gate::refund(&t.db, &a).await.unwrap();
        assert_eq!(
            gate::current_counters(&t.db, id, &today)
                .await
                .unwrap()
                .unwrap(),
            Counters::default()
        );
        let GateDecision::Admitted(a) = gate::admit(&t.db, id, &limits, 7, &today).await.unwrap()
        else {
            panic!("the refund did not free the request ({})", t.name)
        };
        let tomorrow = p.at(at("2026-11-30T12:00:00Z"));
        assert!(matches!(
            gate::admit(&t.db, id, &limits, 0, &tomorrow).await.unwrap(),
            GateDecision::Admitted(_)
        ));
        gate::commit(&t.db, &a, 50).await.unwrap();
        let c = gate::current_counters(&t.db, id, &tomorrow)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.day_requests, c.day_tokens), (1, 0), "{}", t.name);
        assert_eq!((c.month_requests, c.month_tokens), (2, 50), "{}", t.name);
    }
}

/// A limit of zero refuses everything; unlimited keys report no headroom.
#[tokio::test]
async fn zero_and_unlimited() {
    for t in databases().await {
        let zero = Limits {
            daily_requests: Some(0),
            ..Default::default()
        };
        let id = key_with(&t.db, zero).await;
        let periods = berlin().at(at("2026-11-29T12:00:00Z"));
        assert!(matches!(
            gate::admit(&t.db, id, &zero, 0, &periods).await.unwrap(),
            GateDecision::Refused(_)
        ));
        let GateDecision::Admitted(a) = gate::admit(&t.db, id, &Limits::default(), 0, &periods)
            .await
            .unwrap()
        else {
            panic!("refused")
        };
        assert_eq!(a.headroom(&Limits::default()), Default::default());
    }
}

/// The gate service (group commit on SQLite, direct on PostgreSQL) keeps the promise: 60
/// concurrent admissions on a limit of 20 → exactly 20, and concurrent commits and refunds
/// lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gate_service_is_exact() {
    for t in databases().await {
        let service = quota_engine::GateService::start(t.db.clone());
        let limits = Limits {
            daily_requests: Some(20),
            ..Default::default()
        };
        let id = key_with(&t.db, limits).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let service = service.clone();
                let periods = periods.clone();
                tokio::spawn(async move {
                    match service.admit(id, &limits, 2, &periods).await.unwrap() {
                        GateDecision::Admitted(a) => {
                            service.commit(&a, 7).await.unwrap();
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
        let c = gate::current_counters(&t.db, id, &periods)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.day_requests, c.day_tokens), (20, 140), "{}", t.name);
        let GateDecision::Refused(_) = service.admit(id, &limits, 0, &periods).await.unwrap()
        else {
            panic!("over the limit")
        };
        let unlimited = Limits::default();
        let GateDecision::Admitted(a) = service.admit(id, &unlimited, 5, &periods).await.unwrap()
        else {
            panic!("refused")
        };
        service.refund(&a).await.unwrap();
        let c = gate::current_counters(&t.db, id, &periods)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.day_requests, c.day_tokens), (20, 140), "{}", t.name);
    }
}
