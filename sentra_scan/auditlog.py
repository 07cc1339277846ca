"""The store's audit log: one JSON object a line (time, actor, action, entry path; never a
value), each line chained to the previous one by a SHA-256 hash, so an edited or deleted
line breaks the chain. The store keeps a sealed anchor of the last hash, so a truncated
log is detected too."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

LOG_FILE = "audit.log"
GENESIS = "0" * 64


def _digest(prev: str, record: dict[str, object]) -> str:
    body = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    problems: tuple[str, ...]
    last_hash: str


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def last_hash(self) -> str:
        lines = self._lines()
        if not lines:
            return GENESIS
        try:
            return str(json.loads(lines[-1])["hash"])
        except (ValueError, KeyError, TypeError):
            return GENESIS

    def append(self, *, action: str, path: str, actor: str) -> str:
        prev = self.last_hash()
        record: dict[str, object] = {"time": round(time.time(), 3), "actor": actor, "action": action, "path": path}
        record["prev"] = prev
        record["hash"] = _digest(prev, {k: v for k, v in record.items() if k != "hash"})
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return str(record["hash"])

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self._lines()]

    def verify(self, anchor: str | None) -> Verification:
        """Check the chain, and that it ends where the store's sealed anchor says."""
        problems: list[str] = []
        prev = GENESIS
        hashes: list[str] = []
        for n, line in enumerate(self._lines(), 1):
            try:
                record = json.loads(line)
                claimed = record.pop("hash")
            except (ValueError, KeyError, AttributeError):
                problems.append(f"line {n}: not a log record")
                continue
            if record.get("prev") != prev:
                problems.append(f"line {n}: does not follow line {n - 1} (a line was removed or reordered)")
            if _digest(str(record.get("prev")), record) != claimed:
                problems.append(f"line {n}: content does not match its hash (edited)")
            prev = str(claimed)
            hashes.append(prev)
        if anchor is not None:
            if not hashes and anchor:
                problems.append("the log is empty but the store records mutations (log deleted)")
            elif hashes and anchor != hashes[-1]:
                if len(hashes) > 1 and anchor == hashes[-2]:
                    problems.append("the last line is not confirmed by the store (an interrupted write, or appended)")
                elif anchor in hashes:
                    problems.append("the store's last mutation is not the log's last line (lines appended)")
                else:
                    problems.append("the log ends before the store's last mutation (truncated)")
        return Verification(not problems, len(hashes), tuple(problems), prev)
