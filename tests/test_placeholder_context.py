"""Placeholder values by context: templates are never findings; placeholder words are
dropped, except where a rule keeps them (`placeholders: templates-only` in a credential
file, `placeholders: lower` in a .env, a shell profile or wp-config.php), and never in
documentation or example files. The kept ones say so: a note in the finding, the hint,
the JSON report and `sentra explain`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sentra_scan import Config, ExitCode, Fragment, RuleSet, Scanner
from sentra_scan.model import Finding, Severity
from sentra_scan.placeholders import TEMPLATE, WORD, placeholder_kind
from sentra_scan.ruleset.examples import expand
from sentra_scan.ruleset.schema import apply_override, parse_rule
from tests.corpus_gen import WEAK_CREDENTIALS
from tests.helpers import Repo, sentra

LOWERED = "value looks like a placeholder (severity lowered)"


def scan(scanner: Scanner, path: str, text: str) -> tuple[list[Finding], list[Finding]]:
    lines = tuple(text.split("\n"))
    result = scanner.scan([Fragment(path, lines, tuple(range(1, len(lines) + 1)))])
    return list(result.findings), list(result.suppressed)


@pytest.fixture(scope="module")
def default_scanner() -> Scanner:
    config = Config()
    return Scanner(config.build_ruleset(), config)


# --- the two kinds -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "${DB_PASSWORD}",
        "$DB_PASSWORD",
        "<password>",
        "{{ db.password }}",
        "%(password)s",
        "%DB_PASSWORD%",
        "YOUR_PASSWORD",
        "your-api-key",
        "replace-me",
        "xxxxxxxx",
        "********",
        "TODO",
        "null",
        "None",
        "AKIAIOSFODNN7EXAMPLE",
    ],
)
def test_templates(value: str) -> None:
    assert placeholder_kind(value) == TEMPLATE
    assert placeholder_kind(value, "DB_PASSWORD=") == TEMPLATE


@pytest.mark.parametrize(
    "value", ["password", "admin", "root", "dummy-pass", "ExamplePas123", "sampleHerokuKey", "changeme", "fake-token"]
)
def test_placeholder_words(value: str) -> None:
    assert placeholder_kind(value) == WORD


def test_a_value_repeating_its_name_is_a_word() -> None:
    assert placeholder_kind("irc_pass", "IRC_PASS=") == WORD
    assert placeholder_kind("db-password", 'define("DB_PASSWORD", "') == WORD
    assert placeholder_kind("irc_pass") is None  # without the name: an ordinary value
    assert placeholder_kind("nick", "IRC_PASS=") is None


@pytest.mark.parametrize("seed", ["a", "b", "c"])
def test_random_values_are_neither(seed: str) -> None:
    value = expand("{{alnum:14}}", seed)
    assert placeholder_kind(value, "DB_PASSWORD=") is None


# --- the per-rule switch -------------------------------------------------------------------


def demo_rules() -> RuleSet:
    """The same rule three times, one per mode, each on files of its own."""
    rules = []
    for mode in ("drop", "templates-only", "lower"):
        raw: dict[str, Any] = {
            "id": f"demo-{mode}",
            "description": f"demo ({mode})",
            "severity": "high",
            "keywords": ["pw"],
            "paths": {"include": [f"*.{mode}"]},
            "pattern": r"(?m)^pw[ \t]*=[ \t]*(?P<secret>\S+)",
            "placeholders": mode,
        }
        rules.append(parse_rule(raw, "rules/demo.yaml", require_examples=False))
    return RuleSet(rules)


@pytest.fixture(scope="module")
def demo() -> Scanner:
    return Scanner(demo_rules(), Config())


@pytest.mark.parametrize(
    ("mode", "severity", "note"),
    [
        ("drop", None, None),
        ("templates-only", Severity.HIGH, "a default or weak password is a credential"),
        ("lower", Severity.LOW, LOWERED),
    ],
)
def test_a_placeholder_word_by_mode(demo: Scanner, mode: str, severity: Severity | None, note: str | None) -> None:
    findings, suppressed = scan(demo, f"conf/app.{mode}", "pw = admin")
    if severity is None:
        assert findings == []
        assert [f.suppressed_by for f in suppressed] == ["placeholder"]
        return
    assert [(f.rule_id, f.severity) for f in findings] == [(f"demo-{mode}", severity)]
    assert findings[0].note is not None
    assert note is not None
    assert note in findings[0].note
    assert findings[0].hint.startswith(findings[0].note)


@pytest.mark.parametrize("mode", ["drop", "templates-only", "lower"])
@pytest.mark.parametrize("value", ["${PW}", "<password>", "YOUR_PASSWORD", "********", "null"])
def test_a_template_is_dropped_in_every_mode(demo: Scanner, mode: str, value: str) -> None:
    findings, suppressed = scan(demo, f"conf/app.{mode}", f"pw = {value}")
    assert findings == []
    assert [f.suppressed_by for f in suppressed] == ["placeholder"]


@pytest.mark.parametrize("mode", ["templates-only", "lower"])
@pytest.mark.parametrize("where", ["docs/app", "examples/app", "conf/app.example", "conf/sample"])
def test_a_placeholder_word_in_docs_or_an_example_is_dropped(demo: Scanner, mode: str, where: str) -> None:
    findings, suppressed = scan(demo, f"{where}.{mode}", "pw = admin")
    assert findings == []
    assert [f.suppressed_by for f in suppressed] == ["placeholder"]


@pytest.mark.parametrize("mode", ["drop", "templates-only", "lower"])
def test_a_real_value_keeps_the_rule_severity_and_no_note(demo: Scanner, mode: str) -> None:
    findings, _ = scan(demo, f"conf/app.{mode}", "pw = " + expand("{{alnum:16}}", mode))
    assert [(f.severity, f.note) for f in findings] == [(Severity.HIGH, None)]


def test_a_test_path_does_not_lower_below_low(demo: Scanner) -> None:
    findings, _ = scan(demo, "tests/fixtures/app.lower", "pw = admin")
    assert [(f.severity, f.note) for f in findings] == [(Severity.LOW, LOWERED)]
    findings, _ = scan(demo, "tests/fixtures/app.templates-only", "pw = admin")
    assert [f.severity for f in findings] == [Severity.MEDIUM]  # high, one lower for the test path


def test_the_mode_survives_an_override_and_changes_the_version() -> None:
    rules = demo_rules()
    lowered = rules.rules[2]
    assert apply_override(lowered, {"severity": "medium"}, ".sentra.yaml").placeholders == "lower"
    dropped = apply_override(lowered, {"placeholders": "drop"}, ".sentra.yaml")
    assert dropped.placeholders == "drop"
    assert RuleSet([lowered]).version() != RuleSet([dropped]).version()


# --- the default rules ---------------------------------------------------------------------

_CREDENTIAL_FILE_RULES = {
    "pgpass-password",
    "dbeaver-data-source-password",
    "mail-client-password",
    "filezilla-password",
    "netrc-password",
}


@pytest.mark.parametrize(("path", "text", "value", "rule_id"), WEAK_CREDENTIALS, ids=lambda v: str(v)[:24])
def test_weak_credentials_are_reported(
    default_scanner: Scanner, path: str, text: str, value: str, rule_id: str
) -> None:
    findings, _ = scan(default_scanner, path, text)
    assert [f.rule_id for f in findings] == [rule_id]
    finding = findings[0]
    assert finding.secret.reveal() == value
    assert finding.note is not None
    if rule_id in _CREDENTIAL_FILE_RULES:
        assert finding.severity == Severity.HIGH
    else:
        assert (finding.severity, finding.note) == (Severity.LOW, LOWERED)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("app/settings.py", 'DB_PASSWORD = "admin"\nRDS_PASSWORD = "dummy-pass"\nHEROKU_API_KEY = "sampleHerokuKey"'),
        ("web/src/db.js", "const password = 'changeme';"),
        ("README.md", "    DB_PASSWORD=admin\n    export RDS_PASSWORD='dummy-pass'"),
        ("deploy/.env.example", "DB_PASSWORD=admin\nREDIS_PASSWORD=dummy-pass"),
        ("public_html/wp-config-sample.php", "define( 'DB_PASSWORD', 'admin' );"),
        ("config/app.yaml", "database:\n  password: dummy-pass"),
    ],
)
def test_code_docs_and_examples_stay_quiet(default_scanner: Scanner, path: str, text: str) -> None:
    findings, _ = scan(default_scanner, path, text)
    assert findings == []


def test_a_provider_rule_wins_over_the_shell_profile_rule(default_scanner: Scanner) -> None:
    token = expand("ghp_{{github:36}}", "profile")
    findings, _ = scan(default_scanner, ".bashrc", f"export GITHUB_TOKEN={token}")
    assert [f.rule_id for f in findings] == ["github-pat"]


def test_the_override_can_turn_lowering_off() -> None:
    config = Config(overrides={"dotenv-secret": {"placeholders": "drop"}})
    findings, suppressed = scan(Scanner(config.build_ruleset(), config), ".env", "DB_PASSWORD=admin")
    assert findings == []
    assert [f.suppressed_by for f in suppressed] == ["placeholder"]


# --- what the user sees ----------------------------------------------------------------------


def test_json_text_and_explain_carry_the_note(repo: Repo) -> None:
    repo.write(".env", "DB_HOST=localhost\nDB_PASSWORD=admin\n")
    repo.write(".env.example", "DB_PASSWORD=admin\n")
    proc = sentra(["scan", "--format", "json", ".env", ".env.example"], repo.path)
    assert proc.returncode == ExitCode.FINDINGS  # a low finding fails the scan like any other
    doc = json.loads(proc.stdout)
    assert [(f["path"], f["line"], f["severity"], f["note"]) for f in doc["findings"]] == [(".env", 2, "low", LOWERED)]
    text = sentra(["scan", ".env"], repo.path).stdout
    assert f"hint: {LOWERED}; " in text
    explained = sentra(["explain", ".env:2"], repo.path).stdout
    assert f"severity low: {LOWERED}" in explained
    example = sentra(["scan", ".env.example"], repo.path)
    assert example.returncode == ExitCode.OK
