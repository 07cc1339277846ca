"""Which commits to scan: commit ranges, pre-push and pre-receive updates, CI events.

Every way of naming commits resolves to either git revision arguments (`revs`) or an
explicit list of commit ids (`commits`). What cannot be resolved is an error with the fix,
never an empty range that passes silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sentra_scan.errors import GitError
from sentra_scan.sources.gitcmd import Started, git

ZERO = "0" * 40


@dataclass(frozen=True)
class Target:
    """What to scan: `commits` (exactly these) or `revs` (git log arguments)."""

    description: str
    revs: tuple[str, ...] = ()
    commits: tuple[str, ...] | None = None


def _is_zero(sha: str) -> bool:
    return bool(sha) and set(sha) == {"0"}


def verify_commit(rev: str, repo: Path | None) -> str:
    out = git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], repo, check=False)
    sha = out.strip()
    if not sha:
        hint = "check the name with 'git rev-parse'"
        if is_shallow(repo):
            hint = "this is a shallow clone: fetch the history ('git fetch --unshallow', or fetch-depth: 0 in CI)"
        raise GitError(f"unknown revision {rev!r}", hint=hint)
    return sha


def is_shallow(repo: Path | None) -> bool:
    return git(["rev-parse", "--is-shallow-repository"], repo, check=False).strip() == "true"


def commit_range(spec: str, repo: Path | None) -> Target:
    """`A..B`, `A...B` or a single revision (its whole ancestry)."""
    for sep in ("...", ".."):
        if sep in spec:
            left, right = spec.split(sep, 1)
            verify_commit(left or "HEAD", repo)
            verify_commit(right or "HEAD", repo)
            return Target(f"commits {spec}", revs=(spec,))
    verify_commit(spec, repo)
    return Target(f"commits {spec}", revs=(spec,))


def since(ref: str, repo: Path | None) -> Target:
    verify_commit(ref, repo)
    return Target(f"commits since {ref}", revs=(f"{ref}..HEAD",))


def rev_list(args: Iterable[str], repo: Path | None) -> list[str]:
    key = (tuple(args), str(repo))
    started = _listing.pop(key, None)
    out = started.result() if started is not None else git(["rev-list", *key[0], "--"], repo)
    return out.split()


# Listings started ahead (`start_rev_list`), taken by the next `rev_list` of the same range.
_listing: dict[tuple[tuple[str, ...], str], Started] = {}


def start_rev_list(args: Iterable[str], repo: Path | None) -> None:
    """Start `git rev-list` of a range now: the next `rev_list` of it takes the output
    (on pip the listing is 0.15 s, done while the rules load and the ledger opens)."""
    key = (tuple(args), str(repo))
    if key not in _listing:
        _listing[key] = Started(["rev-list", *key[0], "--"], repo)


@dataclass(frozen=True)
class RefUpdate:
    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str


def parse_pre_push(stdin: str) -> list[RefUpdate]:
    updates = []
    for line in stdin.splitlines():
        parts = line.split()
        if len(parts) == 4:
            updates.append(RefUpdate(*parts))
        elif parts:
            raise GitError(f"unexpected pre-push input line: {line!r}")
    return updates


def pre_push(stdin: str, remote: str | None, repo: Path | None) -> Target:
    """Exactly the commits a push adds to the remote."""
    commits: dict[str, None] = {}
    for u in parse_pre_push(stdin):
        if _is_zero(u.local_sha):
            continue  # deleting a remote ref adds nothing
        known_remote = not _is_zero(u.remote_sha) and bool(
            git(["cat-file", "-t", u.remote_sha], repo, check=False).strip() == "commit"
        )
        # What the remote ref lacks, less what the remote already has on its other refs
        # (as far as its tracking refs tell): a new branch, a force push over commits we
        # don't have, a branch that merged the remote's main.
        remotes = f"--remotes={remote}" if remote else "--remotes"
        exclude = [f"^{u.remote_sha}"] if known_remote else []
        exclude += ["--not", remotes]
        for sha in rev_list([u.local_sha, *exclude], repo):
            commits[sha] = None
    return Target(f"pre-push to {remote or 'remote'}", commits=tuple(commits))


def pre_commit_push(env: Mapping[str, str], repo: Path | None) -> Target | None:
    """Under the pre-commit framework's pre-push stage the hook's stdin is empty: the
    framework passes the range in PRE_COMMIT_FROM_REF/TO_REF (FROM_REF unset when the push
    starts at a root commit) and the remote in PRE_COMMIT_REMOTE_NAME. None outside it."""
    to_ref = env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_LOCAL_BRANCH") or ""
    if not to_ref:
        return None
    from_ref = env.get("PRE_COMMIT_FROM_REF", "")
    remote = env.get("PRE_COMMIT_REMOTE_NAME", "")
    exclude = [f"^{verify_commit(from_ref, repo)}"] if from_ref else []
    remotes = f"--remotes={remote}" if remote else "--remotes"
    commits = rev_list([verify_commit(to_ref, repo), *exclude, "--not", remotes], repo)
    return Target(f"pre-push to {remote or 'remote'}", commits=tuple(commits))


def pre_receive(stdin: str, repo: Path | None) -> Target:
    """Server side: the new commits of each updated ref, not reachable from any ref yet."""
    commits: dict[str, None] = {}
    for line in stdin.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise GitError(f"unexpected pre-receive input line: {line!r}")
        old, new, _ref = parts
        if _is_zero(new):
            continue
        excl = ["--not", "--all"] if _is_zero(old) else [f"^{old}", "--not", "--all"]
        for sha in rev_list([new, *excl], repo):
            commits[sha] = None
    return Target("pre-receive", commits=tuple(commits))


def _github(env: Mapping[str, str], repo: Path | None) -> Target:
    event = env.get("GITHUB_EVENT_NAME", "")
    path = env.get("GITHUB_EVENT_PATH", "")
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError) as exc:
        raise GitError(f"cannot read the GitHub event payload {path!r}: {exc}") from None
    if event in ("pull_request", "pull_request_target"):
        pr = payload.get("pull_request") or {}
        base = (pr.get("base") or {}).get("sha", "")
        head = (pr.get("head") or {}).get("sha", "")
        if not base or not head:
            raise GitError("the pull_request event has no base/head sha")
        return _between(base, head, repo, "GitHub pull request")
    if event == "push":
        before = payload.get("before", "")
        after = payload.get("after", "") or env.get("GITHUB_SHA", "")
        if not before or _is_zero(before):
            raise GitError(
                "first push of this branch: there is no previous commit to scan from",
                hint="run 'sentra ci --since origin/main' (your default branch) with full history (fetch-depth: 0)",
            )
        return _between(before, after, repo, "GitHub push")
    raise GitError(f"GitHub event {event!r} has no commit range", hint="use 'sentra ci --since REF'")


def _gitlab(env: Mapping[str, str], repo: Path | None) -> Target:
    head = env.get("CI_COMMIT_SHA", "")
    base = env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA", "")
    if base:
        return _between(base, head, repo, "GitLab merge request")
    before = env.get("CI_COMMIT_BEFORE_SHA", "")
    if not before or _is_zero(before):
        raise GitError(
            "first push of this branch (CI_COMMIT_BEFORE_SHA is empty or zero)",
            hint="run 'sentra ci --since origin/main' with full history (GIT_DEPTH: 0)",
        )
    return _between(before, head, repo, "GitLab push")


def _between(base: str, head: str, repo: Path | None, what: str) -> Target:
    for sha in (base, head):
        if git(["cat-file", "-t", sha], repo, check=False).strip() != "commit":
            hint = "check out the full history: fetch-depth: 0 (GitHub) or GIT_DEPTH: 0 (GitLab)"
            if not is_shallow(repo):
                hint = "fetch the commit (git fetch origin) or pass --since REF"
            raise GitError(f"{what}: commit {sha[:12]} is not in this clone", hint=hint)
    return Target(f"{what} {base[:12]}..{head[:12]}", revs=(f"{base}..{head}",))


def ci(env: Mapping[str, str] | None = None, *, since_ref: str | None = None, repo: Path | None = None) -> Target:
    """The range a CI job should scan, from its environment."""
    env = os.environ if env is None else env
    if since_ref:
        return since(since_ref, repo)
    if env.get("GITHUB_ACTIONS") == "true":
        return _github(env, repo)
    if env.get("GITLAB_CI") == "true":
        return _gitlab(env, repo)
    raise GitError(
        "no CI environment recognised (GitHub Actions, GitLab CI) and no --since given",
        hint="run 'sentra ci --since origin/main' (or the base of your change)",
    )
