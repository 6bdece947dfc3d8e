"""The real Python clients (ollama-python, openai-python) against the real gateway binary.

The upstream is `fake-ollama` with its defaults: models `llama3`, `qwen3:0.6b`, `all-minilm`;
every answer is 10 chunks, one cl100k token each, "Hello world from fake the of and to in is";
`prompt_eval_count` / `prompt_tokens` = whitespace-separated words of the prompt; embeddings are
8 floats, L2-normalised, a function of the text only.
"""

from __future__ import annotations

import math
import time

import ollama
import openai
import pytest

ANSWER_WORDS = ["Hello", " world", " from", " fake", " the", " of", " and", " to", " in", " is"]
ANSWER = "".join(ANSWER_WORDS)
ALL_MODELS = {"llama3:latest", "qwen3:0.6b", "all-minilm:latest"}
EMBED_DIMS = 8
# "hi there" is 2 cl100k tokens (and 2 words for the fake); the answer is 10 tokens.
PROMPT = "hi there"
PROMPT_TOKENS = 2
REQUEST_TOKENS = PROMPT_TOKENS + len(ANSWER_WORDS)
MESSAGES = [{"role": "user", "content": PROMPT}]
TIMEOUT = 10.0


class Clients:
    """Makes SDK clients for the gateway's proxy and closes them when the test ends."""

    def __init__(self, gateway) -> None:
        self.gateway = gateway
        self._made: list = []

    def ollama(self, key: str) -> ollama.Client:
        c = ollama.Client(
            host=self.gateway.proxy, headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT
        )
        self._made.append(c)
        return c

    def openai(self, key: str) -> openai.OpenAI:
        # default max_retries (2): the quota test checks the gateway stops the SDK from retrying
        c = openai.OpenAI(base_url=self.gateway.proxy + "/v1", api_key=key, timeout=TIMEOUT)
        self._made.append(c)
        return c

    def close(self) -> None:
        for c in self._made:
            c.close()


@pytest.fixture
def clients(gateway):
    c = Clients(gateway)
    yield c
    c.close()


# ---------------------------------------------------------------- ollama-python


def test_ollama_chat(clients, new_key):
    """ollama.Client.chat (non-streamed) through the gateway returns the upstream's exact answer
    and Ollama's native counters, with the key sent as `Authorization: Bearer`."""
    client = clients.ollama(new_key().plaintext)
    r = client.chat(model="llama3", messages=MESSAGES, stream=False)
    assert r.message.role == "assistant"
    assert r.message.content == ANSWER
    assert r.done is True
    assert r.done_reason == "stop"
    assert r.model == "llama3"
    assert r.prompt_eval_count == 2
    assert r.eval_count == len(ANSWER_WORDS)


def test_ollama_chat_stream(clients, new_key):
    """ollama.Client.chat(stream=True) yields the NDJSON stream part by part: one part per upstream
    chunk, the content concatenates to the full answer, and only the last part has done=True."""
    client = clients.ollama(new_key().plaintext)
    parts = list(client.chat(model="llama3", messages=MESSAGES, stream=True))
    assert [p.message.content for p in parts[:-1]] == ANSWER_WORDS
    assert "".join(p.message.content for p in parts) == ANSWER
    assert [p.done for p in parts] == [False] * len(ANSWER_WORDS) + [True]
    assert parts[-1].done_reason == "stop"
    assert parts[-1].eval_count == len(ANSWER_WORDS)


def test_ollama_generate(clients, new_key):
    """ollama.Client.generate, non-streamed and streamed, returns the deterministic answer."""
    client = clients.ollama(new_key().plaintext)
    r = client.generate(model="llama3", prompt=PROMPT)
    assert r.response == ANSWER
    assert r.done is True
    assert r.prompt_eval_count == 2
    assert r.eval_count == len(ANSWER_WORDS)
    parts = list(client.generate(model="qwen3:0.6b", prompt=PROMPT, stream=True))
    assert "".join(p.response for p in parts) == ANSWER
    assert parts[-1].done is True
    assert all(p.model == "qwen3:0.6b" for p in parts)


def test_ollama_list(clients, new_key):
    """ollama.Client.list (GET /api/tags) shows every upstream model to an unrestricted key, and
    only the allowed ones to a key restricted with --models."""
    models = clients.ollama(new_key().plaintext).list().models
    assert {m.model for m in models} == ALL_MODELS
    llama3 = next(m for m in models if m.model == "llama3:latest")
    assert llama3.details.family == "llama"
    assert llama3.size > 0

    restricted = clients.ollama(new_key(models=["llama3"]).plaintext).list().models
    assert [m.model for m in restricted] == ["llama3:latest"]


def test_ollama_embed(clients, new_key):
    """ollama.Client.embed returns one normalised 8-float vector per input, deterministic per text."""
    client = clients.ollama(new_key().plaintext)
    r = client.embed(model="all-minilm", input=["first text", "second one here", "first text"])
    assert r.model == "all-minilm"
    assert len(r.embeddings) == 3
    assert all(len(v) == EMBED_DIMS for v in r.embeddings)
    for v in r.embeddings:
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-3)
    assert r.embeddings[0] == r.embeddings[2]
    assert r.embeddings[0] != r.embeddings[1]
    single = client.embed(model="all-minilm", input="first text")
    assert single.embeddings == [r.embeddings[0]]


def test_ollama_show(clients, new_key):
    """ollama.Client.show (POST /api/show) returns the model's details through the gateway."""
    client = clients.ollama(new_key().plaintext)
    r = client.show("llama3")
    assert r.details.family == "llama"
    assert r.details.parameter_size == "8.0B"
    assert r.capabilities == ["completion", "tools"]
    assert r.modelinfo["general.architecture"] == "llama"
    assert r.template == "{{ .Prompt }}"
    embed = client.show("all-minilm")
    assert embed.capabilities == ["embedding"]


def test_ollama_bad_key_is_401(clients):
    """A wrong key gives ollama.ResponseError with status 401 (non-streamed and streamed calls),
    and an Ollama-style error message."""
    client = clients.ollama("sk-" + "x" * 43)
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="llama3", messages=MESSAGES, stream=False)
    assert e.value.status_code == 401
    assert "key" in e.value.error.lower()
    with pytest.raises(ollama.ResponseError) as e:
        list(client.chat(model="llama3", messages=MESSAGES, stream=True))
    assert e.value.status_code == 401
    with pytest.raises(ollama.ResponseError) as e:
        client.list()
    assert e.value.status_code == 401


def test_ollama_model_not_allowed_is_403(clients, new_key):
    """A key restricted to llama3 gets ollama.ResponseError 403 for another model (chat, generate,
    embed), while llama3 itself still works."""
    client = clients.ollama(new_key(models=["llama3"]).plaintext)
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="qwen3:0.6b", messages=MESSAGES, stream=False)
    assert e.value.status_code == 403
    assert "qwen3:0.6b" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.generate(model="qwen3:0.6b", prompt=PROMPT)
    assert e.value.status_code == 403
    with pytest.raises(ollama.ResponseError) as e:
        client.embed(model="all-minilm", input="x")
    assert e.value.status_code == 403
    assert client.chat(model="llama3", messages=MESSAGES, stream=False).message.content == ANSWER


# ---------------------------------------------------------------- openai-python


def test_openai_chat(clients, new_key):
    """openai chat.completions.create (non-streamed) returns the answer and a usage block."""
    client = clients.openai(new_key().plaintext)
    r = client.chat.completions.create(model="llama3", messages=MESSAGES)
    assert r.object == "chat.completion"
    assert len(r.choices) == 1
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == ANSWER
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert r.usage.prompt_tokens == 2
    assert r.usage.completion_tokens == len(ANSWER_WORDS)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_openai_chat_stream(clients, new_key):
    """openai chat.completions.create(stream=True) parses the SSE stream through the gateway: the
    deltas concatenate to the answer, the last chunk says finish_reason=stop, and no usage chunk
    appears unless asked for; with stream_options.include_usage the usage chunk arrives."""
    client = clients.openai(new_key().plaintext)
    chunks = list(client.chat.completions.create(model="llama3", messages=MESSAGES, stream=True))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert deltas == ANSWER_WORDS
    assert "".join(deltas) == ANSWER
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and c.choices for c in chunks)

    chunks = list(
        client.chat.completions.create(
            model="llama3",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1
    assert usage[0].completion_tokens == len(ANSWER_WORDS)
    assert usage[0].prompt_tokens == 2


def test_openai_completions(clients, new_key):
    """openai completions.create (legacy /v1/completions) returns the answer text and usage."""
    client = clients.openai(new_key().plaintext)
    r = client.completions.create(model="llama3", prompt=PROMPT)
    assert r.object == "text_completion"
    assert r.choices[0].text == ANSWER
    assert r.usage.completion_tokens == len(ANSWER_WORDS)
    chunks = list(client.completions.create(model="llama3", prompt=PROMPT, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER


def test_openai_responses(clients, new_key):
    """openai responses.create (POST /v1/responses, Ollama's Responses route) returns the answer
    and usage, non-streamed and streamed (the text deltas concatenate to the answer)."""
    client = clients.openai(new_key().plaintext)
    r = client.responses.create(model="llama3", input=PROMPT)
    assert r.status == "completed"
    assert r.output_text == ANSWER
    assert (r.usage.input_tokens, r.usage.output_tokens) == (2, len(ANSWER_WORDS))
    events = list(client.responses.create(model="llama3", input=PROMPT, stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ANSWER_WORDS
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == ANSWER


def test_openai_embeddings(clients, new_key):
    """openai embeddings.create returns one 8-float vector per input, in order, plus usage; the
    SDK's default base64 encoding round-trips through the gateway to the same floats."""
    client = clients.openai(new_key().plaintext)
    r = client.embeddings.create(model="all-minilm", input=["first text", "second one here"])
    assert [d.index for d in r.data] == [0, 1]
    assert all(len(d.embedding) == EMBED_DIMS for d in r.data)
    assert r.data[0].embedding != r.data[1].embedding
    assert r.usage.prompt_tokens == 5
    floats = client.embeddings.create(
        model="all-minilm", input="first text", encoding_format="float"
    )
    assert len(floats.data) == 1
    assert floats.data[0].embedding == pytest.approx(r.data[0].embedding, abs=1e-6)
    # the native API gives the same vector for the same text
    native = clients.ollama(new_key().plaintext).embed(model="all-minilm", input="first text")
    assert floats.data[0].embedding == pytest.approx(native.embeddings[0], abs=1e-6)


def test_openai_models_list(clients, new_key):
    """openai models.list (GET /v1/models) lists every upstream model to an unrestricted key and
    only the allowed ones to a restricted key; models.retrieve works for an allowed model."""
    client = clients.openai(new_key().plaintext)
    assert {m.id for m in client.models.list()} == ALL_MODELS
    restricted = clients.openai(new_key(models=["qwen3:0.6b"]).plaintext)
    assert [m.id for m in restricted.models.list()] == ["qwen3:0.6b"]
    m = restricted.models.retrieve("qwen3:0.6b")
    assert m.id == "qwen3:0.6b"
    assert m.object == "model"


def test_openai_bad_key_is_authentication_error(clients):
    """A wrong key gives openai.AuthenticationError (401) with OpenAI's error shape."""
    client = clients.openai("sk-" + "y" * 43)
    with pytest.raises(openai.AuthenticationError) as e:
        client.chat.completions.create(model="llama3", messages=MESSAGES)
    assert e.value.status_code == 401
    assert e.value.type == "authentication_error"
    assert e.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_openai_model_not_allowed_is_permission_denied(clients, new_key):
    """A model outside the key's allowed models gives openai.PermissionDeniedError (403)."""
    client = clients.openai(new_key(models=["llama3"]).plaintext)
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.chat.completions.create(model="qwen3:0.6b", messages=MESSAGES)
    assert e.value.status_code == 403
    assert e.value.type == "permission_error"
    assert e.value.code == "model_not_allowed"


def test_openai_daily_request_quota_is_rate_limit_without_retries(gateway, clients, new_key):
    """With --daily-requests 1, the first call succeeds (rate-limit headers say 1/0 left) and the
    second raises openai.RateLimitError (429) naming the daily request quota; the SDK (default
    max_retries=2) does not retry it: the key's rejection counter in /metrics is exactly 1."""
    key = new_key(daily_requests=1)
    client = clients.openai(key.plaintext)
    assert client.max_retries == 2

    raw = client.chat.completions.with_raw_response.create(model="llama3", messages=MESSAGES)
    assert raw.headers["x-ratelimit-limit-requests"] == "1"
    assert raw.headers["x-ratelimit-remaining-requests"] == "0"
    assert raw.parse().choices[0].message.content == ANSWER

    labels = {"api_key": key.prefix, "limit": "daily_requests"}
    assert gateway.metric("llm_quota_quota_rejections_total", **labels) in (None, 0.0)

    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="llama3", messages=MESSAGES)
    err = e.value
    assert err.status_code == 429
    assert "daily request quota exceeded" in err.message
    assert isinstance(err.body, dict)
    assert "daily request quota exceeded" in err.body["message"]
    assert err.type == "rate_limit_error"
    assert err.code == "quota_exceeded"
    assert err.response.headers["x-should-retry"] == "false"
    assert int(err.response.headers["retry-after"]) > 0
    # what the SDK sent on its last attempt: no retry happened
    assert err.response.request.headers.get("x-stainless-retry-count") == "0"

    deadline = time.monotonic() + 2.0
    while (gateway.metric("llm_quota_quota_rejections_total", **labels) or 0) < 1:
        assert time.monotonic() < deadline, "rejection counter never appeared"
        time.sleep(0.02)
    time.sleep(0.2)
    assert gateway.metric("llm_quota_quota_rejections_total", **labels) == 1.0


# ---------------------------------------------------------------- quota accounting


def test_usage_counts_every_generating_request(gateway, clients, new_key):
    """After 6 generating requests through both SDKs (streamed and not) plus 4 catalogue calls
    that do not count, `keys list --json` shows exactly 6 requests for the day, and the tokens
    are prompt + completion tokens (cl100k) of each: 6 x (2 + 10)."""
    key = new_key()
    oc = clients.ollama(key.plaintext)
    ai = clients.openai(key.plaintext)
    assert gateway.key_info(key)["usage"]["day"]["requests"] == 0

    assert oc.chat(model="llama3", messages=MESSAGES, stream=False).message.content == ANSWER
    assert "".join(p.message.content for p in oc.chat(model="llama3", messages=MESSAGES, stream=True)) == ANSWER
    assert oc.generate(model="llama3", prompt=PROMPT).response == ANSWER
    assert ai.chat.completions.create(model="llama3", messages=MESSAGES).choices[0].message.content == ANSWER
    streamed = ai.chat.completions.create(model="llama3", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == ANSWER
    assert ai.completions.create(model="llama3", prompt=PROMPT).choices[0].text == ANSWER
    # not counted
    assert oc.list().models
    assert oc.show("llama3").details.family == "llama"
    assert list(ai.models.list())
    assert ai.models.retrieve("llama3").id == "llama3:latest"

    day = gateway.wait_for_usage(key, 6)
    assert day["tokens"] == 6 * REQUEST_TOKENS, day
    month = gateway.key_info(key)["usage"]["month"]
    assert (month["requests"], month["tokens"]) == (6, 6 * REQUEST_TOKENS)


def test_refused_requests_consume_nothing(gateway, clients, new_key):
    """Requests the gateway refuses (403 model not allowed, 429 quota) add nothing to the key's
    usage: after one allowed request and several refused ones, usage is exactly 1 request."""
    key = new_key(models=["llama3"], daily_requests=1)
    oc = clients.ollama(key.plaintext)
    ai = clients.openai(key.plaintext)
    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model="qwen3:0.6b", messages=MESSAGES, stream=False)
    assert e.value.status_code == 403
    assert oc.chat(model="llama3", messages=MESSAGES, stream=False).message.content == ANSWER
    gateway.wait_for_usage(key, 1)
    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model="llama3", messages=MESSAGES, stream=False)
    assert e.value.status_code == 429
    assert "daily request quota exceeded" in e.value.error
    with pytest.raises(openai.RateLimitError):
        ai.chat.completions.create(model="llama3", messages=MESSAGES)
    day = gateway.wait_for_usage(key, 1)
    assert day["tokens"] == REQUEST_TOKENS
