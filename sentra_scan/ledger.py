"""The scan ledger: every scan and its findings, encrypted, in SQLite inside the
repository's git directory (never tracked).

Each row's payload is sealed (AES-256-GCM) with associated data naming the store, the table
and the row, so rows cannot be swapped or moved. Commits already scanned clean are found
by a keyed hash of (commit id, scanner version), never by a plaintext id.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentra_scan import crypto
from sentra_scan.errors import KeyStateError
from sentra_scan.keys import DataKeys
from sentra_scan.model import Finding, ScanResult

LEDGER_FILE = "ledger.db"
LEDGER_FORMAT = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scans (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, blob BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS findings (id TEXT PRIMARY KEY, scan_id TEXT NOT NULL, blob BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS findings_scan ON findings (scan_id);
CREATE TABLE IF NOT EXISTS commits (lookup TEXT PRIMARY KEY, blob BLOB NOT NULL);
"""


@dataclass(frozen=True)
class ScanRecord:
    id: str
    seq: int
    data: dict[str, Any]
    findings: tuple[dict[str, Any], ...]


def _corrupt(path: Path, exc: Exception) -> KeyStateError:
    return KeyStateError(
        f"the ledger {path} is corrupt or not a Sentra ledger ({exc})",
        hint=f"move it aside (mv {path} {path}.bad): scans still run and a new ledger starts; nothing else is affected",
    )


class Ledger:
    def __init__(self, conn: sqlite3.Connection, keys: DataKeys, path: Path) -> None:
        self.conn = conn
        self.keys = keys
        self.path = path

    @classmethod
    def open(cls, keys: DataKeys) -> Ledger:
        path = keys.state_dir / LEDGER_FILE
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT v FROM meta WHERE k = 'format'").fetchone()
            if row is None:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (LEDGER_FORMAT,))
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (keys.store_id,))
                conn.execute("COMMIT")
            elif row[0] != LEDGER_FORMAT:
                raise KeyStateError(
                    f"{path}: ledger format {row[0]} is not supported (this Sentra reads {LEDGER_FORMAT})"
                )
            owner = conn.execute("SELECT v FROM meta WHERE k = 'store_id'").fetchone()
            if owner is not None and owner[0] != keys.store_id:
                raise KeyStateError(f"{path} belongs to another key store", hint="move it aside to start a new ledger")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _corrupt(path, exc) from None
        return cls(conn, keys, path)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None

    def _seal(self, obj: Any, table: str, row: str) -> bytes:
        data = json.dumps(obj, sort_keys=True).encode()
        return self.keys.seal(data, purpose=f"ledger-{table}", name=f"{self.keys.store_id}/{row}")

    def _open(self, blob: bytes, table: str, row: str) -> Any:
        return json.loads(self.keys.open(blob, purpose=f"ledger-{table}", name=f"{self.keys.store_id}/{row}"))

    def _lookup(self, commit: str, version: str) -> str:
        # Not remembered between known_clean and record: on a 100k-commit audit that is
        # ~30 MB held through the scan, for 0.1 s of keyed hashes.
        return crypto.keyed_hash(self.keys.lookup_key(), f"commit\0{commit}\0{version}")

    # -- recording --------------------------------------------------------------------

    def record(
        self,
        *,
        mode: str,
        target: str,
        scanner_version: str,
        duration_s: float,
        result: ScanResult,
        scanned_commits: Iterable[str] = (),
        scan_id: str | None = None,
        sealed: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> str:
        """Record a scan: its summary, its findings, and which of `scanned_commits` it found
        clean. A long scan may have recorded its commits already, batch by batch, under the
        same `scan_id` (`record_commits`); `sealed` may hold their rows made beforehand
        (`seal_commits`)."""
        scan_id = scan_id or new_scan_id()
        summary = {
            "when": time.time(),
            "mode": mode,
            "target": target,
            "rules_version": scanner_version,
            "duration_s": round(duration_s, 4),
            "findings": len(result.findings),
            "suppressed": len(result.suppressed),
            "incomplete": result.incomplete,
            "fragments": result.stats.fragments,
        }
        with self._write() as db:
            self._check_key_is_current(db)
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM scans").fetchone()[0]
            db.execute("INSERT INTO scans VALUES (?, ?, ?)", (scan_id, seq, self._seal(summary, "scan", scan_id)))
            for f in result.findings:
                fid = uuid.uuid4().hex
                db.execute(
                    "INSERT INTO findings VALUES (?, ?, ?)",
                    (fid, scan_id, self._seal(_finding_record(f), "finding", f"{scan_id}/{fid}")),
                )
            self._commit_rows(db, scan_id, scanner_version, result, scanned_commits, sealed)
        return scan_id

    def seal_commits(self, scan_id: str, scanner_version: str, commits: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        """The ledger rows (lookup, sealed record) of `commits` as clean under `scan_id`, made
        ahead, while the scan runs; `record` writes those of the commits it found clean."""
        row = self._clean_row(scan_id, scanner_version)
        return {commit: row(commit) for commit in commits}

    def _clean_row(self, scan_id: str, scanner_version: str) -> Callable[[str], tuple[str, bytes]]:
        """Makes a commit's row as clean under `scan_id`: its keyed lookup and its sealed
        record. An audit records tens of thousands of commits: the payload is formatted
        directly (the same JSON object `_seal` would write)."""
        version_json = json.dumps(scanner_version)
        seal = self.keys.seal
        name_prefix = f"{self.keys.store_id}/"

        def row(commit: str) -> tuple[str, bytes]:
            lookup = self._lookup(commit, scanner_version)
            payload = f'{{"commit": {json.dumps(commit)}, "rules_version": {version_json}, "scan": "{scan_id}"}}'
            return lookup, seal(payload.encode(), purpose="ledger-commit", name=name_prefix + lookup)

        return row

    def record_commits(self, scan_id: str, scanner_version: str, result: ScanResult, commits: Iterable[str]) -> None:
        """Record which of `commits` a part of a scan (`result`: its findings, suppressed
        findings and skips) found clean, in a short transaction of its own: a long audit
        records batch by batch, never holding the ledger's lock while it scans."""
        with self._write() as db:
            self._check_key_is_current(db)
            self._commit_rows(db, scan_id, scanner_version, result, commits)

    def _commit_rows(
        self,
        db: sqlite3.Connection,
        scan_id: str,
        scanner_version: str,
        result: ScanResult,
        commits: Iterable[str],
        sealed: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> None:
        # A commit with a suppressed finding is not clean: the baseline entry or allowlist
        # that hides it may change or expire without changing the scanner version.
        everything = (*result.findings, *result.suppressed)
        dirty = {f.location.commit.id for f in everything if f.location.commit is not None}
        incomplete = {s.commit for s in result.skipped if s.incomplete and s.commit}
        row = self._clean_row(scan_id, scanner_version)
        gone: list[tuple[str]] = []
        rows: list[tuple[str, bytes]] = []  # inserted in bulk
        for commit in commits:
            ready = sealed.get(commit) if sealed is not None else None
            if commit in dirty or commit in incomplete:
                gone.append((ready[0] if ready is not None else self._lookup(commit, scanner_version),))
            else:
                rows.append(ready if ready is not None else row(commit))
        db.executemany("DELETE FROM commits WHERE lookup = ?", gone)
        db.executemany("INSERT OR REPLACE INTO commits VALUES (?, ?)", rows)

    def _check_key_is_current(self, db: sqlite3.Connection) -> None:
        """Refuse to write with keys loaded before a rotation that has since re-encrypted the
        ledger: the old key is about to be dropped, and rows sealed with it would be lost."""
        row = db.execute("SELECT v FROM meta WHERE k = 'active_key'").fetchone()
        if row is not None and row[0] not in self.keys.keys:
            raise KeyStateError(
                "the data key was rotated while this command ran", hint="run it again to record with the new key"
            )

    def known_clean(self, commits: Iterable[str], scanner_version: str) -> set[str]:
        """The commits already scanned clean with this scanner version (verified rows only)."""
        clean: set[str] = set()
        try:
            rows = self.conn.execute("SELECT lookup, blob FROM commits").fetchall()
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None
        if not rows:
            return clean  # a first audit: no keyed hash of every commit for nothing
        by_lookup = {self._lookup(c, scanner_version): c for c in commits}
        for lookup, blob in rows:
            commit = by_lookup.get(lookup)
            if commit is None:
                continue
            try:
                record = self._open(blob, "commit", lookup)
            except crypto.DecryptError:
                continue  # a tampered row only costs a rescan
            if record.get("commit") == commit and record.get("rules_version") == scanner_version:
                clean.add(commit)
        return clean

    # -- reading ----------------------------------------------------------------------

    def history(self, limit: int = 20) -> list[ScanRecord]:
        try:
            rows = self.conn.execute("SELECT id, seq, blob FROM scans ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
            out = []
            for scan_id, seq, blob in rows:
                data = self._open(blob, "scan", scan_id)
                frows = self.conn.execute("SELECT id, blob FROM findings WHERE scan_id = ?", (scan_id,)).fetchall()
                findings = tuple(self._open(b, "finding", f"{scan_id}/{fid}") for fid, b in frows)
                out.append(ScanRecord(scan_id, seq, data, findings))
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None
        return out

    # -- rotation ---------------------------------------------------------------------

    def reencrypt(self) -> int:
        """Re-seal every row with the active key, in one transaction (all or nothing)."""
        n = 0
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('active_key', ?)", (self.keys.active_id,))
            for scan_id, blob in db.execute("SELECT id, blob FROM scans").fetchall():
                obj = self._open(blob, "scan", scan_id)
                db.execute("UPDATE scans SET blob = ? WHERE id = ?", (self._seal(obj, "scan", scan_id), scan_id))
                n += 1
            for fid, scan_id, blob in db.execute("SELECT id, scan_id, blob FROM findings").fetchall():
                name = f"{scan_id}/{fid}"
                obj = self._open(blob, "finding", name)
                db.execute("UPDATE findings SET blob = ? WHERE id = ?", (self._seal(obj, "finding", name), fid))
                n += 1
            rows = db.execute("SELECT lookup, blob FROM commits").fetchall()
            db.execute("DELETE FROM commits")
            for lookup, blob in rows:
                try:
                    obj = self._open(blob, "commit", lookup)
                except crypto.DecryptError:
                    continue  # a tampered cache row: dropping it only costs a rescan
                new = self._lookup(obj["commit"], obj["rules_version"])
                db.execute("INSERT OR REPLACE INTO commits VALUES (?, ?)", (new, self._seal(obj, "commit", new)))
                n += 1
        return n


def new_scan_id() -> str:
    return uuid.uuid4().hex


def _finding_record(f: Finding) -> dict[str, Any]:
    loc = f.location
    commit = None
    if loc.commit is not None:
        c = loc.commit
        commit = {"id": c.id, "author": c.author, "email": c.email, "date": c.date}
    return {
        "rule_id": f.rule_id,
        "severity": f.severity.label,
        "path": loc.path,
        "line": loc.line,
        "column": loc.column,
        "fingerprint": f.fingerprint,
        "commit": commit,
    }
