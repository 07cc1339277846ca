"""The staged diff: what `git commit` would add. Honours GIT_DIR, GIT_INDEX_FILE
(`git commit <paths>`) and worktrees by running git itself in the caller's environment.

Measured (bench/README.md): `git diff --cached` as a subprocess costs ~5 ms, importing
pygit2 alone ~150 ms, so the hook's hot path uses the git command.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sentra_scan.errors import GitError
from sentra_scan.model import Fragment, Skipped, SkipReason
from sentra_scan.sources.diffparse import DiffParser
from sentra_scan.sources.gitcmd import git_lines, toplevel

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
        binary: dict[str, Skipped] = {}
        try:
            for item in DiffParser(max_file_size=self.max_file_size).parse(git_lines(DIFF_ARGS, self.cwd)):
                if isinstance(item, Skipped) and item.reason is SkipReason.BINARY:
                    binary[item.path] = item
                else:
                    yield item
        except GitError:
            toplevel(self.cwd)  # outside a work tree git's own message is obscure: say so plainly
            raise
        if binary:
            yield from self._attribute_binaries(binary)

    def _attribute_binaries(self, binary: dict[str, Skipped]) -> Iterator[Fragment | Skipped]:
        """A `-diff` or `binary` attribute (common on lock files and minified code) makes git
        call any file binary. Diff those files again as text; the parser still skips the ones
        whose added lines hold a NUL byte. Costs one more git run, only when a binary is staged."""
        parser = DiffParser(max_file_size=self.max_file_size)
        args = (*DIFF_ARGS, "--text", "--", ":(top,attr:-diff)")
        for item in parser.parse(git_lines(args, self.cwd)):
            if binary.pop(item.path, None) is not None:
                yield item
        yield from binary.values()
