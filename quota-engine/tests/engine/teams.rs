//! Teams: one budget shared by several keys, admitted against the key and its team at once,
//! on SQLite and across two ledgers sharing PostgreSQL.

use quota_engine::gate::{self, AccountId, LimitKind, Payer};
use quota_engine::teams::{self, NewTeam};
use quota_engine::{keys, Ask, EngineError, GateDecision, KeyPatch, Limits, NewKey};

use crate::ledger::{prompt, spawn_flusher, stream_answer};
use crate::support::{at, berlin, databases, ledger};

async fn team_with(db: &quota_engine::DatabaseConnection, name: &str, limits: Limits) -> i64 {
    let new = NewTeam {
        name: name.into(),
        limits,
        ..Default::default()
    };
    teams::create(db, &new, at("2026-11-29T10:00:00Z"))
        .await
        .unwrap()
        .id
}

async fn member(
    db: &quota_engine::DatabaseConnection,
    team_id: i64,
    limits: Limits,
) -> quota_engine::ApiKey {
    let new = NewKey {
        name: "member".into(),
        limits,
        team_id: Some(team_id),
        ..Default::default()
    };
    keys::create(db, &new, at("2026-11-29T10:00:00Z"))
        .await
        .unwrap()
        .0
}

async fn team_counters(
    l: &quota_engine::Ledger,
    team_id: i64,
    periods: &quota_engine::PeriodKeys,
) -> gate::Counters {
    l.flush().await.unwrap();
    gate::current_counters(l.db(), AccountId::Team(team_id), periods)
        .await
        .unwrap()
        .unwrap()
}

/// A team with a daily request limit of 5 and three unlimited keys: of 30 concurrent requests
/// spread over them, exactly 5 pass; on PostgreSQL also when two instances take them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_the_team_limit_passes() {
    for t in databases().await {
        let l = ledger(&t);
        let other = if t.name == "postgres" {
            quota_engine::Ledger::new(t.second_pool().await, l.config().clone())
        } else {
            l.clone()
        };
        let limits = Limits {
            daily_requests: Some(5),
            ..Default::default()
        };
        let team = team_with(&t.db, "data", limits).await;
        let mut members = Vec::new();
        for _ in 0..3 {
            members.push(Payer::of(&member(&t.db, team, Limits::default()).await));
        }
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let (fa, fb) = (spawn_flusher(&l), spawn_flusher(&other));
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let l = if i % 2 == 0 { l.clone() } else { other.clone() };
                let payer = members[i % 3].clone();
                let periods = periods.clone();
                tokio::spawn(async move { l.admit(&payer, &prompt(0), &periods).await.unwrap() })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            match task.await.unwrap() {
                GateDecision::Admitted(a) => {
                    assert_eq!(a.team.as_ref().map(|s| s.team_id), Some(team));
                    admitted += 1;
                }
                GateDecision::Refused(r) => {
                    assert_eq!(r.team.as_deref(), Some("data"), "{}", t.name);
                    assert_eq!(r.label(), "team_daily_requests");
                    assert!(r
                        .to_string()
                        .starts_with("team \"data\" daily request quota exceeded"));
                }
            }
        }
        fa.abort();
        fb.abort();
        other.shutdown().await.unwrap();
        assert_eq!(admitted, 5, "{}", t.name);
        assert_eq!(team_counters(&l, team, &periods).await.day_requests, 5);
    }
}

/// A key's own limit tighter than its team's still holds, and a refusal by the key leaves
/// the team's count untouched (admission is one step over both).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tighter_key_limit_still_holds() {
    for t in databases().await {
        let l = ledger(&t);
        let team = team_with(
            &t.db,
            "ops",
            Limits {
                daily_requests: Some(10),
                ..Default::default()
            },
        )
        .await;
        let tight = Payer::of(
            &member(
                &t.db,
                team,
                Limits {
                    daily_requests: Some(2),
                    ..Default::default()
                },
            )
            .await,
        );
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let mut admitted = 0;
        for _ in 0..6 {
            match l.admit(&tight, &prompt(0), &periods).await.unwrap() {
                GateDecision::Admitted(_) => admitted += 1,
                GateDecision::Refused(r) => {
                    assert_eq!(r.team, None, "the key's own limit: {r}");
                    assert_eq!(r.kind, LimitKind::DailyRequests);
                }
            }
        }
        assert_eq!(admitted, 2, "{}", t.name);
        assert_eq!(team_counters(&l, team, &periods).await.day_requests, 2);
    }
}

/// Hard token quotas: 20 concurrent answers of 400 tokens from three keys of a team with 1,000
/// tokens a day end at most at 1,000 committed for the team, on SQLite and across two
/// ledgers on PostgreSQL; each answer's cap is the team's room.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_never_pass_a_team_token_limit() {
    for t in databases().await {
        let l = ledger(&t);
        let other = if t.name == "postgres" {
            quota_engine::Ledger::new(t.second_pool().await, l.config().clone())
        } else {
            l.clone()
        };
        let team = team_with(
            &t.db,
            "writers",
            Limits {
                daily_tokens: Some(1_000),
                ..Default::default()
            },
        )
        .await;
        let mut members = Vec::new();
        for _ in 0..3 {
            members.push(Payer::of(&member(&t.db, team, Limits::default()).await));
        }
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let (fa, fb) = (spawn_flusher(&l), spawn_flusher(&other));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let l = if i % 2 == 0 { l.clone() } else { other.clone() };
                let payer = members[i % 3].clone();
                let periods = periods.clone();
                tokio::spawn(async move {
                    let ask = Ask {
                        prompt_tokens: 10,
                        generates: true,
                        client_output_limit: None,
                    };
                    match l.admit(&payer, &ask, &periods).await.unwrap() {
                        GateDecision::Admitted(a) => {
                            assert!(a.output_cap.is_some_and(|cap| cap + 10 <= 1_000));
                            stream_answer(&l, &payer, &periods, a, 10, 400).await
                        }
                        GateDecision::Refused(r) => {
                            assert_eq!(r.label(), "team_daily_tokens");
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
        let c = team_counters(&l, team, &periods).await;
        assert_eq!(c.day_tokens, committed, "{}", t.name);
        assert!(
            (1_000 - 256..=1_000).contains(&c.day_tokens),
            "{}: {} tokens committed for the team",
            t.name,
            c.day_tokens
        );
        assert_eq!(l.in_flight(AccountId::Team(team)), Default::default());
    }
}

/// Moving a key to another team moves its future usage only; a team that keys belong to
/// cannot be deleted; an empty one can.
#[tokio::test]
async fn moving_a_key_and_deleting_a_team() {
    for t in databases().await {
        let l = ledger(&t);
        let a = team_with(&t.db, "a", Limits::default()).await;
        let b = team_with(&t.db, "b", Limits::default()).await;
        let key = member(&t.db, a, Limits::default()).await;
        let periods = berlin().at(at("2026-11-29T10:00:00Z"));
        let GateDecision::Admitted(first) = l
            .admit(&Payer::of(&key), &prompt(3), &periods)
            .await
            .unwrap()
        else {
            panic!("refused")
        };
        l.commit(
            &first,
            &Payer::of(&key),
            &periods,
            quota_engine::ledger::Amount::tokens(3),
        )
        .await;
        let moved = keys::patch(
            &t.db,
            key.id,
            &KeyPatch {
                team_id: Some(Some(b)),
                ..Default::default()
            },
            at("2026-11-29T11:00:00Z"),
        )
        .await
        .unwrap();
        assert_eq!(moved.team_id(), Some(b));
        let GateDecision::Admitted(_) = l
            .admit(&Payer::of(&moved), &prompt(4), &periods)
            .await
            .unwrap()
        else {
            panic!("refused")
        };
        let (ca, cb) = (
            team_counters(&l, a, &periods).await,
            team_counters(&l, b, &periods).await,
        );
        assert_eq!((ca.day_requests, ca.day_tokens), (1, 3), "{}", t.name);
        assert_eq!((cb.day_requests, cb.day_tokens), (1, 4), "{}", t.name);
        let refused = teams::delete(&t.db, b).await;
        assert!(
            matches!(&refused, Err(EngineError::Conflict(m)) if m.contains("still has 1 key")),
            "{refused:?}"
        );
        assert_eq!(teams::delete(&t.db, a).await.unwrap().name, "a");
        // A team's name is unique; a key cannot join a team that does not exist.
        let taken = teams::create(
            &t.db,
            &NewTeam {
                name: "b".into(),
                ..Default::default()
            },
            at("2026-11-29T12:00:00Z"),
        )
        .await;
        assert!(matches!(taken, Err(EngineError::Conflict(_))), "{taken:?}");
        let missing = keys::patch(
            &t.db,
            key.id,
            &KeyPatch {
                team_id: Some(Some(9_999)),
                ..Default::default()
            },
            at("2026-11-29T12:00:00Z"),
        )
        .await;
        assert!(
            matches!(&missing, Err(EngineError::Invalid(m)) if m.starts_with("team_id:")),
            "{missing:?}"
        );
    }
}
