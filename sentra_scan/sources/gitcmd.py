"""Running the `git` command: one place for the environment and the error messages."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from sentra_scan.errors import GitError

# Settings a user's config could set that would change what we parse.
FIXED_CONFIG = ("-c", "core.quotepath=off", "-c", "color.ui=never", "-c", "diff.noprefix=false")


def git(args: Sequence[str], cwd: Path | None = None, *, check: bool = True) -> str:
    proc = subprocess.run(["git", *FIXED_CONFIG, *args], cwd=cwd, capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise GitError(_message(args, proc.stderr))
    return proc.stdout.decode("utf-8", "replace")


class Started:
    """A git command started now, its output taken later (`result`): the caller does other
    work meanwhile (`sentra audit` loads its rules and opens the ledger while git lists the
    commits)."""

    def __init__(self, args: Sequence[str], cwd: Path | None = None) -> None:
        self.args = list(args)
        self._proc = subprocess.Popen(
            ["git", *FIXED_CONFIG, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def result(self) -> str:
        out, err = self._proc.communicate()
        if self._proc.returncode != 0:
            raise GitError(_message(self.args, err))
        return out.decode("utf-8", "replace")


def git_lines(args: Sequence[str], cwd: Path | None = None) -> Iterator[bytes]:
    """Stream git's output line by line; raise GitError if it fails."""
    proc = subprocess.Popen(["git", *FIXED_CONFIG, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        yield from proc.stdout
    finally:
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        code = proc.wait()
    if code != 0:
        raise GitError(_message(args, err))


def _message(args: Sequence[str], stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip().splitlines()
    detail = text[-1] if text else "failed"
    return f"git {args[0]}: {detail}"


def toplevel(cwd: Path | None = None) -> Path:
    out = git(["rev-parse", "--show-toplevel"], cwd, check=False).strip()
    if not out:
        raise GitError(
            "not inside a git work tree",
            hint="run this in a repository, or scan files with 'sentra scan PATH'",
        )
    return Path(out)
