"""History scans that use the ledger: commits already scanned clean with the same scanner
version are skipped (unless `full`), and every scan is recorded."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from sentra_scan.history import HistoryScan, scan_target
from sentra_scan.model import ScanResult
from sentra_scan.ranges import Target, rev_list
from sentra_scan.scan import Scanner
from sentra_scan.state import State, scanner_version, try_open_state


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
) -> HistoryScan:
    state = try_open_state(repo) if record else None
    try:
        t0 = time.monotonic()
        version = scanner_version(scanner)
        if state is not None and not full:
            commits = list(target.commits) if target.commits is not None else rev_list(target.revs, repo)
            clean = state.ledger.known_clean(commits, version)
            if clean:
                print(f"sentra: {len(clean)} commits already scanned clean (--full to rescan)", file=sys.stderr)
                target = Target(target.description, commits=tuple(c for c in commits if c not in clean))
        scan = scan_target(
            scanner, target, repo, include_messages=include_messages, progress=progress, budget_s=budget_s
        )
        if state is not None:
            state.ledger.record(
                mode=mode,
                target=target.description,
                scanner_version=version,
                duration_s=time.monotonic() - t0,
                result=scan.result,
                scanned_commits=scan.stats.commit_ids,
            )
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
    finally:
        if own:
            state.close()
