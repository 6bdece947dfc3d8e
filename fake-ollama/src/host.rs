//! Ollama's `Host`-header check (`allowedHostsMiddleware` in `server/routes.go`).
//!
//! When Ollama listens on a loopback address it answers **403 with an empty body** unless the
//! `Host` header names a loopback, private or unspecified IP, `localhost`, a `*.localhost`,
//! `*.local` or `*.internal` name, or is empty. The port, if any, is ignored. The fake applies
//! the same rule when [`crate::FakeConfig::host_check`] is on (it does not accept the machine's
//! hostname or its own non-loopback IPs, which Ollama also allows).

use std::net::IpAddr;

/// Whether Ollama (on loopback) would accept this `Host` header value.
pub fn host_allowed(host: &str) -> bool {
    let host = host.trim();
    if host.is_empty() {
        return true;
    }
    let name = if let Some(rest) = host.strip_prefix('[') {
        // "[::1]" or "[::1]:11434"
        match rest.find(']') {
            Some(end) => &rest[..end],
            None => return false,
        }
    } else if host.bytes().filter(|b| *b == b':').count() == 1 {
        // "name:port" or "1.2.3.4:port"
        host.split(':').next().unwrap_or(host)
    } else {
        // no port, or a bare IPv6 address
        host
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return ip_allowed(ip);
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || ends_with_ignore_case(name, ".localhost")
        || ends_with_ignore_case(name, ".local")
        || ends_with_ignore_case(name, ".internal")
}

fn ip_allowed(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            // fc00::/7 is Go's IsPrivate for IPv6 (unique local addresses).
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() > suffix.len()
        && s.get(s.len() - suffix.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    /// Loopback, private and local names pass with or without a port; public names and IPs do not.
    #[test]
    fn host_rule() {
        for ok in [
            "",
            "localhost",
            "LOCALHOST:11434",
            "api.localhost",
            "foo.local:80",
            "db.internal",
            "127.0.0.1",
            "127.0.0.1:11434",
            "127.9.8.7:1",
            "[::1]",
            "[::1]:11434",
            "::1",
            "10.1.2.3:8080",
            "172.16.0.1",
            "192.168.1.10:11434",
            "0.0.0.0:11434",
            "[fd00::1]:80",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(host_allowed(ok), "{ok:?} should be allowed");
        }
        for bad in [
            "example.com",
            "example.com:11434",
            "8.8.8.8",
            "8.8.8.8:11434",
            "172.32.0.1",
            "[2001:db8::1]:80",
            "localhost.evil.com",
            "[::1",
            "notlocalhost",
        ] {
            assert!(!host_allowed(bad), "{bad:?} should be refused");
        }
    }
}
