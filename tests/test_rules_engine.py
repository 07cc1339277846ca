"""The rules engine: rule-file errors, lazy compilation, keyword selection, path filters,
entropy, validators, time-outs, the YAML cache, inline markers, placeholders, fingerprints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from sentra_scan import Config, ConfigError, ExitCode, Fragment, RuleSet, Scanner, SkipReason, yamlcache
from sentra_scan.config import CONFIG_NAME
from sentra_scan.filters import fingerprint, inline_allows, is_placeholder
from sentra_scan.model import ScanResult
from sentra_scan.ruleset import KeywordIndex, load_rule_files
from sentra_scan.ruleset.examples import expand
from sentra_scan.ruleset.schema import parse_rule
from sentra_scan.validators import base62
from tests.helpers import REPO_ROOT, Repo, canary_github_token, sentra

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
ENGINE_RULES = FIXTURES / "valid"
INVALID = sorted(p for p in (FIXTURES / "invalid").iterdir() if p.suffix == ".yaml" or p.is_dir())


def expectations(fixture: Path) -> list[str]:
    files = sorted(fixture.glob("*.yaml")) if fixture.is_dir() else [fixture]
    found = [
        line[len("# expect: ") :] for f in files for line in f.read_text().splitlines() if line.startswith("# expect: ")
    ]
    assert found, f"{fixture.name} has no '# expect:' line"
    return found


def rules_dir_of(fixture: Path, tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    if fixture.is_dir():
        shutil.copytree(fixture, target)
    else:
        target.mkdir()
        shutil.copy(fixture, target / fixture.name)
    return target


def fragment(text: str, path: str = "app.py", first_line: int = 1) -> Fragment:
    lines = tuple(text.split("\n"))
    return Fragment(path, lines, tuple(range(first_line, first_line + len(lines))))


def engine_scanner(config: Config | None = None) -> Scanner:
    config = config or Config()
    return Scanner(config.build_ruleset(ENGINE_RULES), config)


def index_of(ruleset: RuleSet, rule_id: str) -> int:
    return next(i for i, r in enumerate(ruleset.rules) if r.id == rule_id)


def tst_token(seed: str) -> str:
    return "tst_" + expand("{{lowalnum:24}}", seed)


def checksummed(prefix: str, body_template: str, seed: str) -> str:
    body = expand(body_template, seed)
    return prefix + body + base62(zlib.crc32(body.encode()))


# --- rule-file errors ------------------------------------------------------------------


@pytest.mark.parametrize("fixture", INVALID, ids=lambda p: p.stem)
def test_invalid_rule_file_names_file_rule_and_key(fixture: Path, tmp_path: Path) -> None:
    rules_dir = rules_dir_of(fixture, tmp_path)
    with pytest.raises(ConfigError) as info:
        RuleSet.load(rules_dir)
    for expected in expectations(fixture):
        assert expected in str(info.value)
    assert info.value.exit_code is ExitCode.CONFIG


@pytest.mark.parametrize("fixture", INVALID, ids=lambda p: p.stem)
def test_invalid_rule_file_via_cli_exits_3(fixture: Path, tmp_path: Path, repo: Repo) -> None:
    rules_dir = rules_dir_of(fixture, tmp_path)
    repo.write("app.py", "k = dmo_abc\n")
    proc = sentra(["scan", "--rules-dir", str(rules_dir), "app.py"], repo.path)
    assert proc.returncode == ExitCode.CONFIG, proc.stdout + proc.stderr
    for expected in expectations(fixture):
        assert f"error: {expected}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_load_rule_files_in_order(tmp_path: Path) -> None:
    rules = load_rule_files(sorted(ENGINE_RULES.glob("*.yaml")))
    assert [r.id for r in rules] == ["test-token", "test-entropy", "test-paths", "test-allow", "test-checksum"]
    assert {r.source for r in rules} == {"rules/engine.yaml"}


def test_empty_rules_dir_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no rule files"):
        RuleSet.load(tmp_path)


def test_duplicate_id_between_defaults_and_rules_dir_files(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    shutil.copy(ENGINE_RULES / "engine.yaml", rules_dir / "a.yaml")
    shutil.copy(ENGINE_RULES / "engine.yaml", rules_dir / "b.yaml")
    with pytest.raises(ConfigError, match=r"^rules/b\.yaml: rule 'test-token': duplicate rule id \(also in rules/a"):
        RuleSet.load(rules_dir)


def test_version_changes_with_what_a_rule_finds() -> None:
    base = {"id": "r", "description": "d", "keywords": ["k"], "pattern": "k(?P<secret>x+)"}
    one = RuleSet([parse_rule(base, "t", require_examples=False)])
    two = RuleSet([parse_rule({**base, "paths": {"exclude": ["docs/**"]}}, "t", require_examples=False)])
    three = RuleSet([parse_rule({**base, "entropy": 3}, "t", require_examples=False)])
    assert len({one.version(), two.version(), three.version()}) == 3
    assert one.version() == RuleSet([parse_rule(base, "t", require_examples=False)]).version()


# --- lazy compilation and keyword selection --------------------------------------------


def test_only_selected_rules_are_compiled() -> None:
    scanner = engine_scanner()
    ruleset = scanner.ruleset
    assert ruleset._compiled == {}
    result = scanner.scan([fragment(f'token = "{tst_token("lazy")}"\nnothing else here')])
    assert [f.rule_id for f in result.findings] == ["test-token"]
    assert set(ruleset._compiled) == {index_of(ruleset, "test-token")}
    assert result.stats.rules_run == 1


def test_only_selected_default_rules_are_compiled() -> None:
    ruleset = Config().build_ruleset()
    scanner = Scanner(ruleset, Config())
    text = canary_github_token("lazy")
    result = scanner.scan([fragment(text)])
    assert "github-pat" in {f.rule_id for f in result.findings}
    # Selected by a keyword, and not excluded by its paths: only those are ever compiled.
    assert set(ruleset._compiled) <= set(ruleset.select(text.lower()))
    assert index_of(ruleset, "github-pat") in ruleset._compiled
    if len(ruleset) > 1:
        assert len(ruleset._compiled) < len(ruleset)


def test_no_keyword_no_rule_run_no_regex_compiled() -> None:
    scanner = engine_scanner()
    result = scanner.scan([fragment("just some ordinary code = 42\n")])
    assert result.findings == ()
    assert result.stats.rules_run == 0
    assert scanner.ruleset._compiled == {}


def test_keyword_selection_is_case_insensitive() -> None:
    ruleset = engine_scanner().ruleset
    assert ruleset.select("x = TST_abc".lower()) == [index_of(ruleset, "test-token")]
    assert ruleset.select("ent_ and alw_") == [index_of(ruleset, "test-entropy"), index_of(ruleset, "test-allow")]
    assert ruleset.select("nothing") == []


def test_keyword_index_without_ahocorasick(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = list(engine_scanner().ruleset.rules)
    with_automaton = KeywordIndex(rules)
    monkeypatch.setitem(sys.modules, "ahocorasick", None)
    pure = KeywordIndex(rules)
    assert pure._automaton is None
    for text in ("tst_ ent_", "pth_ then tck_ then alw_", "none at all", ""):
        assert pure.select(text) == with_automaton.select(text)
        assert pure.select_keywords(text) == with_automaton.select_keywords(text)
    assert pure.select_keywords("tst_ and ent_")[1] == {"tst_", "ent_"}


def test_empty_ruleset_scans_without_error() -> None:
    scanner = Scanner(RuleSet([]), Config())
    result = scanner.scan([fragment("anything at all")])
    assert result.findings == ()


# --- patterns, paths, entropy, validators, allow ---------------------------------------


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("config/app.yaml", True),
        ("config/deep/er/app.yaml", True),
        ("settings.ini", True),
        ("sub/dir/settings.ini", True),
        ("config/test/app.yaml", False),
        ("src/app.py", False),
        ("configs/app.yaml", False),
    ],
)
def test_rule_paths_include_and_exclude(path: str, found: bool) -> None:
    token = "pth_" + expand("{{lowalnum:24}}", "paths")
    result = engine_scanner().scan([fragment(f"key: {token}", path)])
    assert bool(result.findings) is found


def test_entropy_floor() -> None:
    scanner = engine_scanner()
    low = scanner.scan([fragment("key = ent_abababababababababcdcdcd")])
    high = scanner.scan([fragment("key = ent_" + expand("{{alnum:24}}", "entropy"))])
    assert low.findings == ()
    assert low.suppressed == ()  # below the floor is no candidate at all
    assert [f.rule_id for f in high.findings] == ["test-entropy"]


def test_checksum_validator() -> None:
    scanner = engine_scanner()
    good = expand("tck_{{github:36}}", "checksum")
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert [f.rule_id for f in scanner.scan([fragment(good)]).findings] == ["test-checksum"]
    assert scanner.scan([fragment(bad)]).findings == ()


def test_rule_allow_pattern_suppresses_with_reason() -> None:
    scanner = engine_scanner()
    result = scanner.scan([fragment("alw_0000" + expand("{{lowalnum:20}}", "allow"))])
    assert result.findings == ()
    [hidden] = result.suppressed
    assert hidden.suppressed_by == "rule allow pattern '^alw_0{4}'"


def test_location_is_line_and_column_of_the_secret() -> None:
    token = tst_token("loc")
    result = engine_scanner().scan([fragment(f"a = 1\nb = 2\n    key = '{token}'", first_line=40)])
    [f] = result.findings
    assert (f.location.line, f.location.column, f.location.end_column) == (42, 12, 12 + len(token))
    assert f.secret.reveal() == token


def test_specific_rule_wins_over_generic_on_the_same_span() -> None:
    specific = parse_rule(
        {"id": "specific", "description": "d", "keywords": ["tst_"], "pattern": r"(?P<secret>tst_[a-z0-9]{24})"},
        "t",
        require_examples=False,
    )
    generic = parse_rule(
        {
            "id": "generic",
            "description": "d",
            "keywords": ["token"],
            "pattern": r"token\s*=\s*'(?P<secret>[^']{8,})'",
            "generic": True,
        },
        "t",
        require_examples=False,
    )
    scanner = Scanner(RuleSet([generic, specific]), Config())
    result = scanner.scan([fragment(f"token = '{tst_token('dedupe')}'")])
    assert [f.rule_id for f in result.findings] == ["specific"]


# --- time-outs -------------------------------------------------------------------------

SLOW_CONFIG = """\
regex-timeout: 0.2
rules:
  - id: slow-rule
    description: Catastrophic backtracking on purpose
    keywords: [a]
    pattern: '(?P<secret>(a+)+b)'
"""


def run_cli(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Like helpers.sentra, with a hard time limit: a hang fails the test, never the suite."""
    return subprocess.run(
        [sys.executable, "-m", "sentra_scan", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def slow_repo(repo: Repo) -> Repo:
    repo.write(CONFIG_NAME, SLOW_CONFIG)
    repo.write("slow.txt", "a" * 20_000 + "\n")
    repo.write("ok.txt", "nothing to see\n")
    return repo


def test_pathological_pattern_times_out_and_the_scan_continues(slow_repo: Repo) -> None:
    t0 = time.monotonic()
    proc = run_cli(["scan", "slow.txt", "ok.txt"], slow_repo.path)
    assert time.monotonic() - t0 < 30
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    assert "warning: slow.txt: not fully scanned: pattern time-out (rule slow-rule exceeded 0.2s)" in proc.stdout
    assert "the scan was incomplete" in proc.stdout


def test_pathological_pattern_with_strict_exits_4(slow_repo: Repo) -> None:
    proc = run_cli(["scan", "--strict", "slow.txt"], slow_repo.path)
    assert proc.returncode == ExitCode.INCOMPLETE, proc.stdout + proc.stderr


def test_pathological_pattern_json_reports_skipped(slow_repo: Repo) -> None:
    proc = run_cli(["scan", "--format", "json", "slow.txt"], slow_repo.path)
    assert proc.returncode == ExitCode.OK
    doc = json.loads(proc.stdout)
    assert doc["stats"]["complete"] is False
    assert [(s["path"], s["reason"]) for s in doc["skipped"]] == [("slow.txt", "pattern time-out")]
    assert "warning: slow.txt: not fully scanned: pattern time-out" in proc.stderr


def test_timeout_in_the_api() -> None:
    config = Config(regex_timeout=0.1)
    rule = parse_rule(
        {"id": "slow-rule", "description": "d", "keywords": ["a"], "pattern": "(?P<secret>(a+)+b)"},
        "t",
        require_examples=False,
    )
    scanner = Scanner(RuleSet([rule]), config)
    result = scanner.scan([fragment("a" * 10_000, "slow.txt")])
    assert [(s.path, s.reason) for s in result.skipped] == [("slow.txt", SkipReason.TIMEOUT)]
    assert result.incomplete


# --- the YAML cache --------------------------------------------------------------------

CACHE_PROBE = """\
import json, sys
from pathlib import Path
from sentra_scan.config import load_config
config = load_config(Path(sys.argv[1]))
rules = config.build_ruleset()
print(json.dumps({"yaml": "yaml" in sys.modules, "rules": [r.id for r in rules.rules]}))
"""


def probe(cwd: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CACHE_PROBE, str(cwd / CONFIG_NAME)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.fixture
def cache_dir(hermetic_env: Path) -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "sentra-scan"


def test_second_load_does_not_import_yaml(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / CONFIG_NAME).write_text("disable: [github-fine-grained-pat]\n")
    assert not cache_dir.exists()
    first = probe(tmp_path)
    assert first["yaml"] is True
    entries = sorted(cache_dir.glob("*.json"))
    n_rule_files = len(list((REPO_ROOT / "rules").glob("*.yaml")))
    assert len(entries) == n_rule_files + 1  # every rule file and the config
    second = probe(tmp_path)
    assert second == {"yaml": False, "rules": first["rules"]}
    assert "github-fine-grained-pat" not in second["rules"]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="truncated"),
        pytest.param(lambda text: "not json at all", id="garbage"),
        pytest.param(lambda text: "", id="empty"),
        pytest.param(lambda text: text.split("\n", 1)[0] + '\n{"rules": []}', id="valid-json-wrong-digest"),
        pytest.param(lambda text: '{"rules": []}', id="old-format"),
    ],
)
def test_corrupted_cache_entry_is_ignored(tmp_path: Path, cache_dir: Path, damage: Any) -> None:
    (tmp_path / CONFIG_NAME).write_text("disable: [github-fine-grained-pat]\n")
    first = probe(tmp_path)
    for entry in cache_dir.glob("*.json"):
        entry.write_text(damage(entry.read_text()))
    again = probe(tmp_path)
    assert again == {"yaml": True, "rules": first["rules"]}
    assert probe(tmp_path) == {"yaml": False, "rules": first["rules"]}  # rewritten, usable again


def test_cache_validates_on_miss_only(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "data.yaml"
    path.write_text("a: [1, 2]\n")
    calls: list[str] = []

    def validate(data: Any, source: str) -> None:
        calls.append(source)

    assert yamlcache.load(path, "t", validate, source="data.yaml") == {"a": [1, 2]}
    assert yamlcache.load(path, "t", validate, source="data.yaml") == {"a": [1, 2]}
    assert calls == ["data.yaml"]
    yamlcache.load(path, "other-tag", validate)  # another schema: another entry
    path.write_text("a: [1, 2, 3]\n")  # other content: another entry
    assert yamlcache.load(path, "t", validate) == {"a": [1, 2, 3]}
    assert len(calls) == 3
    assert len(list(cache_dir.glob("*.json"))) == 3


def test_cache_never_changes_the_data(tmp_path: Path, cache_dir: Path) -> None:
    """YAML that JSON cannot hold as is (non-string keys, dates) is parsed every time."""
    path = tmp_path / "data.yaml"
    path.write_text("1: one\nwhen: 2024-01-02\n")
    first = yamlcache.load(path, "t", lambda d, s: None)
    second = yamlcache.load(path, "t", lambda d, s: None)
    assert first == second
    assert 1 in second
    assert list(cache_dir.glob("*.json")) == []


def test_sentra_cache_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(tmp_path / "mine"))
    path = tmp_path / "data.yaml"
    path.write_text("a: 1\n")
    yamlcache.load(path, "t", lambda d, s: None)
    assert len(list((tmp_path / "mine").glob("*.json"))) == 1
    assert not cache_dir.exists()


def test_unwritable_cache_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(blocker / "cache"))
    path = tmp_path / "data.yaml"
    path.write_text("a: 1\n")
    assert yamlcache.load(path, "t", lambda d, s: None) == {"a": 1}
    assert yamlcache.load(path, "t", lambda d, s: None) == {"a": 1}


def test_cache_dir_is_private(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "data.yaml"
    path.write_text("a: 1\n")
    yamlcache.load(path, "t", lambda d, s: None)
    assert cache_dir.stat().st_mode & 0o077 == 0


# --- inline markers, placeholders, --show-suppressed -----------------------------------


@pytest.mark.parametrize(
    ("comment", "suppressed"),
    [
        ("# sentra:allow", True),
        ("// sentra:allow test-token", True),
        ("# sentra:allow other-rule, test-token", True),
        ("# sentra:allow other-rule", False),
        ("# sentra:allow test-tokens", False),
        ("# sentra allow", False),
        ("", False),
    ],
)
def test_inline_allow(comment: str, suppressed: bool) -> None:
    result = engine_scanner().scan([fragment(f"token = '{tst_token('inline')}'  {comment}")])
    assert len(result.findings) == (0 if suppressed else 1)
    assert [f.suppressed_by for f in result.suppressed] == (["inline sentra:allow"] if suppressed else [])


def test_inline_allow_applies_to_its_own_line_only() -> None:
    result = engine_scanner().scan([fragment(f"# sentra:allow\ntoken = '{tst_token('inline')}'")])
    assert len(result.findings) == 1


def test_inline_allows_helper() -> None:
    assert inline_allows("x  # sentra:allow", "any-rule")
    assert inline_allows("x  # sentra:allow a-rule,b-rule", "b-rule")
    assert not inline_allows("x  # sentra:allow a-rule", "b-rule")


@pytest.mark.parametrize(
    "value",
    [
        "${GITHUB_TOKEN}",
        "$GITHUB_TOKEN",
        "<your-token-here>",
        "{{ secrets.TOKEN }}",
        "%(token)s",
        "%API_KEY%",
        "xxxxxxxxxxxxxxxx",
        "****************",
        "changeme",
        "your_api_key",
        "replace-me-with-a-real-one",
        "aaaaaaaaaaaaaaaaaaaaaaaa",
        "EXAMPLEKEY12345678",
        "password",
    ],
)
def test_placeholders(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize("seed", ["one", "two", "three"])
def test_random_values_are_not_placeholders(seed: str) -> None:
    assert not is_placeholder(expand("{{alnum:32}}", seed))


def test_placeholder_is_suppressed_with_reason() -> None:
    result = engine_scanner().scan([fragment("token = 'tst_" + "x" * 24 + "'")])
    assert result.findings == ()
    assert [f.suppressed_by for f in result.suppressed] == ["placeholder"]


@pytest.mark.parametrize("word", ["fake", "TODO", "xxxx", "Dummy", "example"])
def test_checksummed_token_is_never_a_placeholder(word: str) -> None:
    """A token whose checksum holds was minted, whatever its random part happens to spell."""
    token = checksummed("tck_", "{{alnum:12}}" + word + "{{alnum:" + str(30 - len(word) - 12) + "}}", word)
    assert len(token) == 40
    assert is_placeholder(token.removeprefix("tck_"))
    result = engine_scanner().scan([fragment(f"t = '{token}'")])
    assert [f.rule_id for f in result.findings] == ["test-checksum"]


def test_show_suppressed_lists_them_with_the_reason(repo: Repo) -> None:
    token = canary_github_token("suppressed")
    repo.write("app.py", f'T1 = "{token}"  # sentra:allow\nT2 = "{token}"  # sentra:allow github-pat\n')
    hidden = sentra(["scan", "app.py"], repo.path)
    assert hidden.returncode == ExitCode.OK
    assert "suppressed" not in hidden.stdout
    shown = sentra(["scan", "--show-suppressed", "app.py"], repo.path)
    assert shown.returncode == ExitCode.OK  # suppressed findings never fail the scan
    assert shown.stdout.count("suppressed by: inline sentra:allow") == 2
    as_json = json.loads(sentra(["scan", "--show-suppressed", "--format", "json", "app.py"], repo.path).stdout)
    assert as_json["findings"] == []
    assert [(s["line"], s["suppressed_by"]) for s in as_json["suppressed"]] == [
        (1, "inline sentra:allow"),
        (2, "inline sentra:allow"),
    ]


# --- fingerprints ----------------------------------------------------------------------


def fingerprints(result: ScanResult) -> list[str]:
    return [f.fingerprint for f in result.findings]


def test_fingerprint_is_stable_when_the_line_moves() -> None:
    token = tst_token("fp")
    scanner = engine_scanner()
    here = scanner.scan([fragment(f"token = '{token}'", "a.py")])
    there = scanner.scan([fragment(f"# new\n# lines\n\n    token = '{token}'", "a.py", first_line=100)])
    assert here.findings[0].location.line != there.findings[0].location.line
    assert fingerprints(here) == fingerprints(there)


def test_fingerprint_changes_with_salt_rule_and_secret() -> None:
    token = tst_token("fp")
    plain = fingerprints(engine_scanner().scan([fragment(token)]))
    salted = fingerprints(engine_scanner(Config(fingerprint_salt="s")).scan([fragment(token)]))
    other = fingerprints(engine_scanner().scan([fragment(tst_token("fp2"))]))
    assert len({plain[0], salted[0], other[0]}) == 3
    assert fingerprint("rule-a", token) != fingerprint("rule-b", token)
    assert fingerprint("rule-a", token, "s") == fingerprint("rule-a", token, "s")


def test_fingerprint_never_contains_the_secret() -> None:
    token = tst_token("fp")
    [f] = engine_scanner().scan([fragment(token)]).findings
    assert len(f.fingerprint) == 32
    assert set(f.fingerprint) <= set("0123456789abcdef")
    for i in range(0, len(token) - 6):
        assert token[i : i + 6] not in f.fingerprint
    assert f.fingerprint == fingerprint("test-token", token)
