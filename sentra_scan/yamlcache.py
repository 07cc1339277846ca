"""Load YAML files through a small JSON cache, so the hook's hot path never imports PyYAML.

The cache is keyed on the file's bytes (SHA-256) and the caller's schema tag, and only ever
holds data that passed validation. Rule files and config hold no secrets; if the cache
directory cannot be written the file is parsed every time, nothing else changes.

An entry is the SHA-256 of its JSON text, a newline, then the JSON text: an entry that does
not match its own digest (truncated, corrupted, edited) is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentra_scan.errors import ConfigError

CACHE_FORMAT = "2"


def cache_dir() -> Path:
    explicit = os.environ.get("SENTRA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sentra-scan"


def parse_yaml(text: bytes, source: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"invalid YAML{where}: {problem}", source=source) from None


def load(path: Path, tag: str, validate: Callable[[Any, str], None], source: str | None = None) -> Any:
    """Return the data in the YAML file at `path`, validated by `validate(data, source)`.

    `validate` raises `ConfigError`; it runs on a cache miss only. `tag` names the schema and
    code version so that a change to either invalidates the cache.
    """
    source = source or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=source) from None
    digest = hashlib.sha256(raw + b"\0" + tag.encode() + b"\0" + CACHE_FORMAT.encode()).hexdigest()
    entry = cache_dir() / f"{digest}.json"
    hit = _read(entry)
    if hit is not None:
        return hit[0]
    data = parse_yaml(raw, source)
    validate(data, source)
    _store(entry, data)
    return data


def _read(entry: Path) -> tuple[Any] | None:
    """The cached data (in a 1-tuple, as it may be None), or None when absent or damaged."""
    try:
        with open(entry, encoding="utf-8") as fh:
            check, _, text = fh.read().partition("\n")
        if hashlib.sha256(text.encode()).hexdigest() != check:
            return None
        return (json.loads(text),)
    except (OSError, ValueError):
        return None


def _store(entry: Path, data: Any) -> None:
    try:
        text = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError):
        return  # not JSON-shaped (e.g. YAML dates): parse every time
    if json.loads(text) != data:
        return  # JSON would change it (non-string keys, tuples): parse every time
    try:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(hashlib.sha256(text.encode()).hexdigest() + "\n" + text)
        os.replace(tmp, entry)
    except OSError:
        return
