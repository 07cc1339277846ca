"""Test helpers: hermetic git repositories built in temp dirs, canary secrets, running the CLI.

Every repository here is real git, with a fixed identity and no access to the user's
config (HOME and XDG dirs point into the test's temp dir; see conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sentra_scan.ruleset.examples import expand

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"


def canary_github_token(seed: str = "canary") -> str:
    """A GitHub-format token with a valid checksum, generated at test time (never on disk)."""
    return expand("ghp_{{github:36}}", seed)


def canary_aws_key_id(seed: str = "canary") -> str:
    return expand("AKIA{{upalnum:16}}", seed)


def run(cmd: list[str], cwd: Path | None = None, *, check: bool = True, env: dict[str, str] | None = None,
        input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, env=env, input=input, check=False)
    result = subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def sentra(args: list[str], cwd: Path, *, env: dict[str, str] | None = None,
           input: bytes | None = None) -> subprocess.CompletedProcess[str]:
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


def init_repo(path: Path, *, branch: str = "main") -> Repo:
    path.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q", "-b", branch, str(path)])
    return Repo(path)
