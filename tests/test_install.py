"""`sentra install` / `sentra uninstall`, checked by what matters: real `git commit`s."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.helpers import Repo, assert_no_leak, canary_github_token, init_repo, run, sentra

TOKEN = canary_github_token("install")
MASKED = TOKEN[:4] + "********"
MARKER_HOOK = '#!/bin/sh\necho "$(basename "$0") ran" >> "{marker}"\n'


@pytest.fixture(autouse=True)
def _no_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about what is scanned, not about the encrypted ledger (test_hooks keeps
    the default): no key-source probe on every blocked commit."""
    monkeypatch.setenv("SENTRA_NO_RECORD", "1")


def commit(repo: Repo, message: str = "change", *args: str, cwd: Path | None = None) -> tuple[int, str]:
    """A real `git commit` (hooks on), as a developer would type it."""
    proc = run(["git", "commit", "-m", message, *args], cwd or repo.path, check=False)
    assert_no_leak(proc, TOKEN)
    return proc.returncode, proc.stdout + proc.stderr


def count(repo: Repo) -> int:
    return int(repo.git("rev-list", "--count", "HEAD").strip())


def install(cwd: Path, *args: str) -> str:
    proc = sentra(["install", *args], cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def uninstall(cwd: Path, *args: str) -> str:
    proc = sentra(["uninstall", *args], cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def user_hook(path: Path, marker: Path, *, fail: bool = False) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = MARKER_HOOK.format(marker=marker) + ("exit 3\n" if fail else "")
    path.write_text(text)
    path.chmod(0o755)
    return text


def assert_blocked(repo: Repo, path: str, line: int, *, cwd: Path | None = None) -> None:
    before = count(repo)
    code, out = commit(repo, "leak", cwd=cwd)
    assert code != 0, out
    assert f"{path}:{line}:" in out
    assert "github-pat" in out
    assert MASKED in out
    assert count(repo) == before


@pytest.fixture
def based(repo: Repo) -> Repo:
    repo.commit_files({"README.md": "# readme\n"})
    return repo


def stage_secret(repo: Repo, rel: str = "app.py") -> None:
    repo.stage(rel, f'x = 1\nTOKEN = "{TOKEN}"\n')


def stage_clean(repo: Repo, rel: str = "clean.py") -> None:
    repo.stage(rel, "y = 2\n")


# --- the repository's own hook ---------------------------------------------------------------


def test_install_writes_an_executable_hook(based: Repo) -> None:
    out = install(based.path)
    hook = based.path / ".git" / "hooks" / "pre-commit"
    assert str(hook) in out
    assert hook.stat().st_mode & stat.S_IXUSR
    assert hook.read_text().startswith("#!/bin/sh\n# sentra-scan hook")


def test_installed_hook_blocks_a_secret_and_lets_clean_commits_through(based: Repo) -> None:
    install(based.path)
    stage_secret(based)
    assert_blocked(based, "app.py", 2)

    based.git("reset", "-q")
    stage_clean(based)
    code, out = commit(based)
    assert code == 0, out
    assert count(based) == 2


def test_skip_env_lets_one_commit_through(based: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    install(based.path)
    stage_secret(based)
    monkeypatch.setenv("SKIP", "sentra")
    code, out = commit(based)
    assert code == 0, out


def test_installed_hook_works_from_a_subdirectory_and_a_linked_worktree(based: Repo, tmp_path: Path) -> None:
    install(based.path / ".git")  # even from inside the git directory
    based.stage("pkg/sub/mod.py", f't = "{TOKEN}"\n')
    assert_blocked(based, "pkg/sub/mod.py", 1, cwd=based.path / "pkg" / "sub")

    tree = based.worktree_add(tmp_path / "tree", "feature")  # hooks live in the common dir
    stage_secret(tree, "feature.py")
    assert_blocked(tree, "feature.py", 2)


def test_commit_with_paths_scans_only_those_paths(based: Repo) -> None:
    install(based.path)
    based.commit_files({"clean.py": "x = 1\n"})
    stage_secret(based, "leak.py")
    based.write("clean.py", "x = 2\n")
    code, out = commit(based, "only clean.py", "clean.py")
    assert code == 0, out
    assert_blocked(based, "leak.py", 2)


def test_commit_all_scans_modified_tracked_files(based: Repo) -> None:
    install(based.path)
    based.commit_files({"app.py": "x = 1\n"})
    based.write("app.py", f'x = 1\nt = "{TOKEN}"\n')  # not staged: `commit -a` stages it
    code, out = commit(based, "all", "-a")
    assert code != 0
    assert "app.py:2:" in out


def test_install_twice_is_idempotent(based: Repo) -> None:
    install(based.path)
    hooks = based.path / ".git" / "hooks"
    first = (hooks / "pre-commit").read_text()
    out = install(based.path)
    assert "updated" in out
    assert (hooks / "pre-commit").read_text() == first
    assert not (hooks / "pre-commit.sentra-chained").exists()
    stage_secret(based)
    assert_blocked(based, "app.py", 2)


def test_uninstall(based: Repo) -> None:
    install(based.path)
    assert "removed" in uninstall(based.path)
    assert not (based.path / ".git" / "hooks" / "pre-commit").exists()
    assert "not installed" in uninstall(based.path)
    stage_secret(based)
    code, _ = commit(based)
    assert code == 0


def test_pre_push_hook(based: Repo, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    run(["git", "init", "-q", "--bare", str(remote)])
    based.git("remote", "add", "origin", str(remote))
    based.git("push", "-q", "origin", "main")
    out = install(based.path, "--hook", "pre-push")
    assert "pre-push" in out
    hook = based.path / ".git" / "hooks" / "pre-push"
    assert "hook pre-push" in hook.read_text()
    assert not (based.path / ".git" / "hooks" / "pre-commit").exists()

    based.commit_files({"app.py": f'x = 1\nTOKEN = "{TOKEN}"\n'}, "leak")  # --no-verify: no pre-commit
    proc = run(["git", "push", "origin", "main"], based.path, check=False)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode != 0
    assert "app.py:2:" in proc.stderr
    assert run(["git", "rev-parse", "main"], remote).stdout != based.head() + "\n"

    uninstall(based.path, "--hook", "pre-push")
    assert not hook.exists()


# --- an existing hook is kept ----------------------------------------------------------------


def test_existing_hook_is_chained_and_restored(based: Repo, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    hook = based.path / ".git" / "hooks" / "pre-commit"
    original = user_hook(hook, marker)

    out = install(based.path)
    assert "pre-commit.sentra-chained" in out
    assert install(based.path)  # twice: still one chained hook, not ourselves
    assert (hook.parent / "pre-commit.sentra-chained").read_text() == original

    stage_clean(based)
    code, out = commit(based)
    assert code == 0, out
    assert marker.read_text() == "pre-commit.sentra-chained ran\n"

    stage_secret(based)
    assert_blocked(based, "app.py", 2)
    assert marker.read_text().count("ran") == 2  # the user's hook ran first, then Sentra

    uninstall(based.path)
    assert hook.read_text() == original
    assert hook.stat().st_mode & stat.S_IXUSR
    assert not (hook.parent / "pre-commit.sentra-chained").exists()
    code, out = commit(based)  # Sentra is gone; the user's hook is back
    assert code == 0, out
    assert marker.read_text().endswith("pre-commit ran\n")


def test_failing_existing_hook_still_blocks(based: Repo, tmp_path: Path) -> None:
    user_hook(based.path / ".git" / "hooks" / "pre-commit", tmp_path / "marker", fail=True)
    install(based.path)
    stage_clean(based)
    code, _ = commit(based)
    assert code != 0
    assert (tmp_path / "marker").exists()


def test_sample_hooks_are_left_alone(based: Repo) -> None:
    hooks = based.path / ".git" / "hooks"
    samples = sorted(p.name for p in hooks.glob("*.sample"))
    install(based.path)
    uninstall(based.path)
    assert sorted(p.name for p in hooks.glob("*.sample")) == samples
    assert not (hooks / "pre-commit").exists()


# --- core.hooksPath --------------------------------------------------------------------------


@pytest.mark.parametrize("configured", [".githooks", "ABSOLUTE"])
def test_core_hooks_path_is_respected(based: Repo, tmp_path: Path, configured: str) -> None:
    hooks_dir = based.path / ".githooks" if configured == ".githooks" else tmp_path / "shared-hooks"
    based.git("config", "core.hooksPath", str(hooks_dir) if configured == "ABSOLUTE" else configured)
    out = install(based.path / ".git")
    assert str(hooks_dir / "pre-commit") in out
    assert not (based.path / ".git" / "hooks" / "pre-commit").exists()
    stage_secret(based)
    assert_blocked(based, "app.py", 2)
    uninstall(based.path)
    assert not (hooks_dir / "pre-commit").exists()


# --- --global --------------------------------------------------------------------------------


def global_hooks_path(repo: Repo) -> str:
    return repo.git("config", "--global", "--get", "core.hooksPath").strip()


def test_global_install(based: Repo, hermetic_env: Path, tmp_path: Path) -> None:
    home = hermetic_env
    marker = tmp_path / "marker"
    user_hook(based.path / ".git" / "hooks" / "pre-commit", marker)  # the repository's own hook

    out = install(based.path, "--global")
    hook = home / ".config" / "sentra" / "hooks" / "pre-commit"
    assert str(hook) in out
    assert hook.is_file()
    assert Path(global_hooks_path(based)) == hook.parent
    assert f"hooksPath = {hook.parent}" in (home / ".gitconfig").read_text()

    stage_clean(based)
    code, out = commit(based)
    assert code == 0, out
    assert marker.read_text() == "pre-commit ran\n"  # the repository's own hook still ran

    stage_secret(based)
    assert_blocked(based, "app.py", 2)
    assert marker.read_text().count("ran") == 2


def test_global_install_covers_new_repositories(based: Repo, tmp_path: Path) -> None:
    install(tmp_path, "--global")  # from anywhere, no repository needed
    other = init_repo(tmp_path / "other")
    stage_secret(other)
    assert_blocked_unborn(other)


def assert_blocked_unborn(repo: Repo) -> None:
    code, out = commit(repo)
    assert code != 0
    assert "app.py:2:" in out
    assert repo.git("rev-parse", "--verify", "-q", "HEAD", check=False) == ""


def test_global_install_twice_is_idempotent(based: Repo, hermetic_env: Path) -> None:
    install(based.path, "--global")
    hook = hermetic_env / ".config" / "sentra" / "hooks" / "pre-commit"
    first = hook.read_text()
    assert "updated" in install(based.path, "--global")
    assert hook.read_text() == first
    assert not hook.with_name("pre-commit.sentra-chained").exists()


def test_global_install_into_an_existing_global_hooks_dir(based: Repo, tmp_path: Path) -> None:
    mine = tmp_path / "my-hooks"
    marker = tmp_path / "marker"
    original = user_hook(mine / "pre-commit", marker)
    based.git("config", "--global", "core.hooksPath", str(mine))
    install(based.path, "--global")
    assert (mine / "pre-commit.sentra-chained").read_text() == original
    stage_secret(based)
    assert_blocked(based, "app.py", 2)
    assert marker.exists()
    uninstall(based.path, "--global")
    assert (mine / "pre-commit").read_text() == original
    assert global_hooks_path(based) == str(mine)  # the user's own setting stays


def test_repository_install_after_global_install_keeps_the_global_hook_intact(
    based: Repo, hermetic_env: Path, tmp_path: Path
) -> None:
    """With a global core.hooksPath, `sentra install` in a repository must not turn the
    global hook into one that no longer runs each repository's own hooks."""
    marker = tmp_path / "marker"
    user_hook(based.path / ".git" / "hooks" / "pre-commit", marker)
    install(based.path, "--global")
    install(based.path)
    stage_clean(based)
    code, out = commit(based)
    assert code == 0, out
    assert marker.exists(), "the repository's own hook no longer runs"
    stage_secret(based)
    assert_blocked(based, "app.py", 2)


def test_repository_uninstall_does_not_remove_the_global_hook(based: Repo, hermetic_env: Path) -> None:
    install(based.path, "--global")
    proc = sentra(["uninstall"], based.path)
    assert proc.returncode == 2
    assert "--global" in proc.stderr
    assert (hermetic_env / ".config" / "sentra" / "hooks" / "pre-commit").is_file()


def test_global_uninstall_gives_repositories_their_hooks_back(based: Repo, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    user_hook(based.path / ".git" / "hooks" / "pre-commit", marker)
    install(based.path, "--global")
    uninstall(based.path, "--global")
    stage_clean(based)
    code, out = commit(based)
    assert code == 0, out
    assert marker.exists(), "core.hooksPath still hides the repository's own hooks"


# --- errors ----------------------------------------------------------------------------------


def test_install_outside_a_repository_is_exit_5(tmp_path: Path) -> None:
    proc = sentra(["install"], tmp_path)
    assert proc.returncode == 5
    assert "not inside a git repository" in proc.stderr
    assert "--global" in proc.stderr


def test_install_outside_a_repository_with_a_global_hooks_path_is_still_exit_5(based: Repo, tmp_path: Path) -> None:
    install(based.path, "--global")
    outside = tmp_path / "outside"
    outside.mkdir()
    proc = sentra(["install"], outside)
    assert proc.returncode == 5, proc.stdout


def test_hook_runs_with_the_installing_interpreter(based: Repo) -> None:
    """The hook calls this installation of Sentra, whatever PATH the commit runs with."""
    install(based.path)
    stage_secret(based)
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    proc = run(["git", "commit", "-m", "leak"], based.path, check=False, env=env)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode != 0
    assert "app.py:2:" in proc.stderr
