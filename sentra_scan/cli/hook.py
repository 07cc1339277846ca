"""Git hook entry points. The pre-commit path imports neither click nor pygit2, and the
`regex` module only when a keyword selected a rule."""

from __future__ import annotations

import os
import sys

from sentra_scan.cli.common import exit_code_for, guarded, use_color
from sentra_scan.errors import ExitCode, UsageError

PRE_COMMIT_USAGE = "usage: sentra hook pre-commit [--strict] [--format text|json|sarif] [FILES...]"


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
        if fmt not in ("text", "json", "sarif"):
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
        if fmt == "text":
            reporter = get_reporter("text", color=use_color(sys.stderr), context="pre-commit")
            reporter.write(result, sys.stderr)
        else:
            get_reporter(fmt).write(result, sys.stdout)
        return int(exit_code_for(result, strict=strict))

    return guarded(run)
