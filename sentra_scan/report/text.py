"""Human-readable report: `path:line:col`, rule, the line with the secret masked, a hint."""

from __future__ import annotations

from typing import TextIO

from sentra_scan.model import Finding, ScanResult, Severity

_COLORS = {Severity.CRITICAL: "31;1", Severity.HIGH: "31", Severity.MEDIUM: "33", Severity.LOW: "36"}


class TextReporter:
    def __init__(self, *, color: bool = False, context: str = "scan") -> None:
        self.color = color
        self.context = context

    def _c(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def _finding(self, f: Finding, out: TextIO) -> None:
        loc = f.location
        where = f"{loc.path}:{loc.line}:{loc.column}"
        sev = self._c(_COLORS[f.severity], f.severity.label)
        out.write(f"{self._c('1', where)}  {f.rule_id}  [{sev}]  {f.description}\n")
        if loc.commit is not None:
            c = loc.commit
            out.write(f"    commit {c.id[:12]} by {c.author} on {c.date}\n")
        out.write(f"    {f.masked_line()}\n")
        if f.suppressed_by:
            out.write(f"    suppressed by: {f.suppressed_by}\n")
        else:
            out.write(f"    hint: {f.hint}\n")

    def write(self, result: ScanResult, out: TextIO) -> None:
        for f in result.findings:
            self._finding(f, out)
        for f in result.suppressed:
            self._finding(f, out)
        for s in result.skipped:
            if s.incomplete:
                detail = f" ({s.detail})" if s.detail else ""
                out.write(f"warning: {s.path}: not fully scanned: {s.reason.value}{detail}\n")
        n = len(result.findings)
        if n:
            noun = "secret" if n == 1 else "secrets"
            where = "in the staged changes" if self.context == "pre-commit" else "found"
            verdict = " — commit blocked" if self.context == "pre-commit" else ""
            out.write(self._c("31;1", f"sentra: {n} {noun} {where}{verdict}") + "\n")
            if self.context == "pre-commit":
                out.write(
                    "  Remove the secret (or mark a false positive with 'sentra:allow' on the line),"
                    " then commit again.\n"
                    "  To see the findings as JSON: sentra scan --staged --format json\n"
                )
        elif result.incomplete:
            out.write("sentra: no secrets found, but the scan was incomplete (see warnings)\n")
