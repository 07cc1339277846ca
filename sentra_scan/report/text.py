"""Human-readable report: `path:line:col`, rule, the line with the secret masked, a hint."""

from __future__ import annotations

from typing import TextIO

from sentra_scan.model import Finding, Location, ScanResult, Severity
from sentra_scan.report import Masker, account

_CONTEXTS = {
    "pre-commit": ("in the staged changes", " — commit blocked"),
    "pre-push": ("in the commits being pushed", " — push blocked"),
    "pre-receive": ("in the pushed commits", " — push rejected"),
}


def _where(loc: Location) -> str:
    commit = f"@{loc.commit.id[:12]}" if loc.commit is not None else ""
    return f"{loc.path}:{loc.line}{commit}"


_COLORS = {Severity.CRITICAL: "31;1", Severity.HIGH: "31", Severity.MEDIUM: "33", Severity.LOW: "36"}


class TextReporter:
    def __init__(self, *, color: bool = False, context: str = "scan") -> None:
        self.color = color
        self.context = context

    def _c(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def _finding(self, f: Finding, out: TextIO, masker: Masker) -> None:
        loc = f.location
        where = f"{loc.path}:{loc.line}:{loc.column}"
        sev = self._c(_COLORS[f.severity], f.severity.label)
        out.write(f"{self._c('1', where)}  {f.rule_id}  [{sev}]  {f.description}\n")
        if loc.commit is not None:
            c = loc.commit
            out.write(f"    commit {c.id[:12]} by {c.author} on {c.date}\n")
        out.write(f"    {masker.snippet(f)}\n")
        if f.context:
            out.write(f"    account: {account(f, masker)}\n")
        if f.occurrences:
            shown = ", ".join(_where(o) for o in f.occurrences[:5])
            more = f" and {len(f.occurrences) - 5} more" if len(f.occurrences) > 5 else ""
            out.write(f"    also at: {shown}{more}\n")
        if f.suppressed_by:
            out.write(f"    suppressed by: {f.suppressed_by}\n")
        else:
            out.write(f"    hint: {f.hint}\n")

    def write(self, result: ScanResult, out: TextIO) -> None:
        masker = Masker(result)
        for f in result.findings:
            self._finding(f, out, masker)
        for f in result.suppressed:
            self._finding(f, out, masker)
        for s in result.skipped:
            if s.incomplete:
                detail = f" ({s.detail})" if s.detail else ""
                out.write(f"warning: {s.path}: not fully scanned: {s.reason.value}{detail}\n")
        n = len(result.findings)
        if n:
            noun = "secret" if n == 1 else "secrets"
            where, verdict = _CONTEXTS.get(self.context, ("found", ""))
            out.write(self._c("31;1", f"sentra: {n} {noun} {where}{verdict}") + "\n")
            if self.context == "pre-push":
                out.write(
                    "  Remove the secret from these commits (git rebase -i, or git commit --amend for the last one),"
                    " then push again.\n"
                )
            if self.context == "pre-commit":
                out.write(
                    "  Remove the secret (or mark a false positive with 'sentra:allow' on the line),"
                    " then commit again.\n"
                    "  To see the findings as JSON: sentra scan --staged --format json\n"
                )
        elif result.incomplete:
            out.write("sentra: no secrets found, but the scan was incomplete (see warnings)\n")
