"""Every rule of the default rule set carries its own proof: its examples, each rule its own
test case. Rules are data and arrive over time; this covers whatever `rules/` holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sentra_scan import Config, ExitCode, Rule, Scanner
from sentra_scan.ruleset.examples import expand
from sentra_scan.ruleset.selftest import check_rule
from tests.helpers import REPO_ROOT, sentra

RULESET = Config().build_ruleset()
RULES = list(RULESET.rules)
KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(RULESET, Config())


def by_id(rule: Rule) -> str:
    return rule.id


def test_there_are_rules() -> None:
    assert len(RULES) >= 5
    assert len({r.id for r in RULES}) == len(RULES)


@pytest.mark.parametrize("rule", RULES, ids=by_id)
def test_rule_examples(rule: Rule, scanner: Scanner) -> None:
    failures = check_rule(scanner, rule.id)
    assert not failures, "\n".join(str(f) for f in failures)


@pytest.mark.parametrize("rule", RULES, ids=by_id)
def test_rule_has_examples_both_ways(rule: Rule) -> None:
    assert len(rule.examples.match) >= 1, f"{rule.id}: no example that must match"
    assert len(rule.examples.no_match) >= 1, f"{rule.id}: no example that must not match"


@pytest.mark.parametrize("rule", RULES, ids=by_id)
def test_rule_metadata(rule: Rule) -> None:
    assert KEBAB.match(rule.id), f"{rule.id}: id is not kebab-case (provider first)"
    assert rule.env, f"{rule.id}: no env name to suggest when the secret is moved"
    assert ENV_NAME.match(rule.env), f"{rule.id}: env {rule.env!r} is not an UPPER_SNAKE name"
    assert rule.keywords, f"{rule.id}: no keywords"
    assert rule.source.startswith("rules/")


@pytest.mark.parametrize("rule", RULES, ids=by_id)
def test_rule_examples_are_templates(rule: Rule) -> None:
    """Every match example generates its secret at test time (no realistic token on disk)."""
    for example in rule.examples.match:
        assert "{{" in example.text, f"{rule.id}: match example {example.text!r} is not a template"
        assert expand(example.text, "a") != expand(example.text, "b")


def test_rules_test_cli_passes() -> None:
    rules = Config().build_ruleset().rules  # now, not at collection: rule files may have changed since
    proc = sentra(["rules", "test"], REPO_ROOT)
    total = sum(len(r.examples.match) + len(r.examples.no_match) for r in rules)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    assert f"{total} passed, 0 failed ({len(rules)} rules)" in proc.stdout
    assert "FAIL" not in proc.stdout


def test_rules_list_cli_lists_every_id() -> None:
    ruleset = Config().build_ruleset()
    proc = sentra(["rules", "list"], REPO_ROOT)
    assert proc.returncode == ExitCode.OK
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    assert listed == [r.id for r in ruleset.rules]
    assert f"{len(ruleset)} rules (version {ruleset.version()})" in proc.stderr


def test_rules_list_json() -> None:
    proc = sentra(["rules", "list", "--json"], REPO_ROOT)
    assert proc.returncode == ExitCode.OK
    doc = json.loads(proc.stdout)
    assert [d["id"] for d in doc] == [r.id for r in Config().build_ruleset().rules]
    assert {d["severity"] for d in doc} <= {"low", "medium", "high", "critical"}


def test_rules_test_cli_reports_a_failing_example(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "broken.yaml").write_text(
        "rules:\n"
        "  - id: demo-key\n"
        "    description: Demo key\n"
        "    keywords: [dmo_]\n"
        "    pattern: '\\b(?P<secret>dmo_[a-z0-9]{24})\\b'\n"
        "    examples:\n"
        "      match: ['k = dmo_{{lowalnum:20}}']\n"
        "      no-match: ['k = dmo_{{lowalnum:24}}']\n"
    )
    proc = sentra(["rules", "test", "--rules-dir", str(rules_dir)], tmp_path)
    assert proc.returncode == ExitCode.FINDINGS
    assert "FAIL demo-key: examples.match[0] (example.txt): no finding" in proc.stdout
    assert "FAIL demo-key: examples.no-match[0] (example.txt): unexpected finding" in proc.stdout
    assert "0 passed, 2 failed (1 rules)" in proc.stdout
