//! Usage reports, the audit trail and key rotation, on SQLite and PostgreSQL.

use chrono::{Duration, NaiveDate};
use quota_engine::audit::{self, Action, Change};
use quota_engine::usage_log;
use quota_engine::usage_report::{self, GroupBy, ReportRow};
use quota_engine::{keys, NewKey};

use crate::support::{at, databases};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

use crate::support::{new_key as key, usage_record as usage};

/// Every grouping sums the same rows, in day, key, model order; the range is inclusive and
/// days outside it are left out.
#[tokio::test]
async fn report_groups_by_any_subset() {
    for t in databases().await {
        let a = key(&t.db, "alice, \"the\" team").await;
        let b = key(&t.db, "bob").await;
        usage_log::add(
            &t.db,
            &[
                usage(a.id, "2026-10-31", "llama3", 1000, 1000), // before the range
                usage(a.id, "2026-11-01", "llama3", 10, 1),
                usage(a.id, "2026-11-01", "llama3", 20, 2),
                usage(a.id, "2026-11-01", "qwen3", 5, 5),
                usage(b.id, "2026-11-01", "llama3", 7, 3),
                usage(b.id, "2026-11-30", "qwen3", 1, 1),
                usage(b.id, "2026-12-01", "qwen3", 1000, 1000), // after it
            ],
        )
        .await
        .unwrap();
        let report =
            |group| usage_report::report(&t.db, day("2026-11-01"), day("2026-11-30"), group, None);
        let row = |key: Option<&quota_engine::ApiKey>,
                   model: Option<&str>,
                   date: Option<&str>,
                   r,
                   p,
                   c| ReportRow {
            key_id: key.map(|k| k.id),
            key_name: key.map(|k| k.name.clone()),
            team_id: None,
            team_name: None,
            model: model.map(Into::into),
            date: date.map(Into::into),
            requests: r,
            prompt_tokens: p,
            completion_tokens: c,
            gpu: Default::default(),
        };
        assert_eq!(
            report(GroupBy::ALL).await.unwrap(),
            vec![
                row(Some(&a), Some("llama3"), Some("2026-11-01"), 2, 30, 3),
                row(Some(&a), Some("qwen3"), Some("2026-11-01"), 1, 5, 5),
                row(Some(&b), Some("llama3"), Some("2026-11-01"), 1, 7, 3),
                row(Some(&b), Some("qwen3"), Some("2026-11-30"), 1, 1, 1),
            ],
            "{}",
            t.name
        );
        assert_eq!(
            report(GroupBy::parse("key").unwrap()).await.unwrap(),
            vec![
                row(Some(&a), None, None, 3, 35, 8),
                row(Some(&b), None, None, 2, 8, 4)
            ],
            "{}",
            t.name
        );
        assert_eq!(
            report(GroupBy::parse("model,day").unwrap()).await.unwrap(),
            vec![
                row(None, Some("llama3"), Some("2026-11-01"), 3, 37, 6),
                row(None, Some("qwen3"), Some("2026-11-01"), 1, 5, 5),
                row(None, Some("qwen3"), Some("2026-11-30"), 1, 1, 1),
            ],
            "{}",
            t.name
        );
        assert_eq!(
            report(GroupBy::default()).await.unwrap(),
            vec![row(None, None, None, 5, 43, 12)],
            "{}",
            t.name
        );
        let empty = usage_report::report(
            &t.db,
            day("2025-01-01"),
            day("2025-01-31"),
            GroupBy::default(),
            None,
        )
        .await
        .unwrap();
        assert!(empty.is_empty(), "{}: {empty:?}", t.name);
    }
}

/// Entries come back newest first, page by id, filter by key, and keep only changed fields.
#[tokio::test]
async fn audit_trail_pages_and_filters() {
    for t in databases().await {
        let a = key(&t.db, "a").await;
        let b = key(&t.db, "b").await;
        let now = at("2026-11-02T10:00:00Z");
        audit::record(&t.db, Change::created("127.0.0.1", &a, chrono_tz::UTC), now)
            .await
            .unwrap();
        audit::record(&t.db, Change::created("cli", &b, chrono_tz::UTC), now)
            .await
            .unwrap();
        let mut renamed = a.clone();
        renamed.name = "a2".into();
        renamed.limits.daily_tokens = Some(100);
        audit::record(
            &t.db,
            Change::of_key(
                "::1",
                Action::KeyLimitsChanged,
                &a,
                &renamed,
                chrono_tz::UTC,
            ),
            now + Duration::seconds(1),
        )
        .await
        .unwrap();

        let page = |limit, before, key_id| {
            audit::page(
                &t.db,
                audit::Page {
                    limit,
                    before,
                    key_id,
                    action: None,
                },
            )
        };
        let all = page(10, None, None).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["key.limits_changed", "key.created", "key.created"],
            "{}",
            t.name
        );
        let newest = &all[0];
        assert_eq!(newest.client, "::1");
        assert_eq!(
            (newest.key_id, newest.key_name.as_deref()),
            (Some(a.id), Some("a2"))
        );
        assert_eq!(
            newest.before,
            Some(serde_json::json!({"name": "a", "daily_token_limit": null}))
        );
        assert_eq!(
            newest.after,
            Some(serde_json::json!({"name": "a2", "daily_token_limit": 100}))
        );
        assert_eq!(
            all[2].after.as_ref().unwrap()["key_prefix"],
            a.key_prefix.as_str()
        );
        assert_eq!(all[2].before, None);

        let first = page(2, None, None).await.unwrap();
        let second = page(2, Some(first[1].id), None).await.unwrap();
        assert_eq!(first.len() + second.len(), 3, "{}", t.name);
        assert_eq!(second[0].id, all[2].id);
        let of_a = page(10, None, Some(a.id)).await.unwrap();
        assert_eq!(of_a.len(), 2, "{}", t.name);
        let alerts = audit::since(&t.db, Action::KeyCreated, now).await.unwrap();
        assert_eq!(alerts.len(), 2, "{}", t.name);
    }
}

/// A rotated key keeps its id and limits; the new secret is found at once, the old one only
/// until the grace period ends; a second rotation ends the first one's old secret.
#[tokio::test]
async fn rotation_with_and_without_grace() {
    for t in databases().await {
        let now = at("2026-11-02T10:00:00Z");
        let new = NewKey {
            name: "r".into(),
            limits: quota_engine::Limits {
                daily_requests: Some(5),
                ..Default::default()
            },
            ..Default::default()
        };
        let (original, old_secret) = keys::create(&t.db, &new, now).await.unwrap();
        let find = |secret: &str, at| {
            let hash = keys::hash_key(secret);
            let db = t.db.clone();
            async move { keys::find_by_hash(&db, &hash, at).await.unwrap() }
        };

        let rotated = keys::rotate(&t.db, original.id, 3600, now).await.unwrap();
        assert_eq!(rotated.key.id, original.id);
        assert_eq!(rotated.key.limits, original.limits);
        assert_eq!(rotated.old_prefix, original.key_prefix);
        assert_ne!(rotated.key.key_prefix, original.key_prefix);
        assert!(rotated.plaintext.starts_with(&rotated.key.key_prefix));
        let until = now + Duration::seconds(3600);
        assert_eq!(rotated.key.old_secret_valid_until, Some(until));

        let by_new = find(&rotated.plaintext, now).await.unwrap();
        assert_eq!((by_new.id, by_new.secret_valid_until), (original.id, None));
        let by_old = find(&old_secret, now).await.unwrap();
        assert_eq!(by_old.id, original.id, "{}", t.name);
        assert_eq!(by_old.secret_valid_until, Some(until));
        assert!(!by_old.is_rotated_out(now) && by_old.is_rotated_out(until));
        // After the grace period it is still found, as rotated out (the gateway says so).
        let lapsed = find(&old_secret, until).await.unwrap();
        assert!(
            lapsed.is_rotated_out(until),
            "{}: after the grace period",
            t.name
        );

        let again = keys::rotate(&t.db, original.id, 0, now).await.unwrap();
        // The first secret is two rotations old: unknown now.
        assert!(find(&old_secret, now).await.is_none(), "{}", t.name);
        // The one just replaced, without grace, is refused as rotated at once.
        let replaced = find(&rotated.plaintext, now).await.unwrap();
        assert!(replaced.is_rotated_out(now), "{}", t.name);
        assert_eq!(find(&again.plaintext, now).await.unwrap().id, original.id);
        assert_eq!(again.key.old_secret_valid_until, None);

        assert!(matches!(
            keys::rotate(&t.db, original.id, keys::MAX_ROTATION_GRACE_SECONDS + 1, now).await,
            Err(quota_engine::EngineError::Invalid(m)) if m.starts_with("grace_seconds")
        ));
        assert!(matches!(
            keys::rotate(&t.db, 9999, 0, now).await,
            Err(quota_engine::EngineError::KeyNotFound(9999))
        ));
    }
}
