"""History scans on a worker pool (`--jobs`): the history is cut into batches of commits,
each batch a `git log -p` of its own in a worker process; the result must be the one a
single stream gives, in the same order, on a history with merges, renames, deletions,
binary files, path-limited rules and a secret added then removed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sentra_scan import history
from sentra_scan.api import make_scanner
from sentra_scan.errors import GitError
from sentra_scan.ranges import Target
from tests.helpers import Repo, assert_no_leak, canary_aws_key_id, canary_github_token, sentra

SECRETS = [canary_github_token(f"parallel-{i}") for i in range(6)]


def day(n: int) -> str:
    return f"2026-04-{1 + n // 24:02d}T{n % 24:02d}:00:00+00:00"


@pytest.fixture
def busy(repo: Repo) -> Repo:
    """~40 commits: plain edits, a secret per few commits, a rename, a deletion, a binary
    file, a .pgpass (a path-limited rule), a branch merged with a conflict resolved by
    hand (the resolution brings a secret), and a secret added then removed."""
    n = 0

    def commit(msg: str) -> str:
        nonlocal n
        n += 1
        return repo.commit_at(day(n), msg)

    repo.stage("README.md", "# parallel\n")
    commit("init")
    for i in range(12):
        repo.stage(f"src/mod{i % 4}.py", "".join(f"value_{k} = {k * i}\n" for k in range(30)))
        commit(f"edit {i}")
    repo.stage("config.py", f"TOKEN = '{SECRETS[0]}'\n")
    commit("config")
    repo.rename("config.py", "settings.py")
    commit("rename")
    repo.stage("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 4)
    commit("binary")
    repo.stage(".pgpass", "db.example.internal:5432:app:app:Kq8vXz2LmN4pRt7w\n")
    commit("pgpass")
    repo.branch("feature")
    repo.stage("shared.py", "A = 1\n")
    repo.stage("feature.py", f"KEY = '{SECRETS[1]}'\n")
    commit("feature")
    repo.switch("main")
    repo.stage("shared.py", "A = 2\n")
    commit("main side")
    repo.git("merge", "--no-ff", "feature", "-m", "merge", check=False)
    repo.write("shared.py", f"A = 3\nRESOLVED = '{SECRETS[2]}'\n")
    repo.git("add", "shared.py")
    repo.git("commit", "--no-edit", "-m", "merge feature")
    repo.stage("tmp.py", f"aws_access_key_id = '{canary_aws_key_id('parallel')}'\nT = '{SECRETS[3]}'\n")
    commit("temporary")
    repo.remove("tmp.py")
    commit("remove temporary")
    repo.remove("src/mod0.py")
    commit("delete a module")
    for i in range(12):
        repo.stage(f"pkg/file{i}.py", f"X = {i}\n" + (f"SECRET = '{SECRETS[4]}'\n" if i == 7 else ""))
        commit(f"pkg {i}")
    repo.branch("side")
    repo.stage("side.py", f"S = '{SECRETS[5]}'\n")
    commit("side")
    repo.switch("main")
    return repo


def _report(repo: Repo, *args: str) -> dict[str, Any]:
    proc = sentra(["audit", "--format", "json", "--all-occurrences", "--no-record", *args], repo.path)
    assert proc.returncode == 1, proc.stderr
    assert_no_leak(proc, *SECRETS)
    report: dict[str, Any] = json.loads(proc.stdout)
    report.pop("stats", None)
    return report


def test_worker_pool_gives_the_single_stream_result(busy: Repo) -> None:
    one = _report(busy, "--jobs", "1")
    found = {f["commit"]["id"] for f in one["findings"] if f.get("commit")}
    assert len(found) >= 6  # the fixture's secrets, in their own commits
    assert len(one["findings"]) >= 7
    for jobs in ("2", "3"):
        assert _report(busy, "--jobs", jobs) == one


def test_worker_pool_deduplicates_to_the_introducing_commit(busy: Repo) -> None:
    proc = sentra(["audit", "--format", "json", "--no-record", "--jobs", "2"], busy.path)
    assert proc.returncode == 1
    one = sentra(["audit", "--format", "json", "--no-record", "--jobs", "1"], busy.path)
    pooled, single = json.loads(proc.stdout), json.loads(one.stdout)
    pooled.pop("stats", None)
    single.pop("stats", None)
    assert pooled == single
    total = busy.git("rev-list", "--all", "--count").strip()
    assert f"audited {total} commits" in proc.stderr  # every commit counted once


def test_scan_target_batches_report_progress_and_all_commits(busy: Repo) -> None:
    scanner = make_scanner()
    seen: list[int] = []
    target = Target("all", revs=("--all",))
    pooled = history.scan_target(scanner, target, busy.path, jobs=2, progress=seen.append)
    single = history.scan_target(make_scanner(), target, busy.path, jobs=1)
    assert pooled.stats.commit_ids == single.stats.commit_ids
    assert pooled.stats.commits == single.stats.commits == len(set(single.stats.commit_ids))
    assert seen == sorted(seen)
    assert seen[-1] == pooled.stats.commits
    assert len(seen) > 1
    assert [f.fingerprint for f in pooled.result.findings] == [f.fingerprint for f in single.result.findings]
    assert pooled.result.stats.rules_run == single.result.stats.rules_run


@pytest.mark.parametrize(
    ("n", "jobs"), [(2, 2), (40, 2), (41, 3), (9_999, 2), (16_238, 2), (100_000, 2), (100_001, 2), (123_457, 3)]
)
def test_batches_are_even_runs_of_the_history(n: int, jobs: int) -> None:
    commits = [f"{i:040x}" for i in range(n)]
    batches = history._batches(commits, jobs)
    assert [c for b in batches for c in b] == commits  # every commit once, in log order
    assert max(map(len, batches)) <= history.MAX_BATCH
    assert max(map(len, batches)) - min(map(len, batches)) <= max(map(len, batches)) // 2
    if n >= 1000:
        assert len(batches) % jobs == 0  # the workers' last batches end together
        assert len(batches) >= jobs * history.BATCHES_PER_JOB


def test_small_histories_stay_in_one_process(busy: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pool(*_a: object, **_k: object) -> None:
        raise AssertionError("a pool for a small history")

    monkeypatch.setattr(history.multiprocessing, "get_context", no_pool)
    result = history.scan_target(make_scanner(), Target("all", revs=("--all",)), busy.path)
    assert result.result.findings


def test_a_failing_batch_is_an_error_not_a_hang(busy: Repo) -> None:
    commits = busy.git("rev-list", "--all").split()
    bogus = Target("bad", commits=(*commits[:3], "0" * 40, *commits[3:]))
    with pytest.raises(GitError):
        history.scan_target(make_scanner(), bogus, busy.path, jobs=2)


def test_jobs_option_is_validated(busy: Repo) -> None:
    proc = sentra(["audit", "--jobs", "0"], busy.path)
    assert proc.returncode == 2
    assert "--jobs" in proc.stderr


def test_sentra_jobs_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRA_JOBS", "3")
    assert history.default_jobs() == 3
    monkeypatch.setenv("SENTRA_JOBS", "nonsense")
    assert history.default_jobs() >= 1


def test_empty_and_unborn_repositories(tmp_path: Path) -> None:
    from tests.helpers import init_repo

    empty = init_repo(tmp_path / "empty")
    proc = sentra(["audit", "--format", "json", "--no-record", "--jobs", "2"], empty.path)
    assert proc.returncode in (0, 3), proc.stderr


@pytest.mark.parametrize(
    "body",
    [
        b"@@ -0,0 +1,3 @@\n+a = 1\n+b = 2\n+c = 3",
        b"@@ -4,2 +4,3 @@\n-old\n-old2\n+new\r\n+\n+last\r",
        b"@@ -7 +7 @@\n-x\n+y\n\\ No newline at end of file",
        b"@@ -1,0 +2,2 @@\n+\xff\xfe invalid\n+caf\xc3\xa9",
        b"@@ -3,1 +2,0 @@\n-gone",
        b"@@ -1,2 +1,2 @@\n-a\n-b\n+c\n+d\n",
    ],
)
def test_added_block_parsing_matches_line_by_line(body: bytes) -> None:
    """The one-piece parse of a -U0 hunk's added block equals the line-by-line parse."""
    from sentra_scan.sources import history as source

    seg = b"\ndiff --git a/f b/f\n" + body
    start = seg.index(b"@@")
    header = source._FileHeader("f", b"", 1, False)
    fast = source._hunk_fragment(seg, start, len(seg), header)
    lines: list[str] = []
    numbers: list[int] = []
    number = int(body.split(b"+")[1].split(b" ")[0].split(b",")[0])
    for raw in body.split(b"\n")[1:]:
        if raw.startswith(b"+"):
            lines.append(raw[1:].removesuffix(b"\r").decode("utf-8", "replace"))
            numbers.append(number)
            number += 1
    assert fast == (lines, numbers)


def test_a_blob_change_seen_again_is_attributed_not_rescanned(repo: Repo) -> None:
    """A cherry-picked change is the same blob change in two commits: detection runs once,
    both commits are reported (oldest first after deduplication)."""
    secret = canary_github_token("cherry")
    repo.stage("README.md", "# cherry\n")
    repo.commit_at(day(1), "init")
    repo.branch("fix")
    repo.stage("app.py", f"A = 1\nTOKEN = '{secret}'\n")
    picked = repo.commit_at(day(2), "fix")
    repo.switch("main")
    repo.stage("other.py", "B = 2\n")
    repo.commit_at(day(3), "main work")
    repo.git("cherry-pick", picked, env={"GIT_AUTHOR_DATE": day(4), "GIT_COMMITTER_DATE": day(4)})
    copy = repo.head()
    scanner = make_scanner()
    scan = history.scan_target(scanner, Target("all", revs=("--all",)), repo.path, jobs=1)
    commits = {f.location.commit.id for f in scan.result.findings if f.location.commit}
    assert commits == {picked, copy}
    assert scanner.detector.changes_reused == 1
    merged = history.deduplicate(scan.result)
    assert len(merged.findings) == 1
    first = merged.findings[0]
    assert first.location.commit is not None
    assert first.location.commit.id == picked
    assert [o.commit.id for o in first.occurrences if o.commit] == [copy]
