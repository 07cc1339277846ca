"""The baseline: findings a team has accepted, as fingerprints (salted hashes of rule and
secret: never a value, never a line number), sorted one entry a line, no timestamps, so
it merges cleanly and does not churn when code moves.

    # sentra baseline v1
    <fingerprint> <rule-id>[ expires=YYYY-MM-DD][ # reason]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from sentra_scan.errors import ConfigError
from sentra_scan.model import Finding

HEADER = "# sentra baseline v1: accepted findings (salted fingerprints; no secrets, no line numbers)"
DEFAULT_NAME = ".sentra-baseline"
_LINE = re.compile(
    r"^(?P<fp>[0-9a-f]{16,64})\s+(?P<rule>[a-z0-9][a-z0-9-]*)"
    r"(?:\s+expires=(?P<expires>\d{4}-\d{2}-\d{2}))?(?:\s+#\s?(?P<reason>.*))?$"
)


@dataclass(frozen=True)
class Entry:
    fingerprint: str
    rule_id: str
    expires: date | None = None
    reason: str = ""

    def expired(self, today: date) -> bool:
        return self.expires is not None and self.expires < today

    def line(self) -> str:
        out = f"{self.fingerprint} {self.rule_id}"
        if self.expires:
            out += f" expires={self.expires.isoformat()}"
        if self.reason:
            out += f" # {self.reason}"
        return out


@dataclass(frozen=True)
class Baseline:
    entries: dict[str, Entry]
    path: Path | None = None

    def match(self, fingerprint: str, today: date | None = None) -> Entry | None:
        entry = self.entries.get(fingerprint)
        if entry is None or entry.expired(today or date.today()):
            return None
        return entry

    def expired(self, today: date | None = None) -> list[Entry]:
        day = today or date.today()
        return [e for e in self.entries.values() if e.expired(day)]

    def text(self) -> str:
        lines = sorted(e.line() for e in self.entries.values())
        return "\n".join([HEADER, *lines]) + "\n"

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.text(), encoding="utf-8")
        tmp.replace(path)


def parse(text: str, source: str) -> Baseline:
    entries: dict[str, Entry] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            raise ConfigError(
                f"line {n}: expected '<fingerprint> <rule-id> [expires=YYYY-MM-DD] [# reason]'", source=source
            )
        expires = None
        if m.group("expires"):
            try:
                expires = date.fromisoformat(m.group("expires"))
            except ValueError:
                raise ConfigError(f"line {n}: invalid date {m.group('expires')!r}", source=source) from None
        entries[m.group("fp")] = Entry(m.group("fp"), m.group("rule"), expires, (m.group("reason") or "").strip())
    return Baseline(entries)


def load(path: Path) -> Baseline:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read baseline: {exc.strerror}", source=str(path)) from None
    return replace(parse(text, path.name), path=path)


def from_findings(findings: Iterable[Finding], *, reason: str = "", expires: date | None = None) -> Baseline:
    entries = {f.fingerprint: Entry(f.fingerprint, f.rule_id, expires, reason) for f in findings}
    return Baseline(entries)


def update(old: Baseline, findings: Iterable[Finding], *, add: bool = True) -> tuple[Baseline, int, int]:
    """Keep entries still found (with their reason/expiry), add new ones, drop vanished.
    With `add=False` (prune) nothing new is added. Returns (baseline, added, removed)."""
    current = {f.fingerprint: f for f in findings}
    kept = {fp: e for fp, e in old.entries.items() if fp in current}
    added = 0
    if add:
        for fp, f in current.items():
            if fp not in kept:
                kept[fp] = Entry(fp, f.rule_id)
                added += 1
    removed = len(old.entries) - sum(1 for fp in old.entries if fp in kept)
    return Baseline(kept, old.path), added, removed
