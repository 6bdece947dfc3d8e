//! The admin password check and the failed-login throttle.
//!
//! Every `/api/*` route except `GET /api/health` and `GET /api/openapi.json` runs behind
//! [`require`]: `Authorization: Bearer <ADMIN_PASSWORD>` (scheme case-insensitive). The
//! comparison is over SHA-256 digests with `subtle`, so it takes the same time whatever the
//! guess and leaks neither the password's bytes nor its length.
//!
//! A request that presents a wrong credential counts as a failure of its client address (the
//! IP, not the port). After [`MAX_FAILURES`] failures within [`WINDOW`] (counted from the
//! first failure) the address gets 429 with `Retry-After` for every protected route until the
//! window is over, also with the right password: a throttled address learns nothing. A request
//! without any `Authorization` header is answered 401 but is not a guess and is not counted.
//! The password never reaches a log line; throttled addresses are logged once per window.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Failed logins one address may make per window.
pub const MAX_FAILURES: u32 = 10;
/// The window, from an address's first failure.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Above this many tracked addresses, finished windows are dropped (bounds memory).
const MAX_TRACKED: usize = 10_000;

/// The password (as a digest) and the throttle. One per router, shared by its requests.
pub struct Guard {
    /// SHA-256 of the admin password; `None` when the password is empty (nothing matches).
    digest: Option<[u8; 32]>,
    throttle: Throttle,
}

impl Guard {
    pub fn new(password: &str) -> Guard {
        Guard {
            digest: (!password.is_empty()).then(|| digest(password)),
            throttle: Throttle::new(MAX_FAILURES, WINDOW),
        }
    }

    /// Decides one request from `client` with `headers` at `now`.
    fn check(&self, client: IpAddr, headers: &HeaderMap, now: Instant) -> Result<(), ApiError> {
        if let Some(retry_after) = self.throttle.refusal(client, now) {
            return Err(ApiError::Throttled { retry_after });
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized);
        };
        let presented = value.to_str().ok().and_then(bearer_token);
        let accepted = match (presented, &self.digest) {
            (Some(token), Some(expected)) => bool::from(digest(token).ct_eq(expected)),
            _ => false,
        };
        if accepted {
            return Ok(());
        }
        if self.throttle.fail(client, now) {
            tracing::warn!(client = %client, failures = MAX_FAILURES, "admin API: too many failed logins; address throttled");
        }
        Err(ApiError::Unauthorized)
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The token of `Bearer <token>` (scheme in any case).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The client's IP as the throttle keys it. Without connection info (a router served without
/// `serve`), every request shares one bucket.
fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |ConnectInfo(addr)| {
            addr.ip().to_canonical()
        })
}

/// The middleware in front of the protected routes.
pub async fn require(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let client = client_ip(&request);
    match guard.check(client, request.headers(), Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Failed logins per address in fixed windows that start at the first failure.
struct Throttle {
    /// Touched only on a failure and on the check before it; never held across an await.
    windows: Mutex<HashMap<IpAddr, Window>>,
    max_failures: u32,
    window: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

impl Throttle {
    fn new(max_failures: u32, window: Duration) -> Throttle {
        Throttle {
            windows: Mutex::new(HashMap::new()),
            max_failures,
            window,
        }
    }

    /// `Some(seconds until the window ends)` when `client` is refused at `now`.
    fn refusal(&self, client: IpAddr, now: Instant) -> Option<u64> {
        let windows = self.windows.lock();
        let w = windows.get(&client)?;
        let ends = w.started + self.window;
        if w.failures < self.max_failures || now >= ends {
            return None;
        }
        let left = ends.saturating_duration_since(now);
        let whole_seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(whole_seconds.max(1))
    }

    /// Counts a failure; true when this one reached the limit.
    fn fail(&self, client: IpAddr, now: Instant) -> bool {
        let mut windows = self.windows.lock();
        if windows.len() >= MAX_TRACKED {
            let window = self.window;
            windows.retain(|_, w| now < w.started + window);
        }
        let w = windows.entry(client).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + self.window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures += 1;
        w.failures == self.max_failures
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Ten failures close the window for that address only, until the window is over.
    #[test]
    fn throttle_window() {
        let t = Throttle::new(10, Duration::from_secs(60));
        let start = Instant::now();
        let a = ip("10.0.0.1");
        for i in 0..10 {
            assert_eq!(t.refusal(a, start), None);
            assert_eq!(t.fail(a, start + Duration::from_secs(i)), i == 9);
        }
        assert_eq!(t.refusal(a, start + Duration::from_secs(10)), Some(50));
        assert_eq!(t.refusal(a, start + Duration::from_millis(59_500)), Some(1));
        assert_eq!(t.refusal(ip("10.0.0.2"), start), None);
        let later = start + Duration::from_secs(60);
        assert_eq!(t.refusal(a, later), None);
        assert!(!t.fail(a, later), "a new window starts from one failure");
        assert_eq!(t.refusal(a, later), None);
    }

    /// Bearer scheme in any case; other schemes and empty tokens are no credential.
    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer_token("bearer  s3cret "), Some("s3cret"));
        assert_eq!(bearer_token("Basic s3cret"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("s3cret"), None);
    }

    /// An empty configured password matches nothing, not even an empty token.
    #[test]
    fn empty_password_never_matches() {
        let guard = Guard::new("");
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert!(guard.check(ip("::1"), &headers, Instant::now()).is_err());
    }
}
