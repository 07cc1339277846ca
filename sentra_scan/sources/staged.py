"""The staged diff: what `git commit` would add. Honours GIT_DIR, GIT_INDEX_FILE
(`git commit <paths>`) and worktrees by running git itself in the caller's environment.

Measured (bench/README.md): `git diff --cached` as a subprocess costs ~5 ms, importing
pygit2 alone ~150 ms, so the hook's hot path uses the git command.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sentra_scan.model import Fragment, Skipped
from sentra_scan.sources.diffparse import DiffParser
from sentra_scan.sources.gitcmd import git_lines

DIFF_ARGS = (
    "diff",
    "--cached",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-relative",
    "--unified=0",
    "--find-renames",
    "--diff-filter=d",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--ignore-submodules=none",
)


class StagedSource:
    def __init__(self, cwd: Path | None = None, *, max_file_size: int) -> None:
        self.cwd = cwd
        self.max_file_size = max_file_size

    def items(self) -> Iterator[Fragment | Skipped]:
        parser = DiffParser(max_file_size=self.max_file_size)
        yield from parser.parse(git_lines(DIFF_ARGS, self.cwd))
