"""History scans that use the ledger: commits already scanned clean with the same scanner
version are skipped (unless `full`), and every scan is recorded. Recording is best-effort:
a ledger that fails mid-way (corrupt, tampered) is reported once and the scan goes on."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sentra_scan.errors import KeyStateError
from sentra_scan.history import HistoryScan, scan_target, will_use_pool
from sentra_scan.ledger import new_scan_id
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
        scan_id = new_scan_id()
        recorder = _BatchRecorder(state, scan_id, version) if state is not None and not include_messages else None
        sealer = None
        if (
            state is not None
            and target.commits
            and (budget_s is not None or not will_use_pool(len(target.commits), jobs))
        ):
            sealer = _Sealer(state, scan_id, version, target.commits)
        scan = scan_target(
            scanner,
            target,
            repo,
            include_messages=include_messages,
            progress=progress,
            budget_s=budget_s,
            jobs=jobs,
            on_batch=recorder,
        )
        if state is not None and (recorder is None or not recorder.failed):
            try:
                state.ledger.record(
                    mode=mode,
                    target=target.description,
                    scanner_version=version,
                    duration_s=time.monotonic() - t0,
                    result=scan.result,
                    scanned_commits=() if recorder is not None and recorder.used else scan.stats.commit_ids,
                    scan_id=scan_id,
                    sealed=sealer.rows() if sealer is not None else None,
                )
            except KeyStateError as exc:
                not_recorded(exc)
        return scan
    finally:
        if state is not None:
            state.close()


# Up to this many commits, their ledger rows are made on a thread while one process scans
# them (it waits on git's output a third of the time: on flask the rows were 0.05 s after the
# scan); a worker pool records batch by batch instead, and a longer history would hold them
# all in memory.
SEAL_AHEAD_MAX = 8000


class _Sealer:
    """The ledger rows of a one-process scan's commits, sealed on a thread during the scan."""

    def __init__(self, state: State, scan_id: str, version: str, commits: tuple[str, ...]) -> None:
        self._rows: dict[str, tuple[str, bytes]] = {}
        self._thread: threading.Thread | None = None
        if len(commits) > SEAL_AHEAD_MAX:
            return
        self._thread = threading.Thread(
            target=self._run, args=(state, scan_id, version, commits), name="sentra-ledger-rows", daemon=True
        )
        self._thread.start()

    def _run(self, state: State, scan_id: str, version: str, commits: tuple[str, ...]) -> None:
        try:
            self._rows = state.ledger.seal_commits(scan_id, version, commits)
        except Exception:  # made again when recording, where a failure is reported
            self._rows = {}

    def rows(self) -> dict[str, tuple[str, bytes]] | None:
        if self._thread is None:
            return None
        self._thread.join()
        return self._rows


class _BatchRecorder:
    """Records each batch's clean commits as a worker pool hands the batch in, while the
    others are still scanned (on pip that took 0.2 s off the end of an audit). A commit is
    whole in one batch, so a batch says which of its commits are clean. A scan with commit
    messages records at the end: a commit is clean only once its message is scanned too."""

    def __init__(self, state: State, scan_id: str, version: str) -> None:
        self.state = state
        self.scan_id = scan_id
        self.version = version
        self.used = False
        self.failed = False

    def __call__(self, result: ScanResult, commits: list[str]) -> None:
        self.used = True
        if self.failed:
            return
        try:
            self.state.ledger.record_commits(self.scan_id, self.version, result, commits)
        except KeyStateError as exc:
            self.failed = True  # reported once; the scan goes on
            not_recorded(exc)


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
