"""Files written by the current release open with the code at HEAD: a format change needs
a migration and a release note (then regenerate with `python -m tests.format_fixtures`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.format_fixtures import FIXTURE_DIR, STORE_VALUE, fixture_key


@pytest.fixture
def fixtures(tmp_path: Path) -> Path:
    copy = tmp_path / "v1"
    shutil.copytree(FIXTURE_DIR, copy)
    return copy


def test_keys_and_ledger_open(fixtures: Path) -> None:
    from sentra_scan.keys import DataKeys, KeySource
    from sentra_scan.ledger import Ledger

    keys = DataKeys.open_or_create(fixtures / "git-sentra", KeySource("key", "", fixture_key()), create=False)
    ledger = Ledger.open(keys)
    try:
        [record] = ledger.history()
    finally:
        ledger.close()
    assert record.data["mode"] == "scan"
    assert record.data["findings"] == 1
    assert record.findings[0]["rule_id"] == "github-pat"
    assert record.findings[0]["line"] == 3


def test_store_and_audit_log_open(fixtures: Path) -> None:
    from sentra_scan.auditlog import LOG_FILE, AuditLog
    from sentra_scan.keys import DataKeys, KeySource
    from sentra_scan.store import Store

    keys = DataKeys.open_or_create(fixtures / "git-sentra", KeySource("key", "", fixture_key()), create=False)
    store = Store.open(fixtures / "dot-sentra" / "secrets.enc", keys)
    assert store.names() == ["dev/FIXTURE_KEY"]
    assert store.get("dev/FIXTURE_KEY") == STORE_VALUE
    verdict = AuditLog(fixtures / "dot-sentra" / LOG_FILE).verify(store.verify_anchor())
    assert verdict.ok, verdict.problems
    assert verdict.entries == 1


def test_baseline_opens(fixtures: Path) -> None:
    from sentra_scan import baseline as bl

    loaded = bl.load(fixtures / "sentra-baseline")
    [entry] = loaded.entries.values()
    assert entry.rule_id == "github-pat"
    assert entry.reason == "fixture"


def test_server_data_dir_opens(fixtures: Path) -> None:
    from sentra_scan.server.storage import FORMAT, DirBackend

    assert (fixtures / "server-data" / "FORMAT").read_text().strip() == str(FORMAT)
    backend = DirBackend(fixtures / "server-data")
    assert backend.list("acme") == [("dev/FIXTURE_KEY", 1)]
    entry = backend.get("acme", "dev/FIXTURE_KEY")
    assert entry is not None
    assert entry.version == 1


def test_the_fixtures_hold_no_plaintext() -> None:
    for path in FIXTURE_DIR.rglob("*"):
        if path.is_file():
            assert STORE_VALUE.encode() not in path.read_bytes(), path
