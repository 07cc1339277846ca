"""Writes the on-disk format fixtures (tests/fixtures/formats/v1) with the current code.

Run it only when a format changes on purpose (with a migration and a release note):

    .venv/bin/python -m tests.format_fixtures

The key is derived from a fixed label, so the fixtures hold no real secret.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "formats" / "v1"
STORE_VALUE = "format-fixture-value-v1"


def fixture_key() -> str:
    return base64.b64encode(hashlib.sha256(b"sentra format fixture v1").digest()).decode()


def write(target: Path = FIXTURE_DIR) -> None:
    from sentra_scan import baseline as bl
    from sentra_scan.config import Config
    from sentra_scan.keys import DataKeys, KeySource
    from sentra_scan.ledger import Ledger
    from sentra_scan.model import Fragment
    from sentra_scan.ruleset.examples import expand
    from sentra_scan.scan import Scanner
    from sentra_scan.server.storage import DirBackend
    from sentra_scan.store import Store

    if target.exists():
        shutil.rmtree(target)
    state_dir = target / "git-sentra"
    keys = DataKeys.open_or_create(state_dir, KeySource("key", "", fixture_key()))
    ledger = Ledger.open(keys)
    scanner = Scanner(Config().build_ruleset(), Config())
    token = expand("ghp_{{github:36}}", "format-fixture")
    result = scanner.scan([Fragment("app.py", (f'TOKEN = "{token}"',), (3,))])
    ledger.record(mode="scan", target="fixture", scanner_version="fixture", duration_s=0.1, result=result)
    ledger.close()
    store = Store.open(target / "dot-sentra" / "secrets.enc", keys, actor="Fixture <fixture@example.test>")
    store.set("dev/FIXTURE_KEY", STORE_VALUE)
    bl.from_findings(result.findings, reason="fixture").save(target / "sentra-baseline")
    server = DirBackend(target / "server-data")
    server.put("acme", "dev/FIXTURE_KEY", base64.b64encode(store.sealed["dev/FIXTURE_KEY"]).decode(), {}, 0)


if __name__ == "__main__":
    write()
    print(f"wrote {FIXTURE_DIR}")
