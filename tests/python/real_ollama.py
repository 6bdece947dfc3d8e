"""A real Ollama server for the tests: found, installed in a temporary folder, started on a free
port with a store of its own, and given the tiny models of tests/real-ollama/.

Where the server comes from, first match wins:
1. `OLLAMA_BIN`: that binary (its `lib/` beside `bin/`, if any, comes along);
2. `ollama` on the PATH;
3. every `../shared/real-ollama/*/bin/ollama` beside the project (the suite runs once per
   version found);
otherwise the suite is skipped, with one line saying so.

Nothing here reaches ollama.com: `OLLAMA_NO_CLOUD=1`, and `HOME` is a temporary folder (Ollama
writes its key pair there).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT, _LineReader, _stop, STARTUP_TIMEOUT

MODEL_DIR = ROOT / "tests" / "real-ollama"
SHARED = ROOT.parent / "shared" / "real-ollama"

#: The chat model (random weights, its own template) and an embedding model.
CHAT_MODEL = "tiny"
EMBED_MODEL = "tiny-embed"


@dataclass(frozen=True)
class Server:
    """One Ollama build to test against."""

    name: str
    binary: Path


def discover() -> tuple[list[Server], str]:
    """The servers to run the suite against, and where they were found."""
    explicit = os.environ.get("OLLAMA_BIN")
    if explicit:
        return [Server("OLLAMA_BIN", Path(explicit))], "OLLAMA_BIN"
    on_path = shutil.which("ollama")
    if on_path:
        return [Server("PATH", Path(on_path))], "PATH"
    found = sorted(SHARED.glob("*/bin/ollama"))
    servers = [Server(p.parent.parent.name, p) for p in found]
    return servers, str(SHARED)


SKIP_REASON = (
    "real Ollama suite skipped: no server found (set OLLAMA_BIN, put ollama on the PATH, "
    f"or provide {SHARED}/<version>/bin/ollama)"
)


def _install(server: Server, workdir: Path) -> Path:
    """The server's binary, runnable from `workdir`.

    Since v0.30 Ollama runs models through `llama-server` from `lib/ollama/` beside `bin/`. A
    copied tree may have lost its symbolic links (a link becomes a small file holding the
    target's name, and the loader then finds a "file too short"); the copy here restores them.
    """
    home = server.binary.resolve().parent.parent
    if not (home / "lib").is_dir():
        return server.binary
    install = workdir / "install"
    shutil.copytree(home, install, symlinks=True)
    for folder in [install, *install.rglob("*")]:
        if folder.is_dir() and not folder.is_symlink():
            folder.chmod(0o755)  # the source may be read-only
    for lib in (install / "lib").rglob("*"):
        if lib.is_symlink() or not lib.is_file() or lib.stat().st_size > 255:
            continue
        try:
            target = lib.read_text().strip()
        except UnicodeDecodeError:
            continue
        if target and "/" not in target and (lib.parent / target).is_file():
            lib.unlink()
            lib.symlink_to(target)
    binary = install / server.binary.resolve().relative_to(home)
    binary.chmod(0o755)
    for helper in (install / "lib").rglob("llama-*"):
        helper.chmod(0o755)
    return binary


def _env(workdir: Path, host: str) -> dict[str, str]:
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "OLLAMA_HOST": host,
        "OLLAMA_MODELS": str(workdir / "models"),
        "OLLAMA_NO_CLOUD": "1",
        # Two requests at once per model (tests send a few in parallel).
        "OLLAMA_NUM_PARALLEL": "2",
    }


def _make_models(binary: Path, workdir: Path, host: str) -> None:
    """Writes the tiny GGUFs with the project's script and `ollama create`s them."""
    models = workdir / "modelfiles"
    models.mkdir()
    for out, extra in (("tiny.gguf", []), ("tiny-embed.gguf", ["--embed"])):
        subprocess.run(
            [sys.executable, str(MODEL_DIR / "make_tiny_model.py"), str(models / out), *extra],
            check=True,
            capture_output=True,
        )
    for name, modelfile in ((CHAT_MODEL, "Modelfile"), (EMBED_MODEL, "Modelfile.embed")):
        shutil.copy(MODEL_DIR / modelfile, models / modelfile)
        done = subprocess.run(
            [str(binary), "create", name, "-f", modelfile],
            cwd=models,
            env=_env(workdir, host),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ollama create {name} failed: {done.stderr[-2000:]}")


@contextlib.contextmanager
def start(server: Server, workdir: Path):
    """A running Ollama with the tiny models; yields its base URL."""
    binary = _install(server, workdir)
    log_path = workdir / "ollama.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(binary), "serve"],
            cwd=workdir,
            env=_env(workdir, "127.0.0.1:0"),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.PIPE,
        )
    try:
        # Ollama logs `Listening on 127.0.0.1:PORT (version …)` once it accepts connections.
        m = _LineReader(proc.stderr).wait_for(r"Listening on (\S+) \(version", STARTUP_TIMEOUT)
        host = m.group(1)
        _make_models(binary, workdir, host)
        yield f"http://{host}"
    finally:
        _stop(proc)
