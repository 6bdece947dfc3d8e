"""Faults with real clients: a body over the size limit is answered 413 and the client can
read that answer, even one that sends the whole body before reading (Python's http.client)."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlparse


def test_a_too_large_body_is_a_413_the_client_can_read(gateway, new_key):
    key = new_key()
    url = urlparse(gateway.proxy)
    body = b'{"model":"llama3","prompt":"' + b"a" * (33 << 20) + b'"}'
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        # http.client writes the whole body before it reads the answer.
        conn.request(
            "POST",
            "/api/generate",
            body=body,
            headers={"Authorization": f"Bearer {key.plaintext}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        assert response.status == 413
        message = json.loads(response.read())["error"]
        assert "is larger than" in message, message
    finally:
        conn.close()
    assert gateway.key_info(key)["usage"]["day"]["requests"] == 0
