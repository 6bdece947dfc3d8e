#!/usr/bin/env python3
"""Checks that the shipped docs say what the code does (stdlib only; run from anywhere).

1. Every variable in .env.example is documented in docs/configuration.md and read by the Rust
   sources; every variable the code reads (proxy/src/config/env.rs) is in .env.example.
2. Every YAML setting of conf/llm-quota.yaml is documented in docs/configuration.md.
3. Every command the README and the deployment docs tell people to run exists: `./script`
   and `bash script` paths, `cargo run/build -p PACKAGE`, and each `llm-quota` command line
   (subcommands and --options checked against `llm-quota … --help` of the built binary).
4. compose.yaml passes the gateway only variables it reads and publishes the admin and metrics
   ports on 127.0.0.1 only.
5. Relative links of the docs under docs/ point at files that exist (README.md: a warning, as
   it links to documents other people write).
6. The examples of docs/operations.md fenced as ```sh check run, in order, with bash against a
   gateway this script starts (the --bin binary, the fake-ollama beside it, a fresh SQLite file,
   one key with one request made), with ADMIN, ADMIN_PASSWORD and DATABASE_URL set and the
   binary on PATH; each must exit 0.

Usage: scripts/check-docs.py [--bin target/debug/llm-quota]
"""

import argparse
import functools
import os
import re
import shlex
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The documents whose commands and links are checked.
DOCS = [
    "README.md",
    "docs/deployment.md",
    "docs/configuration.md",
    "docs/api.md",
    "docs/security.md",
    "docs/operations.md",
]
# The documents whose ```sh check examples are run.
EXAMPLE_DOCS = ["docs/operations.md"]
RUST_SOURCES = ["proxy/src", "quota-engine/src", "admin-api/src"]
SHELL_FENCES = {"sh", "bash", "shell", "console"}

failures = []


def fail(message):
    failures.append(message)


def read(rel):
    return (ROOT / rel).read_text(encoding="utf-8")


# ---- 1. environment variables --------------------------------------------------------------


def env_example_variables():
    names = re.findall(r"^#?([A-Z][A-Z0-9_]*)=", read(".env.example"), re.M)
    return list(dict.fromkeys(names))


def code_variables():
    text = read("proxy/src/config/env.rs")
    names = re.findall(r'^\s*\("([A-Z][A-Z0-9_]*)",\s*"', text, re.M)
    names += re.findall(r'CONFIG_PATH_VAR:\s*&str\s*=\s*"([A-Z0-9_]+)"', text)
    return names


def rust_text():
    parts = []
    for folder in RUST_SOURCES:
        for path in sorted((ROOT / folder).rglob("*.rs")):
            parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)


def check_variables():
    example = env_example_variables()
    configuration = read("docs/configuration.md")
    rust = rust_text()
    if not example:
        fail(".env.example: no VARIABLE= lines found")
    for name in example:
        if f"`{name}`" not in configuration:
            fail(f".env.example: {name} is not documented in docs/configuration.md (as `{name}`)")
        if f'"{name}"' not in rust:
            fail(f".env.example: {name} is read nowhere in {', '.join(RUST_SOURCES)}")
    code = code_variables()
    if len(code) < 10:
        fail("proxy/src/config/env.rs: could not read the VARIABLES table (has its layout changed?)")
    for name in code:
        if name not in example:
            fail(f"proxy/src/config/env.rs reads {name}, but .env.example does not list it")
    return example


# ---- 2. YAML settings ----------------------------------------------------------------------


def yaml_settings():
    """Dotted paths of conf/llm-quota.yaml, commented-out keys (`# password: x`) included."""
    paths, stack = [], []
    for line in read("conf/llm-quota.yaml").splitlines():
        m = re.match(r"^(\s*)(?:#\s?)?([a-z_]+):(?:\s|$)", line)
        if not m or line.lstrip().startswith("- "):
            continue
        if line.lstrip().startswith("#") and not re.match(r"^\s*#\s?[a-z_]+: \S+$", line):
            continue  # a comment that merely mentions "word:"
        indent = len(m.group(1)) // 2
        stack = stack[:indent] + [m.group(2)]
        paths.append(".".join(stack))
    leaves = [p for p in paths if not any(q.startswith(p + ".") for q in paths)]
    return leaves


def check_yaml_settings():
    configuration = read("docs/configuration.md")
    settings = yaml_settings()
    if len(settings) < 15:
        fail(f"conf/llm-quota.yaml: only {len(settings)} settings found (has its layout changed?)")
    for path in settings:
        if f"`{path}`" not in configuration:
            fail(f"conf/llm-quota.yaml: {path} is not documented in docs/configuration.md")


# ---- 3. commands ---------------------------------------------------------------------------


class Cli:
    def __init__(self, binary):
        self.binary = binary

    @functools.lru_cache(maxsize=None)
    def help(self, words):
        result = subprocess.run(
            [self.binary, *words, "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
        if result.returncode != 0:
            return None
        return result.stdout

    def subcommands(self, words):
        text = self.help(words) or ""
        section = re.search(r"^Commands:\n((?:  .*\n)+)", text, re.M)
        if not section:
            return set()
        return {line.split()[0] for line in section.group(1).splitlines() if line.strip()}

    def options(self, words):
        return set(re.findall(r"(--[a-z][a-z0-9-]*)", self.help(words) or ""))

    def check(self, args, where):
        """`args`: the tokens after `llm-quota`."""
        args = [a.strip("[]") for a in args]
        args = [a for a in args if a]
        words, i = [], 0
        while i < len(args):
            a = args[i]
            if a == "--config":
                i += 2
                continue
            if a.startswith("-"):
                break
            if not re.fullmatch(r"[a-z][a-z-]*", a):
                break
            if a in self.subcommands(tuple(words)):
                words.append(a)
            elif self.subcommands(tuple(words)):
                fail(f"{where}: `llm-quota {' '.join(args)}`: {a!r} is not a command of `llm-quota {' '.join(words)}`")
                return
            else:
                break  # a positional argument of a leaf command
            i += 1
        if not words:
            return
        if self.help(tuple(words)) is None:
            fail(f"{where}: `llm-quota {' '.join(words)} --help` fails")
            return
        known = self.options(tuple(words))
        for a in args:
            flag = a.split("=", 1)[0]
            if flag.startswith("--") and flag != "--" and flag not in known:
                fail(f"{where}: `llm-quota {' '.join(words)}` has no option {flag}")


@functools.lru_cache(maxsize=None)
def workspace_packages():
    names = set()
    for manifest in ROOT.glob("*/Cargo.toml"):
        m = re.search(r'^\[package\]\s*\nname\s*=\s*"([^"]+)"', manifest.read_text(), re.M)
        if m:
            names.add(m.group(1))
    return names


def shell_commands(text):
    """(line number, command line) of every fenced sh/bash/shell/console block."""
    out, fence, buffer, start = [], None, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*```(\w*)", line)
        if m:
            fence = None if fence is not None else m.group(1)
            continue
        if fence not in SHELL_FENCES:
            continue
        stripped = line.strip()
        if stripped.startswith("$ "):
            stripped = stripped[2:]
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        if buffer and not buffer.startswith("#"):
            out.append((start, buffer))
        buffer = ""
    return out


def inline_commands(text):
    """`llm-quota …` spans in prose (outside fences)."""
    out, in_fence = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(r"^\s*```", line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for span in re.findall(r"`([^`]+)`", line):
            if re.match(r"^llm-quota [a-z]", span):
                out.append((number, span))
    return out


def split_simple(command):
    """Simple commands of a line: split on &&, ||, ;, | outside quotes."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return []
    parts, current = [], []
    for token in tokens:
        if token and set(token) <= set(";&|"):
            if current:
                parts.append(current)
            current = []
        else:
            current.append(token)
    if current:
        parts.append(current)
    return parts


def check_simple(tokens, where, cli):
    while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", tokens[0]):
        tokens = tokens[1:]
    while tokens and tokens[0] in {"sudo", "exec", "time", "env"}:
        tokens = tokens[1:]
        while tokens and tokens[0].startswith("-"):  # sudo -u USER, sudo -E
            tokens = tokens[2:] if tokens[0] in {"-u", "-g"} else tokens[1:]
    if not tokens:
        return
    first = tokens[0]
    if first in {"sh", "bash"} and len(tokens) > 2 and tokens[1] == "-c":
        for simple in split_simple(tokens[2]):
            if simple and simple[0] != "cd":
                check_simple(simple, where, cli)
        return
    if first.startswith("./"):
        path = ROOT / first
        if not path.is_file():
            fail(f"{where}: `{first}` does not exist")
        elif not path.stat().st_mode & 0o111:
            fail(f"{where}: `{first}` is not executable")
        return
    if first in {"bash", "sh", "python3"} and len(tokens) > 1 and not tokens[1].startswith("-"):
        if not (ROOT / tokens[1]).is_file():
            fail(f"{where}: `{tokens[1]}` does not exist")
        return
    if first == "cargo" and len(tokens) > 1 and tokens[1] in {"run", "build", "install"}:
        rest = tokens[2:]
        if "-p" in rest:
            package = rest[rest.index("-p") + 1] if rest.index("-p") + 1 < len(rest) else ""
            if package not in workspace_packages():
                fail(f"{where}: `cargo {tokens[1]} -p {package}`: no such package in the workspace")
            if tokens[1] == "run" and package == "llm-quota" and "--" in rest:
                cli.check(rest[rest.index("--") + 1 :], where)
        return
    if first == "llm-quota" or first.endswith("/llm-quota"):
        cli.check(tokens[1:], where)
        return
    if first == "docker":
        # `docker run … IMAGE ARGS` / `docker exec … CONTAINER llm-quota ARGS`: the arguments
        # after the last `llm-quota` token are what the image's entrypoint or binary gets.
        positions = [i for i, t in enumerate(tokens) if t == "llm-quota"]
        if positions:
            args = tokens[positions[-1] + 1 :]
            if args and args[0] not in {"serve", "migrate", "keys", "config", "help"}:
                if re.fullmatch(r"[a-z][a-z-]*", args[0]) and args[0] not in {"healthcheck", "bash", "sh"}:
                    fail(f"{where}: `{' '.join(tokens)}`: {args[0]!r} is no llm-quota command")
                return
            cli.check(args, where)
        # `docker compose -f FILE …` (a -f after the subcommand is another option, e.g. logs -f).
        if tokens[1:3] in (["compose", "-f"], ["compose", "--file"]) and len(tokens) > 3:
            if not (ROOT / tokens[3]).is_file():
                fail(f"{where}: compose file {tokens[3]} does not exist")
        return
    for token in tokens:
        if re.fullmatch(r"(?:\./)?(?:[\w.-]+/)+[\w.-]+\.(?:ya?ml|sh|md|toml|example|py)", token):
            if not (ROOT / token).is_file():
                fail(f"{where}: {token} does not exist")
        if token == ".env.example" and not (ROOT / token).is_file():
            fail(f"{where}: .env.example does not exist")


def check_commands(binary):
    if not Path(binary).is_file():
        fail(f"{binary} is missing: build it first (cargo build -p llm-quota)")
        return
    cli = Cli(str(Path(binary).resolve()))
    counted = 0
    for doc in DOCS:
        path = ROOT / doc
        if not path.is_file():
            fail(f"{doc} is missing")
            continue
        text = path.read_text(encoding="utf-8")
        for number, command in shell_commands(text):
            for simple in split_simple(command):
                check_simple(simple, f"{doc}:{number}", cli)
                counted += 1
        for number, span in inline_commands(text):
            cli.check(shlex.split(span, posix=True)[1:], f"{doc}:{number}")
            counted += 1
    readme = read("README.md")
    for required in (
        "ADMIN_PASSWORD=change-me cargo run --release -p llm-quota -- serve",
        "./run-tests",
    ):
        if required not in readme:
            fail(f"README.md: the command `{required}` is gone")
    return counted


# ---- 4. compose ----------------------------------------------------------------------------


def check_compose():
    """compose.yaml: the gateway gets only variables it reads, admin and metrics stay on the
    host's loopback. Parsed with PyYAML when it is installed (ci-ship.sh installs it)."""
    rel = "compose.yaml"
    if not (ROOT / rel).is_file():
        fail(f"{rel} is missing")
        return
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        print("check-docs: warning: PyYAML is missing; compose.yaml is not checked", file=sys.stderr)
        return
    try:
        compose = yaml.safe_load(read(rel))
        service = compose["services"]["llm-quota"]
    except (yaml.YAMLError, KeyError, TypeError) as e:
        fail(f"{rel}: cannot read services.llm-quota: {e}")
        return
    known = env_example_variables()
    for name in service.get("environment", {}):
        if name not in known:
            fail(f"{rel}: services.llm-quota.environment.{name} is not a variable llm-quota reads")
    published = [str(p) for p in service.get("ports", [])]
    for entry in published:
        container_port = entry.rsplit(":", 1)[-1]
        if container_port in {"8001", "9464"} and not entry.startswith("127.0.0.1:"):
            fail(f"{rel}: port {container_port} must be published as 127.0.0.1:{container_port}:{container_port}, not {entry}")
    for container_port in ("8000", "8001"):
        if not any(e.rsplit(":", 1)[-1] == container_port for e in published):
            fail(f"{rel}: services.llm-quota does not publish port {container_port}")
    for name, other in compose["services"].items():
        if name != "llm-quota" and other.get("ports"):
            fail(f"{rel}: services.{name} publishes ports; only the gateway should")


# ---- 5. links ------------------------------------------------------------------------------


def check_links():
    for doc in DOCS:
        path = ROOT / doc
        if not path.is_file():
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:|^#", target):
                continue
            file = (path.parent / target.split("#")[0]).resolve()
            if not file.exists():
                if doc == "README.md":
                    print(f"check-docs: warning: {doc}: the link {target} points at nothing", file=sys.stderr)
                else:
                    fail(f"{doc}: the link {target} points at nothing")


# ---- 6. runnable examples ------------------------------------------------------------------


def example_blocks(text):
    """(line number, script) of every ```sh check block."""
    out, script, start = [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        if script is None:
            if re.match(r"^\s*```sh check\s*$", line):
                script, start = [], number
        elif re.match(r"^\s*```\s*$", line):
            out.append((start, "\n".join(script)))
            script = None
        else:
            script.append(line)
    return out


def first_line(process, prefix, what):
    for line in process.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise RuntimeError(f"{what} exited before printing {prefix!r}")


def check_examples(binary):
    binary = Path(binary).resolve()
    fake = binary.parent / "fake-ollama"
    if not binary.is_file() or not fake.is_file():
        fail(f"{binary} or {fake} is missing: build them first (cargo build -p llm-quota -p fake-ollama)")
        return 0
    blocks = [(doc, n, script) for doc in EXAMPLE_DOCS for n, script in example_blocks(read(doc))]
    with tempfile.TemporaryDirectory() as work:
        env = {
            "PATH": f"{binary.parent}:{os.environ.get('PATH', '')}",
            "HOME": work,
            "DATABASE_URL": f"sqlite://{work}/docs.db",
            "ADMIN_PASSWORD": "docs-check",
            "APP_TZ": "Europe/Berlin",
            "LOG_LEVEL": "warn",
        }
        started = []
        try:
            ollama = subprocess.Popen([str(fake)], stdout=subprocess.PIPE, text=True, cwd=work)
            started.append(ollama)
            ollama_url = first_line(ollama, "listening on ", "fake-ollama").split()[-1]
            gateway = subprocess.Popen(
                [str(binary), "serve"],
                stdout=subprocess.PIPE,
                text=True,
                cwd=work,
                env={**env, "OLLAMA_URL": ollama_url, "PROXY_HOST": "127.0.0.1", "PROXY_PORT": "0", "ADMIN_PORT": "0", "METRICS_PORT": "0"},
            )
            started.append(gateway)
            urls = re.findall(r"http://[^,\s]+", first_line(gateway, "llm-quota: proxy on ", "llm-quota serve"))
            proxy, admin = urls[0], urls[1]
            created = subprocess.run([str(binary), "keys", "create", "--name", "docs", "--daily-requests", "100"],
                                     capture_output=True, text=True, cwd=work, env=env, check=True)
            key = created.stdout.strip().splitlines()[-1]
            chat = urllib.request.Request(
                f"{proxy}/api/chat",
                data=b'{"model":"llama3","stream":false,"messages":[{"role":"user","content":"hi"}]}',
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(chat, timeout=30) as answer:
                answer.read()
            for doc, number, script in blocks:
                result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                                        cwd=work, env={**env, "ADMIN": admin}, timeout=60)
                if result.returncode != 0:
                    fail(f"{doc}:{number}: the example exited {result.returncode}: {(result.stderr or result.stdout).strip()[-500:]}")
        except (OSError, RuntimeError, subprocess.SubprocessError, IndexError) as e:
            fail(f"cannot run the examples: {e}")
        finally:
            for process in reversed(started):
                process.kill()
                process.wait()
    return len(blocks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=str(ROOT / "target/debug/llm-quota"))
    args = parser.parse_args()
    variables = check_variables()
    check_yaml_settings()
    commands = check_commands(args.bin) or 0
    check_compose()
    check_links()
    examples = check_examples(args.bin)
    if failures:
        for message in failures:
            print(f"check-docs: {message}", file=sys.stderr)
        print(f"check-docs: {len(failures)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-docs: {len(variables)} variables, {len(yaml_settings())} YAML settings, {commands} commands, {examples} examples run: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
