//! The admin web UI (`ui/`, React + Vite) served by the admin listener at `/`.
//!
//! `ui/dist` (the output of `cd ui && npm ci && npm run build`) is embedded with `rust-embed`:
//! a release build carries the files inside the binary; a debug build reads them from
//! `ui/dist` on disk at every request, so a debug binary built before the UI serves it as soon
//! as it exists (the order `run-tests` relies on). When `ui/dist` is absent at compile time
//! the build still works and `/` serves [`NOT_BUILT_PAGE`], which says how to build the UI.
//! `build.rs` sets `LLM_QUOTA_UI_DIST` (the canonical path of `ui/dist`, also before it
//! exists) and makes cargo re-embed when `ui/dist` appears or changes.
//!
//! Routing (`GET`/`HEAD` of any path that is not `/api` or under `/api/`):
//! - a file of the build (`/assets/index-3f2a.js`, `/favicon.svg`) is served with its type;
//!   hashed files under `/assets/` are cached for a year, everything else is revalidated
//!   (`no-cache` with an `ETag`);
//! - a path whose last segment has a dot but names no file is a plain 404 (a missing script
//!   must not come back as HTML);
//! - any other path is a page of the single-page app: `index.html` (the app routes itself).
//!
//! `/api/*` paths never reach this module: an unknown one stays a JSON 404.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The files of `ui/dist`, embedded in release builds and read from disk in debug builds.
#[derive(rust_embed::Embed)]
#[folder = "$LLM_QUOTA_UI_DIST"]
#[allow_missing = true]
struct Dist;

/// Where the UI's files come from. [`UiAssets::embedded`] in the binary; tests give their own
/// files (or none) so they do not depend on whether `ui/dist` was built.
#[derive(Clone)]
pub struct UiAssets {
    source: Source,
}

#[derive(Clone)]
enum Source {
    Embedded,
    /// Path (without a leading `/`) → content. Shared by every request.
    Files(Arc<HashMap<String, Vec<u8>>>),
}

impl UiAssets {
    /// `ui/dist` as embedded at compile time (read from disk in debug builds).
    pub fn embedded() -> UiAssets {
        UiAssets {
            source: Source::Embedded,
        }
    }

    /// Given files, keyed by their path in the build (`index.html`, `assets/app.js`).
    pub fn from_files<P: Into<String>, C: Into<Vec<u8>>>(
        files: impl IntoIterator<Item = (P, C)>,
    ) -> UiAssets {
        let files = files
            .into_iter()
            .map(|(path, content)| (path.into(), content.into()))
            .collect();
        UiAssets {
            source: Source::Files(Arc::new(files)),
        }
    }

    /// No UI at all: every page is [`NOT_BUILT_PAGE`].
    pub fn none() -> UiAssets {
        UiAssets::from_files(Vec::<(String, Vec<u8>)>::new())
    }

    /// Whether the built UI is there (its `index.html`).
    pub fn is_built(&self) -> bool {
        self.get("index.html").is_some()
    }

    fn get(&self, path: &str) -> Option<Cow<'static, [u8]>> {
        match &self.source {
            Source::Embedded => Dist::get(path).map(|file| file.data),
            Source::Files(files) => files.get(path).map(|c| Cow::Owned(c.clone())),
        }
    }
}

/// The page served at `/` when the binary was built without `ui/dist`.
pub const NOT_BUILT_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llm-quota admin: UI not built</title>
<style>
  body { font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2430;
         background: #f5f6f8; margin: 0; display: grid; place-items: center; min-height: 100vh; }
  main { background: #fff; border: 1px solid #e2e5ea; border-radius: 10px; padding: 28px 32px;
         max-width: 620px; margin: 24px; box-shadow: 0 1px 3px rgba(0,0,0,.06); }
  h1 { font-size: 20px; margin: 0 0 8px; }
  code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
  pre { background: #11151c; color: #e8ecf2; padding: 12px 14px; border-radius: 8px; overflow-x: auto; }
  .muted { color: #5b6472; }
</style>
</head>
<body>
<main>
  <h1>The admin UI is not built into this binary</h1>
  <p>This <code>llm-quota</code> was compiled without <code>ui/dist</code>. Build the UI, then
  build the binary again (it embeds the UI at compile time):</p>
  <pre>cd ui &amp;&amp; npm ci &amp;&amp; npm run build
cd .. &amp;&amp; cargo build --release -p llm-quota</pre>
  <p class="muted">A debug build reads <code>ui/dist</code> from disk, so it only needs the first
  line. The admin API itself works without the UI: its description is at
  <a href="/api/openapi.json"><code>/api/openapi.json</code></a>.</p>
</main>
</body>
</html>
"#;

/// What every page of the UI may load: its own scripts and styles, images from itself or
/// `data:` URLs, API calls to itself. Nothing may frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    style-src 'self' 'unsafe-inline'; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The router's fallback: the UI for `GET`/`HEAD` of non-API paths, a JSON 404 for the rest.
pub async fn fallback(ui: UiAssets, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if is_api(path) || (method != Method::GET && method != Method::HEAD) {
        return crate::routes::not_found().await.into_response();
    }
    respond(&ui, path, &headers)
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The answer for `path` (already known to be a UI path).
fn respond(ui: &UiAssets, path: &str, request: &HeaderMap) -> Response {
    let relative = path.trim_start_matches('/');
    let safe = !relative
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
        && !relative.contains('\\');
    if safe && !relative.is_empty() {
        if let Some(content) = ui.get(relative) {
            let cache = if relative.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            return file(content, content_type(relative), cache, request);
        }
        let last = relative.rsplit('/').next().unwrap_or_default();
        if last.contains('.') {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "not found\n",
            )
                .into_response();
        }
    }
    match ui.get("index.html") {
        Some(index) => file(index, "text/html; charset=utf-8", "no-cache", request),
        None => file(
            Cow::Borrowed(NOT_BUILT_PAGE.as_bytes()),
            "text/html; charset=utf-8",
            "no-cache",
            request,
        ),
    }
}

/// A 200 with `content`, or a 304 when the client's `If-None-Match` has its `ETag`.
fn file(
    content: Cow<'static, [u8]>,
    content_type: &'static str,
    cache_control: &'static str,
    request: &HeaderMap,
) -> Response {
    let etag = format!("\"{}\"", hex(&Sha256::digest(&content)[..16]));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(content))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The types a Vite build produces; anything else is served as bytes.
fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, e)| e);
    match extension.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Types of the files a Vite build writes.
    #[test]
    fn content_types() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/index-3f2a.JS"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    /// Only `/api` and what is under it is the API.
    #[test]
    fn api_paths() {
        assert!(is_api("/api"));
        assert!(is_api("/api/nope"));
        assert!(!is_api("/apiary"));
        assert!(!is_api("/keys/3"));
    }
}
