//! Compressed request bodies: Codex and other OpenAI Responses clients send
//! `Content-Encoding: zstd` (Ollama decodes it on `/v1/responses`, `middleware/openai.go`), and
//! some HTTP clients gzip large bodies. The gateway must read the JSON to count and authorise
//! it, so it decodes the body once, bounded by `proxy.max_request_body_bytes` after decoding
//! (a small bomb cannot expand past it), and forwards the decoded bytes without the header.

use std::io::Read;

use bytes::Bytes;

use super::errors::ProxyError;

/// `body` decoded from `encoding` (the request's `Content-Encoding`, lower case); at most
/// `limit` bytes once decoded.
pub fn decode(encoding: Option<&str>, body: Bytes, limit: u64) -> Result<Bytes, ProxyError> {
    match encoding {
        None | Some("" | "identity") => Ok(body),
        Some("gzip" | "x-gzip") => read_bounded(flate2::read::MultiGzDecoder::new(&body[..]), "gzip", limit),
        Some("zstd") => match zstd::stream::read::Decoder::new(&body[..]) {
            Ok(mut decoder) => {
                // An 8 MiB window at most, as Ollama's own decoder: a tiny frame must not
                // make the gateway allocate zstd's default 128 MiB.
                if let Err(e) = decoder.window_log_max(23) {
                    return Err(undecodable("zstd", &e));
                }
                read_bounded(decoder, "zstd", limit)
            }
            Err(e) => Err(undecodable("zstd", &e)),
        },
        Some(other) => Err(ProxyError::unsupported_encoding(format!(
            "Content-Encoding {other:?} is not supported: send the body uncompressed, or with gzip or zstd"
        ))),
    }
}

fn read_bounded(reader: impl Read, name: &str, limit: u64) -> Result<Bytes, ProxyError> {
    let mut out = Vec::new();
    match reader.take(limit.saturating_add(1)).read_to_end(&mut out) {
        Ok(_) if out.len() as u64 > limit => Err(ProxyError::too_large(limit)),
        Ok(_) => Ok(Bytes::from(out)),
        Err(e) => Err(undecodable(name, &e)),
    }
}

fn undecodable(name: &str, error: &std::io::Error) -> ProxyError {
    ProxyError::bad_request(format!(
        "the request body is not valid {name} (Content-Encoding: {name}): {error}"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        Bytes::from(encoder.finish().unwrap())
    }

    /// gzip and zstd decode to the original; nothing else changes an unencoded body.
    #[test]
    fn decodes() {
        let json = br#"{"model":"m","input":"hello"}"#;
        assert_eq!(decode(Some("gzip"), gzip(json), 1000).unwrap(), &json[..]);
        let z = Bytes::from(zstd::encode_all(&json[..], 3).unwrap());
        assert_eq!(decode(Some("zstd"), z, 1000).unwrap(), &json[..]);
        let plain = Bytes::from_static(json);
        assert_eq!(decode(None, plain.clone(), 1000).unwrap(), plain);
        assert_eq!(
            decode(Some("identity"), plain.clone(), 1000).unwrap(),
            plain
        );
    }

    /// The limit applies after decoding: a small body that expands past it is a 413; a body
    /// that is not what its header says is a 400; an unknown encoding a 415.
    #[test]
    fn refuses() {
        let bomb = gzip(&vec![b' '; 1_000_000]);
        assert!(bomb.len() < 10_000);
        assert_eq!(decode(Some("gzip"), bomb, 100_000).unwrap_err().status, 413);
        let z = Bytes::from(zstd::encode_all(&vec![b' '; 1_000_000][..], 3).unwrap());
        assert_eq!(decode(Some("zstd"), z, 100_000).unwrap_err().status, 413);
        let e = decode(Some("zstd"), Bytes::from_static(b"{}"), 100).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("zstd"), "{}", e.message);
        assert_eq!(
            decode(Some("gzip"), Bytes::from_static(b"{}"), 100)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            decode(Some("br"), Bytes::from_static(b"{}"), 100)
                .unwrap_err()
                .status,
            415
        );
    }
}
