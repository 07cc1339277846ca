"""Scanning commits: ranges, pushes, CI jobs and full-history audits."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sentra_scan.model import CommitInfo, Finding, Fragment, ScanResult, Skipped, SkipReason
from sentra_scan.ranges import Target, rev_list
from sentra_scan.scan import Scanner
from sentra_scan.sources.history import HistorySource, HistoryStats, MessageSource


@dataclass(frozen=True)
class HistoryScan:
    target: Target
    result: ScanResult
    stats: HistoryStats
    unscanned: tuple[str, ...] = ()  # commits left when the time budget ran out


def scan_target(
    scanner: Scanner,
    target: Target,
    repo: Path | None = None,
    *,
    include_messages: bool = False,
    progress: Callable[[int], None] | None = None,
    budget_s: float | None = None,
    first_parent: bool = False,
) -> HistoryScan:
    deadline = time.monotonic() + budget_s if budget_s is not None else None
    source = HistorySource(
        scanner.ruleset.keyword_ends,
        repo=repo,
        revs=target.revs,
        commits=target.commits,
        max_file_size=scanner.config.max_file_size,
        progress=progress,
        deadline=deadline,
        first_parent=first_parent,
        path_trigger=_cached(scanner.ruleset.path_trigger().matches),
    )

    def items() -> Iterator[Fragment | Skipped]:
        yield from source.items()
        if include_messages and not source.stats.stopped_early:
            yield from MessageSource(repo=repo, revs=target.revs, commits=target.commits).items()

    result = scanner.scan(items())
    unscanned: tuple[str, ...] = ()
    if source.stats.stopped_early:
        wanted = list(target.commits) if target.commits is not None else rev_list(target.revs, repo)
        done = set(source.stats.commit_ids)
        unscanned = tuple(c for c in wanted if c not in done)
        note = Skipped(
            f"{len(unscanned)} commits",
            SkipReason.BUDGET,
            f"time budget of {budget_s:g}s ran out; not scanned: " + ", ".join(c[:12] for c in unscanned[:10]),
        )
        result = dataclasses.replace(result, skipped=(*result.skipped, note))
    return HistoryScan(target, result, source.stats, unscanned)


def _cached(match: Callable[[str], bool]) -> Callable[[str], bool]:
    """A history names the same few thousand paths over and over: match each once."""
    seen: dict[str, bool] = {}

    def cached(path: str) -> bool:
        hit = seen.get(path)
        if hit is None:
            hit = seen[path] = match(path)
        return hit

    return cached


def _when(commit: CommitInfo | None) -> float:
    if commit is None or not commit.date:
        return float("inf")
    try:
        return datetime.fromisoformat(commit.date).timestamp()
    except ValueError:
        return float("inf")


def deduplicate(result: ScanResult, *, all_occurrences: bool = False) -> ScanResult:
    """One finding per secret (fingerprint): the commit that introduced it (the oldest
    occurrence), with every other location in `occurrences`. With `all_occurrences`,
    every occurrence stays a finding of its own."""
    if all_occurrences:
        return result
    groups: dict[str, list[Finding]] = {}
    for f in result.findings:
        groups.setdefault(f.fingerprint, []).append(f)
    merged = []
    for group in groups.values():
        # Log order is newest first: on equal dates, the later one in the log is older.
        # Without commits (files, staged changes) the first place found is kept.
        first = min(
            enumerate(group),
            key=lambda pair: (_when(pair[1].location.commit), -pair[0] if pair[1].location.commit else pair[0]),
        )[1]
        others = tuple(g.location for g in group if g is not first)
        merged.append(dataclasses.replace(first, occurrences=others))
    return dataclasses.replace(result, findings=tuple(merged))
