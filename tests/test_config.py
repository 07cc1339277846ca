"""The user's `.sentra.yaml`: one fixture per invalid case (each a ConfigError naming file,
key and rule, exit 3 from the CLI) and one per valid feature (each changes what is found)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from sentra_scan import Config, ConfigError, ExitCode, Severity, SkipReason, load_config, make_scanner, scan_paths
from sentra_scan.config import CONFIG_NAME, parse_size
from sentra_scan.filters import fingerprint
from sentra_scan.model import ScanResult
from sentra_scan.pathglob import PathMatcher
from sentra_scan.ruleset.examples import expand
from tests.helpers import Repo, canary_github_token, sentra

FIXTURES = Path(__file__).parent / "fixtures" / "config"
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
VALID = FIXTURES / "valid"
RULES_OF_INTEREST = frozenset({"github-pat", "acme-api-key"})


def expectations(fixture: Path) -> list[str]:
    """The `# expect: TEXT` lines of a fixture: what the error message must contain."""
    found = [line[len("# expect: ") :] for line in fixture.read_text().splitlines() if line.startswith("# expect: ")]
    assert found, f"{fixture.name} has no '# expect:' line"
    return found


def install_config(fixture: Path, directory: Path, **subst: str) -> Path:
    text = fixture.read_text()
    for key, value in subst.items():
        text = text.replace(f"@{key}@", value)
    target = directory / CONFIG_NAME
    target.write_text(text)
    return target


# --- invalid ---------------------------------------------------------------------------


def test_there_is_one_fixture_per_invalid_case() -> None:
    assert len(INVALID) >= 30


@pytest.mark.parametrize("fixture", INVALID, ids=lambda p: p.stem)
def test_invalid_config_raises_config_error_naming_file_and_key(fixture: Path, tmp_path: Path) -> None:
    path = install_config(fixture, tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(path, warn=False).build_ruleset()
    message = str(info.value)
    assert message.startswith(f"{CONFIG_NAME}: "), message
    for expected in expectations(fixture):
        assert expected in message
    assert info.value.exit_code is ExitCode.CONFIG
    assert info.value.diagnostics().startswith(f"error: {CONFIG_NAME}: ")


@pytest.mark.parametrize("fixture", INVALID, ids=lambda p: p.stem)
def test_invalid_config_via_cli_exits_3_with_the_message(fixture: Path, repo: Repo) -> None:
    install_config(fixture, repo.path)
    repo.write("app.py", f'GITHUB_TOKEN = "{canary_github_token()}"\n')
    proc = sentra(["scan", "app.py"], repo.path)
    assert proc.returncode == ExitCode.CONFIG, proc.stderr
    for expected in expectations(fixture):
        assert f"error: {CONFIG_NAME}: " in proc.stderr
        assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_invalid_config_is_never_cached(repo: Repo) -> None:
    """The second run reads the same file again and fails the same way."""
    install_config(FIXTURES / "invalid" / "override-unknown-rule.yaml", repo.path)
    repo.write("app.py", "x = 1\n")
    first = sentra(["scan", "app.py"], repo.path)
    second = sentra(["scan", "app.py"], repo.path)
    assert first.returncode == second.returncode == ExitCode.CONFIG
    assert first.stderr == second.stderr


def test_config_named_with_option_is_checked_too(repo: Repo, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "invalid" / "version-unsupported.yaml", tmp_path / "team.yaml")
    repo.write("app.py", "x = 1\n")
    proc = sentra(["scan", "--config", str(tmp_path / "team.yaml"), "app.py"], repo.path)
    assert proc.returncode == ExitCode.CONFIG
    assert "error: team.yaml: version: unsupported version 2" in proc.stderr


@pytest.mark.parametrize(
    ("text", "size"),
    [("2MB", 2 * 1024**2), ("512k", 512 * 1024), ("10", 10), (100, 100), ("1 GB", 1024**3), ("64B", 64)],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text, "x.yaml") == size


@pytest.mark.parametrize("text", ["1.5MB", "MB", "-1", True, 0, "2BM", None, ""])
def test_parse_size_rejects(text: object) -> None:
    with pytest.raises(ConfigError, match=r"^x\.yaml: max-file-size: "):
        parse_size(text, "x.yaml")


# --- valid -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rule-cache")


@pytest.fixture(autouse=True)
def shared_rule_cache(hermetic_env: Path, rule_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This module's tests share the parsed-rules cache (keyed on content, so sharing is
    safe): a cold cache costs every CLI run about a second."""
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rule_cache))


@pytest.fixture
def project(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A work tree with canaries in several places; the tests run from its top."""
    tokens = {
        "app.py": canary_github_token("config-app"),
        "fixtures/sample.py": canary_github_token("config-fixture"),
        "README.md": canary_github_token("config-readme"),
        "big.txt": canary_github_token("config-big"),
        "acme.py": "acme_" + expand("{{lowalnum:24}}", "config-acme"),
    }
    repo.write("app.py", f'GITHUB_TOKEN = "{tokens["app.py"]}"\n')
    repo.write("fixtures/sample.py", f'TOKEN = "{tokens["fixtures/sample.py"]}"\n')
    repo.write("README.md", f"    export GITHUB_TOKEN={tokens['README.md']}\n")
    repo.write("big.txt", "# filler line\n" * 100 + f"GITHUB_TOKEN={tokens['big.txt']}\n")
    repo.write("acme.py", f'ACME = "{tokens["acme.py"]}"\n')
    monkeypatch.chdir(repo.path)
    return tokens


def scan_with(fixture: str | None, **subst: str) -> tuple[Config, ScanResult]:
    path = install_config(VALID / fixture, Path.cwd(), **subst) if fixture else None
    config = load_config(path)
    return config, scan_paths([Path(".")], make_scanner(config))


def found(result: ScanResult) -> set[tuple[str, str]]:
    return {(f.rule_id, f.location.path) for f in result.findings if f.rule_id in RULES_OF_INTEREST}


GITHUB_EVERYWHERE = {
    ("github-pat", "app.py"),
    ("github-pat", "fixtures/sample.py"),
    ("github-pat", "README.md"),
    ("github-pat", "big.txt"),
}


def test_baseline_without_config(project: dict[str, str]) -> None:
    _, result = scan_with(None)
    assert found(result) == GITHUB_EVERYWHERE


def test_empty_config_is_the_defaults(project: dict[str, str]) -> None:
    config, result = scan_with("empty.yaml")
    assert config.disabled == frozenset()
    assert config.extra_rules == ()
    assert found(result) == GITHUB_EVERYWHERE


def test_disable_a_rule(project: dict[str, str]) -> None:
    config, result = scan_with("disable.yaml")
    assert "github-pat" not in {r.id for r in config.build_ruleset().rules}
    assert found(result) == set()


def test_override_severity(project: dict[str, str]) -> None:
    _, result = scan_with("override-severity.yaml")
    assert found(result) == GITHUB_EVERYWHERE
    assert {f.severity for f in result.findings if f.rule_id == "github-pat"} == {Severity.LOW}


def test_override_allow_adds_to_the_rules_own(project: dict[str, str]) -> None:
    prefix = "^" + re.escape(project["app.py"][:10])
    _, result = scan_with("override-allow.yaml", PREFIX=prefix)
    assert found(result) == GITHUB_EVERYWHERE - {("github-pat", "app.py")}
    [hidden] = [f for f in result.suppressed if f.rule_id == "github-pat"]
    assert hidden.location.path == "app.py"
    assert hidden.suppressed_by is not None
    assert hidden.suppressed_by.startswith("rule allow pattern")


def test_add_a_rule(project: dict[str, str]) -> None:
    config, result = scan_with("add-rule.yaml")
    assert found(result) == GITHUB_EVERYWHERE | {("acme-api-key", "acme.py")}
    [acme] = [f for f in result.findings if f.rule_id == "acme-api-key"]
    assert acme.severity is Severity.MEDIUM
    assert acme.env_name == "ACME_API_KEY"
    assert acme.secret.reveal() == project["acme.py"].removeprefix("acme_")
    assert config.extra_rules[0].source == CONFIG_NAME


def test_default_rules_off_keeps_only_the_users(project: dict[str, str]) -> None:
    config, result = scan_with("default-rules-off.yaml")
    assert [r.id for r in config.build_ruleset().rules] == ["acme-api-key"]
    assert {(f.rule_id, f.location.path) for f in result.findings} == {("acme-api-key", "acme.py")}


def test_default_rules_off_and_no_rules_scans_nothing(project: dict[str, str]) -> None:
    config, result = scan_with("default-rules-off-no-rules.yaml")
    assert len(config.build_ruleset()) == 0
    assert result.findings == ()
    assert result.stats.fragments > 0


def test_allow_paths(project: dict[str, str]) -> None:
    _, result = scan_with("allow-paths.yaml")
    assert found(result) == {("github-pat", "app.py"), ("github-pat", "big.txt")}


def test_allow_regexes(project: dict[str, str]) -> None:
    _, result = scan_with("allow-regexes.yaml")
    assert found(result) == set()
    reasons = {f.suppressed_by for f in result.suppressed if f.rule_id == "github-pat"}
    assert reasons == {"allow.regexes '^ghp_'"}


def test_allow_fingerprints(project: dict[str, str]) -> None:
    fp = fingerprint("github-pat", project["app.py"])
    _, result = scan_with("allow-fingerprints.yaml", FINGERPRINT=fp)
    assert found(result) == GITHUB_EVERYWHERE - {("github-pat", "app.py")}
    [hidden] = [f for f in result.suppressed if f.rule_id == "github-pat"]
    assert (hidden.location.path, hidden.suppressed_by, hidden.fingerprint) == ("app.py", "allow.fingerprints", fp)


def test_fingerprint_salt_changes_fingerprints(project: dict[str, str]) -> None:
    _, plain = scan_with(None)
    config, salted = scan_with("fingerprint-salt.yaml")
    assert config.fingerprint_salt == "team-salt"
    before = {f.location.path: f.fingerprint for f in plain.findings}
    after = {f.location.path: f.fingerprint for f in salted.findings}
    assert before.keys() == after.keys()
    assert all(before[p] != after[p] for p in before)
    assert after["app.py"] == fingerprint("github-pat", project["app.py"], "team-salt")


def test_inline_markers(project: dict[str, str]) -> None:
    cwd = Path.cwd()
    token = canary_github_token("markers")
    (cwd / "marked.py").write_text(f'A = "{token}"  # gitleaks:allow\nB = "{token}"  # sentra:allow\n')
    _, default = scan_with(None)
    assert [f.location.line for f in default.findings if f.location.path == "marked.py"] == [1]
    _, gitleaks_only = scan_with("inline-markers.yaml")
    assert [f.location.line for f in gitleaks_only.findings if f.location.path == "marked.py"] == [2]
    [hidden] = [f for f in gitleaks_only.suppressed if f.location.path == "marked.py"]
    assert hidden.suppressed_by == "inline gitleaks:allow"


def test_test_paths_lower_severity_unless_configured_away(project: dict[str, str]) -> None:
    _, default = scan_with(None)
    severity = {f.location.path: f.severity for f in default.findings if f.rule_id == "github-pat"}
    assert severity["app.py"] is Severity.CRITICAL
    assert severity["fixtures/sample.py"] is Severity.HIGH  # a test path: lowered, never hidden
    _, none = scan_with("test-paths-none.yaml")
    assert {f.severity for f in none.findings if f.rule_id == "github-pat"} == {Severity.CRITICAL}


def test_max_file_size(project: dict[str, str]) -> None:
    config, result = scan_with("max-file-size.yaml")
    assert config.max_file_size == 1024
    assert found(result) == GITHUB_EVERYWHERE - {("github-pat", "big.txt")}
    assert [(s.path, s.reason) for s in result.skipped] == [("big.txt", SkipReason.TOO_LARGE)]
    assert result.incomplete


def test_regex_timeout(project: dict[str, str]) -> None:
    config, _ = scan_with("regex-timeout.yaml")
    assert config.regex_timeout == 0.5
    assert make_scanner(config).detector.regex_timeout == 0.5


def test_unknown_keys_warn_and_the_scan_runs(project: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    config, result = scan_with("unknown-key.yaml")
    err = capsys.readouterr().err
    assert f"warning: {CONFIG_NAME}: unknown key 'colour' ignored" in err
    assert f"warning: {CONFIG_NAME}: unknown key 'allow.pathz' ignored" in err
    assert found(result) == GITHUB_EVERYWHERE
    assert len(config.warnings) == 2


def test_unknown_key_via_cli_warns_on_stderr(project: dict[str, str]) -> None:
    cwd = Path.cwd()
    install_config(VALID / "unknown-key.yaml", cwd)
    proc = sentra(["scan", "--format", "json", "app.py"], cwd)
    assert proc.returncode == ExitCode.FINDINGS
    assert "warning: .sentra.yaml: unknown key 'colour' ignored" in proc.stderr
    assert '"rule_id": "github-pat"' in proc.stdout


def test_config_found_at_the_top_of_the_work_tree(project: dict[str, str]) -> None:
    cwd = Path.cwd()
    install_config(VALID / "disable.yaml", cwd)
    proc = sentra(["scan", "--format", "json", "sample.py"], cwd / "fixtures")
    assert proc.returncode in (ExitCode.OK, ExitCode.FINDINGS), proc.stderr
    assert "github-pat" not in {f["rule_id"] for f in json.loads(proc.stdout)["findings"]}


@pytest.mark.parametrize("fixture", sorted(p.name for p in VALID.glob("*.yaml")))
def test_every_valid_fixture_loads_and_builds(fixture: str, tmp_path: Path) -> None:
    path = install_config(VALID / fixture, tmp_path, FINGERPRINT="0" * 32, PREFIX="^ghp_0")
    load_config(path, warn=False).build_ruleset()


def test_missing_config_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / CONFIG_NAME) == Config()
    assert load_config(None) == Config()


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("*.md", "README.md", True),
        ("*.md", "docs/guide/intro.md", True),
        ("*.md", "README.md.txt", False),
        ("fixtures/**", "fixtures/a/b.py", True),
        ("fixtures/**", "src/fixtures/a.py", False),
        ("**/fixtures/**", "src/fixtures/a.py", True),
        ("docs/", "docs/a.md", True),
        ("docs", "sub/docs/a.md", True),
        ("/top.txt", "top.txt", True),
        ("/top.txt", "sub/top.txt", False),
        ("./.env", ".env", True),
        ("./.env", "env", False),
        (".env", "app/.env", True),
        ("././config/.env", "config/.env", True),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/sub/a.py", False),
        ("src/**/test_?.py", "src/test_a.py", True),
        ("src/**/test_?.py", "src/x/y/test_b.py", True),
        ("src/**/test_?.py", "src/x/test_bb.py", False),
        ("a+b(c).txt", "a+b(c).txt", True),
        ("*.yml", "x.yml/inner.txt", True),  # a directory's name counts too
        ("*.yml", "x.ymlx", False),
        ("*", "anything/at/all", True),
        ("config", "a/config/b.json", True),
        ("config", "a/myconfig", False),
    ],
)
def test_path_globs(glob: str, path: str, matches: bool) -> None:
    assert PathMatcher([glob]).matches(path) is matches


def test_no_globs_match_nothing() -> None:
    assert not PathMatcher([])
    assert not PathMatcher([]).matches("anything")


def test_name_and_suffix_globs_agree_with_the_expression_form() -> None:
    """Plain names and `*.ext` globs are matched by set and suffix tests instead of the
    compiled expression: the same answers, for the default rules' globs and a few more."""
    import random
    import re

    from sentra_scan.pathglob import expression
    from sentra_scan.ruleset import RuleSet

    globs = [g for r in RuleSet.load().rules for g in r.paths_include]
    globs += ["tests/**", "**/fixtures/**", "*.lock", "a?c", "*.min.js", "./x/y", "dir/", "*"]
    segments = [
        "a",
        "src",
        "config",
        "tests",
        "fixtures",
        ".env",
        "x.yml",
        "settings.py",
        ".aws",
        "credentials",
        "y.lock",
        "kube.config",
        "wp-config-sample.php",
        "Dockerfile",
        "abc",
        "app.min.js",
        "my.cnf",
        "profile.d",
        "z.sh",
        "README.md",
        "x.ymlx",
        ".s3cfg.bak",
        "x",
        "y",
        "dir",
        ".git-credentials",
    ]

    def reference(chosen: list[str]) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{expression(g)})" for g in chosen))

    rng = random.Random(3)
    for _ in range(300):
        chosen = rng.sample(globs, rng.randint(1, 8)) if rng.random() < 0.9 else globs
        matcher, expected = PathMatcher(chosen), reference(chosen)
        for _ in range(20):
            path = "/".join(rng.choice(segments) for _ in range(rng.randint(1, 5)))
            assert matcher.matches(path) is (expected.fullmatch(path) is not None), (chosen, path)
