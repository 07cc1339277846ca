"""Where encrypted state lives and how commands reach it: the key source, the data keys,
the ledger, rotation. Recording is best-effort for scans (a scan never fails because it
could not be recorded; it says so once) and strict for the commands that manage state."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentra_scan.errors import KeyStateError
from sentra_scan.keys import DataKeys, KeySource, select_source
from sentra_scan.ledger import Ledger
from sentra_scan.scan import Scanner
from sentra_scan.sources.gitcmd import git

STATE_DIR = "sentra"


def state_dir(repo: Path | None = None) -> Path | None:
    """`<git common dir>/sentra`, shared by every worktree; None outside a repository."""
    out = git(["rev-parse", "--path-format=absolute", "--git-common-dir"], repo, check=False).strip()
    return Path(out) / STATE_DIR if out else None


def scanner_version(scanner: Scanner) -> str:
    """Rules and every setting that changes what a scan reports."""
    c = scanner.config
    h = hashlib.sha256(scanner.ruleset.version().encode())
    h.update(
        repr(
            (
                sorted(c.allow_paths),
                sorted(c.allow_regexes),
                sorted(c.allow_fingerprints),
                c.max_file_size,
                c.fingerprint_salt,
                c.decode_depth,
                tuple(c.inline_markers),
            )
        ).encode()
    )
    return h.hexdigest()[:16]


@dataclass
class State:
    keys: DataKeys
    ledger: Ledger

    def close(self) -> None:
        self.ledger.close()


def open_state(repo: Path | None = None, *, source: KeySource | None = None, create: bool = True) -> State:
    directory = state_dir(repo)
    if directory is None:
        raise KeyStateError("not inside a git repository: the ledger lives in the repository's git directory")
    keys = DataKeys.open_or_create(directory, source or select_source(interactive=sys.stdin.isatty()), create=create)
    return State(keys, Ledger.open(keys))


def recording_disabled() -> bool:
    return bool(os.environ.get("SENTRA_NO_RECORD"))


def try_open_state(repo: Path | None = None) -> State | None:
    """For scans: the state, or None after saying once, plainly, why nothing is recorded."""
    if recording_disabled():
        return None
    try:
        return open_state(repo, source=select_source(interactive=False))
    except KeyStateError as exc:
        not_recorded(exc)
        return None


def not_recorded(exc: KeyStateError) -> None:
    """Say why a scan is not recorded (the scan itself goes on)."""
    print(f"sentra: nothing recorded: {exc.message}", file=sys.stderr)
    hint = f"{exc.hint}; " if exc.hint else ""
    print(f"  ({hint}SENTRA_NO_RECORD=1 silences this)", file=sys.stderr)


def rotate(state: State, store_paths: Iterable[Path] = (), actor: str = "") -> dict[str, Any]:
    """A new data key and everything re-encrypted (ledger and secret stores). Crash-safe at
    every step: the key file keeps every key that some ciphertext on disk still needs until
    nothing does; each file is replaced atomically."""
    from sentra_scan.keys import state_lock
    from sentra_scan.store import Store

    with state_lock(state.keys.state_dir):
        state.keys.refresh()  # a rotation that ran meanwhile: start from its result
        old = state.keys.active_id
        new = state.keys.add_key()
        rows = state.ledger.reencrypt()
        entries = 0
        for path in store_paths:
            if path.exists():
                entries += Store.open(path, state.keys, actor=actor).reseal(locked=True)
        state.keys.drop_inactive()
    return {"old_key": old, "new_key": new, "rows": rows, "entries": entries}
