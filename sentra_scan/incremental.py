"""History scans that use the ledger: commits already scanned clean with the same scanner
version are skipped (unless `full`), and every scan is recorded. Recording is best-effort:
a ledger that fails mid-way (corrupt, tampered) is reported once and the scan goes on."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from sentra_scan.errors import KeyStateError
from sentra_scan.history import HistoryScan, scan_target
from sentra_scan.model import ScanResult
from sentra_scan.ranges import Target, rev_list
from sentra_scan.scan import Scanner
from sentra_scan.state import State, not_recorded, scanner_version, try_open_state


def scan_recorded(
    scanner: Scanner,
    target: Target,
    repo: Path | None,
    *,
    mode: str,
    full: bool = False,
    record: bool = True,
    include_messages: bool = False,
    progress: Callable[[int], None] | None = None,
    budget_s: float | None = None,
    jobs: int | None = None,
) -> HistoryScan:
    state = try_open_state(repo) if record else None
    try:
        t0 = time.monotonic()
        # A commit scanned clean without its message is not clean for a scan of messages.
        version = scanner_version(scanner) + ("+messages" if include_messages else "")
        if state is not None and not full:
            commits = list(target.commits) if target.commits is not None else rev_list(target.revs, repo)
            try:
                clean = state.ledger.known_clean(commits, version)
            except KeyStateError as exc:
                not_recorded(exc)
                state.close()
                state, clean = None, set()
            if clean:
                print(f"sentra: {len(clean)} commits already scanned clean (--full to rescan)", file=sys.stderr)
            # The commits, listed once: the scan does not walk the range again.
            target = Target(target.description, commits=tuple(c for c in commits if c not in clean))
        scan = scan_target(
            scanner, target, repo, include_messages=include_messages, progress=progress, budget_s=budget_s, jobs=jobs
        )
        if state is not None:
            try:
                state.ledger.record(
                    mode=mode,
                    target=target.description,
                    scanner_version=version,
                    duration_s=time.monotonic() - t0,
                    result=scan.result,
                    scanned_commits=scan.stats.commit_ids,
                )
            except KeyStateError as exc:
                not_recorded(exc)
        return scan
    finally:
        if state is not None:
            state.close()


def record_result(
    scanner: Scanner, result: ScanResult, *, mode: str, target: str, repo: Path | None, state: State | None = None
) -> None:
    """Record a scan that is not over commits (staged, files)."""
    own = state is None
    state = state or try_open_state(repo)
    if state is None:
        return
    try:
        state.ledger.record(
            mode=mode,
            target=target,
            scanner_version=scanner_version(scanner),
            duration_s=result.stats.duration_s,
            result=result,
        )
    except KeyStateError as exc:
        not_recorded(exc)
    finally:
        if own:
            state.close()
