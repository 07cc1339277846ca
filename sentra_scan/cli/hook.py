"""Git hook entry points. The pre-commit path imports neither click nor pygit2, and the
`regex` module only when a keyword selected a rule.

A blocked commit with a terminal attached (`/dev/tty`) asks, for each finding: move it to
the store, allow it, or leave the commit blocked. Without one (CI, GUI clients,
SENTRA_NO_PROMPT=1, the pre-commit framework) it never asks: it names `sentra fix`.
Everything the prompt needs is imported only when there are findings."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from sentra_scan.cli.common import exit_code_for, guarded, use_color
from sentra_scan.errors import ExitCode, UsageError
from sentra_scan.report import FORMATS

if TYPE_CHECKING:
    from contextlib import ExitStack

    from sentra_scan.model import Finding
    from sentra_scan.move import Fixer, Outcome
    from sentra_scan.report import Masker
    from sentra_scan.store import Store

PRE_COMMIT_USAGE = f"usage: sentra hook pre-commit [--strict] [--format {'|'.join(FORMATS)}] [FILES...]"


def skip_requested(hook_id: str = "sentra") -> bool:
    """pre-commit's convention: SKIP=id1,id2 skips those hooks."""
    return hook_id in {s.strip() for s in os.environ.get("SKIP", "").split(",")}


def pre_commit_main(args: list[str]) -> int:
    strict = bool(os.environ.get("SENTRA_STRICT"))
    fmt = "text"
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--strict":
            strict = True
        elif arg == "--format" and rest:
            fmt = rest.pop(0)
        elif arg.startswith("--format="):
            fmt = arg.split("=", 1)[1]
        elif arg in ("-h", "--help"):
            print(PRE_COMMIT_USAGE)
            return int(ExitCode.OK)
        elif arg.startswith("-"):
            print(f"error: unknown option {arg}\n{PRE_COMMIT_USAGE}", file=sys.stderr)
            return int(ExitCode.USAGE)
        # File names (the pre-commit framework may pass them) are ignored: the staged
        # diff is what the commit adds.

    def run() -> int:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}")
        if skip_requested():
            print("sentra: skipped (SKIP=sentra)", file=sys.stderr)
            return int(ExitCode.OK)
        from sentra_scan.api import find_config, make_scanner, scan_staged
        from sentra_scan.config import load_config
        from sentra_scan.report import get_reporter

        scanner = make_scanner(load_config(find_config()))
        result = scan_staged(scanner=scanner)
        if result.findings:
            # Only a blocked commit pays for the ledger (keyring and cipher imports); a
            # clean commit stays on the fast path.
            from sentra_scan.incremental import record_result

            record_result(scanner, result, mode="pre-commit", target="staged changes", repo=None)
        terminal = open_terminal() if result.findings and fmt == "text" else None
        if terminal is not None:
            with terminal[0], terminal[1]:
                return remediate(result.findings, terminal[0], terminal[1])
        if fmt == "text":
            reporter = get_reporter("text", color=use_color(sys.stderr), context="pre-commit")
            reporter.write(result, sys.stderr)
            if result.findings:
                print(FIX_ADVICE, file=sys.stderr)
        else:
            get_reporter(fmt).write(result, sys.stdout)
        return int(exit_code_for(result, strict=strict))

    return guarded(run)


# --- the prompt: only ever reached with findings -----------------------------------------------

FIX_ADVICE = "  To move them to the encrypted store (or allow them), run: sentra fix"
CHOICES = "[m]ove to the store, [a]llow, leave the commit [b]locked"


def open_terminal() -> tuple[TextIO, TextIO] | None:
    """The controlling terminal, to ask on (git gives hooks no stdin); None when there is
    none, when our output does not go to a terminal (a GUI client or a script reading it
    would never show the question), or prompting is off: SENTRA_NO_PROMPT=1, or run by the
    pre-commit framework."""
    if os.environ.get("SENTRA_NO_PROMPT", "0") != "0" or os.environ.get("PRE_COMMIT"):
        return None
    if not sys.stderr.isatty():
        return None
    try:
        tty_in = open("/dev/tty", encoding="utf-8", errors="replace")  # noqa: SIM115 -- closed by the caller
    except OSError:
        return None
    try:
        tty_out = open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115
    except OSError:
        tty_in.close()
        return None
    return tty_in, tty_out


def ask(tty_in: TextIO, out: TextIO, question: str, allowed: str) -> str:
    """One letter from `allowed`; end of input or an empty answer leaves it blocked."""
    while True:
        out.write(question)
        out.flush()
        line = tty_in.readline()
        answer = line.strip().lower()[:1]
        if not line or not answer:
            return "b"
        if answer in allowed:
            return answer
        out.write(f"  please answer one of {', '.join(allowed)}\n")


def make_fixer(scheme: str | None, cleanup: ExitStack) -> Fixer:
    """A Fixer for the repository here. The store (and its keys) open on the first move;
    `cleanup` closes them."""
    from pathlib import Path

    from sentra_scan.api import find_config
    from sentra_scan.baseline import DEFAULT_NAME
    from sentra_scan.config import load_config
    from sentra_scan.move import Fixer, entry_path
    from sentra_scan.sources.gitcmd import toplevel
    from sentra_scan.storeops import env_prefixes, open_store

    top = toplevel()
    config = load_config(find_config(top))
    scheme = scheme or env_prefixes(config, config.default_env)[0] + "{name}"
    entry_path(scheme, "NAME")  # a bad scheme fails now, before anything is asked
    base = Path(config.baseline) if config.baseline else Path(DEFAULT_NAME)

    def store() -> Store:
        state, opened, _config = open_store(top)
        cleanup.callback(state.close)
        return opened

    return Fixer(top, scheme, store, base if base.is_absolute() else top / base)


def describe(f: Finding, masker: Masker) -> str:
    """The finding in two lines, every secret on its line masked."""
    loc = f.location
    head = f"{loc.path}:{loc.line}:{loc.column}  {f.rule_id}  [{f.severity.label}]  {f.description}"
    return f"{head}\n    {masker.snippet(f)}\n"


def tell(out: TextIO, outcome: Outcome) -> None:
    where = f"{outcome.finding.location.path}:{outcome.finding.location.line}"
    if outcome.action == "moved":
        out.write(f"  moved: {where} -> store entry {outcome.entry}; the code now reads {outcome.reference}\n")
    elif outcome.action == "allowed":
        out.write(f"  allowed: {where} ({outcome.reference})\n")
    else:
        out.write(f"  allowed: {where} (added to the baseline {outcome.reference})\n")
    if outcome.action != "baseline" and not outcome.worktree:
        out.write("    (your working copy of the file no longer has that line: it was left as it is)\n")


def decide(f: Finding, fixer: Fixer, tty_in: TextIO | None, out: TextIO, masker: Masker) -> Outcome | None:
    """Ask about one finding (or, without `tty_in`, move it) and act; None: left blocked."""
    from sentra_scan.move import MoveError

    out.write(describe(f, masker))
    try:
        plan = fixer.plan(f)
        entry, ref = fixer.preview(plan)
        out.write(f"    [m] store it as {entry}; the code will read {ref}\n")
    except MoveError as exc:
        plan = None
        out.write(f"    [m] not possible here: {exc.message}\n")
    if tty_in is None:
        answer = "m" if plan else "b"
    else:
        answer = ask(tty_in, out, f"    {CHOICES}? [m/a/B] ", "mab" if plan else "ab")
    try:
        if answer == "m":
            return fixer.move(f)
        if answer == "a":
            return fixer.allow(f)
    except MoveError as exc:
        out.write(f"  cannot change {f.location.path}: {exc.message}\n")
    return None


def remediate(findings: tuple[Finding, ...], tty_in: TextIO | None, out: TextIO, scheme: str | None = None) -> int:
    """Resolve each finding (asking on `tty_in`, or moving every one when it is None), then
    scan the staged changes again: exit 0 when nothing is left, 1 when something is."""
    from contextlib import ExitStack

    from sentra_scan.api import make_scanner, scan_staged
    from sentra_scan.model import ScanResult
    from sentra_scan.report import Masker

    masker = Masker(ScanResult(findings))
    with ExitStack() as cleanup:
        fixer = make_fixer(scheme, cleanup)
        try:
            for n, f in enumerate(findings, 1):
                if not fixer.pending(f):
                    continue  # went with an earlier fix (the same literal)
                out.write(f"sentra: secret {n} of {len(findings)} in the staged changes\n")
                outcome = decide(f, fixer, tty_in, out, masker)
                if outcome is not None:
                    tell(out, outcome)
        finally:
            fixer.finish()
    left = scan_staged(scanner=make_scanner()).findings
    if not left:
        out.write("sentra: no secrets left in the staged changes\n")
        return int(ExitCode.OK)
    out.write(f"sentra: {len(left)} secret(s) left in the staged changes - commit blocked\n{FIX_ADVICE}\n")
    out.flush()
    return int(ExitCode.FINDINGS)
