"""The gateway in front of a real Ollama (tests/python/real_ollama.py finds and starts it; every
server found runs the whole module), with the real clients.

What only a real server shows: the fields it really reads (`max_tokens`, not
`max_completion_tokens`), the counts it really reports (the chat template in
`prompt_eval_count`), how it really parses model names and `keep_alive`, and what it really
answers on `/`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import ollama
import openai
import pytest

import real_ollama
from conftest import start_gateway

SERVERS, FOUND_IN = real_ollama.discover()
MESSAGES = [{"role": "user", "content": "hello"}]

if not SERVERS:
    pytest.skip(real_ollama.SKIP_REASON, allow_module_level=True)


@pytest.fixture(scope="module", params=SERVERS, ids=[s.name for s in SERVERS])
def server(request, tmp_path_factory):
    """One real Ollama with the tiny models; its URL."""
    with real_ollama.start(request.param, tmp_path_factory.mktemp("ollama")) as url:
        yield url


@pytest.fixture(scope="module")
def gateway(server, tmp_path_factory):
    """The gateway in front of it, counting with tiktoken (the default)."""
    with start_gateway(server, tmp_path_factory.mktemp("gateway-real")) as gw:
        yield gw


@pytest.fixture(scope="module")
def upstream_gateway(server, tmp_path_factory):
    """The gateway in front of it, charging Ollama's own counts."""
    yaml = "quota:\n  token_counting: upstream\n"
    with start_gateway(server, tmp_path_factory.mktemp("gateway-upstream"), yaml) as gw:
        yield gw


def call(base: str, path: str, body: dict | None = None, key: str | None = None, method=None):
    """One request; `(status, headers, body bytes)`, also for error statuses."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def events(raw: bytes) -> list[dict]:
    """The JSON objects of an NDJSON or SSE body (without `[DONE]`)."""
    out = []
    for line in raw.decode().splitlines():
        line = line.strip()
        if line.startswith("data:"):
            line = line[5:].strip()
        if not line or line == "[DONE]" or not line.startswith("{"):
            continue
        out.append(json.loads(line))
    return out


def reported(path: str, raw: bytes) -> tuple[int, int]:
    """Ollama's own (prompt, completion) counts in an answer on `path`, streamed or not: the
    last non-zero value of each (`message_start` and `message_delta` split them on
    `/v1/messages`)."""
    prompt = completion = None
    for e in events(raw):
        places = [e, e.get("usage")]
        for nested in ("response", "message"):  # Responses' and Anthropic's envelopes
            if isinstance(e.get(nested), dict):
                places.append(e[nested].get("usage"))
        for d in filter(None, places):
            p = d.get("prompt_eval_count") or d.get("prompt_tokens") or d.get("input_tokens")
            c = d.get("eval_count") or d.get("completion_tokens") or d.get("output_tokens")
            prompt = p or prompt
            completion = c or completion
    assert prompt and completion, f"{path}: no counts in {raw[-600:]!r}"
    return prompt, completion


def chats_until_refused(gateway, key, at_most: int = 20):
    """openai-python chats on `key` with `max_completion_tokens: 5000` (what current SDKs send),
    each answer in turn, until the key's quota refuses one (429); fails if it never does."""
    oa = openai.OpenAI(base_url=gateway.proxy + "/v1", api_key=key.plaintext, max_retries=0)
    for _ in range(at_most):
        try:
            yield oa.chat.completions.create(
                model=real_ollama.CHAT_MODEL, messages=MESSAGES, max_completion_tokens=5000
            )
        except openai.RateLimitError:
            return
    pytest.fail("the key never ran out of tokens")


def test_root_answers_like_ollama(server, gateway):
    """`GET /` and `HEAD /` answer what Ollama answers (its own client checks a server that
    way), without a key."""
    for base in (server, gateway.proxy):
        status, headers, body = call(base, "/")
        assert (status, body) == (200, b"Ollama is running"), base
        assert headers["content-type"].startswith("text/plain"), base
        status, _, body = call(base, "/", method="HEAD")
        assert (status, body) == (200, b""), base


def test_status_is_passed_through(server, gateway):
    """`GET /api/status` needs a key, counts nothing and answers what the host answers."""
    key = gateway.create_key(daily_requests=1)
    status, _, body = call(gateway.proxy, "/api/status", key=key.plaintext)
    assert status == 200, body
    assert json.loads(body) == json.loads(call(server, "/api/status")[2])
    assert call(gateway.proxy, "/api/status")[0] == 401
    assert gateway.key_info(key)["usage"]["day"]["requests"] == 0


def test_clients_chat_generate_and_embed(gateway):
    """ollama-python and openai-python, streamed and not, against the real server."""
    key = gateway.create_key()
    client = ollama.Client(host=gateway.proxy, headers={"authorization": f"Bearer {key.plaintext}"})
    answer = client.chat(model=real_ollama.CHAT_MODEL, messages=MESSAGES, options={"num_predict": 8})
    assert answer.done and answer.eval_count and answer.eval_count <= 8
    parts = list(client.generate(model=real_ollama.CHAT_MODEL, prompt="hi", stream=True, options={"num_predict": 8}))
    assert parts[-1].done
    vectors = client.embed(model=real_ollama.EMBED_MODEL, input=["a", "b"])
    assert len(vectors.embeddings) == 2
    oa = openai.OpenAI(base_url=gateway.proxy + "/v1", api_key=key.plaintext, max_retries=0)
    chat = oa.chat.completions.create(model=real_ollama.CHAT_MODEL, messages=MESSAGES, max_tokens=8)
    assert chat.usage.completion_tokens <= 8
    chunks = list(oa.chat.completions.create(model=real_ollama.CHAT_MODEL, messages=MESSAGES, max_tokens=8, stream=True))
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    # The gateway asked Ollama for usage and removed that chunk: the client did not ask.
    assert all(c.usage is None for c in chunks)
    gateway.wait_for_usage(key, requests=5)


def test_output_cap_lands_where_ollama_reads_it(gateway):
    """Ollama ignores `max_completion_tokens` (what current OpenAI SDKs send): the room left in
    the quota must land in `max_tokens`, or the answer runs on however small the room is."""
    limit = 60  # unbounded, the tiny model answers with hundreds of tokens
    key = gateway.create_key(daily_tokens=limit)
    served = used = 0
    for chat in chats_until_refused(gateway, key):
        served += 1
        # Ollama's own count of what it generated fits in what the key had left.
        assert chat.usage.completion_tokens <= limit - used, (chat.usage, used)
        used = gateway.wait_for_usage(key, requests=served)["tokens"]
        assert used <= limit, used
    assert served >= 1
    assert gateway.key_info(key)["usage"]["day"]["tokens"] <= limit


def test_cloud_models_are_refused_in_every_spelling(gateway):
    """A key allowed every local model never reaches a cloud model, however it is spelled:
    Ollama trims the name and compares the source suffix case-insensitively."""
    key = gateway.create_key()
    for model in ("tiny:cloud", "gpt-oss:120b-CLOUD", "m:Cloud ", " kimi:CLOUD", "x:cloud:local"):
        for path, body in (
            ("/api/chat", {"model": model, "messages": MESSAGES, "stream": False}),
            ("/v1/chat/completions", {"model": model, "messages": MESSAGES}),
        ):
            status, _, raw = call(gateway.proxy, path, body, key=key.plaintext)
            assert status == 403, (model, path, raw)
            assert b"cloud model" in raw, raw
    assert gateway.key_info(key)["usage"]["day"]["requests"] == 0


def test_keep_alive_is_bounded(server, gateway):
    """`keep_alive: -1` would pin the model for good and `keep_alive: 0` would evict it for
    every key: the host keeps the model at most `ollama.max_keep_alive` (1h), and an unload is
    not passed on."""
    from datetime import datetime, timedelta, timezone

    key = gateway.create_key()
    body = {"model": real_ollama.CHAT_MODEL, "messages": MESSAGES, "stream": False,
            "keep_alive": -1, "options": {"num_predict": 2}}
    status, _, raw = call(gateway.proxy, "/api/chat", body, key=key.plaintext)
    assert status == 200, raw
    running = json.loads(call(server, "/api/ps")[2])["models"]
    tiny = [m for m in running if m["name"].startswith(real_ollama.CHAT_MODEL + ":")]
    assert tiny, running
    expires = datetime.fromisoformat(tiny[0]["expires_at"].replace("Z", "+00:00"))
    assert expires <= datetime.now(timezone.utc) + timedelta(hours=1, minutes=1), expires
    # An unload request through the gateway leaves the model in memory.
    unload = {"model": real_ollama.CHAT_MODEL, "messages": [], "keep_alive": 0, "stream": False}
    status, _, raw = call(gateway.proxy, "/api/chat", unload, key=key.plaintext)
    assert status == 200, raw
    assert json.loads(raw)["done_reason"] == "load", raw
    running = json.loads(call(server, "/api/ps")[2])["models"]
    assert any(m["name"].startswith(real_ollama.CHAT_MODEL + ":") for m in running), running


def test_ps_lists_only_the_keys_models(server, gateway):
    """`/api/ps` through the gateway shows the models in memory that the key may use, never
    the others."""
    key = gateway.create_key()
    for model, path, body in (
        (real_ollama.CHAT_MODEL, "/api/chat", {"messages": MESSAGES, "options": {"num_predict": 1}}),
        (real_ollama.EMBED_MODEL, "/api/embed", {"input": "x"}),
    ):
        status, _, raw = call(gateway.proxy, path, {"model": model, "stream": False, **body}, key=key.plaintext)
        assert status == 200, raw
    both = {m["name"] for m in json.loads(call(gateway.proxy, "/api/ps", key=key.plaintext)[2])["models"]}
    assert both == {f"{real_ollama.CHAT_MODEL}:latest", f"{real_ollama.EMBED_MODEL}:latest"}, both
    only_chat = gateway.create_key(models=[real_ollama.CHAT_MODEL])
    status, _, raw = call(gateway.proxy, "/api/ps", key=only_chat.plaintext)
    assert status == 200, raw
    assert [m["name"] for m in json.loads(raw)["models"]] == [f"{real_ollama.CHAT_MODEL}:latest"]


COUNTED = [
    ("/api/generate", {"prompt": "hello", "stream": False, "options": {"num_predict": 6}}),
    ("/api/generate", {"prompt": "hello", "template": "{{ .Prompt }} is what the user said", "options": {"num_predict": 6}}),
    ("/api/chat", {"messages": MESSAGES, "options": {"num_predict": 6}}),
    ("/api/chat", {"messages": MESSAGES, "stream": False, "options": {"num_predict": 6}}),
    ("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 6}),
    ("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 6, "stream": True,
                              "stream_options": {"include_usage": True}}),
    ("/v1/completions", {"prompt": "hello", "max_tokens": 6}),
    ("/v1/messages", {"messages": MESSAGES, "max_tokens": 6}),
    ("/v1/messages", {"messages": MESSAGES, "max_tokens": 6, "stream": True}),
    ("/v1/responses", {"input": "hello", "max_output_tokens": 6}),
    ("/v1/responses", {"input": "hello", "max_output_tokens": 6, "stream": True}),
]


@pytest.mark.parametrize(("path", "body"), COUNTED, ids=[f"{p}-{i}" for i, (p, _) in enumerate(COUNTED)])
def test_upstream_mode_charges_exactly_what_ollama_reported(upstream_gateway, path, body):
    """`quota.token_counting: upstream` charges Ollama's own prompt + completion counts, the
    template included, request by request, on every generating route, streamed or not."""
    key = upstream_gateway.create_key()
    status, _, raw = call(upstream_gateway.proxy, path, {"model": real_ollama.CHAT_MODEL, **body}, key=key.plaintext)
    assert status == 200, raw
    prompt, completion = reported(path, raw)
    day = upstream_gateway.wait_for_usage(key, requests=1)
    assert day["tokens"] == prompt + completion, (path, prompt, completion, day)


@pytest.mark.parametrize(("path", "body"), COUNTED, ids=[f"{p}-{i}" for i, (p, _) in enumerate(COUNTED)])
def test_tiktoken_mode_charges_every_generated_token(gateway, path, body):
    """In `tiktoken` mode the completion charged is never less than what Ollama generated."""
    key = gateway.create_key()
    status, _, raw = call(gateway.proxy, path, {"model": real_ollama.CHAT_MODEL, **body}, key=key.plaintext)
    assert status == 200, raw
    _, completion = reported(path, raw)
    gateway.wait_for_usage(key, requests=1)
    info = gateway.key_info(key)
    assert info["usage"]["day"]["tokens"] >= completion, (path, completion, info["usage"])


def test_transcription_reaches_ollama(upstream_gateway):
    """`/v1/audio/transcriptions` is a counted route: the form goes to Ollama as sent, and
    Ollama's answer comes back. The tiny model has no audio: v0.33 refuses with 400, which is
    charged nothing; v0.24 answers an empty 200, and a success is charged (Ollama may have done
    the work and said nothing)."""
    key = upstream_gateway.create_key(models=[real_ollama.CHAT_MODEL])
    boundary = "b0undary"
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{real_ollama.CHAT_MODEL}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        f"Content-Type: audio/wav\r\n\r\nRIFFxxxx\r\n--{boundary}--\r\n"
    ).encode()
    req = urllib.request.Request(
        upstream_gateway.proxy + "/v1/audio/transcriptions", data=form, method="POST"
    )
    req.add_header("content-type", f"multipart/form-data; boundary={boundary}")
    req.add_header("authorization", f"Bearer {key.plaintext}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    assert (status, raw) == (200, b"") or status == 400, (status, raw)
    assert b"not allowed" not in raw and b"no route" not in raw, raw  # Ollama's own answer
    chat = {"model": real_ollama.CHAT_MODEL, "messages": MESSAGES, "stream": False, "options": {"num_predict": 3}}
    status_chat, _, raw_chat = call(upstream_gateway.proxy, "/api/chat", chat, key=key.plaintext)
    assert status_chat == 200, raw_chat
    prompt, completion = reported("/api/chat", raw_chat)
    day = upstream_gateway.wait_for_usage(key, requests=1 if status == 400 else 2)
    if status == 400:
        assert day["tokens"] == prompt + completion, day
    else:
        assert day["tokens"] > prompt + completion, day


def test_upstream_mode_charges_every_token_up_to_the_limit(upstream_gateway):
    """In `upstream` mode the room left for an answer counts what Ollama adds to the prompt
    (its chat template, learned from the model's earlier answers), so that even the last
    answer before the limit is generated within it: every token Ollama reports is charged,
    and the key never passes its limit."""
    warm = upstream_gateway.create_key()
    status, _, raw = call(
        upstream_gateway.proxy,
        "/api/chat",
        {"model": real_ollama.CHAT_MODEL, "messages": MESSAGES, "stream": False, "options": {"num_predict": 2}},
        key=warm.plaintext,
    )
    assert status == 200, raw
    limit = 100
    key = upstream_gateway.create_key(daily_tokens=limit)
    served = used = 0
    for chat in chats_until_refused(upstream_gateway, key):
        served += 1
        reported_tokens = chat.usage.prompt_tokens + chat.usage.completion_tokens
        day = upstream_gateway.wait_for_usage(key, requests=served)
        assert day["tokens"] == used + reported_tokens, (used, chat.usage, day)
        used = day["tokens"]
    assert served >= 1 and used <= limit


def test_web_search_needs_the_keys_permission(server, gateway):
    """Ollama runs web search tools on the host's ollama.com account: a key without
    `allow_web_search` is refused before anything reaches Ollama, in each route's own error
    shape; a key with it gets Ollama's own answer."""
    responses = {"model": real_ollama.CHAT_MODEL, "input": "news?", "tools": [{"type": "web_search"}]}
    messages = {
        "model": real_ollama.CHAT_MODEL,
        "max_tokens": 20,
        "messages": MESSAGES,
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    key = gateway.create_key()
    status, _, raw = call(gateway.proxy, "/v1/responses", responses, key=key.plaintext)
    assert status == 403, raw
    assert json.loads(raw)["error"]["code"] == "web_search_not_allowed"
    status, _, raw = call(gateway.proxy, "/v1/messages", messages, key=key.plaintext)
    assert status == 403, raw
    body = json.loads(raw)
    assert body["type"] == "error" and body["error"]["type"] == "permission_error", body
    allowed = gateway.create_key(extra=("--allow-web-search",))
    for path, request in (("/v1/responses", responses), ("/v1/messages", messages)):
        status, _, raw = call(gateway.proxy, path, request, key=allowed.plaintext)
        direct = call(server, path, request)
        assert status == direct[0], (path, raw, direct)
        assert b"web_search_not_allowed" not in raw


def test_gpu_time_and_model_loads_are_measured(server, tmp_path):
    """Each request's GPU time is measured, and Ollama's own `load_duration` is kept apart:
    what the real server reported loading, summed, is what the gateway exports."""
    with start_gateway(server, tmp_path) as gw:
        key = gw.create_key()
        reported_ms = 0
        body = {"model": real_ollama.CHAT_MODEL, "messages": MESSAGES, "stream": False, "options": {"num_predict": 4}}
        for _ in range(2):
            status, _, raw = call(gw.proxy, "/api/chat", body, key.plaintext)
            assert status == 200, raw
            # The gateway keeps whole milliseconds, as its usage records do.
            reported_ms += json.loads(raw).get("load_duration", 0) // 1_000_000
        gw.wait_for_usage(key, requests=2)
        load = gw.metric("llm_quota_model_load_seconds_total", upstream=server)
        assert load == pytest.approx(reported_ms / 1000)
        # The report has it too (conftest's gateways run with ADMIN_PASSWORD=x).
        rows = json.loads(call(gw.admin, "/api/usage?group_by=", None, "x")[2])
        assert rows[0]["load_seconds"] == pytest.approx(reported_ms / 1000)
        gpu = gw.metric("llm_quota_gpu_seconds_total", upstream=server)
        assert gpu is not None and gpu > 0


def gpu_ms_used(gw, key) -> int:
    """The key's GPU time of the day in milliseconds once its requests have settled (two
    reads 0.3 s apart agree; usage lands with the ledger's group commits)."""
    day = gw.key_info(key)["usage"]["day"]
    for _ in range(30):
        time.sleep(0.3)
        again = gw.key_info(key)["usage"]["day"]
        if again == day and day["requests"] > 0:
            break
        day = again
    return round(day["gpu_seconds"] * 1000)


def test_gpu_time_limit_stops_the_real_host(gateway, server):
    """A key with 1 ms of GPU time a day and a non-streamed answer to a prompt that fills the
    model's context (tens of milliseconds on the real host, beyond the ~20 ms Pingora's 10 ms
    timer ticks may add): the gateway stops waiting when the key's GPU time is used up, drops
    the connection (Ollama cancels the request) and answers 429 naming the limit. The key is
    charged at most its 1 ms, the next request is refused at admission, and the server keeps
    serving."""
    key = gateway.create_key(extra=("--daily-gpu-seconds", "0.001"))
    long = [{"role": "user", "content": "hello " * 3000}]
    body = {"model": real_ollama.CHAT_MODEL, "messages": long, "stream": False, "options": {"num_predict": 4096}}
    status, headers, raw = call(gateway.proxy, "/api/chat", body, key.plaintext)
    assert status == 429, raw
    assert headers["x-should-retry"] == "false"
    message = json.loads(raw)["error"]
    assert "daily GPU-time quota exceeded (limit 0.001 s" in message, message
    assert 0 < gpu_ms_used(gateway, key) <= 1
    status, headers, raw = call(gateway.proxy, "/api/chat", body, key.plaintext)
    assert status == 429, raw
    assert int(headers["retry-after"]) >= 1
    assert "daily GPU-time quota exceeded" in json.loads(raw)["error"]
    # The cancelled request left the real server healthy.
    status, _, raw = call(server, "/api/chat", body)
    assert status == 200, raw


def test_gpu_time_limit_on_a_real_stream(gateway):
    """Streamed chats on a key with 30 ms of GPU time: whether the real host's answers fit or
    not, the client gets a clean answer (a whole stream ending with
    `done: true`, or a 429 naming the GPU-time limit before anything was sent) and the key is
    never charged more than its 30 ms."""
    key = gateway.create_key(extra=("--daily-gpu-seconds", "0.03"))
    body = {"model": real_ollama.CHAT_MODEL, "messages": MESSAGES, "options": {"num_predict": 4096}}
    for _ in range(3):
        status, _, raw = call(gateway.proxy, "/api/chat", body, key.plaintext)
        if status == 429:
            assert "daily GPU-time quota exceeded" in json.loads(raw)["error"], raw
            break
        assert status == 200, raw
        last = events(raw)[-1]
        assert last["done"] is True, last
        assert last["done_reason"] in ("stop", "length"), last
    assert gpu_ms_used(gateway, key) <= 30
