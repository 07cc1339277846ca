"""The pipeline: source items through the detector and filters into a `ScanResult`."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sentra_scan.config import Config
from sentra_scan.detect import Detector
from sentra_scan.filters import FilterChain
from sentra_scan.model import Candidate, Finding, Fragment, ScanResult, ScanStats, Skipped
from sentra_scan.ruleset import RuleSet


def _dedupe(cands: list[Candidate], ruleset: RuleSet) -> list[Candidate]:
    """One candidate per secret span: specific rules win over generic ones, earlier rules
    over later ones."""
    order = {r.id: (r.generic, i) for i, r in enumerate(ruleset.rules)}
    kept: list[Candidate] = []
    for c in sorted(cands, key=lambda c: order[c.rule_id]):
        loc = c.location
        if any(
            k.location.line == loc.line and k.location.column < loc.end_column and loc.column < k.location.end_column
            for k in kept
        ):
            continue
        kept.append(c)
    kept.sort(key=lambda c: (c.location.line, c.location.column))
    return kept


class Scanner:
    """Runs fragments through the detector and the filters. Reusable across sources."""

    def __init__(self, ruleset: RuleSet, config: Config) -> None:
        self.ruleset = ruleset
        self.config = config
        self.detector = Detector(ruleset, regex_timeout=config.regex_timeout, decode_depth=config.decode_depth)
        self.filters = FilterChain(ruleset, config)

    def scan(self, items: Iterable[Fragment | Skipped]) -> ScanResult:
        t0 = time.perf_counter()
        findings: list[Finding] = []
        suppressed: list[Finding] = []
        skipped: list[Skipped] = []
        n_frag = n_lines = n_bytes = 0
        for item in items:
            if isinstance(item, Skipped):
                skipped.append(item)
                continue
            if self.filters.path_allowed(item.path):
                continue
            n_frag += 1
            n_lines += len(item.lines)
            n_bytes += sum(map(len, item.lines)) + len(item.lines)
            cands, skips = self.detector.detect(item)
            skipped.extend(skips)
            if cands:
                from sentra_scan.context import with_context  # only once there is a finding
            for cand in _dedupe(cands, self.ruleset) if len(cands) > 1 else cands:
                finding = with_context(self.filters.to_finding(cand), item)
                (suppressed if finding.suppressed_by else findings).append(finding)
        stats = ScanStats(
            fragments=n_frag,
            lines=n_lines,
            bytes=n_bytes,
            rules_run=len(self.detector.rules_run),
            duration_s=time.perf_counter() - t0,
        )
        return ScanResult(tuple(findings), tuple(skipped), tuple(suppressed), stats)
