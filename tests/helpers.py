"""Test helpers: hermetic git repositories built in temp dirs, canary secrets, running the CLI.

Every repository here is real git, with a fixed identity and no access to the user's
config (HOME and XDG dirs point into the test's temp dir; see conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentra_scan.ruleset.examples import expand

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"


def canary_github_token(seed: str = "canary") -> str:
    """A GitHub-format token with a valid checksum, generated at test time (never on disk)."""
    return expand("ghp_{{github:36}}", seed)


def canary_aws_key_id(seed: str = "canary") -> str:
    return expand("AKIA{{upalnum:16}}", seed)


def run(
    cmd: list[str],
    cwd: Path | None = None,
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, env=env, input=input, check=False)
    result = subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def sentra(
    args: list[str], cwd: Path, *, env: dict[str, str] | None = None, input: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI as a separate process, the way a hook or a user would."""
    return run([sys.executable, "-m", "sentra_scan", *args], cwd, check=False, env=env, input=input)


@dataclass
class Repo:
    """A real git repository in a temp dir, with helpers to build history."""

    path: Path

    def git(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
        full_env = None
        if env:
            full_env = {**os.environ, **env}
        return run(["git", *args], self.path, check=check, env=full_env).stdout

    def write(self, rel: str, content: str | bytes) -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        return p

    def stage(self, rel: str, content: str | bytes) -> Path:
        p = self.write(rel, content)
        self.git("add", "--", rel)
        return p

    def commit(self, message: str = "commit", *, allow_empty: bool = False) -> str:
        args = ["commit", "-q", "--no-verify", "-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self.git(*args)
        return self.git("rev-parse", "HEAD").strip()

    def commit_files(self, files: dict[str, str | bytes], message: str = "commit") -> str:
        for rel, content in files.items():
            self.stage(rel, content)
        return self.commit(message)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    # --- more history shapes (added for the sources, hooks and install tests) ---

    def rename(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", "--", old, new)

    def remove(self, rel: str) -> None:
        self.git("rm", "-q", "--", rel)

    def symlink(self, rel: str, target: str, *, stage: bool = True) -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)
        if stage:
            self.git("add", "--", rel)
        return p

    def branch(self, name: str, *, checkout: bool = True) -> None:
        if checkout:
            self.git("switch", "-q", "-c", name)
        else:
            self.git("branch", name)

    def switch(self, name: str) -> None:
        self.git("switch", "-q", name)

    def merge(self, branch: str, message: str = "merge") -> str:
        self.git("merge", "-q", "--no-ff", "--no-verify", "-m", message, branch)
        return self.head()

    def add_submodule(self, source: Repo, rel: str) -> None:
        """A real submodule (clone of `source`, which needs a commit), staged with .gitmodules."""
        self.git("-c", "protocol.file.allow=always", "submodule", "--quiet", "add", str(source.path), rel)

    def worktree_add(self, path: Path, branch: str) -> Repo:
        """A linked worktree on a new branch; its `.git` is a file pointing back here."""
        self.git("worktree", "add", "-q", "-b", branch, str(path))
        return Repo(path)

    def shallow_clone(self, dest: Path, depth: int = 1) -> Repo:
        run(["git", "clone", "-q", f"--depth={depth}", f"file://{self.path}", str(dest)])
        return Repo(dest)

    # --- commit ranges, pushes and audits (added for the history tests) ---

    def proc(
        self, *args: str, env: dict[str, str] | None = None, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run git here and return the whole result, exit code and stderr included (no check)."""
        return run(["git", *args], self.path, check=False, env={**os.environ, **(env or {})}, input=input)

    def commit_at(self, date: str, message: str = "commit") -> str:
        """Commit with this author and committer date (ISO 8601), to order history."""
        self.git(
            "commit", "-q", "--no-verify", "-m", message, env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        )
        return self.head()

    def tag(self, name: str, rev: str = "HEAD") -> None:
        self.git("tag", name, rev)

    def add_remote(self, remote: Repo, name: str = "origin") -> None:
        self.git("remote", "add", name, str(remote.path))


def init_repo(path: Path, *, branch: str = "main") -> Repo:
    path.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q", "-b", branch, str(path)])
    return Repo(path)


def init_bare(path: Path, *, branch: str = "main") -> Repo:
    """A bare repository, e.g. the remote that pushes go to (`Repo.git` runs in its git dir)."""
    path.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q", "--bare", "-b", branch, str(path)])
    return Repo(path)


VENV_BIN = Path(sys.executable).parent


def assert_no_leak(proc: subprocess.CompletedProcess[str], *secrets: str) -> None:
    """The full secret must never reach a command's output (only its masked form)."""
    for secret in secrets:
        assert secret not in proc.stdout, "secret leaked to stdout"
        assert secret not in proc.stderr, "secret leaked to stderr"


def sentra_json(
    args: list[str], cwd: Path, *, env: dict[str, str] | None = None, input: bytes | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the CLI with `--format json` appended and parse its report (stdout)."""
    proc = sentra([*args, "--format", "json"], cwd, env=env, input=input)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"no JSON report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from exc
    return proc, doc


def copy_checkout(dest: Path) -> Path:
    """Copy this checkout's files (tracked and untracked, not ignored: no .venv, .git or caches)
    into `dest`, and commit them there: a git repository tools such as pre-commit can clone."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO_ROOT).stdout
    dest.mkdir(parents=True, exist_ok=True)
    for name in filter(None, listed.split("\0")):
        src = REPO_ROOT / name
        if not src.is_file():  # deleted but still in the index
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    run(["git", "init", "-q", "-b", "main", str(dest)])
    # Self-contained identity and config: session fixtures run before the hermetic env is set.
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.test",
        "GIT_COMMITTER_NAME": "Test Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.test",
    }
    run(["git", "add", "-A"], dest, env=env)
    run(["git", "commit", "-q", "--no-verify", "-m", "snapshot of the checkout"], dest, env=env)
    return dest
