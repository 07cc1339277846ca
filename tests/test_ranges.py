"""Which commits to scan (sentra_scan/ranges.py), on real repositories: ranges, pre-push and
pre-receive updates, the pre-commit framework's push environment, CI events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentra_scan import ranges
from sentra_scan.errors import ExitCode, GitError
from sentra_scan.ranges import ZERO, Target
from tests.helpers import Repo, init_bare, init_repo


def chain(repo: Repo, n: int, prefix: str = "c") -> list[str]:
    out = []
    for i in range(n):
        out.append(repo.commit_files({f"{prefix}{i}.txt": f"{prefix} {i}\n"}, f"{prefix}{i}"))
    return out


def commits(target: Target, repo: Repo) -> set[str]:
    """The commits a target names, whichever way it names them."""
    if target.commits is not None:
        return set(target.commits)
    return set(ranges.rev_list(target.revs, repo.path))


# --- ranges -----------------------------------------------------------------------------------


def test_commit_range_forms(repo: Repo) -> None:
    c = chain(repo, 4)
    two_dots = ranges.commit_range(f"{c[0]}..{c[3]}", repo.path)
    assert two_dots.revs == (f"{c[0]}..{c[3]}",)
    assert commits(two_dots, repo) == set(c[1:])
    assert commits(ranges.commit_range(f"{c[1]}..", repo.path), repo) == set(c[2:])  # B defaults to HEAD
    assert commits(ranges.commit_range(c[1], repo.path), repo) == set(c[:2])  # one rev: its ancestry
    assert "commits" in two_dots.description


def test_symmetric_range(repo: Repo) -> None:
    base = chain(repo, 1)[0]
    repo.branch("left")
    left = chain(repo, 2, "l")
    repo.switch("main")
    right = chain(repo, 1, "r")
    assert commits(ranges.commit_range("left...main", repo.path), repo) == set(left + right)
    assert base not in commits(ranges.commit_range("left...main", repo.path), repo)


def test_since_is_ref_to_head(repo: Repo) -> None:
    c = chain(repo, 3)
    target = ranges.since(c[0], repo.path)
    assert target.revs == (f"{c[0]}..HEAD",)
    assert commits(target, repo) == set(c[1:])


@pytest.mark.parametrize("spec", ["nope", "nope..HEAD", "HEAD..nope", "HEAD~9..HEAD", "--all", "-n1..HEAD"])
def test_unknown_revisions_are_git_errors(repo: Repo, spec: str) -> None:
    chain(repo, 2)
    with pytest.raises(GitError) as err:
        ranges.commit_range(spec, repo.path)
    assert err.value.exit_code == ExitCode.GIT
    assert "unknown revision" in err.value.message
    assert "rev-parse" in err.value.hint


def test_a_listing_started_ahead_is_the_listing(repo: Repo) -> None:
    """`sentra audit` starts `git rev-list` before it loads its rules; the next listing of the
    same range takes that output, once, and a bad range still fails as a git error."""
    for n in range(3):
        repo.commit_files({f"f{n}.txt": f"{n}\n"}, f"c{n}")
    plain = ranges.rev_list(["--all"], repo.path)
    ranges.start_rev_list(["--all"], repo.path)
    assert ranges._listing
    assert ranges.rev_list(["--all"], repo.path) == plain
    assert not ranges._listing  # taken once
    assert ranges.rev_list(["--all"], repo.path) == plain  # listed again
    ranges.start_rev_list(["no-such-branch"], repo.path)
    with pytest.raises(GitError):
        ranges.rev_list(["no-such-branch"], repo.path)
    assert not ranges._listing


def test_a_tree_is_not_a_commit(repo: Repo) -> None:
    chain(repo, 1)
    with pytest.raises(GitError):
        ranges.verify_commit("HEAD^{tree}", repo.path)


def test_shallow_clone_hint(repo: Repo, tmp_path: Path) -> None:
    c = chain(repo, 3)
    clone = repo.shallow_clone(tmp_path / "shallow")
    assert ranges.is_shallow(clone.path)
    assert not ranges.is_shallow(repo.path)
    with pytest.raises(GitError) as err:
        ranges.commit_range(f"{c[0]}..HEAD", clone.path)
    assert "shallow clone" in err.value.hint
    assert "--unshallow" in err.value.hint
    assert "fetch-depth: 0" in err.value.hint


def test_empty_repository_has_no_head(repo: Repo) -> None:
    with pytest.raises(GitError, match="unknown revision 'HEAD'"):
        ranges.since("HEAD", repo.path)


# --- pre-push ---------------------------------------------------------------------------------


@pytest.fixture
def pushed(tmp_path: Path) -> tuple[Repo, Repo, list[str]]:
    """A clone whose main (3 commits) is on its remote 'origin'."""
    remote = init_bare(tmp_path / "remote.git")
    local = init_repo(tmp_path / "local")
    local.add_remote(remote)
    c = chain(local, 3)
    local.git("push", "-q", "origin", "main")
    return local, remote, c


def push_line(local_sha: str, remote_sha: str, ref: str = "refs/heads/main") -> str:
    return f"{ref} {local_sha} {ref} {remote_sha}\n"


def test_pre_push_update_scans_only_the_new_commits(pushed: tuple[Repo, Repo, list[str]]) -> None:
    local, _, c = pushed
    new = chain(local, 2, "n")
    target = ranges.pre_push(push_line(new[-1], c[-1]), "origin", local.path)
    assert target.commits is not None
    assert set(target.commits) == set(new)
    assert target.description == "pre-push to origin"


def test_pre_push_new_branch_scans_commits_on_no_remote_ref(pushed: tuple[Repo, Repo, list[str]]) -> None:
    local, _, _ = pushed
    local.branch("feature")
    new = chain(local, 2, "f")
    target = ranges.pre_push(push_line(new[-1], ZERO, "refs/heads/feature"), "origin", local.path)
    assert set(target.commits or ()) == set(new)


def test_pre_push_update_after_merging_the_remotes_main(pushed: tuple[Repo, Repo, list[str]]) -> None:
    """feature was pushed; main moved on the remote; feature merges origin/main and is pushed
    again: main's commits are already on the remote, only the merge is new."""
    local, _, _ = pushed
    local.branch("feature")
    f = chain(local, 1, "f")
    local.git("push", "-q", "origin", "feature")
    local.switch("main")
    m = chain(local, 2, "m")
    local.git("push", "-q", "origin", "main")
    local.switch("feature")
    merge = local.merge("main")
    target = ranges.pre_push(push_line(merge, f[0], "refs/heads/feature"), "origin", local.path)
    assert set(target.commits or ()) == {merge}
    assert not set(m) & set(target.commits or ())


def test_pre_push_deletion_scans_nothing(pushed: tuple[Repo, Repo, list[str]]) -> None:
    local, _, c = pushed
    target = ranges.pre_push(f"(delete) {ZERO} refs/heads/main {c[-1]}\n", "origin", local.path)
    assert target.commits == ()


def test_pre_push_force_push_over_unknown_commits(pushed: tuple[Repo, Repo, list[str]], tmp_path: Path) -> None:
    """The remote's tip was pushed by someone else (we don't have it): scan what no
    remote-tracking ref has."""
    local, _, c = pushed
    local.git("reset", "-q", "--hard", c[0])
    rewritten = chain(local, 2, "rw")
    unknown = "f" * 40
    target = ranges.pre_push(push_line(rewritten[-1], unknown), "origin", local.path)
    assert set(target.commits or ()) == set(rewritten)


def test_pre_push_force_push_over_a_known_commit(pushed: tuple[Repo, Repo, list[str]]) -> None:
    local, _, c = pushed
    local.git("reset", "-q", "--hard", c[1])
    amended = chain(local, 1, "amend")
    target = ranges.pre_push(push_line(amended[0], c[2]), "origin", local.path)
    assert set(target.commits or ()) == set(amended)


def test_pre_push_several_refs_and_blank_lines(pushed: tuple[Repo, Repo, list[str]]) -> None:
    local, _, c = pushed
    a = chain(local, 1, "a")
    local.branch("other")
    b = chain(local, 1, "b")
    stdin = "\n" + push_line(a[0], c[-1]) + push_line(b[0], ZERO, "refs/heads/other") + "\n"
    target = ranges.pre_push(stdin, "origin", local.path)
    assert target.commits is not None
    assert sorted(target.commits) == sorted({a[0], b[0]})
    assert len(target.commits) == 2  # a commit pushed to two refs is scanned once


def test_pre_push_with_a_url_instead_of_a_remote_name(pushed: tuple[Repo, Repo, list[str]]) -> None:
    """`git push /path/to/repo.git branch`: no remote-tracking refs to trust, so a new
    branch's whole ancestry is scanned (never less)."""
    local, remote, c = pushed
    local.branch("feature")
    f = chain(local, 1, "f")
    target = ranges.pre_push(push_line(f[0], ZERO, "refs/heads/feature"), str(remote.path), local.path)
    assert set(target.commits or ()) == {*c, *f}


@pytest.mark.parametrize("line", ["refs/heads/main abc", "a b c d e"])
def test_pre_push_malformed_input(repo: Repo, line: str) -> None:
    with pytest.raises(GitError, match="unexpected pre-push input line"):
        ranges.pre_push(line + "\n", "origin", repo.path)


def test_pre_commit_framework_push_environment(pushed: tuple[Repo, Repo, list[str]]) -> None:
    local, _, c = pushed
    assert ranges.pre_commit_push({}, local.path) is None
    new = chain(local, 2, "n")
    env = {"PRE_COMMIT_FROM_REF": c[-1], "PRE_COMMIT_TO_REF": new[-1], "PRE_COMMIT_REMOTE_NAME": "origin"}
    target = ranges.pre_commit_push(env, local.path)
    assert target is not None
    assert set(target.commits or ()) == set(new)
    # A push that starts at a root commit: the framework sets no refs, only the branch.
    root_only = {"PRE_COMMIT_LOCAL_BRANCH": "refs/heads/main", "PRE_COMMIT_REMOTE_NAME": "elsewhere"}
    target = ranges.pre_commit_push(root_only, local.path)
    assert target is not None
    assert set(target.commits or ()) == {*c, *new}
    with pytest.raises(GitError):
        ranges.pre_commit_push({"PRE_COMMIT_TO_REF": "f" * 40}, local.path)


# --- pre-receive (run here in the bare repository itself, as git runs the hook) -------------------


def test_pre_receive_update_new_branch_and_deletion(pushed: tuple[Repo, Repo, list[str]]) -> None:
    local, remote, c = pushed
    local.branch("feature")
    f = chain(local, 2, "f")
    local.switch("main")
    m = chain(local, 1, "m")
    # The objects are in the remote, the refs not yet: as during a pre-receive hook.
    remote.git("fetch", "-q", str(local.path), "feature:refs/tmp/feature", "main:refs/tmp/main")
    remote.git("update-ref", "-d", "refs/tmp/feature")
    remote.git("update-ref", "-d", "refs/tmp/main")
    update = ranges.pre_receive(f"{c[-1]} {m[0]} refs/heads/main\n", remote.path)
    assert set(update.commits or ()) == {m[0]}
    new_branch = ranges.pre_receive(f"{ZERO} {f[-1]} refs/heads/feature\n", remote.path)
    assert set(new_branch.commits or ()) == set(f)  # c is reachable from main already
    deletion = ranges.pre_receive(f"{c[-1]} {ZERO} refs/heads/main\n", remote.path)
    assert deletion.commits == ()
    with pytest.raises(GitError, match="unexpected pre-receive input line"):
        ranges.pre_receive("only two\n", remote.path)


# --- CI environments ----------------------------------------------------------------------------


def github_env(tmp_path: Path, event: str, payload: object) -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(path)}


def test_github_push_and_pull_request(repo: Repo, tmp_path: Path) -> None:
    c = chain(repo, 4)
    push = ranges.ci(github_env(tmp_path, "push", {"before": c[1], "after": c[3]}), repo=repo.path)
    assert push.revs == (f"{c[1]}..{c[3]}",)
    assert commits(push, repo) == set(c[2:])
    pr_payload = {"pull_request": {"base": {"sha": c[0]}, "head": {"sha": c[2]}}}
    for event in ("pull_request", "pull_request_target"):
        pr = ranges.ci(github_env(tmp_path, event, pr_payload), repo=repo.path)
        assert commits(pr, repo) == {c[1], c[2]}
        assert pr.description.startswith("GitHub pull request")


def test_github_push_without_after_uses_github_sha(repo: Repo, tmp_path: Path) -> None:
    c = chain(repo, 2)
    env = {**github_env(tmp_path, "push", {"before": c[0]}), "GITHUB_SHA": c[1]}
    assert commits(ranges.ci(env, repo=repo.path), repo) == {c[1]}


@pytest.mark.parametrize("before", [ZERO, ""])
def test_github_first_push_says_what_to_do(repo: Repo, tmp_path: Path, before: str) -> None:
    c = chain(repo, 1)
    with pytest.raises(GitError) as err:
        ranges.ci(github_env(tmp_path, "push", {"before": before, "after": c[0]}), repo=repo.path)
    assert "first push" in err.value.message
    assert "--since" in err.value.hint


def test_github_other_events_and_bad_payloads(repo: Repo, tmp_path: Path) -> None:
    chain(repo, 1)
    with pytest.raises(GitError, match="'schedule' has no commit range"):
        ranges.ci(github_env(tmp_path, "schedule", {}), repo=repo.path)
    with pytest.raises(GitError, match="no base/head sha"):
        ranges.ci(github_env(tmp_path, "pull_request", {"pull_request": {}}), repo=repo.path)
    env = github_env(tmp_path, "push", {})
    (tmp_path / "event.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(GitError, match="cannot read the GitHub event payload"):
        ranges.ci(env, repo=repo.path)
    env["GITHUB_EVENT_PATH"] = str(tmp_path / "missing.json")
    with pytest.raises(GitError, match="cannot read"):
        ranges.ci(env, repo=repo.path)


def test_gitlab_merge_request_and_push(repo: Repo) -> None:
    c = chain(repo, 4)
    mr = {"GITLAB_CI": "true", "CI_MERGE_REQUEST_DIFF_BASE_SHA": c[0], "CI_COMMIT_SHA": c[3]}
    assert commits(ranges.ci(mr, repo=repo.path), repo) == set(c[1:])
    push = {"GITLAB_CI": "true", "CI_COMMIT_BEFORE_SHA": c[2], "CI_COMMIT_SHA": c[3]}
    target = ranges.ci(push, repo=repo.path)
    assert commits(target, repo) == {c[3]}
    assert target.description.startswith("GitLab push")
    with pytest.raises(GitError, match="first push") as err:
        ranges.ci({"GITLAB_CI": "true", "CI_COMMIT_BEFORE_SHA": ZERO, "CI_COMMIT_SHA": c[3]}, repo=repo.path)
    assert "GIT_DEPTH: 0" in err.value.hint


def test_ci_base_missing_from_the_clone(repo: Repo, tmp_path: Path) -> None:
    c = chain(repo, 3)
    clone = repo.shallow_clone(tmp_path / "shallow")
    env = {"GITLAB_CI": "true", "CI_MERGE_REQUEST_DIFF_BASE_SHA": c[0], "CI_COMMIT_SHA": c[2]}
    with pytest.raises(GitError) as err:
        ranges.ci(env, repo=clone.path)
    assert f"commit {c[0][:12]} is not in this clone" in err.value.message
    assert "fetch-depth: 0" in err.value.hint
    # Not shallow, the commit simply unknown: fetch it.
    with pytest.raises(GitError) as err:
        ranges.ci({**env, "CI_MERGE_REQUEST_DIFF_BASE_SHA": "e" * 40}, repo=repo.path)
    assert "git fetch" in err.value.hint


def test_ci_since_wins_and_no_environment_is_an_error(repo: Repo, tmp_path: Path) -> None:
    c = chain(repo, 3)
    env = github_env(tmp_path, "push", {"before": ZERO, "after": c[2]})
    assert commits(ranges.ci(env, since_ref=c[0], repo=repo.path), repo) == set(c[1:])
    with pytest.raises(GitError, match="no CI environment recognised") as err:
        ranges.ci({}, repo=repo.path)
    assert "--since" in err.value.hint
