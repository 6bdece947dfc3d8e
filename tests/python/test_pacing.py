"""Per-minute limits with the real openai-python client: a 429 for `requests_per_minute` says
`x-should-retry: true` and a `Retry-After` within a minute, the window slides (crossing a
wall-clock minute boundary frees nothing), and the client's own automatic retry succeeds once
the window has room. This test waits for the window: about a minute.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import openai

MESSAGES = [{"role": "user", "content": "hi"}]


def raw_chat(gateway, key):
    """One chat without any client-side retry: (status, headers, body)."""
    request = urllib.request.Request(
        f"{gateway.proxy}/v1/chat/completions",
        data=json.dumps({"model": "llama3", "messages": MESSAGES}).encode(),
        headers={"Authorization": f"Bearer {key.plaintext}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read())


def test_requests_per_minute_slides_and_the_openai_client_retries(gateway, new_key):
    key = new_key(extra=("--rpm", "2"))
    first_admitted = time.monotonic()
    for _ in range(2):
        status, _, _ = raw_chat(gateway, key)
        assert status == 200
    status, headers, body = raw_chat(gateway, key)
    assert status == 429
    assert headers["x-should-retry"] == "true"
    assert 1 <= int(headers["retry-after"]) <= 60
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["message"].startswith("requests per minute limit exceeded (limit 2")

    # A wall-clock minute boundary frees nothing: the window is the last 60 seconds.
    seconds_to_boundary = 60 - time.time() % 60
    if time.monotonic() - first_admitted + seconds_to_boundary < 57:
        time.sleep(seconds_to_boundary + 0.5)
        status, _, _ = raw_chat(gateway, key)
        assert status == 429, "a new wall-clock minute must not reset the window"

    # openai-python retries a 429 that says x-should-retry: true, after Retry-After.
    client = openai.OpenAI(base_url=f"{gateway.proxy}/v1", api_key=key.plaintext, max_retries=3)
    answer = client.chat.completions.create(model="llama3", messages=MESSAGES)
    assert answer.choices[0].message.content
    waited = time.monotonic() - first_admitted
    assert waited >= 59, f"admitted after {waited:.1f} s: the window did not hold"
    assert gateway.metric("llm_quota_quota_rejections_total", limit="requests_per_minute") >= 2
