"""`sentra rules test`: every rule's examples through the whole pipeline.

A `match` example must give a finding of that rule, unsuppressed; a `no-match` example
must give none of that rule (other rules may match it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sentra_scan.config import Config
from sentra_scan.model import Fragment
from sentra_scan.ruleset import RuleSet
from sentra_scan.ruleset.examples import expand
from sentra_scan.scan import Scanner


@dataclass(frozen=True)
class ExampleFailure:
    rule_id: str
    kind: str  # "match" or "no-match"
    index: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.rule_id}: examples.{self.kind}[{self.index}] ({self.path}): {self.reason}"


def fragment_of(text: str, path: str) -> Fragment:
    lines = tuple(text.split("\n"))
    return Fragment(path, lines, tuple(range(1, len(lines) + 1)))


def check_rule(scanner: Scanner, rule_id: str) -> list[ExampleFailure]:
    rule = next(r for r in scanner.ruleset.rules if r.id == rule_id)
    failures = []
    for kind, examples in (("match", rule.examples.match), ("no-match", rule.examples.no_match)):
        for i, example in enumerate(examples):
            text = expand(example.text, f"{rule.id}/{kind}/{i}")
            result = scanner.scan([fragment_of(text, example.path)])
            mine = [f for f in result.findings if f.rule_id == rule.id]
            if kind == "match" and not mine:
                others = sorted({f.rule_id for f in result.findings})
                hidden = sorted({f.suppressed_by or "" for f in result.suppressed if f.rule_id == rule.id})
                reason = "no finding"
                if hidden:
                    reason += f" (suppressed: {', '.join(hidden)})"
                if others:
                    reason += f" (matched instead: {', '.join(others)})"
                failures.append(ExampleFailure(rule.id, kind, i, example.path, reason))
            if kind == "no-match" and mine:
                failures.append(ExampleFailure(rule.id, kind, i, example.path, "unexpected finding"))
    return failures


def check_ruleset(ruleset: RuleSet, config: Config | None = None) -> list[ExampleFailure]:
    scanner = Scanner(ruleset, config or Config())
    failures: list[ExampleFailure] = []
    for rule in ruleset.rules:
        failures.extend(check_rule(scanner, rule.id))
    return failures
