"""`--format gitlab`: GitLab's secret detection report, checked against GitLab's own schema
(tests/fixtures/schemas, version 15.1.4) on real repositories, through every command that
takes --format; redacted, with ids that hold across runs and tell findings apart."""

from __future__ import annotations

import io
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sentra_scan import CommitInfo, Finding, Location, ScanResult, Secret, Severity, Skipped, SkipReason
from sentra_scan.cli.pushhooks import parse_options
from sentra_scan.model import ScanStats
from sentra_scan.report import FORMATS, get_reporter
from sentra_scan.report.gitlab import NO_COMMIT, SCHEMA_VERSION, GitlabReporter
from tests.helpers import Repo, canary_aws_key_id, canary_github_token, init_bare, init_repo, sentra

SCHEMA = Path(__file__).parent / "fixtures" / "schemas" / "gitlab-secret-detection-report-format.json"
TOKEN = canary_github_token("gitlab-report")
OTHER = canary_aws_key_id("gitlab-report")
MASKED = TOKEN[:4] + "********"
TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"


@pytest.fixture(scope="module")
def rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rule-cache")


@pytest.fixture(autouse=True)
def _quick_and_outside_ci(hermetic_env: Path, rule_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared parsed-rules cache, no ledger, and none of the CI variables of the machine
    running the tests (a GitLab runner sets CI_COMMIT_SHA)."""
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rule_cache))
    monkeypatch.setenv("SENTRA_NO_RECORD", "1")
    for var in ("CI", "GITLAB_CI", "GITHUB_ACTIONS", "CI_COMMIT_SHA", "CI_COMMIT_BEFORE_SHA"):
        monkeypatch.delenv(var, raising=False)


def validate(doc: dict[str, Any]) -> None:
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    assert doc["version"] == schema["self"]["version"] == SCHEMA_VERSION


def report(args: list[str], cwd: Path, *, code: int = 1, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command with --format gitlab; check the exit code, the redaction and the schema."""
    proc = sentra([*args, "--format", "gitlab"], cwd, env=env)
    assert proc.returncode == code, proc.stdout + proc.stderr
    for secret in (TOKEN, OTHER):
        assert secret not in proc.stdout + proc.stderr
        assert secret[4:14] not in proc.stdout
    doc: dict[str, Any] = json.loads(proc.stdout)
    validate(doc)
    return doc


@pytest.fixture
def leaky(repo: Repo) -> Repo:
    """app/settings.py:2 holds a token (committed); main.py:1 another secret, not committed."""
    repo.commit_files({"app/settings.py": f"import os\nGITHUB_TOKEN = '{TOKEN}'\n"}, "settings")
    repo.write("main.py", f"KEY_ID = '{OTHER}'\n")
    return repo


# --- the document --------------------------------------------------------------------------------


def test_working_tree_scan(leaky: Repo) -> None:
    doc = report(["scan", "."], leaky.path)
    scan = doc["scan"]
    assert scan["type"] == "secret_detection"
    assert scan["status"] == "success"
    assert scan["analyzer"]["id"] == scan["scanner"]["id"] == "sentra"
    assert scan["analyzer"]["vendor"] == {"name": "Sentra Scan"}
    assert scan["start_time"] <= scan["end_time"]
    by_file = {v["location"]["file"]: v for v in doc["vulnerabilities"]}
    assert set(by_file) == {"app/settings.py", "main.py"}
    token = by_file["app/settings.py"]
    assert token["identifiers"] == [{"type": "sentra_rule_id", "name": "Sentra rule github-pat", "value": "github-pat"}]
    assert token["severity"] == "Critical"
    assert by_file["main.py"]["severity"] == "High"
    assert token["name"] == "GitHub personal access token (classic)"
    assert MASKED in token["description"]
    assert token["location"] == {
        "file": "app/settings.py",
        "start_line": 2,
        "end_line": 2,
        "commit": {"sha": NO_COMMIT},
    }
    assert token["details"]["masked_line"] == {
        "name": "Line (secret masked)",
        "type": "code",
        "value": f"GITHUB_TOKEN = '{MASKED}'",
    }
    assert "GITHUB_TOKEN" in token["solution"]
    for v in doc["vulnerabilities"]:
        assert "raw_source_code_extract" not in v
        assert uuid.UUID(v["id"]).version == 5


def test_working_tree_findings_take_the_gitlab_jobs_commit(leaky: Repo) -> None:
    head = leaky.head()
    doc = report(["scan", "app"], leaky.path, env={**os.environ, "CI_COMMIT_SHA": head})
    [v] = doc["vulnerabilities"]
    assert v["location"]["commit"] == {"sha": head}
    # Something that is not a commit id is not written as one.
    doc = report(["scan", "app"], leaky.path, env={**os.environ, "CI_COMMIT_SHA": "not a sha"})
    assert doc["vulnerabilities"][0]["location"]["commit"] == {"sha": NO_COMMIT}


def test_history_findings_carry_their_commit(repo: Repo) -> None:
    root = repo.commit_files({"README.md": "# r\n"}, "root")
    leak = repo.commit_files({"app/leak.py": f"import os\nTOKEN = '{TOKEN}'\n"}, "leak")
    repo.commit_files({"README.md": "# r\n\nmore\n"}, "docs")
    expected = {"sha": leak, "author": "Test Author <author@example.test>"}
    for args in (["audit"], ["scan", "--commits", f"{root}..HEAD"], ["ci", "--since", root, "--no-annotations"]):
        [v] = report(args, repo.path)["vulnerabilities"]
        assert v["location"]["file"] == "app/leak.py"
        assert v["location"]["start_line"] == 2
        commit = v["location"]["commit"]
        assert {k: commit[k] for k in ("sha", "author")} == expected, args
        assert commit["date"].startswith("2026-01-02T03:04:05"), args


def test_clean_scan_is_an_empty_valid_report(repo: Repo) -> None:
    repo.commit_files({"app.py": "print('hello')\n"}, "clean")
    for args in (["scan", "."], ["audit"]):
        doc = report(args, repo.path, code=0)
        assert doc["vulnerabilities"] == []
        assert doc["scan"]["messages"] == []


def test_a_file_not_fully_scanned_is_a_warning(repo: Repo) -> None:
    repo.write(".sentra.yaml", "max-file-size: 1KB\n")
    repo.write("big.log", "log line\n" * 200)
    doc = report(["scan", "."], repo.path, code=0)
    assert doc["scan"]["status"] == "success"
    [message] = doc["scan"]["messages"]
    assert message["level"] == "warn"
    assert message["value"].startswith("big.log: not fully scanned: too large")


# --- ids -----------------------------------------------------------------------------------------


def test_ids_are_stable_across_runs_and_code_moves(leaky: Repo) -> None:
    first = {v["location"]["file"]: v["id"] for v in report(["scan", "."], leaky.path)["vulnerabilities"]}
    again = {v["location"]["file"]: v["id"] for v in report(["scan", "."], leaky.path)["vulnerabilities"]}
    assert first == again
    assert len(set(first.values())) == 2
    # Lines added above the secret: another line, the same vulnerability.
    leaky.write("app/settings.py", f"import os\nimport sys\n\nGITHUB_TOKEN = '{TOKEN}'\n")
    [moved] = [v for v in report(["scan", "."], leaky.path)["vulnerabilities"] if v["location"]["file"] != "main.py"]
    assert moved["location"]["start_line"] == 4
    assert moved["id"] == first["app/settings.py"]


def test_ids_tell_apart_the_same_secret_in_other_places(repo: Repo) -> None:
    repo.write("a.py", f"T = '{TOKEN}'\nU = '{TOKEN}'\n")
    repo.write("b.py", f"T = '{TOKEN}'\n")
    vulns = report(["scan", "--all-occurrences", "."], repo.path)["vulnerabilities"]
    assert sorted((v["location"]["file"], v["location"]["start_line"]) for v in vulns) == [
        ("a.py", 1),
        ("a.py", 2),
        ("b.py", 1),
    ]
    assert len({v["id"] for v in vulns}) == 3


# --- every command that takes --format -----------------------------------------------------------


def test_every_format_choice_includes_gitlab() -> None:
    assert "gitlab" in FORMATS
    assert parse_options(["--format", "gitlab"], "usage").fmt == "gitlab"  # pre-push and pre-receive
    assert parse_options(["--format=gitlab"], "usage").fmt == "gitlab"


def test_pre_commit_hook(leaky: Repo) -> None:
    leaky.git("add", "main.py")
    [v] = report(["hook", "pre-commit"], leaky.path)["vulnerabilities"]
    assert v["location"]["file"] == "main.py"
    assert v["location"]["commit"] == {"sha": NO_COMMIT}
    assert [v["location"]["file"] for v in report(["scan", "--staged"], leaky.path)["vulnerabilities"]] == ["main.py"]
    usage = sentra(["hook", "pre-commit", "--help"], leaky.path)
    assert "gitlab" in usage.stdout
    bad = sentra(["hook", "pre-commit", "--format", "nope"], leaky.path)
    assert bad.returncode == 2
    assert "unknown format 'nope'" in bad.stderr


def test_pre_push_hook(tmp_path: Path) -> None:
    remote = init_bare(tmp_path / "remote.git")
    local = init_repo(tmp_path / "local")
    local.add_remote(remote)
    old = local.commit_files({"README.md": "# r\n"}, "initial")
    local.git("push", "-q", "origin", "main")
    sha = local.commit_files({"config/leak.py": f"# settings\nTOKEN = '{TOKEN}'\n"}, "leak")
    proc = sentra(
        ["hook", "pre-push", "origin", "file:///remote.git", "--format", "gitlab"],
        local.path,
        input=f"refs/heads/main {sha} refs/heads/main {old}\n".encode(),
    )
    assert proc.returncode == 1, proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    validate(doc)
    [v] = doc["vulnerabilities"]
    assert (v["location"]["file"], v["location"]["commit"]["sha"]) == ("config/leak.py", sha)


def test_ci_in_a_gitlab_job_writes_the_artifact(repo: Repo, tmp_path: Path) -> None:
    """What the README's .gitlab-ci.yml snippet runs."""
    base = repo.commit_files({"README.md": "# r\n"}, "base")
    leak = repo.commit_files({"app/leak.py": f"TOKEN = '{TOKEN}'\n"}, "leak")
    env = {**os.environ, "GITLAB_CI": "true", "CI_COMMIT_BEFORE_SHA": base, "CI_COMMIT_SHA": leak}
    artifact = tmp_path / "gl-secret-detection-report.json"
    proc = sentra(["ci", "--format", "gitlab", "--output", str(artifact)], repo.path, env=env)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    text = artifact.read_text(encoding="utf-8")
    assert TOKEN not in text + proc.stderr
    doc = json.loads(text)
    validate(doc)
    [v] = doc["vulnerabilities"]
    assert v["location"]["commit"]["sha"] == leak


# --- the reporter on its own ---------------------------------------------------------------------


def finding(path: str, line: int, *, severity: Severity = Severity.HIGH, commit: CommitInfo | None = None) -> Finding:
    return Finding(
        rule_id="demo-key",
        description="Demo key",
        severity=severity,
        location=Location(path, line, 5, 5 + len(TOKEN), commit),
        fingerprint="f" * 32,
        secret=Secret(TOKEN),
        line_text=f"k = {TOKEN}",
        hint="rotate it",
        encoding="base64",
    )


def render(result: ScanResult, **kwargs: Any) -> dict[str, Any]:
    out = io.StringIO()
    GitlabReporter(**kwargs).write(result, out)
    assert TOKEN not in out.getvalue()
    doc: dict[str, Any] = json.loads(out.getvalue())
    validate(doc)
    return doc


def test_times_come_from_the_clock_and_the_duration() -> None:
    clock = lambda: datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)  # noqa: E731
    doc = render(ScanResult((), stats=ScanStats(duration_s=61.5)), tool_version="1.2.3", clock=clock)
    assert (doc["scan"]["start_time"], doc["scan"]["end_time"]) == ("2026-03-04T05:05:05", "2026-03-04T05:06:07")
    assert doc["scan"]["scanner"]["version"] == "1.2.3"


def test_every_severity_maps_to_gitlabs() -> None:
    findings = tuple(finding(f"f{s.value}.py", 1, severity=s) for s in Severity)
    doc = render(ScanResult(findings))
    assert [v["severity"] for v in doc["vulnerabilities"]] == ["Low", "Medium", "High", "Critical"]


def test_reporter_details_and_skips() -> None:
    commit = CommitInfo("c" * 40, "Ann", "", "2026-01-01T00:00:00+00:00")
    result = ScanResult(
        (finding("a.py", 3, commit=commit),),
        skipped=(Skipped("img.png", SkipReason.BINARY), Skipped("slow.txt", SkipReason.TIMEOUT, "2s")),
    )
    doc = render(result, worktree_sha="abc1234")
    [v] = doc["vulnerabilities"]
    assert v["location"]["commit"] == {"sha": "c" * 40, "author": "Ann", "date": "2026-01-01T00:00:00+00:00"}
    assert v["details"]["encoding"]["value"] == "base64"
    assert v["details"]["fingerprint"]["value"] == "f" * 32
    assert doc["scan"]["messages"] == [{"level": "warn", "value": "slow.txt: not fully scanned: pattern time-out 2s"}]


def test_factory_fills_in_the_version() -> None:
    out = io.StringIO()
    get_reporter("gitlab").write(ScanResult(()), out)
    doc = json.loads(out.getvalue())
    validate(doc)
    assert doc["scan"]["analyzer"]["version"]
