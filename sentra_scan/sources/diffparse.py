"""Parse unified diffs as git prints them (`-U0`, fixed `a/` `b/` prefixes) into fragments
of added lines, each with its line number in the new file.

Deleted files, binary files, submodules (mode 160000) and symlinks (120000) give no
fragment; binary files and files over the size limit are reported as skipped. A file is
binary when git says so, or when one of its added lines holds a NUL byte (`--text` diffs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sentra_scan.model import CommitInfo, Fragment, Skipped, SkipReason

_SKIP_MODES = ("160000", "120000")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def unquote_path(text: str) -> str:
    """Undo git's C-style quoting of a path (`"dir/caf\\303\\251.txt"`)."""
    if not (len(text) >= 2 and text[0] == '"' and text[-1] == '"'):
        return text
    body = text[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567" and i + 3 < len(body) + 1:
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, ord(nxt)))
            i += 2
            continue
        out.extend(c.encode("utf-8", "surrogateescape"))
        i += 1
    return out.decode("utf-8", "replace")


def _strip_prefix(path: str, prefix: str) -> str:
    path = unquote_path(path.rstrip("\t"))
    return path[len(prefix) :] if path.startswith(prefix) else path


@dataclass
class _FileState:
    path: str | None = None
    old_path: str | None = None
    skip_mode: bool = False
    deleted: bool = False
    lines: list[str] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    size: int = 0
    too_large: bool = False
    binary: bool = False


class DiffParser:
    """Feed it the diff's lines (bytes); it yields `Fragment` and `Skipped` items."""

    def __init__(self, *, max_file_size: int, commit: CommitInfo | None = None) -> None:
        self.max_file_size = max_file_size
        self.commit = commit

    def parse(self, lines: Iterable[bytes]) -> Iterator[Fragment | Skipped]:
        state = _FileState()
        next_line = 0
        in_hunk = False
        for raw in lines:
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if in_hunk and line[:1] in ("+", "-", " ", "\\"):
                if line[0] == "+":
                    self._add(state, line[1:], next_line)
                    next_line += 1
                elif line[0] == " ":
                    next_line += 1
                continue
            in_hunk = False
            if line.startswith("diff --git "):
                yield from self._flush(state)
                state = _FileState()
            elif line.startswith("@@ "):
                next_line = _hunk_start(line)
                in_hunk = not (state.skip_mode or state.deleted)
            elif line.startswith("+++ "):
                target = line[4:]
                state.path = None if target == "/dev/null" else _strip_prefix(target, "b/")
            elif line.startswith("--- "):
                source = line[4:]
                state.old_path = None if source == "/dev/null" else _strip_prefix(source, "a/")
            elif line.startswith(("new file mode ", "new mode ", "old mode ", "deleted file mode ")):
                mode = line.rsplit(" ", 1)[-1]
                if line.startswith("deleted"):
                    state.deleted = True
                elif not line.startswith("old"):
                    state.skip_mode = mode in _SKIP_MODES
            elif line.startswith("index "):
                parts = line.split(" ")
                if len(parts) == 3:
                    state.skip_mode = parts[2] in _SKIP_MODES
            elif line.startswith(("rename to ", "copy to ")):
                state.path = unquote_path(line.split(" to ", 1)[1])
            elif line.startswith("Binary files "):
                path = state.path or _binary_path(line)  # state.path: set by "rename to"
                if path is not None and not state.deleted:
                    yield Skipped(path, SkipReason.BINARY, "", self._commit_id())
                state.skip_mode = True
        yield from self._flush(state)

    def _commit_id(self) -> str | None:
        return self.commit.id if self.commit else None

    def _add(self, state: _FileState, text: str, number: int) -> None:
        if state.binary:
            return
        if "\0" in text:
            state.binary = True
            state.too_large = False
            state.lines.clear()
            state.numbers.clear()
            return
        if state.too_large:
            return
        state.size += len(text) + 1
        if state.size > self.max_file_size:
            state.too_large = True
            state.lines.clear()
            state.numbers.clear()
            return
        state.lines.append(text)
        state.numbers.append(number)

    def _flush(self, state: _FileState) -> Iterator[Fragment | Skipped]:
        if state.path is None:
            return
        if state.binary:
            yield Skipped(state.path, SkipReason.BINARY, "", self._commit_id())
        elif state.too_large:
            detail = f"added lines exceed {self.max_file_size} bytes"
            yield Skipped(state.path, SkipReason.TOO_LARGE, detail, self._commit_id())
        elif state.lines:
            yield Fragment(state.path, tuple(state.lines), tuple(state.numbers), self.commit)


def _hunk_start(header: str) -> int:
    # "@@ -a,b +c,d @@ ..." -> c
    try:
        plus = header.split(" ")[2]
        return int(plus[1:].split(",")[0])
    except (IndexError, ValueError):
        return 1


def _binary_path(line: str) -> str | None:
    # "Binary files a/x and b/y differ" / "Binary files /dev/null and b/y differ". Paths may
    # hold " and " themselves: take the new side by its shape, not by the last " and ".
    body = line[len("Binary files ") :]
    if body.endswith(" differ"):
        body = body[: -len(" differ")]
    if body.endswith(" and /dev/null"):
        return None
    if body.startswith("/dev/null and "):
        return _strip_prefix(body[len("/dev/null and ") :], "b/")
    half = (len(body) - len(" and ")) // 2
    old, sep, new = body[:half], body[half : half + 5], body[half + 5 :]
    if sep == " and " and _strip_prefix(old, "a/") == _strip_prefix(new, "b/"):
        return _strip_prefix(new, "b/")
    _, sep, new = body.rpartition(" and ")  # a rename: the path came from "rename to" already
    return _strip_prefix(new, "b/") if sep else None
