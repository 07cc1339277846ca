"""The typed, frozen values that cross the pipeline's seams.

source --Fragment--> detector --Candidate--> filters --Finding--> sinks
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate


class Secret:
    """A secret value that redacts itself everywhere except through `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plain value. Call it only where the value must be used, never to print."""
        return self._value

    def redacted(self) -> str:
        return redact(self._value)

    def __repr__(self) -> str:
        return f"Secret({self.redacted()!r})"

    def __str__(self) -> str:
        return self.redacted()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __len__(self) -> int:
        return len(self._value)


def redact(value: str) -> str:
    """Mask a secret: short values entirely, longer ones keep a 4-character prefix."""
    if len(value) < 16:
        return "*" * 8
    return value[:4] + "*" * 8


class Severity(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]


@dataclass(frozen=True)
class CommitInfo:
    id: str
    author: str
    email: str
    date: str  # ISO 8601
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fragment:
    """Text with its origin. `lines[i]` sits at line `line_numbers[i]` of the new file."""

    path: str
    lines: tuple[str, ...] = field(repr=False)
    line_numbers: tuple[int, ...] = field(repr=False)
    commit: CommitInfo | None = None
    blob_id: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


_PLUS_ONE = (1).__add__


def line_starts(lines: Sequence[str]) -> list[int]:
    """Offset of each line in `"\\n".join(lines)`."""
    return list(accumulate(map(_PLUS_ONE, map(len, lines[:-1])), initial=0))  # no Python step per line


@dataclass(frozen=True)
class Location:
    path: str
    line: int
    column: int  # 1-based, in characters
    end_column: int
    commit: CommitInfo | None = None


@dataclass(frozen=True, eq=False)
class Candidate:
    """A rule matched: the secret and where, before any filter has decided."""

    rule_id: str
    secret: Secret
    location: Location
    line_text: str = field(repr=False)  # holds the secret: never in a repr
    match_text: str = field(repr=False)  # the whole regex match around the secret (kept in memory only)
    encoding: str | None = None  # "base64", "percent": found inside an encoded token


@dataclass(frozen=True)
class ContextField:
    """A field of a finding's record that says whose credential it is and where: a user name,
    login or e-mail (`role` "user"), a host, server, URL or registry ("host"), a database
    ("database"), a remote directory ("path"); or how live it is: the record's creation, last
    use or password change time ("when", the value as written: an epoch or an ISO date), its
    use count ("usage"). Never a secret: `sentra_scan.context` refuses secret-like names and values."""

    line: int
    name: str  # the key as written: "DB_USERNAME", "User", "login"
    value: str
    role: str


@dataclass(frozen=True, eq=False)
class Finding:
    rule_id: str
    description: str
    severity: Severity
    location: Location
    fingerprint: str
    secret: Secret
    line_text: str = field(repr=False)  # holds the secret: never in a repr
    hint: str = ""
    env_name: str | None = None
    suppressed_by: str | None = None  # set when reported with --show-suppressed
    occurrences: tuple[Location, ...] = ()  # other places the same secret appears (audits)
    encoding: str | None = None  # found inside a base64 / percent-encoded token
    note: str | None = None  # why the severity differs from the rule's ("value looks like a placeholder")
    context: tuple[ContextField, ...] = ()  # the account and host of the record the secret sits in

    def masked_line(self, max_len: int = 160) -> str:
        """The source line with the secret masked, trimmed around it when long."""
        start = self.location.column - 1
        end = self.location.end_column - 1
        line = self.line_text
        masked = line[:start] + self.secret.redacted() + line[end:]
        if len(masked) <= max_len:
            return masked.strip()
        lo = max(0, start - 40)
        hi = min(len(masked), start + len(self.secret.redacted()) + 40)
        return ("…" if lo else "") + masked[lo:hi].strip() + ("…" if hi < len(masked) else "")


class SkipReason(enum.Enum):
    TOO_LARGE = "too large"
    BINARY = "binary"
    TIMEOUT = "pattern time-out"
    BUDGET = "time budget ran out"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Skipped:
    """A file, or part of one, that was not fully scanned."""

    path: str
    reason: SkipReason
    detail: str = ""
    commit: str | None = None

    @property
    def incomplete(self) -> bool:
        """Binary files are skipped by design; the rest leave the scan incomplete."""
        return self.reason is not SkipReason.BINARY


@dataclass(frozen=True)
class ScanStats:
    fragments: int = 0
    lines: int = 0
    bytes: int = 0
    rules_run: int = 0
    duration_s: float = 0.0


@dataclass(frozen=True)
class ScanResult:
    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...] = ()
    suppressed: tuple[Finding, ...] = ()
    stats: ScanStats = field(default_factory=ScanStats)

    @property
    def incomplete(self) -> bool:
        return any(s.incomplete for s in self.skipped)
