"""The encrypted SQLite ledger: sealed rows, keyed commit lookups, tamper evidence, a
corrupt file left alone, concurrent writers."""

from __future__ import annotations

import base64
import dataclasses
import multiprocessing
import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sentra_scan.crypto import DecryptError
from sentra_scan.errors import ExitCode, KeyStateError
from sentra_scan.keys import DataKeys, select_source
from sentra_scan.ledger import LEDGER_FILE, Ledger
from sentra_scan.model import CommitInfo, Finding, Location, ScanResult, Secret, Severity, Skipped, SkipReason
from tests.helpers import Repo, canary_github_token, sentra

KEY = base64.b64encode(bytes(range(7, 39))).decode()
OTHER_KEY = base64.b64encode(bytes(range(50, 82))).decode()

# Distinctive metadata, so that a grep of the database file cannot match by accident.
PATH = "deploy/zq-ledger-canary.py"
AUTHOR = "Quentin Ledgerwood"
EMAIL = "quentin.ledgerwood@example.test"
RULE = "github-pat"
FINGERPRINT = "5e1f0c2a9b7d4e3f8a6c1b2d3e4f5a6b"
DIRTY = "d1a7" * 10
CLEAN = ["c1ea" + f"{i:04x}" * 9 for i in range(3)]


@pytest.fixture(autouse=True)
def _key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SENTRA_KEY_FILE", "SENTRA_PASSWORD", "SENTRA_KEY_SOURCE", "SENTRA_NO_RECORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SENTRA_KEY", KEY)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


VALUE = "s3cr3t-value-never-stored-7c1d"


def finding(commit: str = DIRTY, value: str = VALUE) -> Finding:
    info = CommitInfo(commit, AUTHOR, EMAIL, "2026-01-02T03:04:05+00:00")
    return Finding(
        rule_id=RULE,
        description="GitHub personal access token (classic)",
        severity=Severity.CRITICAL,
        location=Location(PATH, 12, 9, 49, info),
        fingerprint=FINGERPRINT,
        secret=Secret(value),
        line_text=f'token = "{value}"',
    )


def open_ledger(state: Path, key: str = KEY) -> Ledger:
    return Ledger.open(DataKeys.open_or_create(state, select_source({"SENTRA_KEY": key})))


def record(ledger: Ledger, result: ScanResult, commits: list[str] | None = None, version: str = "v1") -> str:
    return ledger.record(
        mode="audit",
        target="audit all refs",
        scanner_version=version,
        duration_s=0.25,
        result=result,
        scanned_commits=commits if commits is not None else [*CLEAN, DIRTY],
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "git" / "sentra"


@pytest.fixture
def filled(state: Path) -> Path:
    """A ledger with one scan that found one secret in DIRTY, and one clean scan."""
    ledger = open_ledger(state)
    record(ledger, ScanResult((finding(),)))
    record(ledger, ScanResult(()), commits=[])
    ledger.close()
    return state


def rows(state: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(state / LEDGER_FILE) as db:
        return db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 (a fixed table name)


def write_sql(state: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    db = sqlite3.connect(state / LEDGER_FILE)
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


def snapshot(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(state.iterdir())}


# -- round trip -------------------------------------------------------------------------


def test_record_and_history_round_trip(state: Path) -> None:
    ledger = open_ledger(state)
    first = record(ledger, ScanResult((finding(),), skipped=(Skipped("big.bin", SkipReason.TOO_LARGE),)))
    second = record(ledger, ScanResult(()), commits=[])
    ledger.close()

    ledger = open_ledger(state)  # a new process would do the same
    history = ledger.history()
    ledger.close()
    assert [r.id for r in history] == [second, first]  # newest first
    assert [r.seq for r in history] == [2, 1]
    old = history[1]
    assert old.data["mode"] == "audit"
    assert old.data["target"] == "audit all refs"
    assert old.data["rules_version"] == "v1"
    assert old.data["findings"] == 1
    assert old.data["incomplete"] is True
    assert old.data["duration_s"] == 0.25
    assert old.findings == (
        {
            "rule_id": RULE,
            "severity": "critical",
            "path": PATH,
            "line": 12,
            "column": 9,
            "fingerprint": FINGERPRINT,
            "commit": {"id": DIRTY, "author": AUTHOR, "email": EMAIL, "date": "2026-01-02T03:04:05+00:00"},
        },
    )
    assert history[0].findings == ()
    assert VALUE not in repr(history)  # the secret itself is never recorded


def test_history_limit(state: Path) -> None:
    ledger = open_ledger(state)
    for _ in range(5):
        record(ledger, ScanResult(()), commits=[])
    assert [r.seq for r in ledger.history(limit=2)] == [5, 4]
    ledger.close()


def test_commits_with_findings_are_not_cached(filled: Path) -> None:
    ledger = open_ledger(filled)
    assert ledger.known_clean([*CLEAN, DIRTY], "v1") == set(CLEAN)
    assert ledger.known_clean([*CLEAN, DIRTY], "v2") == set()  # other rules: nothing is known
    ledger.close()


def test_a_suppressed_finding_keeps_its_commit_out_of_the_cache(state: Path) -> None:
    """A baseline entry can expire or be removed without changing the scanner version: a
    commit whose finding it hid must be scanned again (was cached clean: fail-open)."""
    hidden = dataclasses.replace(finding(), suppressed_by="baseline")
    ledger = open_ledger(state)
    record(ledger, ScanResult((), suppressed=(hidden,)))
    assert ledger.known_clean([*CLEAN, DIRTY], "v1") == set(CLEAN)
    ledger.close()


def test_incompletely_scanned_commits_are_not_cached(state: Path) -> None:
    ledger = open_ledger(state)
    partial = Skipped("huge.txt", SkipReason.TOO_LARGE, commit=CLEAN[0])
    binary = Skipped("logo.png", SkipReason.BINARY, commit=CLEAN[1])
    record(ledger, ScanResult((), skipped=(partial, binary)))
    assert ledger.known_clean(CLEAN, "v1") == {CLEAN[1], CLEAN[2]}
    ledger.close()


def test_a_commit_found_dirty_later_leaves_the_cache(filled: Path) -> None:
    ledger = open_ledger(filled)
    record(ledger, ScanResult((finding(CLEAN[0]),)), commits=[CLEAN[0]])
    assert ledger.known_clean(CLEAN, "v1") == {CLEAN[1], CLEAN[2]}
    ledger.close()


def test_rows_sealed_ahead_are_the_rows_recording_makes(state: Path) -> None:
    """A one-process scan seals its commits' rows on a thread while it scans; recording then
    writes those of the clean commits, exactly as if it had sealed them itself, and never
    those of a commit the scan found dirty, suppressed or incomplete."""
    ledger = open_ledger(state)
    scan_id = "5ca1ab1e" * 4
    ahead = ledger.seal_commits(scan_id, "v1", [*CLEAN, DIRTY])
    assert set(ahead) == {*CLEAN, DIRTY}
    partial = Skipped("huge.txt", SkipReason.TOO_LARGE, commit=CLEAN[2])
    ledger.record(
        mode="audit",
        target="audit all refs",
        scanner_version="v1",
        duration_s=0.25,
        result=ScanResult((finding(),), skipped=(partial,)),
        scanned_commits=[*CLEAN, DIRTY],
        scan_id=scan_id,
        sealed=ahead,
    )
    assert ledger.known_clean([*CLEAN, DIRTY], "v1") == {CLEAN[0], CLEAN[1]}
    written = dict(rows(state, "commits"))
    assert written == {ahead[c][0]: ahead[c][1] for c in CLEAN[:2]}
    for lookup, blob in written.items():
        assert ledger._open(blob, "commit", lookup) == {
            "commit": ledger_commit(ahead, lookup),
            "rules_version": "v1",
            "scan": scan_id,
        }
    ledger.close()


def ledger_commit(ahead: dict[str, tuple[str, bytes]], lookup: str) -> str:
    [commit] = [c for c, (lk, _blob) in ahead.items() if lk == lookup]
    return commit


# -- sealed at rest ---------------------------------------------------------------------


def test_rows_are_sealed(filled: Path) -> None:
    raw = (filled / LEDGER_FILE).read_bytes()
    for text in (PATH, AUTHOR, EMAIL, RULE, FINGERPRINT, DIRTY, *CLEAN, "audit all refs", "critical"):
        assert text.encode() not in raw, f"{text!r} in the ledger file"
        assert text.encode("utf-16-le") not in raw
    # Column by column as well: only ids, sequence numbers, keyed hashes and ciphertext.
    with sqlite3.connect(filled / LEDGER_FILE) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert sorted(tables) == ["commits", "findings", "meta", "scans"]
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):  # noqa: S608
                for value in row:
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    for secret in (PATH, AUTHOR, EMAIL, RULE, FINGERPRINT, DIRTY, *CLEAN):
                        assert secret not in text
                    if isinstance(value, bytes):
                        assert value.startswith(b"SNT\x01")
    lookups = [r[0] for r in rows(filled, "commits")]
    assert len(lookups) == len(CLEAN)
    assert all(len(x) == 64 and x not in CLEAN for x in lookups)


def test_the_ledger_lives_in_a_private_file(filled: Path) -> None:
    assert (filled / LEDGER_FILE).stat().st_mode & 0o777 == 0o600


# -- tampering --------------------------------------------------------------------------


def test_swapped_scan_rows_are_a_clear_error(filled: Path) -> None:
    (a, _, blob_a), (b, _, blob_b) = rows(filled, "scans")
    write_sql(filled, "UPDATE scans SET blob = ? WHERE id = ?", (blob_b, a))
    write_sql(filled, "UPDATE scans SET blob = ? WHERE id = ?", (blob_a, b))
    ledger = open_ledger(filled)
    with pytest.raises(DecryptError, match=r"ledger-scan '.*' failed authentication: tampered, truncated or moved"):
        ledger.history()
    ledger.close()


def test_a_finding_moved_to_another_scan_is_a_clear_error(filled: Path) -> None:
    ((fid, _, _),) = rows(filled, "findings")
    other = next(r[0] for r in rows(filled, "scans") if r[0] != rows(filled, "findings")[0][1])
    write_sql(filled, "UPDATE findings SET scan_id = ? WHERE id = ?", (other, fid))
    ledger = open_ledger(filled)
    with pytest.raises(DecryptError, match=r"ledger-finding .* failed authentication"):
        ledger.history()
    ledger.close()


def test_swapped_rows_through_the_cli_exit_6(repo: Repo, filled: Path) -> None:
    state = repo.path / ".git" / "sentra"
    state.parent.mkdir(exist_ok=True)
    filled.rename(state)
    (a, _, blob_a), (b, _, blob_b) = rows(state, "scans")
    write_sql(state, "UPDATE scans SET blob = ? WHERE id = ?", (blob_b, a))
    write_sql(state, "UPDATE scans SET blob = ? WHERE id = ?", (blob_a, b))
    proc = sentra(["history"], repo.path)
    assert proc.returncode == ExitCode.KEY
    assert "error: ledger-scan" in proc.stderr
    assert "failed authentication: tampered, truncated or moved" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_tampered_commit_row_only_costs_a_rescan(filled: Path) -> None:
    commit_rows = rows(filled, "commits")
    lookup, blob = commit_rows[0]
    flipped = bytearray(blob)
    flipped[-1] ^= 1
    write_sql(filled, "UPDATE commits SET blob = ? WHERE lookup = ?", (bytes(flipped), lookup))
    # And two other rows swapped: neither counts as clean any more.
    (l1, b1), (l2, b2) = commit_rows[1], commit_rows[2]
    write_sql(filled, "UPDATE commits SET blob = ? WHERE lookup = ?", (b2, l1))
    write_sql(filled, "UPDATE commits SET blob = ? WHERE lookup = ?", (b1, l2))
    ledger = open_ledger(filled)
    assert ledger.known_clean([*CLEAN, DIRTY], "v1") == set()
    assert len(ledger.history()) == 2  # the rest of the ledger is intact
    # Rotation drops the rows that fail to open and keeps going.
    ledger.keys.add_key()
    ledger.reencrypt()
    assert rows(filled, "commits") == []
    ledger.close()


def test_a_commit_row_copied_under_another_lookup_is_not_trusted(filled: Path) -> None:
    """An attacker who copies a clean row's blob under the lookup of a dirty commit gains nothing."""
    ledger = open_ledger(filled)
    dirty_lookup = ledger._lookup(DIRTY, "v1")
    (_, blob), *_ = rows(filled, "commits")
    write_sql(filled, "INSERT INTO commits VALUES (?, ?)", (dirty_lookup, blob))
    assert DIRTY not in ledger.known_clean([*CLEAN, DIRTY], "v1")
    ledger.close()


# -- corrupt, foreign or unreadable files -----------------------------------------------


def truncate_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def bigger_ledger(state: Path, scans: int = 40) -> None:
    ledger = open_ledger(state)
    for i in range(scans):
        record(ledger, ScanResult((finding(),) * 3), commits=[f"{i:040x}"])
    ledger.close()


def test_truncated_ledger_is_refused_and_left_untouched(repo: Repo) -> None:
    state = repo.path / ".git" / "sentra"
    bigger_ledger(state)
    truncate_half(state / LEDGER_FILE)
    before = snapshot(state)
    proc = sentra(["history"], repo.path)
    assert proc.returncode == ExitCode.KEY, proc.stderr
    db = state / LEDGER_FILE
    assert f"error: the ledger {db} is corrupt or not a Sentra ledger" in proc.stderr
    assert f"hint: move it aside (mv {db} {db}.bad)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(state) == before  # same files, same bytes: nothing repaired or rewritten


def test_truncated_ledger_in_process(state: Path) -> None:
    bigger_ledger(state)
    truncate_half(state / LEDGER_FILE)
    before = snapshot(state)
    keys = DataKeys.open_or_create(state, select_source({"SENTRA_KEY": KEY}), create=False)

    def read_all() -> None:
        ledger = Ledger.open(keys)
        try:
            ledger.history(limit=1000)
        finally:
            ledger.close()

    with pytest.raises(KeyStateError, match="corrupt or not a Sentra ledger") as info:
        read_all()
    assert "move it aside" in info.value.hint
    assert snapshot(state) == before


def test_not_a_database(state: Path) -> None:
    DataKeys.open_or_create(state, select_source({"SENTRA_KEY": KEY}))
    (state / LEDGER_FILE).write_bytes(b"this is not sqlite, just text\n" * 200)
    before = snapshot(state)
    with pytest.raises(KeyStateError, match="corrupt or not a Sentra ledger"):
        open_ledger(state)
    assert snapshot(state) == before


@pytest.mark.parametrize("table", ["scans", "commits"])
def test_a_ledger_that_breaks_mid_scan_never_fails_the_scan(repo: Repo, table: str) -> None:
    """A page of the scans (or commits) table overwritten: the ledger opens, then fails
    while the scan records (or looks up clean commits). The scan must still report and
    exit by its findings (it exited 6 before the fix), saying once that nothing was recorded."""
    token = canary_github_token("ledger-mid-scan")
    repo.commit_files({"a.txt": "hello\n"})
    repo.commit_files({"app.cfg": f"token = {token}\n"})
    state = repo.path / ".git" / "sentra"
    bigger_ledger(state)
    db = state / LEDGER_FILE
    data = bytearray(db.read_bytes())
    with sqlite3.connect(db) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = dict(conn.execute("SELECT name, rootpage FROM sqlite_master"))[table]
    data[(root - 1) * size : root * size] = b"\xff" * size
    db.write_bytes(bytes(data))
    proc = sentra(["audit"], repo.path, env={**os.environ, "SENTRA_KEY": KEY})
    assert proc.returncode == ExitCode.FINDINGS, proc.stderr
    assert "github-pat" in proc.stdout
    assert proc.stderr.count("sentra: nothing recorded:") == 1
    assert "corrupt or not a Sentra ledger" in proc.stderr
    assert "move it aside" in proc.stderr
    assert token not in proc.stdout + proc.stderr


def test_wrong_key_is_a_clear_error_and_modifies_nothing(repo: Repo) -> None:
    token = canary_github_token("ledger-wrong-key")
    repo.commit_files({"app.cfg": f"token = {token}\n"})
    state = repo.path / ".git" / "sentra"
    bigger_ledger(state, scans=2)
    before = snapshot(state)
    wrong = {**os.environ, "SENTRA_KEY": OTHER_KEY}
    proc = sentra(["history"], repo.path, env=wrong)
    assert proc.returncode == ExitCode.KEY
    assert "error: SENTRA_KEY (environment) cannot unlock the keys in" in proc.stderr
    assert "wrong key or password" in proc.stderr
    assert "hint: use the key source this repository's state was created with" in proc.stderr
    # A scan with the wrong key still scans, says it recorded nothing, and changes nothing.
    scan = sentra(["audit"], repo.path, env=wrong)
    assert scan.returncode == ExitCode.FINDINGS
    assert scan.stderr.count("sentra: nothing recorded:") == 1
    assert sentra(["key", "rotate"], repo.path, env=wrong).returncode == ExitCode.KEY
    assert snapshot(state) == before


def test_foreign_ledger_and_future_format(state: Path, tmp_path: Path) -> None:
    open_ledger(state).close()
    other = tmp_path / "other"
    open_ledger(other).close()
    (other / LEDGER_FILE).replace(state / LEDGER_FILE)
    with pytest.raises(KeyStateError, match="belongs to another key store"):
        open_ledger(state)
    (state / LEDGER_FILE).unlink()
    open_ledger(state).close()
    write_sql(state, "UPDATE meta SET v = '9' WHERE k = 'format'")
    with pytest.raises(KeyStateError, match="ledger format 9 is not supported"):
        open_ledger(state)


# -- concurrent writers -----------------------------------------------------------------


def _writer(state: str, n: int, barrier: Any, out: Any) -> None:
    try:
        barrier.wait()
        ledger = open_ledger(Path(state))
        for i in range(n):
            commit = f"{os.getpid():08x}{i:032x}"
            result = ScanResult((finding(commit),)) if i % 5 == 0 else ScanResult(())
            record(ledger, result, commits=[commit])
        ledger.close()
        out.put("ok")
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(f"{type(exc).__name__}: {exc}")


def test_two_concurrent_writers(state: Path) -> None:
    """Two processes record 50 scans each into one ledger at once, from nothing (so they
    also race to create the keys and the database)."""
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(state), 50, barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert results == ["ok", "ok"]
    ledger = open_ledger(state)
    history = ledger.history(limit=1000)
    assert len(history) == 100
    assert sorted(r.seq for r in history) == list(range(1, 101))
    assert sum(len(r.findings) for r in history) == 20
    assert ledger.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert ledger.conn.execute("SELECT COUNT(*) FROM commits").fetchone() == (80,)
    ledger.close()


def test_two_worktrees_share_one_ledger(repo: Repo, tmp_path: Path) -> None:
    """`sentra scan --staged` in two worktrees of one repository, at the same time: the
    ledger in the common git dir receives every scan."""
    repo.commit_files({"README": "hi\n"})
    other = repo.worktree_add(tmp_path / "wt", "side")
    repo.stage("a.txt", "one\n")
    other.stage("b.txt", "two\n")
    env = {**os.environ, "SENTRA_KEY": KEY}
    rounds = 2
    cmd = f"{shlex.quote(sys.executable)} -m sentra_scan scan --staged"
    script = f'for i in $(seq {rounds}); do {cmd} 2>&1 || echo "exit $?"; done'
    procs = [
        subprocess.Popen(["sh", "-c", script], cwd=r.path, env=env, stdout=subprocess.PIPE, text=True)
        for r in (repo, other)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert outputs == ["", ""]  # every scan exited 0
    assert not (other.path / ".git").is_dir()
    ledger = open_ledger(repo.path / ".git" / "sentra")
    history = ledger.history(limit=100)
    assert len(history) == 2 * rounds
    assert {r.data["mode"] for r in history} == {"staged"}
    assert ledger.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    ledger.close()


# -- a rotation while another command holds the old keys --------------------------------


def test_a_scan_that_loaded_its_keys_before_a_rotation_records_nothing(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    """A long audit opens the state, `sentra key rotate` runs to the end (dropping the old
    key), then the audit records: its rows would be sealed with a key no longer in keys.json
    and `history` would fail for good. It must record nothing instead (and say so)."""
    from sentra_scan.api import make_scanner
    from sentra_scan.incremental import record_result
    from sentra_scan.state import open_state, rotate

    repo.commit_files({"a.txt": "hello\n"})
    first = open_state(repo.path)
    record(first.ledger, ScanResult((finding(),)))
    first.close()

    long_scan = open_state(repo.path)  # loads the data keys...
    rotating = open_state(repo.path)
    rotate(rotating)  # ...that another process rotates away
    rotating.close()
    with pytest.raises(KeyStateError, match="the data key was rotated while this command ran"):
        record(long_scan.ledger, ScanResult((finding(),)))
    record_result(make_scanner(), ScanResult(()), mode="staged", target="t", repo=repo.path, state=long_scan)
    long_scan.close()
    assert capsys.readouterr().err.count("sentra: nothing recorded: the data key was rotated") == 1

    after = open_state(repo.path, create=False)
    assert len(after.ledger.history()) == 1  # the ledger still opens, whole
    record(after.ledger, ScanResult(()))  # and a fresh command records with the new key
    assert len(after.ledger.history()) == 2
    after.close()


def test_keys_loaded_mid_rotation_may_still_record(repo: Repo) -> None:
    """Keys loaded after the new key was added (and before the old one is dropped) hold the
    new key: their rows are fine, before or after the re-encryption."""
    from sentra_scan.state import open_state

    repo.commit_files({"a.txt": "hello\n"})
    state = open_state(repo.path)
    record(state.ledger, ScanResult(()))
    state.keys.add_key()
    mid = open_state(repo.path)
    record(mid.ledger, ScanResult((finding(),)))  # before the re-encryption
    state.ledger.reencrypt()
    record(mid.ledger, ScanResult(()))  # after it
    state.keys.drop_inactive()
    mid.close()
    state.close()
    final = open_state(repo.path, create=False)
    assert len(final.ledger.history()) == 3
    assert list(final.keys.keys) == [final.keys.active_id]
    final.close()
