"""`sentra hook pre-push`: called directly with git's stdin, and through a real `git push` to
a local bare repository with the hook installed by `sentra install --hook pre-push`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from sentra_scan.install import install
from tests.helpers import REPO_ROOT, Repo, assert_no_leak, canary_github_token, init_bare, init_repo, sentra

TOKEN = canary_github_token("prepush")
OLD_TOKEN = canary_github_token("prepush-old")
MASKED = TOKEN[:4] + "********"


@pytest.fixture(scope="module")
def rules_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rules-cache")


@pytest.fixture(autouse=True)
def _quick_cli(monkeypatch: pytest.MonkeyPatch, rules_cache: Path) -> None:
    """One parsed-rules cache for the module's CLI runs (hooks inherit it); no ledger."""
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rules_cache))
    monkeypatch.setenv("SENTRA_NO_RECORD", "1")


@pytest.fixture
def remote(tmp_path: Path) -> Repo:
    return init_bare(tmp_path / "remote.git")


@pytest.fixture
def local(tmp_path: Path, remote: Repo) -> Repo:
    """A clone with the pre-push hook installed; main (clean) is on the remote already."""
    repo = init_repo(tmp_path / "local")
    repo.add_remote(remote)
    repo.commit_files({"README.md": "# project\n", "app.py": "print('hi')\n"}, "initial")
    repo.git("push", "-q", "origin", "main")
    install("pre-push", repo.path)  # what `sentra install --hook pre-push` does (tested below)
    return repo


def leak(repo: Repo, path: str = "config/leak.py", token: str = TOKEN) -> str:
    return repo.commit_files({path: f"# settings\nGITHUB_TOKEN = '{token}'\n"}, f"add {path}")


def remote_head(remote: Repo, ref: str = "main") -> str:
    return remote.git("rev-parse", "--verify", "--quiet", f"refs/heads/{ref}", check=False).strip()


def hook(repo: Repo, stdin: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = sentra(
        ["hook", "pre-push", "origin", "file:///remote.git", *args],
        repo.path,
        env={**os.environ, **(env or {})},
        input=stdin.encode(),
    )
    assert_no_leak(proc, TOKEN, OLD_TOKEN)
    return proc.returncode, proc.stdout, proc.stderr


# --- the hook called directly, as git calls it -------------------------------------------------


def test_direct_push_with_a_secret_is_blocked(local: Repo, remote: Repo) -> None:
    old = remote_head(remote)
    sha = leak(local)
    code, out, err = hook(local, f"refs/heads/main {sha} refs/heads/main {old}\n")
    assert code == 1
    assert out == ""
    assert "config/leak.py:2:" in err
    assert "github-pat" in err
    assert MASKED in err
    assert f"commit {sha[:12]}" in err
    assert "push blocked" in err
    assert "git rebase -i" in err


def test_direct_clean_push_passes(local: Repo, remote: Repo) -> None:
    sha = local.commit_files({"app.py": "print('hello')\n"}, "clean")
    assert hook(local, f"refs/heads/main {sha} refs/heads/main {remote_head(remote)}\n") == (0, "", "")


def test_direct_empty_stdin_passes(local: Repo) -> None:
    assert hook(local, "") == (0, "", "")


def test_direct_json_report(local: Repo, remote: Repo) -> None:
    sha = leak(local)
    code, out, _ = hook(local, f"refs/heads/main {sha} refs/heads/main {remote_head(remote)}\n", "--format", "json")
    assert code == 1
    [finding] = json.loads(out)["findings"]
    assert (finding["path"], finding["line"], finding["commit"]["id"]) == ("config/leak.py", 2, sha)


def test_direct_malformed_stdin_is_an_error_not_a_pass(local: Repo) -> None:
    code, _, err = hook(local, "refs/heads/main deadbeef\n")
    assert code == 5
    assert "unexpected pre-push input line" in err


def test_direct_unknown_option_is_a_usage_error(local: Repo) -> None:
    code, _, err = hook(local, "", "--frobnicate")
    assert code == 2
    assert "unknown option --frobnicate" in err


@pytest.mark.parametrize("skip", ["sentra-push", "black,sentra"])
def test_direct_skip(local: Repo, remote: Repo, skip: str) -> None:
    sha = leak(local)
    code, _, err = hook(local, f"refs/heads/main {sha} refs/heads/main {remote_head(remote)}\n", env={"SKIP": skip})
    assert code == 0
    assert "skipped (SKIP)" in err


def test_direct_pre_commit_framework_environment(local: Repo, remote: Repo) -> None:
    """The pre-commit framework's pre-push stage gives the hook no stdin, only PRE_COMMIT_* refs."""
    old = remote_head(remote)
    sha = leak(local)
    env = {"PRE_COMMIT_FROM_REF": old, "PRE_COMMIT_TO_REF": sha, "PRE_COMMIT_REMOTE_NAME": "origin"}
    code, _, err = hook(local, "", env=env)
    assert code == 1
    assert "config/leak.py:2:" in err
    clean = {**env, "PRE_COMMIT_TO_REF": old}
    assert hook(local, "", env=clean)[0] == 0


# --- a real `git push` through the installed hook ------------------------------------------------


def push(repo: Repo, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = repo.proc("push", "origin", *args, env=env)
    assert_no_leak(proc, TOKEN, OLD_TOKEN)
    return proc.returncode, proc.stderr


def test_push_with_a_secret_is_blocked(local: Repo, remote: Repo) -> None:
    before = remote_head(remote)
    sha = leak(local)
    code, err = push(local, "main")
    assert code != 0
    assert "config/leak.py:2:" in err
    assert "github-pat" in err
    assert MASKED in err
    assert f"commit {sha[:12]}" in err
    assert "push blocked" in err
    assert remote_head(remote) == before


def test_clean_push_passes(local: Repo, remote: Repo) -> None:
    sha = local.commit_files({"app.py": "print('hello')\n"}, "clean")
    code, err = push(local, "main")
    assert code == 0, err
    assert remote_head(remote) == sha


def test_new_branch_pushes_only_commits_not_on_the_remote(local: Repo, remote: Repo) -> None:
    """Old history on the remote holds a secret (pushed past the hook); a new branch on top
    of it with clean commits must not be blocked by it."""
    leak(local, "old/secret.py", OLD_TOKEN)
    code, err = push(local, "--no-verify", "main")
    assert code == 0, err
    local.branch("feature")
    sha = local.commit_files({"feature.py": "x = 1\n"}, "feature work")
    code, err = push(local, "feature")
    assert code == 0, err
    assert remote_head(remote, "feature") == sha
    # The same, but the new branch adds a secret: only that one is reported.
    local.branch("feature-2")
    bad = leak(local, "new/leak.py")
    code, err = push(local, "feature-2")
    assert code != 0
    assert "new/leak.py:2:" in err
    assert f"commit {bad[:12]}" in err
    assert "old/secret.py" not in err
    assert "1 secret in the commits being pushed" in err
    assert remote_head(remote, "feature-2") == ""


def test_deleting_a_remote_branch_scans_nothing(local: Repo, remote: Repo) -> None:
    local.branch("doomed")
    leak(local)
    code, err = push(local, "--no-verify", "doomed")
    assert code == 0, err
    code, err = push(local, ":doomed")
    assert code == 0, err
    assert "secret" not in err
    assert remote_head(remote, "doomed") == ""


def test_force_push(local: Repo, remote: Repo) -> None:
    local.commit_files({"a.txt": "a\n"}, "a")
    code, err = push(local, "main")
    assert code == 0, err
    local.git("reset", "-q", "--hard", "HEAD~1")
    bad = leak(local)
    code, err = push(local, "--force", "main")
    assert code != 0
    assert f"commit {bad[:12]}" in err
    local.git("reset", "-q", "--hard", "HEAD~1")
    good = local.commit_files({"b.txt": "b\n"}, "b instead of a")
    code, err = push(local, "--force", "main")
    assert code == 0, err
    assert remote_head(remote) == good


def test_force_push_over_commits_we_do_not_have(local: Repo, remote: Repo, tmp_path: Path) -> None:
    other = init_repo(tmp_path / "other")
    other.add_remote(remote)
    other.git("fetch", "-q", "origin")
    other.git("reset", "-q", "--hard", "origin/main")
    other.commit_files({"theirs.txt": "theirs\n"}, "someone else's commit")
    other.git("push", "-q", "origin", "main")
    bad = leak(local)
    code, err = push(local, "--force", "main")
    assert code != 0
    assert f"commit {bad[:12]}" in err


def test_secret_added_then_removed(local: Repo, remote: Repo) -> None:
    """The adding commit is already on the remote; pushing the removal alone does not block."""
    leak(local)
    code, err = push(local, "--no-verify", "main")
    assert code == 0, err
    local.remove("config/leak.py")
    removal = local.commit("remove the token")
    code, err = push(local, "main")
    assert code == 0, err
    assert remote_head(remote) == removal


def test_secret_added_then_removed_pushed_together_still_blocks(local: Repo) -> None:
    leak(local)
    local.remove("config/leak.py")
    local.commit("remove the token")
    code, err = push(local, "main")
    assert code != 0
    assert "config/leak.py:2:" in err


@pytest.mark.parametrize("skip", ["lint,sentra-push", "sentra"])
def test_push_skip(local: Repo, remote: Repo, skip: str) -> None:
    sha = leak(local)
    code, err = push(local, "main", env={"SKIP": skip})
    assert code == 0, err
    assert remote_head(remote) == sha


def test_skip_of_another_hook_does_not_skip(local: Repo, remote: Repo) -> None:
    leak(local)
    code, _ = push(local, "main", env={"SKIP": "sentra-pushx,lint"})
    assert code != 0


def test_sentra_install_then_push(tmp_path: Path, remote: Repo) -> None:
    repo = init_repo(tmp_path / "fresh")
    repo.add_remote(remote)
    proc = sentra(["install", "--hook", "pre-push"], repo.path)
    assert proc.returncode == 0, proc.stderr
    assert "pre-push hook installed" in proc.stdout
    script = (repo.path / ".git" / "hooks" / "pre-push").read_text(encoding="utf-8")
    assert script.startswith("#!/bin/sh\n")
    assert 'hook pre-push "$@"' in script  # git's remote name and URL pass through
    sha = leak(repo)  # a first push: a new branch on an empty remote
    code, err = push(repo, "main")
    assert code != 0
    assert f"commit {sha[:12]}" in err
    assert remote_head(remote) == ""


# --- the pre-commit framework's manifest -------------------------------------------------------------


def test_manifest_has_the_push_hook() -> None:
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    by_id = {h["id"]: h for h in hooks}
    assert set(by_id) == {"sentra", "sentra-push"}
    push_hook = by_id["sentra-push"]
    assert push_hook["entry"] == "sentra hook pre-push"
    assert push_hook["stages"] == ["pre-push"]
    assert push_hook["pass_filenames"] is False
    assert push_hook["always_run"] is True
    assert push_hook["language"] == "python"
    assert by_id["sentra"]["stages"] == ["pre-commit"]
