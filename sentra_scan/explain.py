"""`sentra explain PATH:LINE`: every rule that looked at a line, every check and filter,
and why each match was kept or dropped. Secrets are shown redacted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentra_scan.context import with_context
from sentra_scan.errors import UsageError
from sentra_scan.filters import fingerprint
from sentra_scan.model import Candidate, Fragment, Location, ScanResult, Secret, redact
from sentra_scan.report import Masker, account
from sentra_scan.scan import Scanner
from sentra_scan.sources.files import fragment_from_bytes
from sentra_scan.validators import VALIDATORS, shannon_entropy


@dataclass(frozen=True)
class Step:
    rule_id: str
    verdict: str  # "reported", "dropped", "not run"
    detail: tuple[str, ...]


def _line_span(fragment: Fragment, line: int) -> tuple[int, int]:
    start = 0
    for text, number in zip(fragment.lines, fragment.line_numbers, strict=True):
        if number == line:
            return start, start + len(text)
        start += len(text) + 1
    raise UsageError(f"{fragment.path} has no line {line}")


def explain_line(scanner: Scanner, path: Path, line: int, shown: str | None = None) -> list[Step]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    item = fragment_from_bytes(shown or str(path), data)
    if not isinstance(item, Fragment):
        raise UsageError(f"{path} is {item.reason.value}: not scanned")
    lo, hi = _line_span(item, line)
    text = item.text
    line_text = text[lo:hi]
    steps: list[Step] = []
    ruleset = scanner.ruleset
    if scanner.filters.path_allowed(item.path):
        return [Step("*", "dropped", (f"path {item.path} is in allow.paths: the file is never read",))]
    lowered_line = line_text.lower()
    for i, rule in enumerate(ruleset.rules):
        hits = [k for k in rule.keywords if k in lowered_line]
        if not hits:
            continue
        detail = [f"keywords on the line: {', '.join(hits)}"]
        if not scanner.detector.path_ok(i, item.path):
            steps.append(Step(rule.id, "not run", (*detail, "path excluded by the rule's paths include/exclude")))
            continue
        matched = False
        for m in ruleset.pattern(i).finditer(text, timeout=scanner.config.regex_timeout):
            start, end = m.span("secret")
            if start < 0 or end <= lo or start >= hi:
                continue
            matched = True
            secret = text[start:end]
            checks = [f"pattern matched; secret {redact(secret)} ({len(secret)} chars)"]
            ent = shannon_entropy(secret)
            verdict = "reported"
            if rule.entropy is not None:
                ok = ent >= rule.entropy
                checks.append(f"entropy {ent:.2f} bits/char {'>=' if ok else '<'} floor {rule.entropy:g}")
                verdict = verdict if ok else "dropped"
            if rule.validator and verdict == "reported":
                ok = VALIDATORS[rule.validator](secret)
                checks.append(f"validator {rule.validator}: {'pass' if ok else 'fail'}")
                verdict = verdict if ok else "dropped"
            if verdict == "reported":
                fp = fingerprint(rule.id, secret, scanner.config.fingerprint_salt)
                loc = Location(item.path, line, start - lo + 1, min(end, hi) - lo + 1)
                cand = Candidate(rule.id, Secret(secret), loc, line_text, m.group(0))
                finding = with_context(scanner.filters.to_finding(cand), item)
                reason = finding.suppressed_by
                checks.append(f"fingerprint {fp}")
                if reason:
                    checks.append(f"suppressed by: {reason}")
                    verdict = "dropped"
                elif finding.note:
                    checks.append(f"severity {finding.severity.label}: {finding.note}")
                if finding.context:
                    checks.append(f"account: {account(finding, Masker(ScanResult((finding,))))}")
                if not reason and rule.generic:
                    checks.append("generic rule: yields to a specific rule matching the same text")
            steps.append(Step(rule.id, verdict, (*detail, *checks)))
        if not matched:
            steps.append(Step(rule.id, "dropped", (*detail, "pattern did not match on this line")))
    return steps
