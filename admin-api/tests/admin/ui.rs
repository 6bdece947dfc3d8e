//! The web UI at `/`: the page shown when the binary has no UI, the single-page app's
//! fallback, static files, and `/api/*` staying JSON.

use admin_api::UiAssets;
use axum::body::Body;
use axum::http::{header, Method, StatusCode};

use crate::support::{harness_with, request, Answer, Harness, Options};

const INDEX: &str = "<!doctype html><title>llm-quota</title><div id=root></div>";
const SCRIPT: &str = "console.log('app')";

async fn with_ui(ui: UiAssets) -> Harness {
    harness_with(Options {
        ui: Some(ui),
        ..Options::default()
    })
    .await
}

fn built() -> UiAssets {
    UiAssets::from_files([
        ("index.html", INDEX),
        ("assets/index-3f2a9c.js", SCRIPT),
        ("favicon.svg", "<svg/>"),
    ])
}

/// A request without credentials: the UI's files need none.
async fn open(h: &Harness, method: Method, path: &str) -> Answer {
    h.send(
        request(method, path, "127.0.0.1:40000")
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn text(answer: &Answer) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

/// Built without `ui/dist`, every page says how to build the UI, and the API still works.
#[tokio::test]
async fn without_ui_a_page_says_how_to_build_it() {
    let h = with_ui(UiAssets::none()).await;
    for path in ["/", "/keys", "/keys/12"] {
        let answer = open(&h, Method::GET, path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(
            answer.header(header::CONTENT_TYPE),
            Some("text/html; charset=utf-8")
        );
        let page = text(&answer);
        assert!(
            page.contains("cd ui &amp;&amp; npm ci &amp;&amp; npm run build"),
            "{page}"
        );
        assert!(page.contains("cargo build"), "{page}");
    }
    assert_eq!(h.get("/api/api-keys").await.status, StatusCode::OK);
}

/// Unknown non-API paths get `index.html` (the app routes itself); files are served with
/// their type; `/` needs no password.
#[tokio::test]
async fn spa_fallback_serves_index_for_app_paths() {
    let h = with_ui(built()).await;
    for path in ["/", "/keys", "/keys/7", "/settings", "/connect?x=1"] {
        let answer = open(&h, Method::GET, path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(text(&answer), INDEX, "{path}");
        assert_eq!(answer.header(header::CACHE_CONTROL), Some("no-cache"));
        assert!(answer
            .header(header::CONTENT_SECURITY_POLICY)
            .is_some_and(|csp| csp.contains("frame-ancestors 'none'")));
    }
    let script = open(&h, Method::GET, "/assets/index-3f2a9c.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(text(&script), SCRIPT);
    assert_eq!(
        script.header(header::CONTENT_TYPE),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        script.header(header::CACHE_CONTROL),
        Some("public, max-age=31536000, immutable")
    );
    let icon = open(&h, Method::GET, "/favicon.svg").await;
    assert_eq!(icon.header(header::CONTENT_TYPE), Some("image/svg+xml"));
}

/// A missing file is a plain 404, not the app's HTML; paths that climb out are not files.
#[tokio::test]
async fn missing_files_are_404() {
    let h = with_ui(built()).await;
    let answer = open(&h, Method::GET, "/assets/gone-123.js").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_ne!(text(&answer), INDEX);
    let answer = open(&h, Method::GET, "/assets/../index.html").await;
    assert_ne!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
}

/// Unknown `/api/*` paths stay JSON 404s; other methods than GET/HEAD on UI paths too.
#[tokio::test]
async fn api_paths_never_fall_back_to_the_app() {
    let h = with_ui(built()).await;
    for path in ["/api", "/api/", "/api/nope", "/api/keys/3"] {
        let answer = h.get(path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.error(), "no such endpoint", "{path}");
    }
    let answer = open(&h, Method::GET, "/api/nope").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error(), "no such endpoint");
    let answer = h.call(Method::POST, "/keys", None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error(), "no such endpoint");
}

/// A client holding the current `ETag` gets 304 without a body.
#[tokio::test]
async fn etag_revalidation() {
    let h = with_ui(built()).await;
    let first = open(&h, Method::GET, "/").await;
    let etag = first.header(header::ETAG).unwrap().to_owned();
    let again = h
        .send(
            request(Method::GET, "/keys", "127.0.0.1:40000")
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
}

/// The router the binary uses serves a page at `/` whether or not this build has `ui/dist`:
/// the app, or the page that says how to build it.
#[tokio::test]
async fn embedded_ui_serves_a_page() {
    let h = harness_with(Options::default()).await;
    let answer = open(&h, Method::GET, "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header(header::CONTENT_TYPE),
        Some("text/html; charset=utf-8")
    );
    let page = text(&answer);
    assert_eq!(
        UiAssets::embedded().is_built(),
        !page.contains("The admin UI is not built"),
        "{page}"
    );
}
