//! Helpers shared by the integration tests: a raw HTTP/1.1 client over TCP (to see the exact
//! bytes, chunk boundaries and connection drops) and small body parsers.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// A raw HTTP response: status, headers (lower-case names), decoded body, and for chunked
/// bodies the individual chunks and whether the terminating zero-length chunk arrived.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunks: Vec<Vec<u8>>,
    pub chunked: bool,
    pub complete: bool,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Sends one request with `Connection: close` and reads until the server closes.
pub fn raw(addr: SocketAddr, method: &str, path: &str, host: &str, body: Option<&str>) -> Raw {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        match s.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            // a reset after an aborted body still leaves what was read
            Err(_) => break,
        }
    }
    parse_response(&buf)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_response(buf: &[u8]) -> Raw {
    let head_end = find(buf, b"\r\n\r\n").expect("no header end");
    let head = std::str::from_utf8(&buf[..head_end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let rest = &buf[head_end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if !chunked {
        return Raw {
            status,
            headers,
            body: rest.to_vec(),
            chunks: Vec::new(),
            chunked,
            complete: true,
        };
    }
    let mut chunks = Vec::new();
    let mut body = Vec::new();
    let mut pos = 0;
    let mut complete = false;
    while let Some(eol) = find(&rest[pos..], b"\r\n") {
        let size_str = std::str::from_utf8(&rest[pos..pos + eol]).unwrap();
        let size = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16).unwrap();
        let start = pos + eol + 2;
        if size == 0 {
            complete = rest.len() >= start + 2 && &rest[start..start + 2] == b"\r\n";
            break;
        }
        if rest.len() < start + size + 2 {
            // truncated chunk
            body.extend_from_slice(&rest[start.min(rest.len())..]);
            break;
        }
        let data = rest[start..start + size].to_vec();
        body.extend_from_slice(&data);
        chunks.push(data);
        pos = start + size + 2;
    }
    Raw {
        status,
        headers,
        body,
        chunks,
        chunked,
        complete,
    }
}

/// NDJSON body → one JSON value per line (every line must end with `\n`).
pub fn ndjson(body: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "NDJSON must end with a newline"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// One SSE event.
#[derive(Debug, Clone)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// SSE body → events (every event must end with a blank line).
pub fn sse(body: &[u8]) -> Vec<Event> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with("\n\n"), "SSE must end with a blank line");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut event = None;
            let mut data = None;
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(v.to_string());
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Event {
                event,
                data: data.expect("event without data"),
            }
        })
        .collect()
}
