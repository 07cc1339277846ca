"""`sentra ci` in simulated GitHub Actions and GitLab CI jobs, on real repositories."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sentra_scan.ranges import ZERO
from tests.helpers import Repo, assert_no_leak, canary_github_token, sentra

TOKEN = canary_github_token("ci")
MASKED = TOKEN[:4] + "********"
CI_VARS = (
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_EVENT_NAME",
    "GITHUB_EVENT_PATH",
    "GITHUB_SHA",
    "GITLAB_CI",
    "CI_COMMIT_SHA",
    "CI_COMMIT_BEFORE_SHA",
    "CI_MERGE_REQUEST_DIFF_BASE_SHA",
)


@pytest.fixture(scope="module")
def rules_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rules-cache")


@pytest.fixture(autouse=True)
def _quick_cli(monkeypatch: pytest.MonkeyPatch, rules_cache: Path) -> None:
    """One parsed-rules cache for the module's CLI runs; no ledger; and no CI variables of
    the machine running these tests (they may well run in GitHub Actions)."""
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rules_cache))
    monkeypatch.setenv("SENTRA_NO_RECORD", "1")
    for var in CI_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def job(repo: Repo) -> dict[str, str]:
    """base -> a commit adding a secret at app/leak.py:2 -> a clean commit (head)."""
    base = repo.commit_files({"README.md": "# r\n"}, "base")
    leak = repo.commit_files({"app/leak.py": f"import os\nTOKEN = '{TOKEN}'\n"}, "leak")
    head = repo.commit_files({"README.md": "# r\n\nmore\n"}, "docs")
    return {"base": base, "leak": leak, "head": head}


def github(tmp_path: Path, event: str, payload: object) -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(path)}


def gitlab(**values: str) -> dict[str, str]:
    return {**os.environ, "GITLAB_CI": "true", **values}


def ci(repo: Repo, env: dict[str, str] | None, *args: str) -> tuple[int, str, str]:
    proc = sentra(["ci", *args], repo.path, env=env)
    assert_no_leak(proc, TOKEN)
    return proc.returncode, proc.stdout, proc.stderr


def workflow_commands(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("::")]


def test_github_push_with_a_secret(repo: Repo, job: dict[str, str], tmp_path: Path) -> None:
    env = github(tmp_path, "push", {"before": job["base"], "after": job["head"]})
    code, out, err = ci(repo, env)
    assert code == 1
    assert "app/leak.py:2:" in out
    assert f"commit {job['leak'][:12]}" in out
    [note] = workflow_commands(out)
    assert note.startswith("::error file=app/leak.py,line=2,col=")
    assert "title=github-pat::" in note
    assert MASKED in note
    assert f"GitHub push {job['base'][:12]}..{job['head'][:12]}" in err
    assert "2 commits scanned, 1 secrets" in err


def test_github_pull_request(repo: Repo, job: dict[str, str], tmp_path: Path) -> None:
    payload = {"pull_request": {"base": {"sha": job["base"]}, "head": {"sha": job["head"]}}}
    code, out, _ = ci(repo, github(tmp_path, "pull_request", payload))
    assert code == 1
    assert len(workflow_commands(out)) == 1


def test_github_clean_push(repo: Repo, job: dict[str, str], tmp_path: Path) -> None:
    env = github(tmp_path, "push", {"before": job["leak"], "after": job["head"]})
    code, out, _ = ci(repo, env)
    assert code == 0
    assert workflow_commands(out) == []


def test_github_first_push_exits_5_with_the_fix(repo: Repo, job: dict[str, str], tmp_path: Path) -> None:
    code, out, err = ci(repo, github(tmp_path, "push", {"before": ZERO, "after": job["head"]}))
    assert code == 5
    assert out == ""
    assert "first push" in err
    assert "sentra ci --since" in err
    assert "fetch-depth: 0" in err


def test_github_base_missing_from_a_shallow_clone(repo: Repo, job: dict[str, str], tmp_path: Path) -> None:
    clone = repo.shallow_clone(tmp_path / "shallow")
    code, _, err = ci(clone, github(tmp_path, "push", {"before": job["base"], "after": job["head"]}))
    assert code == 5
    assert f"commit {job['base'][:12]} is not in this clone" in err
    assert "fetch-depth: 0" in err


def test_json_report_on_stdout_stays_json(repo: Repo, job: dict[str, str], tmp_path: Path) -> None:
    env = github(tmp_path, "push", {"before": job["base"], "after": job["head"]})
    code, out, _ = ci(repo, env, "--format", "json")
    assert code == 1
    doc = json.loads(out)  # no workflow commands mixed in
    [finding] = doc["findings"]
    assert (finding["path"], finding["line"], finding["commit"]["id"]) == ("app/leak.py", 2, job["leak"])


def test_sarif_file_with_annotations(repo: Repo, job: dict[str, str], tmp_path: Path) -> None:
    env = github(tmp_path, "push", {"before": job["base"], "after": job["head"]})
    report = tmp_path / "results.sarif"
    code, out, _ = ci(repo, env, "--format", "sarif", "--output", str(report))
    assert code == 1
    assert len(workflow_commands(out)) == 1
    text = report.read_text(encoding="utf-8")
    assert TOKEN not in text
    [result] = json.loads(text)["runs"][0]["results"]
    assert result["properties"]["commit"] == job["leak"]
    assert result["properties"]["author"] == "Test Author"
    assert result["properties"]["email"] == "author@example.test"
    assert result["partialFingerprints"]["sentraFingerprint/v1"]
    region = result["locations"][0]["physicalLocation"]
    assert region["artifactLocation"]["uri"] == "app/leak.py"
    assert region["region"]["startLine"] == 2
    assert MASKED in region["region"]["snippet"]["text"]


def test_annotations_switch(repo: Repo, job: dict[str, str], tmp_path: Path) -> None:
    env = github(tmp_path, "push", {"before": job["base"], "after": job["head"]})
    assert workflow_commands(ci(repo, env, "--no-annotations")[1]) == []
    assert len(workflow_commands(ci(repo, None, "--since", job["base"], "--annotations")[1])) == 1


def test_annotation_properties_are_escaped(repo: Repo, tmp_path: Path) -> None:
    base = repo.commit_files({"README.md": "# r\n"})
    repo.commit_files({"odd,name:100%.py": f"T = '{TOKEN}'\n"})
    _, out, _ = ci(repo, None, "--since", base, "--annotations")
    [note] = workflow_commands(out)
    assert note.startswith("::error file=odd%2Cname%3A100%25.py,line=1,")


def test_gitlab_merge_request_and_push(repo: Repo, job: dict[str, str]) -> None:
    mr = gitlab(CI_MERGE_REQUEST_DIFF_BASE_SHA=job["base"], CI_COMMIT_SHA=job["head"])
    code, out, err = ci(repo, mr)
    assert code == 1
    assert "app/leak.py:2:" in out
    assert workflow_commands(out) == []  # not GitHub
    assert "GitLab merge request" in err
    push = gitlab(CI_COMMIT_BEFORE_SHA=job["leak"], CI_COMMIT_SHA=job["head"])
    assert ci(repo, push)[0] == 0
    first = gitlab(CI_COMMIT_BEFORE_SHA=ZERO, CI_COMMIT_SHA=job["head"])
    code, _, err = ci(repo, first)
    assert code == 5
    assert "GIT_DEPTH: 0" in err


def test_no_ci_environment_and_no_since(repo: Repo, job: dict[str, str]) -> None:
    code, out, err = ci(repo, None)
    assert code == 5
    assert out == ""
    assert "no CI environment recognised" in err
    assert "--since" in err


def test_since(repo: Repo, job: dict[str, str]) -> None:
    code, out, _ = ci(repo, None, "--since", job["base"])
    assert code == 1
    assert f"commit {job['leak'][:12]}" in out
    assert ci(repo, None, "--since", job["leak"])[0] == 0
    code, _, err = ci(repo, None, "--since", "no-such-ref")
    assert code == 5
    assert "unknown revision 'no-such-ref'" in err
