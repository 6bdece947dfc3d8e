//! The admin password and the failed-login throttle.

use axum::body::Body;
use axum::http::{header, Method, StatusCode};

use crate::support::{harness, request, PASSWORD};

/// `GET /api/health` answers without a password.
#[tokio::test]
async fn health_needs_no_password() {
    let h = harness().await;
    let answer = h
        .send(
            request(Method::GET, "/api/health", "10.0.0.1:1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), serde_json::json!({"status": "ok"}));
}

/// Without `Authorization`, every protected route is 401 with a JSON error and a Bearer
/// challenge.
#[tokio::test]
async fn missing_password_is_401() {
    let h = harness().await;
    for (method, path) in [
        (Method::GET, "/api/api-keys"),
        (Method::POST, "/api/api-keys"),
        (Method::PUT, "/api/api-keys/1/activate"),
        (Method::GET, "/api/settings"),
        (Method::GET, "/api/upstreams"),
        (Method::GET, "/api/ollama-models"),
        (Method::GET, "/api/proxy-info"),
    ] {
        let answer = h
            .send(
                request(method.clone(), path, "10.0.0.1:1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(answer.error().contains("admin password"));
        assert_eq!(answer.header(header::WWW_AUTHENTICATE), Some("Bearer"));
    }
}

/// A wrong password, another scheme or a prefix of the right password is 401; the right one
/// passes with the scheme in any case.
#[tokio::test]
async fn wrong_password_is_401() {
    let h = harness().await;
    let prefix = format!("Bearer {}", &PASSWORD[..5]);
    let basic = format!("Basic {PASSWORD}");
    for value in ["Bearer nope", prefix.as_str(), basic.as_str(), PASSWORD] {
        let answer = h
            .send(
                request(Method::GET, "/api/api-keys", "10.0.0.2:1")
                    .header(header::AUTHORIZATION, value)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{value}");
    }
    let answer = h
        .send(
            request(Method::GET, "/api/api-keys", "10.0.0.2:1")
                .header(header::AUTHORIZATION, format!("bEaReR {PASSWORD}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
}

/// After 10 wrong passwords from one address, that address gets 429 with `Retry-After` (even
/// with the right password) while other addresses are unaffected.
#[tokio::test]
async fn throttle_after_ten_failures() {
    let h = harness().await;
    let attempt = |client: &'static str, password: &'static str| {
        request(Method::GET, "/api/settings", client)
            .header(header::AUTHORIZATION, format!("Bearer {password}"))
            .body(Body::empty())
            .unwrap()
    };
    for i in 0..10 {
        let answer = h.send(attempt("192.0.2.7:4000", "guess")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Another port of the same address is the same client.
    for password in ["guess", PASSWORD] {
        let answer = h.send(attempt("192.0.2.7:4001", password)).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = answer.header(header::RETRY_AFTER).unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert!(answer.error().contains("too many failed login attempts"));
    }
    let other = h.send(attempt("192.0.2.8:4000", PASSWORD)).await;
    assert_eq!(other.status, StatusCode::OK);
    let health = h
        .send(
            request(Method::GET, "/api/health", "192.0.2.7:4000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(health.status, StatusCode::OK, "health stays open");
}

/// Requests without any credential are not guesses: they never trigger the throttle.
#[tokio::test]
async fn missing_header_is_not_counted() {
    let h = harness().await;
    for _ in 0..15 {
        let answer = h
            .send(
                request(Method::GET, "/api/settings", "192.0.2.9:1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
}
