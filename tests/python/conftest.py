"""Fixtures for the end-to-end tests with the real Python clients (ollama, openai).

One fake Ollama (`fake-ollama`) and one gateway (`llm-quota serve`, SQLite in a temp dir) run for
the whole session; every test creates its own API key(s) through the real CLI
(`llm-quota keys create`), so tests do not share quota state.

Binaries: `LLM_QUOTA_BIN` and `FAKE_OLLAMA_BIN` (set by ./run-tests), defaulting to the debug
build in `target/debug`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue

import pytest

ROOT = Path(__file__).resolve().parents[2]
LLM_QUOTA_BIN = os.environ.get("LLM_QUOTA_BIN", str(ROOT / "target/debug/llm-quota"))
FAKE_OLLAMA_BIN = os.environ.get("FAKE_OLLAMA_BIN", str(ROOT / "target/debug/fake-ollama"))

# The clients talk to 127.0.0.1 only: never through an HTTP proxy from the environment.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

STARTUP_TIMEOUT = 30.0


def _clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment: no inherited gateway/Ollama/OpenAI settings leak into the binaries."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(extra)
    return env


class _LineReader:
    """Reads a child's stdout on a thread (so the pipe never fills up) and hands out lines."""

    def __init__(self, stream) -> None:
        self._lines: Queue[str | None] = Queue()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                self._lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._lines.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line matching `pattern`, or an error when the child exits or time runs out."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"timed out waiting for {pattern!r}; stdout so far: {seen}")
            try:
                line = self._lines.get(timeout=left)
            except Empty:
                continue
            if line is None:
                raise RuntimeError(f"process exited before printing {pattern!r}; stdout: {seen}")
            seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m


def _stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, wait; SIGKILL if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        warnings.warn(f"{proc.args[0]} ignored SIGTERM for {timeout} s; killing it")
        proc.kill()
        proc.wait(timeout=timeout)


def _http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@contextlib.contextmanager
def start_fake_ollama(workdir: Path, *args: str):
    """A `fake-ollama` process with extra command-line `args`; yields its URL."""
    with open(workdir / "stderr.log", "wb") as stderr:
        proc = subprocess.Popen(
            [FAKE_OLLAMA_BIN, "--listen", "127.0.0.1:0", *args],
            cwd=workdir,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        m = _LineReader(proc.stdout).wait_for(r"^listening on (http://\S+)$", STARTUP_TIMEOUT)
        yield m.group(1)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def fake_ollama(tmp_path_factory):
    """A `fake-ollama` process (default models llama3, qwen3:0.6b, all-minilm; 10 chunks)."""
    with start_fake_ollama(tmp_path_factory.mktemp("fake-ollama")) as url:
        yield url


@dataclass
class Key:
    """An API key created through the CLI."""

    id: int
    name: str
    plaintext: str
    prefix: str


@dataclass
class Gateway:
    """A running `llm-quota serve` and the CLI bound to its database."""

    proxy: str
    admin: str
    metrics: str
    database_url: str
    workdir: Path
    _names = itertools.count(1)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Runs `llm-quota ARGS` against this gateway's database (clean env, temp cwd)."""
        return subprocess.run(
            [LLM_QUOTA_BIN, *args],
            cwd=self.workdir,
            env=_clean_env(DATABASE_URL=self.database_url, LOG_LEVEL="warn"),
            capture_output=True,
            text=True,
            timeout=30,
        )

    def keys(self) -> list[dict]:
        """`llm-quota keys list --json`."""
        out = self.cli("keys", "list", "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def key_info(self, key: Key) -> dict:
        """The `keys list --json` object of one key."""
        matches = [k for k in self.keys() if k["id"] == key.id]
        assert len(matches) == 1, f"key {key} not listed exactly once"
        return matches[0]

    def create_key(
        self,
        *,
        daily_requests: int | None = None,
        daily_tokens: int | None = None,
        models: list[str] | None = None,
        extra: tuple[str, ...] = (),
    ) -> Key:
        """`llm-quota keys create` with a unique name; the plaintext is the last stdout line."""
        name = f"py-{os.getpid()}-{next(self._names)}"
        args = ["keys", "create", "--name", name]
        if daily_requests is not None:
            args += ["--daily-requests", str(daily_requests)]
        if daily_tokens is not None:
            args += ["--daily-tokens", str(daily_tokens)]
        if models is not None:
            args += ["--models", ",".join(models)]
        args += list(extra)
        out = self.cli(*args)
        assert out.returncode == 0, f"keys create failed: {out.stderr}"
        plaintext = out.stdout.strip().splitlines()[-1].strip()
        assert plaintext.startswith("sk-") and len(plaintext) >= 35, plaintext
        listed = [k for k in self.keys() if k["name"] == name]
        assert len(listed) == 1, f"new key {name} not listed exactly once: {listed}"
        info = listed[0]
        assert plaintext.startswith(info["key_prefix"]), (plaintext[:12], info["key_prefix"])
        return Key(id=info["id"], name=name, plaintext=plaintext, prefix=info["key_prefix"])

    def wait_for_usage(self, key: Key, requests: int, timeout: float = 5.0) -> dict:
        """Polls `keys list --json` until the key's daily request count reaches `requests` (usage
        is committed asynchronously, right after the response ends), then checks it stays there;
        returns `usage.day`."""
        # A request's admission (its count and prompt) and its commit (the answer's tokens) land
        # in separate group commits a few milliseconds apart, so the count can show before the
        # tokens: wait until two reads 0.2 s apart agree.
        deadline = time.monotonic() + timeout
        while True:
            day = self.key_info(key)["usage"]["day"]
            if day["requests"] >= requests:
                time.sleep(0.2)
                again = self.key_info(key)["usage"]["day"]
                if again == day or time.monotonic() > deadline:
                    break
            elif time.monotonic() > deadline:
                break
            else:
                time.sleep(0.05)
        assert day["requests"] == requests, day
        assert again == day, (day, again)
        return day

    def metrics_text(self) -> str:
        status, body = _http_get(f"{self.metrics}/metrics")
        assert status == 200, status
        return body.decode()

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample of `name` whose labels include `labels`, None when absent."""
        for line in self.metrics_text().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)", line)
            if not m or m.group(1) != name:
                continue
            got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(m.group(3))
        return None


@contextlib.contextmanager
def start_gateway(ollama_url: str, workdir: Path, yaml: str = ""):
    """`llm-quota serve` in front of `ollama_url`, on free loopback ports, SQLite in `workdir`,
    with `yaml` added to its configuration; yields a `Gateway`."""
    database_url = f"sqlite://{workdir}/q.db"
    # Like the Rust gateway tests: no grace period, so SIGTERM stops it at once at the end.
    config = workdir / "test.yaml"
    config.write_text("proxy:\n  grace_period_seconds: 0\n" + yaml)
    env = _clean_env(
        ADMIN_PASSWORD="x",
        PROXY_HOST="127.0.0.1",
        PROXY_PORT="0",
        ADMIN_PORT="0",
        METRICS_PORT="0",
        DATABASE_URL=database_url,
        OLLAMA_URL=ollama_url,
        LOG_LEVEL="warn",
    )
    stderr_path = workdir / "stderr.log"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [LLM_QUOTA_BIN, "serve", "--config", str(config)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        try:
            m = _LineReader(proc.stdout).wait_for(
                r"^llm-quota: proxy on (http://\S+), admin on (http://\S+), metrics on (http://\S+)$",
                STARTUP_TIMEOUT,
            )
        except RuntimeError as e:
            raise RuntimeError(f"{e}\nstderr:\n{stderr_path.read_text(errors='replace')}") from None
        gw = Gateway(
            proxy=m.group(1),
            admin=m.group(2),
            metrics=m.group(3),
            database_url=database_url,
            workdir=workdir,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                status, body = _http_get(f"{gw.proxy}/healthz", timeout=1.0)
                if status == 200:
                    assert json.loads(body) == {"status": "ok"}, body
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(
                    f"gateway never became healthy\nstderr:\n{stderr_path.read_text(errors='replace')}"
                )
            time.sleep(0.025)
        yield gw
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def gateway(fake_ollama, tmp_path_factory):
    """`llm-quota serve` in front of the fake Ollama, on free loopback ports, SQLite in a temp dir."""
    with start_gateway(fake_ollama, tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


@pytest.fixture
def new_key(gateway):
    """A function creating a fresh key: `new_key(daily_requests=1, models=["llama3"])`."""
    return gateway.create_key
