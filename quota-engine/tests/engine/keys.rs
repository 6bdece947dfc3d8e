use quota_engine::keys::{self, KeyPatch, LimitsPatch};
use quota_engine::{db, EngineError, KeyCache, Limits, NewKey};

use crate::support::{at, databases};

/// A created key is found by its plaintext's digest, listed without any secret, and edited,
/// deactivated, reactivated and deleted.
#[tokio::test]
async fn key_lifecycle() {
    for t in databases().await {
        let now = at("2026-11-29T10:00:00Z");
        let new = NewKey {
            team_id: None,
            name: " demo ".into(),
            expires_at: Some(at("2027-01-31T00:00:00+01:00")),
            limits: Limits {
                daily_requests: Some(5),
                ..Default::default()
            },
            pacing: quota_engine::Pacing {
                requests_per_minute: Some(30),
                max_parallel_requests: Some(2),
                priority: 3,
                ..Default::default()
            },
            allowed_models: Some(vec!["llama3".into()]),
            allow_web_search: false,
        };
        let (key, plaintext) = keys::create(&t.db, &new, now).await.unwrap();
        assert_eq!(key.name, "demo");
        assert!(plaintext.starts_with(&key.key_prefix));
        let found = keys::find_by_hash(&t.db, &keys::hash_key(&plaintext), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, key, "{}", t.name);
        assert!(keys::find_by_hash(&t.db, &keys::hash_key("sk-nope"), now)
            .await
            .unwrap()
            .is_none());
        assert_eq!(keys::list(&t.db).await.unwrap(), vec![key.clone()]);

        let off = keys::set_active(&t.db, key.id, false, now).await.unwrap();
        assert!(!off.is_active);
        let edited = keys::patch(
            &t.db,
            key.id,
            &KeyPatch {
                name: Some("renamed".into()),
                expires_at: Some(None),
                allowed_models: Some(None),
                allow_web_search: Some(true),
                team_id: None,
            },
            now,
        )
        .await
        .unwrap();
        assert_eq!(
            (
                edited.name.as_str(),
                edited.expires_at,
                edited.allowed_models,
                edited.allow_web_search
            ),
            ("renamed", None, None, true)
        );
        let limited = keys::update_limits(
            &t.db,
            key.id,
            &LimitsPatch {
                daily_requests: Some(None),
                monthly_tokens: Some(Some(9)),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
        assert_eq!(
            limited.limits,
            Limits {
                monthly_tokens: Some(9),
                ..Default::default()
            }
        );
        assert!(matches!(
            keys::update_limits(&t.db, key.id, &LimitsPatch { daily_tokens: Some(Some(-1)), ..Default::default() }, now).await,
            Err(EngineError::Invalid(m)) if m.contains("daily_token_limit")
        ));
        // The pacing fields are kept unless the patch names them.
        assert_eq!(limited.pacing.requests_per_minute, Some(30));
        assert_eq!(limited.pacing.priority, 3);
        let paced = keys::update_limits(
            &t.db,
            key.id,
            &LimitsPatch {
                pacing: quota_engine::pacing::PacingPatch {
                    requests_per_minute: Some(None),
                    tokens_per_minute: Some(Some(1000)),
                    priority: Some(None),
                    ..Default::default()
                },
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
        assert_eq!(
            paced.pacing,
            quota_engine::Pacing {
                requests_per_minute: None,
                tokens_per_minute: Some(1000),
                max_parallel_requests: Some(2),
                priority: 1,
            }
        );
        let bad_priority = LimitsPatch {
            pacing: quota_engine::pacing::PacingPatch {
                priority: Some(Some(11)),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(
            keys::update_limits(&t.db, key.id, &bad_priority, now).await,
            Err(EngineError::Invalid(m)) if m.starts_with("priority")
        ));
        assert!(keys::delete(&t.db, key.id).await.unwrap());
        assert!(!keys::delete(&t.db, key.id).await.unwrap());
        assert!(matches!(
            keys::get(&t.db, key.id).await,
            Err(EngineError::KeyNotFound(_))
        ));
    }
}

/// Bad input is refused with a message naming the field, and nothing is written.
#[tokio::test]
async fn invalid_keys_are_refused() {
    for t in databases().await {
        let now = at("2026-11-29T10:00:00Z");
        let empty = NewKey {
            name: "  ".into(),
            ..Default::default()
        };
        assert!(
            matches!(keys::create(&t.db, &empty, now).await, Err(EngineError::Invalid(m)) if m.starts_with("name"))
        );
        let negative = NewKey {
            name: "x".into(),
            limits: Limits {
                monthly_requests: Some(-3),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(
            matches!(keys::create(&t.db, &negative, now).await, Err(EngineError::Invalid(m)) if m.contains("monthly_request_limit"))
        );
        assert!(keys::list(&t.db).await.unwrap().is_empty());
    }
}

/// The cache answers from memory until invalidated: a deactivation made through this
/// instance bites at once.
#[tokio::test]
async fn cache_invalidation() {
    for t in databases().await {
        let cache = KeyCache::new(std::time::Duration::from_secs(60));
        let now = chrono::Utc::now();
        let (key, plaintext) = keys::create(
            &t.db,
            &NewKey {
                name: "c".into(),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
        assert!(
            cache
                .lookup(&t.db, &plaintext)
                .await
                .unwrap()
                .unwrap()
                .is_active
        );
        keys::set_active(&t.db, key.id, false, now).await.unwrap();
        assert!(
            cache
                .lookup(&t.db, &plaintext)
                .await
                .unwrap()
                .unwrap()
                .is_active,
            "served from memory"
        );
        cache.invalidate(key.id);
        assert!(
            !cache
                .lookup(&t.db, &plaintext)
                .await
                .unwrap()
                .unwrap()
                .is_active
        );
        assert!(cache.lookup(&t.db, "sk-unknown").await.unwrap().is_none());
    }
}

/// Running the migrations again changes nothing and loses nothing.
#[tokio::test]
async fn migrate_is_idempotent() {
    for t in databases().await {
        let (key, _) = keys::create(
            &t.db,
            &NewKey {
                name: "m".into(),
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        db::migrate(&t.db).await.unwrap();
        db::migrate(&t.db).await.unwrap();
        assert_eq!(keys::list(&t.db).await.unwrap(), vec![key]);
    }
}
