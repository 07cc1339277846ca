"""Files and directories (no git needed), and stdin.

A directory inside a git work tree is listed with git (tracked and untracked files, not
the ignored ones) unless `respect_gitignore` is off; `.git` directories are never read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from sentra_scan.model import Fragment, Skipped, SkipReason

BINARY_SNIFF = 8192


def fragment_from_bytes(path: str, data: bytes) -> Fragment | Skipped:
    if b"\0" in data[:BINARY_SNIFF]:
        return Skipped(path, SkipReason.BINARY)
    text = data.decode("utf-8", "replace")
    lines = tuple(text.split("\n"))
    if lines and lines[-1] == "":
        lines = lines[:-1]
    lines = tuple(line[:-1] if line.endswith("\r") else line for line in lines)
    return Fragment(path, lines, tuple(range(1, len(lines) + 1)))


def _git_listed(directory: Path) -> list[Path] | None:
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--full-name", "."],
            cwd=directory,
            capture_output=True,
            check=False,
        )
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=directory, capture_output=True, check=False)
    except OSError:
        return None
    if proc.returncode != 0 or top.returncode != 0:
        return None
    root = Path(top.stdout.decode().strip())
    names = [n for n in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    return [root / n for n in dict.fromkeys(names)]


def _walk(directory: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            yield Path(dirpath) / name


class FileSource:
    def __init__(self, paths: Sequence[Path], *, max_file_size: int, respect_gitignore: bool = True) -> None:
        self.paths = paths
        self.max_file_size = max_file_size
        self.respect_gitignore = respect_gitignore

    def _files(self) -> Iterator[tuple[Path, bool]]:
        """(path, named): a file named by the user is read whatever it is (a symlink, a pipe
        such as `<(cmd)`); one found in a directory only when it is a regular file."""
        for path in self.paths:
            if path.is_dir():
                listed = _git_listed(path) if self.respect_gitignore else None
                for found in listed if listed is not None else _walk(path):
                    yield found, False
            else:
                yield path, True

    def items(self) -> Iterator[Fragment | Skipped]:
        cwd = Path.cwd()
        for path, named in self._files():
            shown = os.path.relpath(path, cwd) if path.is_absolute() else str(path)
            shown = shown.replace(os.sep, "/")
            # Found in a directory: no symlinks, no submodule (a directory), no FIFO (would block).
            if not path.exists() or (not named and (path.is_symlink() or not path.is_file())):
                continue
            try:
                size = path.stat().st_size
                if size > self.max_file_size:
                    yield Skipped(shown, SkipReason.TOO_LARGE, f"{size} bytes > {self.max_file_size}")
                    continue
                with path.open("rb") as fh:
                    data = fh.read(self.max_file_size + 1)  # a pipe's size is 0 until it is read
            except OSError as exc:
                yield Skipped(shown, SkipReason.UNREADABLE, exc.strerror or "cannot read")
                continue
            if len(data) > self.max_file_size:
                yield Skipped(shown, SkipReason.TOO_LARGE, f"more than {self.max_file_size} bytes")
                continue
            yield fragment_from_bytes(shown, data)


class StdinSource:
    def __init__(self, *, name: str = "<stdin>", max_file_size: int, stream: BinaryIO | None = None) -> None:
        self.name = name
        self.max_file_size = max_file_size
        self.stream = stream

    def items(self) -> Iterator[Fragment | Skipped]:
        stream = self.stream or sys.stdin.buffer
        data = stream.read(self.max_file_size + 1)
        if len(data) > self.max_file_size:
            yield Skipped(self.name, SkipReason.TOO_LARGE, f"more than {self.max_file_size} bytes")
            return
        yield fragment_from_bytes(self.name, data)
