"""Scanning commits: ranges, pushes, CI jobs and full-history audits."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sentra_scan.errors import GitError
from sentra_scan.model import CommitInfo, Finding, ScanResult, ScanStats, Skipped, SkipReason
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
    jobs: int | None = None,
    on_batch: Callable[[ScanResult, list[str]], None] | None = None,
) -> HistoryScan:
    """Scan the commits of `target`. On a worker pool, `on_batch` is called in this process
    with each batch's result and commit ids as it comes in (for recording while the rest is
    scanned); the returned scan holds every batch all the same."""
    if budget_s is None:
        parallel = _scan_parallel(
            scanner, target, repo, progress=progress, first_parent=first_parent, jobs=jobs, on_batch=on_batch
        )
        if parallel is not None:
            if include_messages:
                messages = scanner.scan(MessageSource(repo=repo, revs=target.revs, commits=target.commits).items())
                parallel = dataclasses.replace(parallel, result=_merge([parallel.result, messages]))
            return parallel
    deadline = time.monotonic() + budget_s if budget_s is not None else None
    source = _source(
        scanner,
        scanner.ruleset.path_trigger().matches,
        repo,
        revs=target.revs,
        commits=target.commits,
        first_parent=first_parent,
        progress=progress,
        deadline=deadline,
    )

    result = _scan_history(scanner, source)
    if include_messages and not source.stats.stopped_early:
        messages = scanner.scan(MessageSource(repo=repo, revs=target.revs, commits=target.commits).items())
        result = _merge([result, messages])
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


# Below this many commits one process does it: a worker pool costs more than it saves. One
# process already keeps both cores busy (git writes the diffs while Python scans them); the
# pool pays when git's one process is the bottleneck by far. Measured on 2 cores: flask
# (5.5k commits) 1.3 s in one process, 1.5-1.65 s on the pool; pip (16k) 6.2 s and 5.3 s.
PARALLEL_MIN_COMMITS = 8000
# Batches per worker: small enough to even out commits of very different sizes (an initial
# import next to one-line fixes), large enough that starting `git log` is noise.
BATCHES_PER_JOB = 4
MAX_BATCH = 2000

# What the workers inherit through the fork: the scanner and the path trigger.
_pool: tuple[Scanner, Callable[[str], bool]] | None = None


def default_jobs() -> int:
    """Cores this process may use (SENTRA_JOBS overrides)."""
    env = os.environ.get("SENTRA_JOBS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def will_use_pool(commits: int, jobs: int | None) -> bool:
    """Whether a scan of this many commits (no time budget) runs on a worker pool."""
    if not _can_fork(jobs if jobs is not None else default_jobs()):
        return False
    return commits >= 2 and (jobs is not None or commits >= PARALLEL_MIN_COMMITS)


def _can_fork(workers: int) -> bool:
    return workers > 1 and "fork" in multiprocessing.get_all_start_methods()


def _scan_parallel(
    scanner: Scanner,
    target: Target,
    repo: Path | None,
    *,
    progress: Callable[[int], None] | None,
    first_parent: bool,
    jobs: int | None,
    on_batch: Callable[[ScanResult, list[str]], None] | None = None,
) -> HistoryScan | None:
    """The history cut into batches of commits, each batch a `git log -p` of its own in a
    worker process, results put back in log order: the same result as one stream, on every
    core. None when one process is the better choice (few commits, one core, no fork)."""
    n = jobs if jobs is not None else default_jobs()
    if not _can_fork(n):
        return None
    if target.commits is not None:
        commits = list(target.commits)
    else:
        try:
            commits = rev_list([*target.revs, *(["--first-parent"] if first_parent else [])], repo)
        except GitError:
            return None  # the single stream reports it the usual way
    if not will_use_pool(len(commits), jobs):
        return None
    batches = _batches(commits, n)
    global _pool
    # Built once here, shared by every worker through the fork.
    _pool = (scanner, scanner.ruleset.path_trigger().matches)
    scanner.ruleset.prepare_prefilter()
    scanner.detector.prepare()
    t0 = time.perf_counter()
    results: list[ScanResult] = []
    rules_run: set[int] = set()
    stats = HistoryStats()
    # fork: the workers start with the rule set, its compiled patterns and the keyword
    # database already built; nothing is pickled on the way in but commit ids.
    pool = multiprocessing.get_context("fork").Pool(min(n, len(batches)))
    try:
        for result, batch_stats, batch_rules in pool.imap(
            _scan_batch, [(repo, batch, first_parent) for batch in batches], chunksize=1
        ):
            results.append(result)
            rules_run |= batch_rules
            stats.commits += batch_stats.commits
            stats.bytes += batch_stats.bytes
            stats.hunks_parsed += batch_stats.hunks_parsed
            stats.commit_ids.extend(batch_stats.commit_ids)
            if on_batch is not None:
                on_batch(result, batch_stats.commit_ids)
            if progress is not None:
                progress(stats.commits)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
        _pool = None
    merged = _merge(results)
    elapsed = time.perf_counter() - t0
    merged = dataclasses.replace(
        merged, stats=dataclasses.replace(merged.stats, rules_run=len(rules_run), duration_s=elapsed)
    )
    return HistoryScan(target, merged, stats)


def _batches(commits: list[str], jobs: int) -> list[list[str]]:
    """Runs of consecutive commits (git reuses the delta bases it just read: dealing out
    runs from across the history cost git ~7 ms a run, more than it evened out), a multiple
    of `jobs` of them and of about the same size, so the workers' last batches end together;
    none over MAX_BATCH."""
    count = max(jobs * BATCHES_PER_JOB, -(-len(commits) // MAX_BATCH))
    count = min(len(commits), -(-count // jobs) * jobs)
    n = len(commits)
    return [commits[k * n // count : (k + 1) * n // count] for k in range(count)]


def _scan_batch(job: tuple[Path | None, list[str], bool]) -> tuple[ScanResult, HistoryStats, frozenset[int]]:
    repo, commits, first_parent = job
    assert _pool is not None, "worker started without a scanner"
    scanner, path_trigger = _pool
    source = _source(scanner, path_trigger, repo, commits=commits, first_parent=first_parent)
    result = _scan_history(scanner, source)
    return result, source.stats, frozenset(scanner.detector.rules_run)


def _scan_history(scanner: Scanner, source: HistorySource) -> ScanResult:
    """Scan a history source, its findings and skips in log order (the merges' come after
    the main stream's: see HistorySource), stable within a commit."""
    result = scanner.scan(source.items())
    order = {c: i for i, c in enumerate(source.stats.commit_ids)}

    def rank(commit: str | None) -> int:
        return order.get(commit, -1) if commit is not None else -1

    def by_commit(f: Finding) -> int:
        return rank(f.location.commit.id if f.location.commit is not None else None)

    return dataclasses.replace(
        result,
        findings=tuple(sorted(result.findings, key=by_commit)),
        suppressed=tuple(sorted(result.suppressed, key=by_commit)),
        skipped=tuple(sorted(result.skipped, key=lambda s: rank(s.commit))),
    )


def _merge(results: Sequence[ScanResult]) -> ScanResult:
    """Results of consecutive parts of one scan, in order, as one."""
    return ScanResult(
        findings=tuple(f for r in results for f in r.findings),
        skipped=tuple(s for r in results for s in r.skipped),
        suppressed=tuple(f for r in results for f in r.suppressed),
        stats=ScanStats(
            fragments=sum(r.stats.fragments for r in results),
            lines=sum(r.stats.lines for r in results),
            bytes=sum(r.stats.bytes for r in results),
            rules_run=max((r.stats.rules_run for r in results), default=0),
            duration_s=sum(r.stats.duration_s for r in results),
        ),
    )


def _source(
    scanner: Scanner,
    path_trigger: Callable[[str], bool],
    repo: Path | None,
    *,
    revs: Sequence[str] = (),
    commits: Sequence[str] | None = None,
    first_parent: bool,
    progress: Callable[[int], None] | None = None,
    deadline: float | None = None,
) -> HistorySource:
    return HistorySource(
        scanner.ruleset.keyword_ends,
        repo=repo,
        revs=revs,
        commits=commits,
        max_file_size=scanner.config.max_file_size,
        progress=progress,
        deadline=deadline,
        first_parent=first_parent,
        path_trigger=path_trigger,
    )


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
