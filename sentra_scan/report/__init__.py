"""Reporters: a scan result in, text out. Secrets are always redacted here."""

from __future__ import annotations

import os
import re
from typing import Protocol, TextIO

from sentra_scan.context_fields import readable_time
from sentra_scan.model import Finding, ScanResult, redact


class Reporter(Protocol):
    def write(self, result: ScanResult, out: TextIO) -> None: ...


FORMATS = ("text", "json", "sarif", "junit", "gitlab")


class Masker:
    """Source lines with every secret of a result masked, not only the finding's own:
    the same secret twice on a line, or two secrets side by side, must not show through
    (`Finding.masked_line` masks the one span only)."""

    def __init__(self, result: ScanResult, max_len: int = 160) -> None:
        values = {f.secret.reveal() for f in (*result.findings, *result.suppressed)}
        alternation = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True) if v)
        self._re = re.compile(alternation) if alternation else None
        self.max_len = max_len

    def text(self, value: str) -> str:
        """Free text (an account context value) with any secret of the result masked: context
        is never a secret by construction, and this keeps it so if that ever fails."""
        return self._re.sub(lambda m: redact(m.group(0)), value) if self._re is not None else value

    def snippet(self, f: Finding) -> str:
        line = f.line_text
        start, end = f.location.column - 1, f.location.end_column - 1
        spans = [(start, end)]
        if self._re is not None:
            spans += [m.span() for m in self._re.finditer(line)]
        merged: list[list[int]] = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out, pos, new_start = [], 0, 0
        for a, b in merged:
            out.append(line[pos:a])
            if a <= start < b:
                new_start = sum(len(p) for p in out)
            out.append(redact(line[a:b]))
            pos = b
        out.append(line[pos:])
        masked = "".join(out)
        if len(masked) <= self.max_len:
            return masked.strip()
        lo = max(0, new_start - 40)
        hi = min(len(masked), new_start + len(f.secret.redacted()) + 40)
        return ("…" if lo else "") + masked[lo:hi].strip() + ("…" if hi < len(masked) else "")


def account(f: Finding, masker: Masker) -> str:
    """A finding's context in one line: "root @ example.com, path /var/www (lines 6, 8, 11)";
    a record's times and use count after a semicolon, epochs as UTC dates; "" when none."""
    if not f.context:
        return ""
    by_role: dict[str, list[str]] = {"user": [], "host": [], "database": [], "path": []}
    record: list[str] = []
    for c in f.context:
        if c.role in ("when", "usage"):
            record.append(masker.text(f"{c.name} {readable_time(c.value) if c.role == 'when' else c.value}"))
        else:
            by_role.setdefault(c.role, []).append(masker.text(c.value))
    text = ", ".join(by_role["user"])
    if by_role["host"]:
        hosts = ", ".join(by_role["host"])
        text = f"{text} @ {hosts}" if text else f"host {hosts}"
    for role in ("database", "path"):
        if by_role[role]:
            text += (", " if text else "") + f"{role} " + ", ".join(by_role[role])
    if record:
        text += ("; " if text else "") + ", ".join(record)
    lines = sorted({c.line for c in f.context})
    return f"{text} ({'line' if len(lines) == 1 else 'lines'} {', '.join(map(str, lines))})"


def get_reporter(name: str, *, color: bool = False, context: str = "scan", tool_version: str = "") -> Reporter:
    if name == "text":
        from sentra_scan.report.text import TextReporter

        return TextReporter(color=color, context=context)
    if name == "json":
        from sentra_scan.report.jsonfmt import JsonReporter

        return JsonReporter()
    if name == "sarif":
        from sentra_scan.report.sarif import SarifReporter

        return SarifReporter(tool_version=tool_version)
    if name == "junit":
        from sentra_scan.report.junit import JunitReporter

        return JunitReporter()
    if name == "gitlab":
        from sentra_scan import __version__
        from sentra_scan.report.gitlab import GitlabReporter

        # In a GitLab job the files scanned outside history are those of the job's commit.
        sha = os.environ.get("CI_COMMIT_SHA", "")
        return GitlabReporter(
            tool_version=tool_version or __version__, worktree_sha=sha if re.fullmatch(r"[0-9a-f]{7,64}", sha) else None
        )
    raise ValueError(f"unknown format {name!r}")
