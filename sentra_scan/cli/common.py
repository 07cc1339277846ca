"""What every command shares: error-to-exit-code mapping, colour, output."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import TextIO

from sentra_scan.errors import ExitCode, SentraError
from sentra_scan.model import ScanResult


def use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def exit_code_for(result: ScanResult, *, strict: bool) -> ExitCode:
    if result.findings:
        return ExitCode.FINDINGS
    if strict and result.incomplete:
        return ExitCode.INCOMPLETE
    return ExitCode.OK


def guarded(fn: Callable[[], int], *, verbose: bool = False) -> int:
    """The one place where errors become exit codes. Tracebacks only when verbose."""
    verbose = verbose or bool(os.environ.get("SENTRA_DEBUG"))
    try:
        return fn()
    except SentraError as exc:
        if verbose:
            traceback.print_exc()
        print(exc.diagnostics(), file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return int(ExitCode.OK)
    except Exception as exc:  # last resort: never exit 1 on a crash
        if verbose:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("hint: rerun with --verbose (or SENTRA_DEBUG=1) and report the traceback", file=sys.stderr)
        return int(ExitCode.INTERNAL)
