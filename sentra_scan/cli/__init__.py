"""Command-line entry point.

`sentra hook pre-commit` is on every commit's path, so it is dispatched here without
importing click (≈60 ms); every other command goes through the click application.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:2] == ["hook", "pre-commit"]:
        from sentra_scan.cli.hook import pre_commit_main

        code = pre_commit_main(args[2:])
        if argv is None:  # the real process, not a caller in Python: skip the teardown
            _exit_now(code)
        return code
    if args[:2] == ["hook", "pre-push"] or args[:2] == ["hook", "pre-receive"]:
        from sentra_scan.cli.pushhooks import pre_push_main, pre_receive_main

        return (pre_push_main if args[1] == "pre-push" else pre_receive_main)(args[2:])
    from sentra_scan.cli.app import run

    return run(args)


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown (freeing every module and object
    costs a commit hook ~15 ms): output is flushed first; files and the ledger are closed
    by then (the hook closes what it opens)."""
    import contextlib
    import os

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
