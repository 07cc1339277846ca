"""The click application. Each command parses options, calls one library function and maps
the result to an exit code; errors become exit codes in `common.guarded` only."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click

from sentra_scan import __version__, api
from sentra_scan.cli.common import exit_code_for, guarded, use_color
from sentra_scan.config import load_config
from sentra_scan.errors import ExitCode, UsageError
from sentra_scan.report import FORMATS, get_reporter
from sentra_scan.scan import Scanner


def run(args: list[str]) -> int:
    try:
        rv = cli.main(args=args, prog_name="sentra", standalone_mode=False)
    except click.UsageError as exc:
        exc.show()
        return int(ExitCode.USAGE)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:  # never exit 1 (that means "findings")
        exc.show()
        return int(ExitCode.USAGE)
    return rv if isinstance(rv, int) else int(ExitCode.OK)


# Commands defined in modules of their own, by name: a module is imported when one of its
# commands runs (or for --help), not for every command (`sentra audit` need not import the
# secret store, the server or the login code).
LAZY_COMMANDS = {
    "audit": "commits",
    "ci": "commits",
    "key": "state_cmds",
    "history": "state_cmds",
    "doctor": "state_cmds",
    "baseline": "baseline_cmds",
    "explain": "baseline_cmds",
    "import": "baseline_cmds",
    "secrets": "secrets_cmds",
    "run": "secrets_cmds",
    "inject": "secrets_cmds",
    "fix": "fix_cmds",
    "login": "auth_cmds",
    "logout": "auth_cmds",
    "whoami": "auth_cmds",
    "serve": "serve_cmds",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = LAZY_COMMANDS.get(cmd_name)
        if cmd_name not in self.commands and module is not None:
            importlib.import_module(f"sentra_scan.cli.{module}").register(self)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sentra")
def cli() -> None:
    """Sentra Scan: stop secrets before they enter a repository."""


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    with fh:
        yield fh


def _scanner(config_path: Path | None, rules_dir: Path | None) -> Scanner:
    config = load_config(config_path if config_path else api.find_config())
    return api.make_scanner(config, rules_dir)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--staged", is_flag=True, help="Scan the staged changes (what 'git commit' would add).")
@click.option("--commits", "commit_range", metavar="A..B", help="Scan the changes of these commits.")
@click.option("--since", "since_ref", metavar="REF", help="Scan the commits REF..HEAD.")
@click.option("--include-messages", is_flag=True, help="With --commits/--since: scan commit messages too.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write the report here.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="A .sentra.yaml.")
@click.option("--rules-dir", type=click.Path(path_type=Path, file_okay=False), help="Use these rule files.")
@click.option("--strict", is_flag=True, help="Exit 4 when something could not be fully scanned.")
@click.option("--show-suppressed", is_flag=True, help="Also report what allowlists and markers hide.")
@click.option("--all-occurrences", is_flag=True, help="One finding per place, not one per secret.")
@click.option("--no-git-ignore", is_flag=True, help="In directories, read ignored files too.")
@click.option("--stdin-name", default="<stdin>", help="Path to report for 'sentra scan -'.")
@click.option("--verbose", "-v", is_flag=True, help="Tracebacks on errors.")
def scan(
    paths: tuple[Path, ...],
    staged: bool,
    commit_range: str | None,
    since_ref: str | None,
    include_messages: bool,
    fmt: str,
    output: Path | None,
    config_path: Path | None,
    rules_dir: Path | None,
    strict: bool,
    show_suppressed: bool,
    all_occurrences: bool,
    no_git_ignore: bool,
    stdin_name: str,
    verbose: bool,
) -> int:
    """Scan PATHS (files or directories; '-' for stdin), the staged changes, or commits."""

    def go() -> int:
        modes = sum(bool(m) for m in (staged, paths, commit_range or since_ref))
        if modes > 1:
            raise UsageError("give one of --staged, --commits/--since or PATHS")
        scanner = _scanner(config_path, rules_dir)
        if staged:
            from sentra_scan.incremental import record_result

            result = api.scan_staged(scanner=scanner)
            record_result(scanner, result, mode="staged", target="staged changes", repo=None)
        elif commit_range or since_ref:
            from sentra_scan.cli.commits import scan_commits

            result = scan_commits(scanner, commit_range, since_ref, include_messages)
        elif paths == (Path("-"),):
            from sentra_scan.sources.files import StdinSource

            source = StdinSource(name=stdin_name, max_file_size=scanner.config.max_file_size)
            result = scanner.scan(source.items())
        else:
            if Path("-") in paths:
                raise UsageError("'-' (stdin) cannot be combined with other paths")
            for p in paths:
                if not p.exists():
                    raise UsageError(f"{p}: no such file or directory")
            result = api.scan_paths(list(paths) or [Path(".")], scanner, respect_gitignore=not no_git_ignore)
        if not show_suppressed:
            result = dataclasses.replace(result, suppressed=())
        if not all_occurrences:
            from sentra_scan.history import deduplicate

            result = deduplicate(result)
        with _output(output) as out:
            color = fmt == "text" and output is None and use_color(sys.stdout)
            get_reporter(fmt, color=color, tool_version=__version__).write(result, out)
        if fmt != "text" and result.incomplete:
            for s in result.skipped:
                if s.incomplete:
                    print(f"warning: {s.path}: not fully scanned: {s.reason.value}", file=sys.stderr)
        return int(exit_code_for(result, strict=strict))

    return guarded(go, verbose=verbose)


@cli.group()
def hook() -> None:
    """Entry points for git hooks (what the installed hooks call)."""


@hook.command("pre-commit", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook_pre_commit(args: tuple[str, ...]) -> int:
    """Scan the staged changes; exit 1 to block the commit."""
    from sentra_scan.cli.hook import pre_commit_main

    return pre_commit_main(list(args))


@hook.command("pre-push", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook_pre_push(args: tuple[str, ...]) -> int:
    """Scan exactly the commits a push adds (git's pre-push stdin); exit 1 to block it."""
    from sentra_scan.cli.pushhooks import pre_push_main

    return pre_push_main(list(args))


@hook.command("pre-receive", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook_pre_receive(args: tuple[str, ...]) -> int:
    """Server side: scan pushed commits within --budget (default 4s); exit 1 to reject."""
    from sentra_scan.cli.pushhooks import pre_receive_main

    return pre_receive_main(list(args))


@cli.command()
@click.option("--hook", "hook_name", type=click.Choice(["pre-commit", "pre-push"]), default="pre-commit")
@click.option("--global", "global_", is_flag=True, help="For every repository (core.hooksPath).")
def install(hook_name: str, global_: bool) -> int:
    """Install the git hook (an existing hook is kept and runs first)."""
    from sentra_scan import install as inst

    def go() -> int:
        res = inst.install(hook_name, global_=global_)
        verb = "updated" if res.already else "installed"
        click.echo(f"sentra: {hook_name} hook {verb}: {res.path}")
        if res.chained:
            click.echo(f"sentra: your existing hook runs first: {res.chained}")
        return int(ExitCode.OK)

    return guarded(go)


@cli.command()
@click.option("--hook", "hook_name", type=click.Choice(["pre-commit", "pre-push"]), default="pre-commit")
@click.option("--global", "global_", is_flag=True)
def uninstall(hook_name: str, global_: bool) -> int:
    """Remove the git hook (restoring a hook it had chained)."""
    from sentra_scan import install as inst

    def go() -> int:
        removed = inst.uninstall(hook_name, global_=global_)
        click.echo(f"sentra: {hook_name} hook {'removed' if removed else 'was not installed'}")
        return int(ExitCode.OK)

    return guarded(go)


@cli.command()
def demo() -> int:
    """Show the guard blocking a commit, in a throwaway repository."""
    from sentra_scan.demo import run_demo

    return guarded(lambda: int(ExitCode.OK if run_demo(click.echo) else ExitCode.INTERNAL))


@cli.group()
def rules() -> None:
    """The rule set."""


@rules.command("list")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--rules-dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def rules_list(config_path: Path | None, rules_dir: Path | None, as_json: bool) -> int:
    """List the rules in effect (defaults plus .sentra.yaml)."""

    def go() -> int:
        ruleset = _scanner(config_path, rules_dir).ruleset
        if as_json:
            import json

            doc = [
                {"id": r.id, "description": r.description, "severity": r.severity.label, "source": r.source}
                for r in ruleset.rules
            ]
            click.echo(json.dumps(doc, indent=2))
        else:
            width = max((len(r.id) for r in ruleset.rules), default=0)
            for r in ruleset.rules:
                click.echo(f"{r.id:<{width}}  {r.severity.label:<8}  {r.description}")
            click.echo(f"{len(ruleset)} rules (version {ruleset.version()})", err=True)
        return int(ExitCode.OK)

    return guarded(go)


@rules.command("test")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--rules-dir", type=click.Path(path_type=Path, file_okay=False))
def rules_test(config_path: Path | None, rules_dir: Path | None) -> int:
    """Run every rule's examples; exit 1 if one fails."""
    from sentra_scan.ruleset.selftest import check_ruleset

    def go() -> int:
        scanner = _scanner(config_path, rules_dir)
        failures = check_ruleset(scanner.ruleset, scanner.config)
        for f in failures:
            click.echo(f"FAIL {f}")
        total = sum(len(r.examples.match) + len(r.examples.no_match) for r in scanner.ruleset.rules)
        click.echo(f"{total - len(failures)} passed, {len(failures)} failed ({len(scanner.ruleset)} rules)")
        return int(ExitCode.FINDINGS if failures else ExitCode.OK)

    return guarded(go)
