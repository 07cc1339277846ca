"""`sentra fix`: the hook's remedy outside a hook. For each staged finding, move the secret
to the store (the literal becomes a reference that fits the file), allow it, or leave it;
on a terminal it asks, with `--yes` it moves every one under `--name-scheme`."""

from __future__ import annotations

import sys

import click

from sentra_scan.cli.common import guarded
from sentra_scan.errors import ExitCode, UsageError


@click.command()
@click.option("--yes", is_flag=True, help="Move every finding without asking (needs --name-scheme).")
@click.option(
    "--name-scheme",
    metavar="SCHEME",
    help="Store entry for each secret, e.g. 'dev/{name}' ({name}: the suggested variable name). "
    "Default: the default environment's prefix.",
)
@click.option("--verbose", "-v", is_flag=True, help="Tracebacks on errors.")
def fix(yes: bool, name_scheme: str | None, verbose: bool) -> int:
    """Move the staged secrets to the encrypted store, or allow them (what the hook offers)."""
    from sentra_scan.cli.hook import remediate

    def go() -> int:
        if yes and not name_scheme:
            raise UsageError(
                "--yes needs an explicit --name-scheme", hint="e.g. sentra fix --yes --name-scheme 'dev/{name}'"
            )
        interactive = not yes and sys.stdin.isatty() and sys.stderr.isatty()
        if not yes and not interactive:
            raise UsageError(
                "no terminal to ask on", hint="to move every finding: sentra fix --yes --name-scheme 'dev/{name}'"
            )
        from sentra_scan.api import make_scanner, scan_staged

        findings = scan_staged(scanner=make_scanner()).findings
        if not findings:
            click.echo("sentra: no secrets in the staged changes")
            return int(ExitCode.OK)
        return remediate(findings, sys.stdin if interactive else None, sys.stderr, name_scheme)

    return guarded(go, verbose=verbose)


def register(group: click.Group) -> None:
    group.add_command(fix)
