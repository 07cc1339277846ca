"""Commands over commits: `sentra audit` and `sentra ci` (and `scan --commits`'s helper)."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from sentra_scan import __version__, api
from sentra_scan.cli.common import exit_code_for, guarded, use_color
from sentra_scan.config import load_config
from sentra_scan.errors import UsageError
from sentra_scan.history import HistoryScan, deduplicate, default_jobs
from sentra_scan.model import ScanResult
from sentra_scan.ranges import Target
from sentra_scan.report import FORMATS, get_reporter
from sentra_scan.scan import Scanner


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, label: str) -> None:
        self.total = max(total, 1)
        self.label = label
        self.last = 0.0
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done < self.total):
            return  # throttled, but the last step is always drawn
        self.last = now
        frac = min(done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} commits")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def repo_scanner(repo: Path | None, config_path: Path | None, rules_dir: Path | None) -> Scanner:
    config = load_config(config_path if config_path else api.find_config(repo))
    return api.make_scanner(config, rules_dir)


def write_report(result: ScanResult, fmt: str, output: Path | None, *, show_suppressed: bool = False) -> None:
    if not show_suppressed:
        result = dataclasses.replace(result, suppressed=())
    color = fmt == "text" and output is None and use_color(sys.stdout)
    reporter = get_reporter(fmt, color=color, tool_version=__version__)
    if output is None:
        reporter.write(result, sys.stdout)
    else:
        try:
            fh = open(output, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
        with fh:
            reporter.write(result, fh)
    if fmt != "text" or output is not None:
        for s in result.skipped:
            if s.incomplete:
                print(f"warning: {s.path}: not fully scanned: {s.reason.value} {s.detail}".rstrip(), file=sys.stderr)


def github_annotations(result: ScanResult) -> None:
    """Workflow commands so findings show on the PR's diff."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    for f in result.findings:
        loc = f.location
        msg = f"{f.description} ({f.secret.redacted()}). {f.hint}"
        print(f"::error file={prop(loc.path)},line={loc.line},col={loc.column},title={prop(f.rule_id)}::{data(msg)}")


def run_history(
    scanner: Scanner,
    target: Target,
    repo: Path | None,
    *,
    include_messages: bool,
    mode: str,
    full: bool = True,
    record: bool = True,
    progress_label: str | None = None,
    total: Callable[[], int] | None = None,
    jobs: int | None = None,
) -> HistoryScan:
    from sentra_scan.incremental import scan_recorded

    progress = Progress(total(), progress_label) if progress_label and total and sys.stderr.isatty() else None
    try:
        return scan_recorded(
            scanner,
            target,
            repo,
            mode=mode,
            full=full,
            record=record,
            include_messages=include_messages,
            progress=progress,
            jobs=jobs,
        )
    finally:
        if progress is not None:
            progress.done()


_common = [
    click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True),
    click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False)),
    click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False)),
    click.option("--rules-dir", type=click.Path(path_type=Path, file_okay=False)),
    click.option("--strict", is_flag=True, help="Exit 4 when something could not be fully scanned."),
    click.option("--include-messages", is_flag=True, help="Scan commit messages too."),
    click.option("--show-suppressed", is_flag=True),
    click.option("--verbose", "-v", is_flag=True),
    click.option("--full", is_flag=True, help="Rescan commits the ledger knows were clean."),
    click.option("--no-record", is_flag=True, help="Do not record this scan in the encrypted ledger."),
    click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        help="Worker processes (default: every core, for histories of 1,500 commits or more; env SENTRA_JOBS).",
    ),
]


def common_options(fn: Callable[..., int]) -> Callable[..., int]:
    for option in reversed(_common):
        fn = option(fn)
    return fn


@click.command()
@click.argument("repo", required=False, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--branch", "branches", multiple=True, help="Only commits reachable from this ref (repeatable).")
@click.option("--worktree", is_flag=True, help="Also scan the working tree's files.")
@click.option("--all-occurrences", is_flag=True, help="Report every occurrence, not one per secret.")
@common_options
def audit(
    repo: Path | None,
    branches: tuple[str, ...],
    worktree: bool,
    all_occurrences: bool,
    fmt: str,
    output: Path | None,
    config_path: Path | None,
    rules_dir: Path | None,
    strict: bool,
    include_messages: bool,
    show_suppressed: bool,
    verbose: bool,
    full: bool,
    no_record: bool,
    jobs: int | None,
) -> int:
    """Scan every commit reachable from every ref (or --branch), once per secret."""
    from sentra_scan import ranges
    from sentra_scan.sources.gitcmd import git, toplevel

    def go() -> int:
        top = toplevel(repo)
        for b in branches:
            ranges.verify_commit(b, top)
        revs = tuple(branches) if branches else ("--all",)
        target = Target("audit " + (" ".join(branches) or "all refs"), revs=revs)
        if not no_record or (jobs or default_jobs()) > 1:
            ranges.start_rev_list(revs, top)  # listed by the ledger or the pool: start it now
        scanner = repo_scanner(top, config_path, rules_dir)

        def count() -> int:
            return int(git(["rev-list", "--count", *revs], top).strip() or 0)

        scan = run_history(
            scanner,
            target,
            top,
            include_messages=include_messages,
            mode="audit",
            full=full,
            record=not no_record,
            progress_label="audit",
            total=count,
            jobs=jobs,
        )
        result = deduplicate(scan.result, all_occurrences=all_occurrences)
        if worktree:
            tree = api.scan_paths([top], scanner)
            result = dataclasses.replace(
                result, findings=result.findings + tree.findings, skipped=result.skipped + tree.skipped
            )
        write_report(result, fmt, output, show_suppressed=show_suppressed)
        print(
            f"sentra: audited {scan.stats.commits} commits, {len(result.findings)} secrets",
            file=sys.stderr,
        )
        return int(exit_code_for(result, strict=strict))

    return guarded(go, verbose=verbose)


@click.command()
@click.option("--since", "since_ref", help="Scan REF..HEAD instead of the range from the CI environment.")
@click.option("--annotations/--no-annotations", default=None, help="GitHub workflow annotations (default: on GitHub).")
@common_options
def ci(
    since_ref: str | None,
    annotations: bool | None,
    fmt: str,
    output: Path | None,
    config_path: Path | None,
    rules_dir: Path | None,
    strict: bool,
    include_messages: bool,
    show_suppressed: bool,
    verbose: bool,
    full: bool,
    no_record: bool,
    jobs: int | None,
) -> int:
    """Scan the commits of this CI job: a push or a pull/merge request."""
    from sentra_scan import ranges
    from sentra_scan.sources.gitcmd import toplevel

    def go() -> int:
        top = toplevel()
        target = ranges.ci(since_ref=since_ref, repo=top)
        print(f"sentra: scanning {target.description}", file=sys.stderr)
        scanner = repo_scanner(top, config_path, rules_dir)
        scan = run_history(
            scanner,
            target,
            top,
            include_messages=include_messages,
            mode="ci",
            full=full,
            record=not no_record,
            jobs=jobs,
        )
        result = deduplicate(scan.result)
        write_report(result, fmt, output, show_suppressed=show_suppressed)
        on_github = os.environ.get("GITHUB_ACTIONS") == "true"
        # By default not into a JSON or SARIF report on stdout: it must stay parseable.
        report_on_stdout = fmt != "text" and output is None
        if annotations or (annotations is None and on_github and not report_on_stdout):
            github_annotations(result)
        print(f"sentra: {scan.stats.commits} commits scanned, {len(result.findings)} secrets", file=sys.stderr)
        return int(exit_code_for(result, strict=strict))

    return guarded(go, verbose=verbose)


def scan_commits(scanner: Scanner, commits: str | None, since_ref: str | None, include_messages: bool) -> ScanResult:
    """`sentra scan --commits A..B` / `--since REF`: every occurrence, attributed."""
    from sentra_scan import ranges
    from sentra_scan.sources.gitcmd import toplevel

    if commits and since_ref:
        raise UsageError("give either --commits or --since, not both")
    top = toplevel()
    target = ranges.commit_range(commits, top) if commits else ranges.since(since_ref or "HEAD", top)
    return run_history(scanner, target, top, include_messages=include_messages, mode="range").result


def register(group: click.Group) -> None:
    group.add_command(audit)
    group.add_command(ci)
