"""`sentra audit`: every commit reachable from every ref, one finding per secret with the
commit that introduced it and its other places; and `deduplicate` itself."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sentra_scan.history import deduplicate
from sentra_scan.model import CommitInfo, Finding, Location, ScanResult, Secret, Severity
from tests.helpers import Repo, assert_no_leak, canary_github_token, sentra, sentra_json

MAIN = canary_github_token("audit-main")
UNMERGED = canary_github_token("audit-unmerged")
TAGGED = canary_github_token("audit-tagged")
REMOVED = canary_github_token("audit-removed")
PICKED = canary_github_token("audit-picked")
UNTRACKED = canary_github_token("audit-untracked")
ALL = (MAIN, UNMERGED, TAGGED, REMOVED, PICKED, UNTRACKED)


@pytest.fixture(scope="module")
def rules_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rules-cache")


@pytest.fixture(autouse=True)
def _quick_cli(monkeypatch: pytest.MonkeyPatch, rules_cache: Path) -> None:
    """One parsed-rules cache for the module's CLI runs; no ledger."""
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rules_cache))
    monkeypatch.setenv("SENTRA_NO_RECORD", "1")


def day(n: int) -> str:
    return f"2026-03-{n:02d}T12:00:00+00:00"


@pytest.fixture
def history(repo: Repo) -> dict[str, str]:
    """Several branches and a tag, every commit on its own day:

    main:        init(1) - config.py gets MAIN(2) - other.py copies MAIN(5) - hotfix picked(7)
    feature:     from 2: feature.py gets UNMERGED(3)               (never merged)
    v1 (tag):    from 2: release.py gets TAGGED(4)                 (its branch deleted)
    tmp:         from 2: tmp.py gets REMOVED(5), removed again(6)
    hotfix:      from 1: fix.py gets PICKED(6), cherry-picked onto main on day 7
    """
    c: dict[str, str] = {}
    repo.stage("README.md", "# audited\n")
    c["init"] = repo.commit_at(day(1), "init")
    repo.stage("config.py", f"TOKEN = '{MAIN}'\n")
    c["main"] = repo.commit_at(day(2), "config")
    repo.branch("feature")
    repo.stage("feature.py", f"x = 1\nKEY = '{UNMERGED}'\n")
    c["unmerged"] = repo.commit_at(day(3), "feature")
    repo.switch("main")
    repo.branch("release")
    repo.stage("release.py", f"\n\nRELEASE = '{TAGGED}'\n")
    c["tagged"] = repo.commit_at(day(4), "release")
    repo.tag("v1")
    repo.switch("main")
    repo.git("branch", "-D", "release")
    repo.branch("tmp")
    repo.stage("tmp.py", f"T = '{REMOVED}'\n")
    c["removed"] = repo.commit_at(day(5), "oops")
    repo.remove("tmp.py")
    c["removal"] = repo.commit_at(day(6), "remove it")
    repo.switch("main")
    repo.stage("other.py", f"# copied\nTOKEN = '{MAIN}'\n")
    c["copy"] = repo.commit_at(day(5), "copy")
    repo.git("switch", "-q", "-c", "hotfix", c["init"])
    repo.stage("fix.py", f"F = '{PICKED}'\n")
    c["picked"] = repo.commit_at(day(6), "hotfix")
    repo.switch("main")
    repo.git("cherry-pick", c["picked"], env={"GIT_COMMITTER_DATE": day(7)})
    c["cherry"] = repo.head()
    return c


def audit(repo: Repo, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc, doc = sentra_json(["audit", *args], repo.path)
    assert_no_leak(proc, *ALL)
    return proc, doc


def by_secret(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["path"], f["commit"]["id"] if f["commit"] else ""): f for f in doc["findings"]}


def test_every_ref_once_per_secret_with_the_introducing_commit(repo: Repo, history: dict[str, str]) -> None:
    proc, doc = audit(repo)
    assert proc.returncode == 1
    found = by_secret(doc)
    assert set(found) == {
        ("config.py", history["main"]),
        ("feature.py", history["unmerged"]),  # only on an unmerged branch
        ("release.py", history["tagged"]),  # only reachable from a tag
        ("tmp.py", history["removed"]),  # added, then removed
        ("fix.py", history["picked"]),  # the original, not the cherry-pick
    }
    main = found[("config.py", history["main"])]
    assert main["line"] == 1
    assert main["occurrences"] == [{"path": "other.py", "line": 2, "commit": history["copy"]}]
    picked = found[("fix.py", history["picked"])]
    assert picked["occurrences"] == [{"path": "fix.py", "line": 1, "commit": history["cherry"]}]
    assert "occurrences" not in found[("feature.py", history["unmerged"])]
    assert found[("release.py", history["tagged"])]["line"] == 3
    assert f"audited {len(history)} commits, 5 secrets" in proc.stderr  # every commit above, via some ref


def test_text_report_lists_the_other_places(repo: Repo, history: dict[str, str]) -> None:
    proc = sentra(["audit"], repo.path)
    assert_no_leak(proc, *ALL)
    assert proc.returncode == 1
    assert "config.py:1:10  github-pat" in proc.stdout
    assert f"commit {history['main'][:12]}" in proc.stdout
    assert f"also at: other.py:2@{history['copy'][:12]}" in proc.stdout
    assert MAIN[:4] + "********" in proc.stdout


def test_all_occurrences(repo: Repo, history: dict[str, str]) -> None:
    proc, doc = audit(repo, "--all-occurrences")
    assert proc.returncode == 1
    assert set(by_secret(doc)) == {
        ("config.py", history["main"]),
        ("other.py", history["copy"]),
        ("feature.py", history["unmerged"]),
        ("release.py", history["tagged"]),
        ("tmp.py", history["removed"]),
        ("fix.py", history["picked"]),
        ("fix.py", history["cherry"]),
    }
    assert all("occurrences" not in f for f in doc["findings"])


def test_branch_narrows(repo: Repo, history: dict[str, str]) -> None:
    proc, doc = audit(repo, "--branch", "feature")
    assert set(by_secret(doc)) == {("config.py", history["main"]), ("feature.py", history["unmerged"])}
    assert "occurrences" not in doc["findings"][0]
    assert "audited 3 commits" in proc.stderr
    _, doc = audit(repo, "--branch", "v1", "--branch", "tmp")
    assert set(by_secret(doc)) == {
        ("config.py", history["main"]),
        ("release.py", history["tagged"]),
        ("tmp.py", history["removed"]),
    }
    proc = sentra(["audit", "--branch", "nope"], repo.path)
    assert proc.returncode == 5
    assert "unknown revision 'nope'" in proc.stderr


def test_worktree_adds_the_working_trees_files(repo: Repo, history: dict[str, str]) -> None:
    repo.write("scratch/notes.txt", f"try {UNTRACKED}\n")
    _, doc = audit(repo, "--branch", "main")
    assert ("scratch/notes.txt", "") not in by_secret(doc)
    proc, doc = audit(repo, "--branch", "main", "--worktree")
    assert proc.returncode == 1
    tree = {(f["path"], f["line"]) for f in doc["findings"] if f["commit"] is None}
    assert ("scratch/notes.txt", 1) in tree
    assert ("config.py", 1) in tree
    assert ("other.py", 2) in tree


def test_removed_secret_on_a_branch_is_found(repo: Repo) -> None:
    repo.commit_files({"README.md": "# r\n"})
    repo.branch("wip")
    added = repo.commit_files({"wip.py": f"W = '{REMOVED}'\n"}, "add")
    repo.remove("wip.py")
    repo.commit("remove")
    repo.switch("main")
    proc, doc = audit(repo)
    assert proc.returncode == 1
    assert [(f["path"], f["commit"]["id"]) for f in doc["findings"]] == [("wip.py", added)]


def test_audit_another_repository_by_path(repo: Repo, history: dict[str, str], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc, doc = sentra_json(["audit", str(repo.path), "--branch", "feature"], elsewhere)
    assert_no_leak(proc, *ALL)
    assert proc.returncode == 1
    assert len(doc["findings"]) == 2


def test_empty_repository(repo: Repo) -> None:
    proc, doc = audit(repo)
    assert proc.returncode == 0
    assert doc["findings"] == []
    assert "audited 0 commits, 0 secrets" in proc.stderr
    text = sentra(["audit"], repo.path)
    assert text.returncode == 0
    assert "Traceback" not in text.stderr


def test_not_a_repository(tmp_path: Path) -> None:
    proc = sentra(["audit"], tmp_path)
    assert proc.returncode == 5
    assert "not inside a git work tree" in proc.stderr


def run_with_tty_stderr(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run the CLI with stdout a pipe and stderr a terminal; return (code, stdout, tty text)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentra_scan", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=slave
        )
        os.close(slave)
        slave = -1
        out, _ = proc.communicate(timeout=60)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
        return proc.returncode, out.decode(), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_progress_only_on_a_terminal_and_never_on_stdout(repo: Repo, history: dict[str, str]) -> None:
    code, out, tty = run_with_tty_stderr(["audit", "--format", "json"], repo.path)
    assert code == 1
    assert len(json.loads(out)["findings"]) == 5  # stdout is clean JSON
    assert "audit [" in tty
    assert f"{len(history)}/{len(history)} commits" in tty
    for secret in ALL:
        assert secret not in tty
    proc, _ = audit(repo)
    assert "audit [" not in proc.stderr
    assert "\r" not in proc.stderr


# --- deduplicate ------------------------------------------------------------------------------


def finding(path: str, commit: CommitInfo | None, secret: str = "s" * 20, line: int = 1) -> Finding:
    return Finding(
        rule_id="r",
        description="d",
        severity=Severity.HIGH,
        location=Location(path, line, 1, 2, commit),
        fingerprint="fp-" + secret,
        secret=Secret(secret),
        line_text=secret,
    )


def commit(cid: str, date: str) -> CommitInfo:
    return CommitInfo(cid, "a", "a@example.test", date)


def test_deduplicate_keeps_the_oldest_and_lists_the_rest() -> None:
    newest = finding("b.py", commit("new", "2026-01-03T00:00:00+00:00"))
    oldest = finding("a.py", commit("old", "2026-01-01T00:00:00+01:00"))
    middle = finding("c.py", commit("mid", "2026-01-01T00:30:00+00:00"))  # later than 'old' (in UTC)
    other = finding("x.py", commit("new", "2026-01-03T00:00:00+00:00"), secret="t" * 20)
    result = deduplicate(ScanResult(findings=(newest, oldest, middle, other)))
    [first, second] = result.findings
    assert first.location.commit is not None
    assert first.location.commit.id == "old"
    assert [o.path for o in first.occurrences] == ["b.py", "c.py"]
    assert second.location.path == "x.py"
    assert second.occurrences == ()
    everything = deduplicate(ScanResult(findings=(newest, oldest)), all_occurrences=True)
    assert everything.findings == (newest, oldest)


def test_deduplicate_equal_dates_later_in_the_log_is_older() -> None:
    same = "2026-01-01T00:00:00+00:00"
    log_order = (finding("child.py", commit("child", same)), finding("parent.py", commit("parent", same)))
    [kept] = deduplicate(ScanResult(findings=log_order)).findings
    assert kept.location.path == "parent.py"


def test_deduplicate_without_commits_keeps_the_first_place() -> None:
    files = (finding("one.py", None), finding("two.py", None, line=7))
    [kept] = deduplicate(ScanResult(findings=files)).findings
    assert kept.location.path == "one.py"
    assert [(o.path, o.line) for o in kept.occurrences] == [("two.py", 7)]
