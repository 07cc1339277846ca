"""The library API: pinned, usable without the CLI, and light to import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import sentra_scan
from sentra_scan import (
    Config,
    ConfigError,
    Fragment,
    ScanResult,
    Severity,
    find_config,
    load_ruleset,
    make_scanner,
    scan_items,
    scan_paths,
    scan_staged,
    scan_text,
)
from tests.helpers import REPO_ROOT, Repo, canary_github_token

PUBLIC_API = [
    "CommitInfo",
    "Config",
    "ConfigError",
    "ExitCode",
    "Finding",
    "Fragment",
    "GitError",
    "Location",
    "Rule",
    "RuleSet",
    "ScanResult",
    "Scanner",
    "Secret",
    "SentraError",
    "Severity",
    "SkipReason",
    "Skipped",
    "UsageError",
    "__version__",
    "find_config",
    "load_config",
    "load_ruleset",
    "make_scanner",
    "scan_items",
    "scan_paths",
    "scan_staged",
    "scan_text",
]


def test_public_api_is_pinned() -> None:
    """A change here is a change of the public API: update the README and the version."""
    assert sorted(sentra_scan.__all__) == PUBLIC_API
    assert len(set(sentra_scan.__all__)) == len(sentra_scan.__all__)
    for name in sentra_scan.__all__:
        assert hasattr(sentra_scan, name), name


def test_version_matches_the_distribution() -> None:
    assert metadata.version("sentra-scan") == sentra_scan.__version__


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env, check=True)


HEAVY = ("click", "pygit2", "regex", "yaml", "httpx", "jwt", "keyring", "cryptography")


def loaded_heavy_modules(code: str, cwd: Path) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    loaded = json.loads(python(probe, cwd).stdout.splitlines()[-1])
    return [m for m in HEAVY if m in loaded]


def test_import_is_light(tmp_path: Path) -> None:
    assert loaded_heavy_modules("import sentra_scan", tmp_path) == []


def test_scanning_text_without_keywords_stays_light(tmp_path: Path) -> None:
    """Once the rule cache is warm, a scan that selects no rule imports neither yaml nor regex."""
    python("import sentra_scan; sentra_scan.scan_text('warm the cache')", tmp_path)
    code = "import sentra_scan\nassert not sentra_scan.scan_text('x = 1\\n').findings"
    assert loaded_heavy_modules(code, tmp_path) == []


def test_scan_text() -> None:
    token = canary_github_token("api")
    result = scan_text(f"a = 1\nGITHUB_TOKEN = '{token}'\n", path="settings.py")
    assert isinstance(result, ScanResult)
    [f] = result.findings
    assert (f.rule_id, f.location.path, f.location.line) == ("github-pat", "settings.py", 2)
    assert f.secret.reveal() == token
    assert f.severity is Severity.CRITICAL
    assert f.env_name == "GITHUB_TOKEN"
    assert scan_text("nothing to see").findings == ()


def test_scan_text_with_a_scanner_of_ones_own() -> None:
    config = Config(disabled=frozenset({"github-pat"}))
    scanner = make_scanner(config)
    assert scan_text(canary_github_token("own"), scanner=scanner).findings == ()


def test_scan_paths(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.write("a/leak.py", f"T = '{canary_github_token('paths')}'\n")
    repo.write("b/clean.py", "x = 1\n")
    monkeypatch.chdir(repo.path)
    assert [f.location.path for f in scan_paths([Path("a/leak.py")]).findings] == ["a/leak.py"]
    assert [f.location.path for f in scan_paths([Path(".")]).findings] == ["a/leak.py"]
    assert scan_paths([Path("b")]).findings == ()


def test_scan_paths_honours_the_work_trees_config(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.write(".sentra.yaml", "allow:\n  paths: [a/**]\n")
    repo.write("a/leak.py", f"T = '{canary_github_token('paths')}'\n")
    monkeypatch.chdir(repo.path)
    assert scan_paths([Path(".")]).findings == ()


def test_scan_staged(repo: Repo) -> None:
    repo.commit_files({"README.md": "hello\n"})
    assert scan_staged(repo.path).findings == ()
    repo.write("unstaged.py", f"T = '{canary_github_token('unstaged')}'\n")
    assert scan_staged(repo.path).findings == ()
    repo.stage("staged.py", f"\n\nT = '{canary_github_token('staged')}'\n")
    [f] = scan_staged(repo.path).findings
    assert (f.location.path, f.location.line) == ("staged.py", 3)


def test_scan_staged_uses_the_repositorys_config(repo: Repo) -> None:
    repo.write(".sentra.yaml", "disable: [github-pat]\n")
    repo.stage("staged.py", f"T = '{canary_github_token('staged')}'\n")
    assert "github-pat" not in {f.rule_id for f in scan_staged(repo.path).findings}


def test_scan_items() -> None:
    token = canary_github_token("items")
    fragments = [Fragment("x.py", ("a", f"b = '{token}'"), (10, 11))]
    [f] = scan_items(fragments, make_scanner(Config())).findings
    assert f.location.line == 11


def test_find_config(repo: Repo, tmp_path: Path) -> None:
    sub = repo.path / "src" / "pkg"
    sub.mkdir(parents=True)
    assert find_config(sub) is None
    (repo.path / ".sentra.yaml").write_text("version: 1\n")
    assert find_config(sub) == repo.path.resolve() / ".sentra.yaml"
    (sub / ".sentra.yaml").write_text("version: 1\n")
    assert find_config(sub) == sub.resolve() / ".sentra.yaml"
    outside = tmp_path / "plain"
    outside.mkdir()
    assert find_config(outside) is None


def test_load_ruleset() -> None:
    ruleset = load_ruleset()
    assert "github-pat" in {r.id for r in ruleset.rules}
    assert "github-pat" not in {r.id for r in load_ruleset(Config(disabled=frozenset({"github-pat"}))).rules}


def test_errors_are_exceptions_not_exits(tmp_path: Path) -> None:
    (tmp_path / ".sentra.yaml").write_text("version: 9\n")
    with pytest.raises(ConfigError, match="unsupported version 9"):
        sentra_scan.load_config(tmp_path / ".sentra.yaml")
