"""Using the store: open it with the repository's keys, the environment policy,
`sentra run` and `sentra inject`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sentra_scan.api import find_config, find_root
from sentra_scan.config import Config, load_config
from sentra_scan.errors import UsageError
from sentra_scan.sources.gitcmd import git
from sentra_scan.state import State, open_state
from sentra_scan.store import Store, default_location, exclude_from_git

REFERENCE = re.compile(r"sentra://env/([A-Za-z_][A-Za-z0-9_]*)")


def actor(repo: Path) -> str:
    """The git identity (config or GIT_AUTHOR_* variables), without the timestamp."""
    ident = git(["var", "GIT_AUTHOR_IDENT"], repo, check=False).strip()
    if ">" in ident:
        return ident[: ident.rindex(">") + 1]
    name = git(["config", "user.name"], repo, check=False).strip()
    return name or "unknown"


def store_path(config: Config, root: Path) -> Path:
    if config.store:
        path = Path(config.store)
        return path if path.is_absolute() else root / path
    return default_location(root)


def open_store(repo: Path | None = None, *, create: bool = True) -> tuple[State, Store, Config]:
    root = find_root(repo)
    if root is None:
        raise UsageError("the secret store lives in a git repository: run this inside one")
    config = load_config(find_config(root))
    state = open_state(root, create=create)
    path = store_path(config, root)
    if path.is_relative_to(root / ".sentra"):
        exclude_from_git(root)
    return state, Store.open(path, state.keys, actor=actor(root)), config


def env_prefixes(config: Config, env: str) -> tuple[str, ...]:
    if env not in config.environments:
        raise UsageError(f"unknown environment {env!r}", hint=f"known: {', '.join(config.environments)}")
    return config.environments[env]


def allowed(config: Config, env: str, path: str) -> bool:
    return path.startswith(env_prefixes(config, env))


def entry_env(store: Store, config: Config, env: str) -> dict[str, str]:
    """The variables `sentra run --env ENV` gives a process: entries under the
    environment's prefixes only, named by their last path segment."""
    out: dict[str, str] = {}
    for path, value in store.items(env_prefixes(config, env)):
        out[path.rsplit("/", 1)[-1]] = value
    return out


def run(command: Sequence[str], extra: Mapping[str, str]) -> int:
    if not command:
        raise UsageError("nothing to run", hint="sentra run -- COMMAND ARGS")
    try:
        return subprocess.run(list(command), env={**os.environ, **extra}, check=False).returncode
    except FileNotFoundError:
        raise UsageError(f"command not found: {command[0]}") from None


def render(template: str, values: Mapping[str, str], source: str) -> str:
    missing = sorted({m.group(1) for m in REFERENCE.finditer(template)} - set(values))
    if missing:
        raise UsageError(f"{source}: no entry for {', '.join(missing)} in this environment")
    return REFERENCE.sub(lambda m: values[m.group(1)], template)


def write_0600(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def read_value(value_stdin: bool, prompt: str) -> str:
    if value_stdin or not sys.stdin.isatty():
        value = sys.stdin.read()
        return value[:-1] if value.endswith("\n") else value
    import getpass

    return getpass.getpass(prompt)
