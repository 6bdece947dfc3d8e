"""Hard token quotas with the real clients: a stream that its key's token quota ends parses
cleanly in ollama-python (`done_reason == "length"`) and openai-python
(`finish_reason == "length"`, then the stream ends), and the key never goes over its limit.

The upstream here answers 1,000 one-token chunks 2 ms apart; two streams at once on a key with
600 tokens cannot both finish, so the gateway ends them when the quota has no room left.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import ollama
import openai
import pytest

from conftest import start_fake_ollama, start_gateway

LIMIT = 600
MESSAGES = [{"role": "user", "content": "tell me a long story"}]


@pytest.fixture(scope="module")
def long_gateway(tmp_path_factory):
    fake_dir = tmp_path_factory.mktemp("fake-long")
    with start_fake_ollama(fake_dir, "--chunks", "1000", "--delay-ms", "2") as url:
        with start_gateway(url, tmp_path_factory.mktemp("gateway-long")) as gw:
            yield gw


def in_parallel(*calls):
    """Runs the calls on threads at once; returns their results (re-raising any failure)."""
    results: list = [None] * len(calls)
    errors: list = []

    def run(i, call):
        try:
            results[i] = call()
        except BaseException as e:  # noqa: BLE001 - handed to the test below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def day_tokens_settled(gateway, key) -> int:
    """The key's day tokens once they stop changing (commits land right after each answer)."""
    last = None
    for _ in range(60):
        now = gateway.key_info(key)["usage"]["day"]["tokens"]
        if now == last and gateway.key_info(key)["in_flight"]["requests"] == 0:
            return now
        last = now
        time.sleep(0.1)
    return last


def test_ollama_stream_cut_by_the_quota_ends_with_length(long_gateway):
    key = long_gateway.create_key(daily_tokens=LIMIT)

    def stream():
        client = ollama.Client(
            host=long_gateway.proxy, headers={"Authorization": f"Bearer {key.plaintext}"}
        )
        parts = list(client.chat(model="llama3", messages=MESSAGES, stream=True))
        client.close()
        return parts

    for parts in in_parallel(stream, stream):
        assert parts, "no parts"
        assert [p.done for p in parts].count(True) == 1
        last = parts[-1]
        assert last.done and last.done_reason == "length", last
        text = "".join(p.message.content or "" for p in parts)
        assert text.startswith("Hello world"), text[:40]
    assert day_tokens_settled(long_gateway, key) <= LIMIT


def test_openai_stream_cut_by_the_quota_ends_with_length(long_gateway):
    key = long_gateway.create_key(daily_tokens=LIMIT)

    def stream():
        client = openai.OpenAI(base_url=long_gateway.proxy + "/v1", api_key=key.plaintext)
        chunks = list(
            client.chat.completions.create(model="llama3", messages=MESSAGES, stream=True)
        )
        client.close()
        return chunks

    for chunks in in_parallel(stream, stream):
        reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
        assert reasons[-1] == "length", reasons[-3:]
        assert reasons.count("length") == 1
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.startswith("Hello world"), text[:40]
    assert day_tokens_settled(long_gateway, key) <= LIMIT


def test_quota_endpoint_with_the_key(long_gateway):
    key = long_gateway.create_key(daily_tokens=LIMIT)
    for path in ("/api/quota", "/v1/quota"):
        req = urllib.request.Request(
            long_gateway.proxy + path, headers={"Authorization": f"Bearer {key.plaintext}"}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            body = json.loads(r.read())
        assert body["daily_token_limit"] == LIMIT
        assert body["remaining"]["day"]["tokens"] == LIMIT
        assert body["reserved_tokens"] == 0
        assert "id" not in body
