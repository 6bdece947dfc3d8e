"""More real client libraries against the real gateway binary: LangChain's ChatOllama (native
API) and ChatOpenAI (/v1), the anthropic SDK (/v1/messages), and litellm as an `ollama_chat/`
and an `openai/` provider.

Every test gives its key a daily request limit of exactly the calls that should pass: a
non-streamed and a streamed call each return fake-ollama's answer (10 chunks, one cl100k token
each), the key's usage then shows exactly 2 requests of 2 + 10 tokens, and the next call is a 429
raised as the client's own rate-limit error, which adds nothing to the usage.
"""

from __future__ import annotations

import os

# litellm fetches its model cost map from the internet at import unless told to use its own copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import anthropic  # noqa: E402
import litellm  # noqa: E402
import ollama  # noqa: E402
import openai  # noqa: E402
import pytest  # noqa: E402
from langchain_ollama import ChatOllama  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402

litellm.suppress_debug_info = True

ANSWER = "Hello world from fake the of and to in is"
ANSWER_TOKENS = 10
# "hi there": 2 words for the fake's prompt counts, 2 cl100k tokens for the gateway.
PROMPT = "hi there"
PROMPT_TOKENS = 2
MESSAGES = [{"role": "user", "content": PROMPT}]
QUOTA_MESSAGE = "daily request quota exceeded"
TIMEOUT = 10.0


def assert_spent(gateway, key, requests: int) -> None:
    """The key's committed usage for the day is exactly `requests` calls of PROMPT + ANSWER."""
    day = gateway.wait_for_usage(key, requests)
    assert day["tokens"] == requests * (PROMPT_TOKENS + ANSWER_TOKENS), day


def test_langchain_chat_ollama(gateway, new_key):
    """ChatOllama on the native API (it always streams /api/chat), key as Authorization: Bearer;
    the 429 is ollama-python's ResponseError."""
    key = new_key(daily_requests=2)
    llm = ChatOllama(
        model="llama3",
        base_url=gateway.proxy,
        client_kwargs={"headers": {"Authorization": f"Bearer {key.plaintext}"}, "timeout": TIMEOUT},
    )
    msg = llm.invoke(PROMPT)
    assert msg.content == ANSWER
    assert (msg.usage_metadata["input_tokens"], msg.usage_metadata["output_tokens"]) == (
        PROMPT_TOKENS,
        ANSWER_TOKENS,
    )
    chunks = [c.content for c in llm.stream(PROMPT)]
    assert "".join(chunks) == ANSWER
    assert len([c for c in chunks if c]) == ANSWER_TOKENS  # passed through chunk by chunk
    assert_spent(gateway, key, 2)

    with pytest.raises(ollama.ResponseError) as e:
        llm.invoke(PROMPT)
    assert e.value.status_code == 429
    assert QUOTA_MESSAGE in e.value.error
    assert_spent(gateway, key, 2)


def test_langchain_chat_openai(gateway, new_key):
    """ChatOpenAI on /v1/chat/completions; the 429 is openai.RateLimitError."""
    key = new_key(daily_requests=2)
    llm = ChatOpenAI(
        model="llama3",
        base_url=gateway.proxy + "/v1",
        api_key=key.plaintext,
        max_retries=0,
        timeout=TIMEOUT,
    )
    msg = llm.invoke(PROMPT)
    assert msg.content == ANSWER
    assert msg.response_metadata["finish_reason"] == "stop"
    assert (msg.usage_metadata["input_tokens"], msg.usage_metadata["output_tokens"]) == (
        PROMPT_TOKENS,
        ANSWER_TOKENS,
    )
    chunks = [c.content for c in llm.stream(PROMPT)]
    assert "".join(chunks) == ANSWER
    assert len([c for c in chunks if c]) == ANSWER_TOKENS
    assert_spent(gateway, key, 2)

    with pytest.raises(openai.RateLimitError) as e:
        llm.invoke(PROMPT)
    assert e.value.status_code == 429
    assert e.value.code == "quota_exceeded"
    assert QUOTA_MESSAGE in e.value.message
    assert_spent(gateway, key, 2)


def test_anthropic_messages(gateway, new_key):
    """anthropic messages.create and messages.stream on /v1/messages with the key in x-api-key;
    the 429 is anthropic.RateLimitError."""
    key = new_key(daily_requests=2)
    with anthropic.Anthropic(
        base_url=gateway.proxy, api_key=key.plaintext, max_retries=0, timeout=TIMEOUT
    ) as client:
        r = client.messages.create(model="llama3", max_tokens=100, messages=MESSAGES)
        assert [b.text for b in r.content] == [ANSWER]
        assert r.stop_reason == "end_turn"
        assert (r.usage.input_tokens, r.usage.output_tokens) == (PROMPT_TOKENS, ANSWER_TOKENS)

        with client.messages.stream(model="llama3", max_tokens=100, messages=MESSAGES) as s:
            deltas = list(s.text_stream)
            final = s.get_final_message()
        assert "".join(deltas) == ANSWER
        assert len(deltas) == ANSWER_TOKENS
        assert final.stop_reason == "end_turn"
        assert final.usage.output_tokens == ANSWER_TOKENS
        assert_spent(gateway, key, 2)

        with pytest.raises(anthropic.RateLimitError) as e:
            client.messages.create(model="llama3", max_tokens=100, messages=MESSAGES)
        assert e.value.status_code == 429
        assert QUOTA_MESSAGE in e.value.message
        # The SDK sends the key as x-api-key or, in newer releases, as a bearer token: the
        # gateway takes either (docs/api.md, "Authentication").
        sent = e.value.response.request.headers
        assert "x-api-key" in sent or "authorization" in sent
        assert_spent(gateway, key, 2)


@pytest.mark.parametrize("provider, path", [("ollama_chat", ""), ("openai", "/v1")])
def test_litellm(gateway, new_key, provider, path):
    """litellm.completion as `ollama_chat/llama3` (native /api/chat) and `openai/llama3`
    (/v1/chat/completions), non-streamed and streamed; the 429 is litellm.RateLimitError."""
    key = new_key(daily_requests=2)
    args = dict(
        model=f"{provider}/llama3",
        api_base=gateway.proxy + path,
        api_key=key.plaintext,
        messages=MESSAGES,
        max_retries=0,
        timeout=TIMEOUT,
    )
    r = litellm.completion(**args)
    assert r.choices[0].message.content == ANSWER
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (PROMPT_TOKENS, ANSWER_TOKENS)
    chunks = [c.choices[0].delta.content or "" for c in litellm.completion(**args, stream=True)]
    assert "".join(chunks) == ANSWER
    assert_spent(gateway, key, 2)

    with pytest.raises(litellm.RateLimitError) as e:
        litellm.completion(**args)
    assert e.value.status_code == 429
    assert QUOTA_MESSAGE in str(e.value)
    assert_spent(gateway, key, 2)
