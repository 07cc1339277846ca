"""`sentra baseline create|update|prune` and `sentra explain`."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from pathlib import Path

import click

from sentra_scan import api
from sentra_scan.cli.common import guarded
from sentra_scan.errors import ExitCode, UsageError
from sentra_scan.model import Finding
from sentra_scan.scan import Scanner


def _current_findings(scanner: Scanner, root: Path, history: bool) -> list[Finding]:
    """Everything found now, suppressed by the baseline or not (other filters still apply)."""
    scanner = Scanner(scanner.ruleset, scanner.config)
    scanner.filters.baseline = None
    result = api.scan_paths([root], scanner)
    findings = list(result.findings)
    if history:
        from sentra_scan.history import scan_target
        from sentra_scan.ranges import Target

        findings += scan_target(scanner, Target("history", revs=("--all",)), root).result.findings
    return findings


def _setup(path: Path | None) -> tuple[Scanner, Path, Path]:
    from sentra_scan.baseline import DEFAULT_NAME

    root = api.find_root() or Path.cwd()
    scanner = api.make_scanner()
    if path is None:
        configured = scanner.config.baseline
        path = (root / configured) if configured else root / DEFAULT_NAME
    return scanner, root, path


@click.group()
def baseline() -> None:
    """Accepted findings, as fingerprints (no secrets, no line numbers)."""


@baseline.command("create")
@click.option("--file", "path", type=click.Path(path_type=Path, dir_okay=False), help="Default: .sentra-baseline")
@click.option("--history", is_flag=True, help="Include every commit, not only the working tree.")
@click.option("--reason", default="", help="A reason recorded on every entry.")
@click.option("--expires", type=click.DateTime(formats=["%Y-%m-%d"]), help="Entries stop applying after this day.")
@click.option("--force", is_flag=True, help="Overwrite an existing baseline.")
def create(path: Path | None, history: bool, reason: str, expires: datetime | None, force: bool) -> int:
    """Accept every current finding."""
    from sentra_scan import baseline as bl

    def go() -> int:
        scanner, root, target = _setup(path)
        if target.exists() and not force:
            raise UsageError(f"{target} exists", hint="use 'sentra baseline update', or --force to start over")
        day = expires.date() if expires is not None else None
        new = bl.from_findings(_current_findings(scanner, root, history), reason=reason, expires=day)
        new.save(target)
        click.echo(f"sentra: baseline {target} written: {len(new.entries)} entries")
        return int(ExitCode.OK)

    return guarded(go)


def _refresh(path: Path | None, history: bool, add: bool) -> int:
    from sentra_scan import baseline as bl

    scanner, root, target = _setup(path)
    if not target.exists():
        raise UsageError(f"{target} does not exist", hint="create it with 'sentra baseline create'")
    old = bl.load(target)
    new, added, removed = bl.update(old, _current_findings(scanner, root, history), add=add)
    today = date.today()
    expired = [e for e in new.entries.values() if e.expired(today)]
    if not add and expired:
        new = dataclasses.replace(new, entries={k: e for k, e in new.entries.items() if not e.expired(today)})
        removed += len(expired)
    new.save(target)
    click.echo(f"sentra: baseline {target}: {added} added, {removed} removed, {len(new.entries)} entries")
    return int(ExitCode.OK)


@baseline.command("update")
@click.option("--file", "path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--history", is_flag=True)
def update(path: Path | None, history: bool) -> int:
    """Add new findings, drop vanished ones (reasons and expiry of kept entries stay)."""
    return guarded(lambda: _refresh(path, history, add=True))


@baseline.command("prune")
@click.option("--file", "path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--history", is_flag=True)
def prune(path: Path | None, history: bool) -> int:
    """Drop entries no longer found and expired ones; add nothing."""
    return guarded(lambda: _refresh(path, history, add=False))


@click.command()
@click.argument("where")
def explain(where: str) -> int:
    """Why a line is (or is not) reported: WHERE is PATH:LINE or a fingerprint."""
    from sentra_scan.explain import explain_line

    def go() -> int:
        scanner = api.make_scanner()
        targets: list[tuple[Path, int]] = []
        path_text, sep, line_text = where.rpartition(":")
        if sep and line_text.isdigit():
            targets.append((Path(path_text), int(line_text)))
        else:
            root = api.find_root() or Path.cwd()
            probe = Scanner(scanner.ruleset, scanner.config)
            probe.filters.baseline = None
            res = api.scan_paths([root], probe)
            for f in (*res.findings, *res.suppressed):
                if f.fingerprint == where:
                    targets.append((root / f.location.path, f.location.line))
            if not targets:
                raise UsageError(f"no finding with fingerprint {where} in the working tree")
        for path, line in targets:
            click.echo(f"{path}:{line}")
            steps = explain_line(scanner, path, line)
            if not steps:
                click.echo("  no rule's keywords occur on this line: nothing runs")
            for step in steps:
                click.echo(f"  {step.rule_id}: {step.verdict.upper()}")
                for d in step.detail:
                    click.echo(f"    - {d}")
        return int(ExitCode.OK)

    return guarded(go)


def register(group: click.Group) -> None:
    group.add_command(baseline)
    group.add_command(explain)
    group.add_command(import_)


@click.group("import")
def import_() -> None:
    """Bring configuration and baselines from other scanners."""


@import_.command("gitleaks")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=Path(".sentra.yaml"))
@click.option("--force", is_flag=True, help="Overwrite the output file.")
def import_gitleaks(source: Path, output: Path, force: bool) -> int:
    """Convert a gitleaks config (rules and allowlists) into .sentra.yaml ('-o -' prints it)."""
    import yaml

    from sentra_scan.config import load_config
    from sentra_scan.migrate import import_gitleaks as convert

    def go() -> int:
        result = convert(source)
        text = "# converted from " + source.name + " by 'sentra import gitleaks'\n"
        text += yaml.safe_dump(result.config, sort_keys=False, allow_unicode=True)
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)
        if str(output) == "-":
            click.echo(text, nl=False)
            return int(ExitCode.OK)
        if output.exists() and not force:
            raise UsageError(f"{output} exists", hint="use -o another.yaml and merge by hand, or --force")
        output.write_text(text, encoding="utf-8")
        load_config(output)  # validate what was written: patterns compile, keys known
        click.echo(f"sentra: wrote {output} with {len(result.config.get('rules', []))} rules")
        return int(ExitCode.OK)

    return guarded(go)


@import_.command("detect-secrets")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--file", "path", type=click.Path(path_type=Path, dir_okay=False), help="Default: .sentra-baseline")
def import_detect_secrets(source: Path, path: Path | None) -> int:
    """Turn a detect-secrets baseline into a Sentra baseline: the findings of a scan now
    whose secret detect-secrets had accepted (matched by its SHA-1 hashes)."""
    from sentra_scan import baseline as bl
    from sentra_scan.migrate import detect_secrets_hashes, matching_findings

    def go() -> int:
        scanner, root, target = _setup(path)
        hashes = detect_secrets_hashes(source)
        found = matching_findings(_current_findings(scanner, root, history=False), hashes)
        old = bl.load(target) if target.exists() else bl.Baseline({})
        entries = dict(old.entries)
        for f in found:
            entries.setdefault(f.fingerprint, bl.Entry(f.fingerprint, f.rule_id, None, "from detect-secrets"))
        bl.Baseline(entries).save(target)
        click.echo(
            f"sentra: {len(found)} of {len(hashes)} detect-secrets entries matched a current finding; "
            f"baseline {target} has {len(entries)} entries"
        )
        return int(ExitCode.OK)

    return guarded(go)
