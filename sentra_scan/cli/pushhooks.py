"""`sentra hook pre-push` and `sentra hook pre-receive`: dispatched without click.

pre-push: git passes the remote's name and URL as arguments and one line per ref on
stdin (`<local ref> <local sha> <remote ref> <remote sha>`); exactly the commits the push
would add are scanned. pre-receive (server side): `<old> <new> <ref>` lines; the new commits
are scanned within a time budget, and what was left unscanned is said, never passed over.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from sentra_scan.cli.common import exit_code_for, guarded, use_color
from sentra_scan.errors import ExitCode, UsageError
from sentra_scan.report import FORMATS


@dataclass
class HookOptions:
    strict: bool = False
    fmt: str = "text"
    include_messages: bool = False
    budget_s: float | None = None
    full: bool = False
    positional: list[str] = field(default_factory=list)


def parse_budget(text: str) -> float:
    value = text.strip().lower()
    scale = 1.0
    if value.endswith("ms"):
        value, scale = value[:-2], 0.001
    elif value.endswith("s"):
        value = value[:-1]
    try:
        seconds = float(value) * scale
    except ValueError:
        raise UsageError(f"--budget: expected a duration such as 4s or 500ms, got {text!r}") from None
    if seconds <= 0:
        raise UsageError("--budget must be positive")
    return seconds


def parse_options(args: list[str], usage: str) -> HookOptions:
    opts = HookOptions(strict=bool(os.environ.get("SENTRA_STRICT")))
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--strict":
            opts.strict = True
        elif arg == "--include-messages":
            opts.include_messages = True
        elif arg == "--full":
            opts.full = True
        elif arg in ("--format", "--budget") and rest:
            value = rest.pop(0)
            if arg == "--format":
                opts.fmt = value
            else:
                opts.budget_s = parse_budget(value)
        elif arg.startswith("--format="):
            opts.fmt = arg.split("=", 1)[1]
        elif arg.startswith("--budget="):
            opts.budget_s = parse_budget(arg.split("=", 1)[1])
        elif arg in ("-h", "--help"):
            raise UsageError(usage)
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg}", hint=usage)
        else:
            opts.positional.append(arg)
    if opts.fmt not in FORMATS:
        raise UsageError(f"unknown format {opts.fmt!r}", hint=usage)
    return opts


def _run(kind: str, args: list[str]) -> int:
    from sentra_scan.cli.hook import skip_requested

    usage = {
        "pre-push": "usage: sentra hook pre-push [REMOTE [URL]] [--strict] [--include-messages] [--format F]",
        "pre-receive": "usage: sentra hook pre-receive [--budget 4s] [--strict] [--include-messages] [--format F]",
    }[kind]
    opts = parse_options(args, usage)
    hook_id = "sentra-push" if kind == "pre-push" else "sentra"
    if skip_requested("sentra") or skip_requested(hook_id):
        print(f"sentra: {kind} skipped (SKIP)", file=sys.stderr)
        return int(ExitCode.OK)
    from sentra_scan import ranges
    from sentra_scan.api import make_scanner
    from sentra_scan.incremental import scan_recorded
    from sentra_scan.report import get_reporter

    stdin = sys.stdin.read()
    if kind == "pre-push":
        remote = opts.positional[0] if opts.positional else None
        framework = None if stdin.strip() else ranges.pre_commit_push(os.environ, None)
        target = framework or ranges.pre_push(stdin, remote, None)
        budget = opts.budget_s
    else:
        target = ranges.pre_receive(stdin, None)
        budget = opts.budget_s if opts.budget_s is not None else 4.0
    if kind == "pre-receive":
        # A server's bare repository: no work tree to find a .sentra.yaml in, and walking
        # up its parents could pick up an unrelated one. SENTRA_CONFIG names one explicitly.
        from pathlib import Path

        from sentra_scan.config import Config, load_config

        explicit = os.environ.get("SENTRA_CONFIG")
        config = load_config(Path(explicit)) if explicit else Config()
        scanner = make_scanner(config)
    else:
        scanner = make_scanner()
    scan = scan_recorded(
        scanner, target, None, mode=kind, include_messages=opts.include_messages, budget_s=budget, full=opts.full
    )
    if opts.fmt == "text":
        get_reporter("text", color=use_color(sys.stderr), context=kind).write(scan.result, sys.stderr)
        if scan.unscanned:
            print(
                f"sentra: {len(scan.unscanned)} of {len(target.commits or ())} commits were not scanned "
                f"within the {budget:g}s budget; run 'sentra scan --commits' on them",
                file=sys.stderr,
            )
    else:
        get_reporter(opts.fmt).write(scan.result, sys.stdout)
    return int(exit_code_for(scan.result, strict=opts.strict))


def pre_push_main(args: list[str]) -> int:
    return guarded(lambda: _run("pre-push", args))


def pre_receive_main(args: list[str]) -> int:
    return guarded(lambda: _run("pre-receive", args))
