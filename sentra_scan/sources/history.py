"""Commit history as fragments: `git log -p` streamed, with a keyword prefilter over the raw
stream so that Python only parses the hunks that can hold a secret.

The stream is read in large chunks and cut at file boundaries. The whole chunk is
lower-cased as bytes (ASCII only, so offsets stay put) and one Aho-Corasick pass finds
every keyword; a hit counts only on an added line. Each hunk with a hit becomes one
fragment: its added lines, their numbers in the new file, the commit (id, author, date).

Merge commits are diffed in git's dense combined form (`--cc`): only lines that are new
against every parent, i.e. what the merge itself introduced, are scanned. They come from a
`git log --merges` of their own, without rename detection (a merge's diff against its
second parent holds hundreds of added and deleted files, and pairing them up was half of
what git spent on merges), read on a thread while the main stream is scanned; the main
stream leaves merges out, and their fragments come after it (the history scan puts every
finding back in log order). With `first_parent`, a merge is diffed against its first
parent in the main stream. A change copied into several commits (cherry-picks, rebased
copies) is scanned in each: the log runs newest first, and an audit must still name the
oldest copy as the one that introduced a secret.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import re
import subprocess
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

from sentra_scan.errors import GitError
from sentra_scan.model import CommitInfo, Fragment, Skipped, SkipReason
from sentra_scan.sources.diffparse import unquote_path
from sentra_scan.sources.gitcmd import FIXED_CONFIG

COMMIT_MARK = b"\n\x1e"
_HUNK_RE = re.compile(rb"\n@@")
_FILE_RE = re.compile(rb"\ndiff --")
_HEAD_RE = re.compile(re.escape(COMMIT_MARK))
_TARGET_RE = re.compile(rb"\n\+\+\+ ([^\n]*)")
_PLUS = ord("+")
LOG_FORMAT = "%x1e%H %P%x1f%an%x1f%ae%x1f%aI"
LOG_ARGS = (
    "log",
    "-p",
    "--unified=0",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--full-index",
    "--find-renames",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--ignore-submodules=none",
    f"--format={LOG_FORMAT}",
)
# git's pack windows and delta-base cache, bounded: on a 100k-commit history `git log -p`
# otherwise maps and caches ~450 MB; measured no slower on batches of a few thousand commits.
MEMORY_CONFIG = (
    "-c",
    "core.packedGitWindowSize=16m",
    "-c",
    "core.packedGitLimit=64m",
    "-c",
    "core.deltaBaseCacheLimit=48m",
)
# The merges' own log runs beside the main one and reads little: smaller caches still (on a
# 100k-commit history 96 -> 47 MB, no slower).
MERGES_MEMORY_CONFIG = (
    "-c",
    "core.packedGitWindowSize=4m",
    "-c",
    "core.packedGitLimit=16m",
    "-c",
    "core.deltaBaseCacheLimit=8m",
)
MERGES_NICE = 5  # the merges' `git log`: a little below the main stream's priority
CHUNK = 8 * 1024 * 1024
BUDGET_CHUNK = 256 * 1024  # with a time budget, check the clock often
PREFETCH_CHUNK = 1024 * 1024
PREFETCH_MIN = 256 * 1024  # what the reader gathers before handing it over
PREFETCH_PAUSE = 0.002  # seconds the reader waits for a short read's pipe to fill
PIPE_SIZE = 1024 * 1024  # git's pipe (Linux's default is 64 KB): room to write ahead
MIN_READ = 1024 * 1024
_SKIP_MODES = (b"160000", b"120000")

# Finds keyword end offsets in a raw chunk of `git log -p` output (case-insensitively).
Prefilter = Callable[[bytes], Iterable[int]]


@dataclass
class HistoryStats:
    commits: int = 0
    bytes: int = 0
    hunks_parsed: int = 0
    commit_ids: list[str] = field(default_factory=list)
    stopped_early: bool = False


def _parse_commit(header: bytes) -> CommitInfo:
    # "\x1e<H> <P...>\x1f<an>\x1f<ae>\x1f<aI>"
    fields = header.lstrip(b"\x1e").decode("utf-8", "replace").split("\x1f")
    ids = fields[0].split()
    return CommitInfo(
        id=ids[0] if ids else "",
        author=fields[1] if len(fields) > 1 else "",
        email=fields[2] if len(fields) > 2 else "",
        date=fields[3] if len(fields) > 3 else "",
        parents=tuple(ids[1:]),
    )


@dataclass(frozen=True)
class _FileHeader:
    path: str | None
    blob_change: bytes
    columns: int  # 1 for a plain diff, N for a combined diff of N parents
    skip: bool


def _parse_file_header(text: bytes) -> _FileHeader:
    path: str | None = None
    blob_change = b""
    columns = 1
    skip = False
    for line in text.split(b"\n"):
        if line.startswith(b"diff --cc ") or line.startswith(b"diff --combined "):
            columns = 0  # from the hunk header
        elif line.startswith(b"+++ "):
            target = line[4:].decode("utf-8", "replace")
            path = None if target == "/dev/null" else unquote_path(target.rstrip("\t"))
            if path is not None and path.startswith("b/"):
                path = path[2:]
        elif line.startswith(b"index "):
            parts = line.split(b" ")
            blob_change = parts[1]
            if len(parts) > 2 and parts[2] in _SKIP_MODES:
                skip = True
        elif line.startswith((b"new file mode ", b"new mode ")):
            skip = line.rsplit(b" ", 1)[-1] in _SKIP_MODES
        elif line.startswith(b"deleted file mode "):
            skip = True
    return _FileHeader(path, blob_change, columns, skip)


def _hunk_fragment(seg: bytes, start: int, end: int, header: _FileHeader) -> tuple[list[str], list[int]]:
    """Added lines of the hunk at seg[start:end] (start at '@@'), with new-file numbers."""
    eol = seg.find(b"\n", start, end)
    head = seg[start : eol if eol >= 0 else end]
    at = len(head) - len(head.lstrip(b"@"))
    columns = header.columns or max(1, at - 1)
    try:
        ranges = head[at:].split(b" @@")[0].split()
        number = int(ranges[-1].lstrip(b"+").split(b",")[0])
    except (IndexError, ValueError):
        number = 1
    if eol < 0:
        return [], []
    if columns == 1:
        # Without context lines (-U0) a hunk is its removed lines, then its added lines,
        # numbered on from the new start: take the added block in one piece.
        plus = seg.find(b"\n+", eol, end)
        if plus < 0:
            return [], []
        block = seg[plus:end]
        if block.endswith(b"\n"):
            block = block[:-1]
        if b"\n-" not in block and b"\n " not in block and b"\n\\" not in block:
            text = block[2:].replace(b"\n+", b"\n").decode("utf-8", "replace")
            lines = text.split("\n")
            if "\r" in text:
                lines = [line[:-1] if line.endswith("\r") else line for line in lines]
            return lines, list(range(number, number + len(lines)))
    plus_prefix = b"+" * columns
    lines = []
    numbers: list[int] = []
    for raw in seg[eol + 1 : end].split(b"\n"):
        prefix = raw[:columns]
        if prefix == plus_prefix:
            line = raw[columns:]
            if line.endswith(b"\r"):
                line = line[:-1]
            lines.append(line.decode("utf-8", "replace"))
            numbers.append(number)
            number += 1
        elif b"-" not in prefix and not raw.startswith(b"\\"):
            number += 1
    return lines, numbers


class HistorySource:
    """Fragments from `git log -p` over `revs` (or exactly `commits`)."""

    def __init__(
        self,
        prefilter: Prefilter,
        *,
        repo: Path | None = None,
        revs: Iterable[str] = (),
        commits: Iterable[str] | None = None,
        max_file_size: int,
        progress: Callable[[int], None] | None = None,
        deadline: float | None = None,
        first_parent: bool = False,
        path_trigger: Callable[[str], bool] | None = None,
        merges_only: bool = False,
    ) -> None:
        self.prefilter = prefilter
        self.path_trigger = path_trigger
        self.repo = repo
        self.revs = list(revs)
        self.commits = list(commits) if commits is not None else None
        self.max_file_size = max_file_size
        self.progress = progress
        self.deadline = deadline
        self.first_parent = first_parent
        self.stats = HistoryStats()
        self._paths_seen: dict[bytes, bool] = {}
        self.merges_only = merges_only  # the merges' own `git log --merges --cc` (see _MergeReader)

    def _command(self) -> tuple[list[str], bytes | None]:
        args = ["git", *FIXED_CONFIG, *(MERGES_MEMORY_CONFIG if self.merges_only else MEMORY_CONFIG), *LOG_ARGS]
        if self.merges_only:
            args = [a if a != "--find-renames" else "--no-renames" for a in args]
            args += ["--merges", "--diff-merges=dense-combined"]
        elif self.first_parent:
            args += ["--first-parent", "--diff-merges=first-parent"]
        else:
            args.append("--diff-merges=off")
        if self.commits is not None:
            return [*args, "--no-walk=unsorted", "--stdin"], "\n".join(self.commits).encode() + b"\n"
        return [*args, *self.revs, "--"], None

    def items(self) -> Generator[Fragment | Skipped, None, None]:
        if self.commits is not None and not self.commits:
            return
        cmd, stdin = self._command()
        proc = subprocess.Popen(
            cmd,
            cwd=self.repo,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if self.merges_only:
            # The merges' log runs beside the main one, which is what the scan waits for: at
            # a lower priority it takes the CPU the main stream and the scan leave (flask
            # 1.06 -> 1.02 s); only a little lower, so that a loaded machine does not starve it.
            with contextlib.suppress(OSError, AttributeError):  # gone already; not POSIX
                os.setpriority(os.PRIO_PROCESS, proc.pid, MERGES_NICE)
        assert proc.stdout is not None
        assert proc.stderr is not None
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        prefetch = _Prefetch(proc.stdout) if self.deadline is None else None
        merges = _MergeReader(self._merges_source()) if not self.first_parent and not self.merges_only else None
        completed = False
        try:
            yield from self._read(prefetch if prefetch is not None else proc.stdout)
            if merges is not None:
                yield from self._merge_items(merges)
            completed = True
        finally:
            if merges is not None:
                merges.stop()
            if not completed and proc.poll() is None:
                proc.kill()  # the consumer stopped: git's reader thread then sees EOF
            if prefetch is not None:
                prefetch.stop()
            if self.stats.stopped_early and proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            err = proc.stderr.read()
            proc.stderr.close()
            code = proc.wait()
        if code != 0 and not self.stats.stopped_early:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git log: {lines[-1] if lines else 'failed'}")

    def _merges_source(self) -> HistorySource:
        return HistorySource(
            self.prefilter,
            repo=self.repo,
            revs=self.revs,
            commits=self.commits,
            max_file_size=self.max_file_size,
            deadline=self.deadline,
            path_trigger=self.path_trigger,
            merges_only=True,
        )

    def _merge_items(self, reader: _MergeReader) -> Iterator[Fragment | Skipped]:
        """The merges' fragments, after the main stream: those of the merges the main stream
        reached (all of them, unless a time budget stopped it), in its order."""
        found = reader.result()
        self.stats.hunks_parsed += reader.source.stats.hunks_parsed
        self.stats.bytes += reader.source.stats.bytes
        for commit_id in self.stats.commit_ids:
            yield from found.pop(commit_id, ())

    def _read(self, stream: IO[bytes] | _Prefetch) -> Iterator[Fragment | Skipped]:
        # With a time budget, take whatever git has produced so far (read1 does not wait
        # for a full chunk), so the clock is checked often.
        read = stream.read if self.deadline is None else getattr(stream, "read1", stream.read)
        buf = b"\n"
        commit: CommitInfo | None = None
        while True:
            seen = len(buf)  # no cut in buf[:seen] but at 0: search only what arrives
            if self.deadline is not None and time.monotonic() > self.deadline:
                self.stats.stopped_early = True
                if commit is not None and buf.startswith(b"\ndiff --") and self.stats.commit_ids[-1:] == [commit.id]:
                    self.stats.commit_ids.pop()  # its remaining files are unread: not scanned
                return
            chunk = read(CHUNK if self.deadline is None else min(CHUNK, BUDGET_CHUNK))
            if chunk:
                buf += chunk
                tail = max(1, seen - len(COMMIT_MARK) - 8)
                cut = max(buf.rfind(b"\ndiff --", tail), buf.rfind(COMMIT_MARK, tail))
                if cut <= 0:
                    continue
            else:
                cut = len(buf)
            seg, buf = buf[:cut], buf[cut:]
            self.stats.bytes += len(seg)
            commit = yield from self._segment(seg, commit)
            if not chunk:
                return

    def _segment(self, seg: bytes, commit: CommitInfo | None) -> Generator[Fragment | Skipped, None, CommitInfo | None]:
        # Every commit header, file header and hunk header of the segment, found once: the
        # owner of a hunk, its file and its end are then found by bisection, never by
        # searching (a big commit holds thousands of hunks).
        heads = [m.start() for m in _HEAD_RE.finditer(seg)]
        files = [m.start() for m in _FILE_RE.finditer(seg)]
        hunks = [m.start() for m in _HUNK_RE.finditer(seg)]
        infos: list[CommitInfo] = []
        for pos in heads:
            eol = seg.find(b"\n", pos + 1)
            infos.append(_parse_commit(seg[pos + 1 : eol if eol >= 0 else len(seg)]))
        for info in infos:
            self.stats.commits += 1
            self.stats.commit_ids.append(info.id)
        if self.progress is not None and infos:
            self.progress(self.stats.commits)
        last = infos[-1] if infos else commit
        found = self._hit_hunks(seg, hunks, files)
        if self.path_trigger is not None:
            self._path_hunks(seg, heads, files, hunks, found)
        headers: dict[int, _FileHeader] = {}
        for pos in sorted(found):
            f = bisect_right(files, pos) - 1
            if f < 0:
                continue
            file_start = files[f]
            header = headers.get(file_start)
            if header is None:
                # The header ends at the file's first hunk: an added line "++ x" reads "+++ x".
                first_hunk = hunks[bisect_right(hunks, file_start)]
                header = headers[file_start] = _parse_file_header(seg[file_start + 1 : first_hunk])
            if header.skip or header.path is None:
                continue
            k = bisect_right(heads, pos) - 1
            owner = infos[k] if k >= 0 else commit
            end = _next_mark(pos, len(seg), hunks, files, heads)
            hunk_start = pos + 1
            if end - hunk_start > self.max_file_size:
                detail = f"hunk over {self.max_file_size} bytes"
                yield Skipped(header.path, SkipReason.TOO_LARGE, detail, owner.id if owner else None)
                continue
            self.stats.hunks_parsed += 1
            lines, numbers = _hunk_fragment(seg, hunk_start, end, header)
            if lines:
                # The blob change (old..new) names the hunk's content: the same change in
                # another commit (a cherry-pick, a rebased copy) is the same fragment.
                change = header.blob_change.decode("ascii", "replace") if header.blob_change else None
                yield Fragment(header.path, tuple(lines), tuple(numbers), owner, change)
        return last

    def _hit_hunks(self, seg: bytes, hunks: list[int], files: list[int]) -> dict[int, None]:
        """The hunks (their marker offsets) with a keyword on an added line."""
        found: dict[int, None] = {}
        line_end = -1
        for end in self.prefilter(seg):
            if end < line_end:
                continue  # another keyword on a line already seen
            line_start = seg.rfind(b"\n", 0, end) + 1
            line_end = seg.find(b"\n", end)
            if line_end < 0:
                line_end = len(seg)
            if seg[line_start] != _PLUS:
                continue
            h = bisect_right(hunks, line_start - 1) - 1
            if h < 0:
                continue
            hunk = hunks[h]
            f = bisect_right(files, line_start - 1) - 1
            if f >= 0 and hunk < files[f]:
                continue  # a file header line ('+++ b/path'), not an added line of a hunk
            found[hunk] = None
        return found

    def _path_hunks(
        self,
        seg: bytes,
        heads: list[int],
        files: list[int],
        hunks: list[int],
        found: dict[int, None],
    ) -> None:
        """Every hunk of the files whose path a path-limited rule wants. Every '+++ ' line of
        the segment is looked at in one pass; one that a path-limited rule wants counts when
        it is a file's header (an added line '++ x' also reads '+++ x')."""
        assert self.path_trigger is not None
        for m in _TARGET_RE.finditer(seg):
            target = m.group(1)
            if target == b"/dev/null" or not self._path_wanted(target):
                continue
            pos = m.start()
            i = bisect_right(files, pos) - 1
            if i < 0:
                continue
            file_start = files[i]
            if _next_mark(file_start, len(seg), hunks, heads) < pos:
                continue  # past the file's header: a line of a hunk
            # This file's hunks: up to the next file header or commit header.
            stop = files[i + 1] if i + 1 < len(files) else len(seg)
            k = bisect_right(heads, file_start)
            if k < len(heads):
                stop = min(stop, heads[k])
            for h in range(bisect_right(hunks, file_start), bisect_right(hunks, stop)):
                if hunks[h] < stop:
                    found[hunks[h]] = None

    def _path_wanted(self, target: bytes) -> bool:
        assert self.path_trigger is not None
        wanted = self._paths_seen.get(target)
        if wanted is None:
            path = unquote_path(target.decode("utf-8", "replace").rstrip("\t"))
            path = path[2:] if path.startswith("b/") else path
            wanted = self._paths_seen[target] = self.path_trigger(path)
        return wanted


def _owner(item: Fragment | Skipped) -> str:
    if isinstance(item, Fragment):
        return item.commit.id if item.commit else ""
    return item.commit or ""


def _next_mark(pos: int, default: int, *marks: list[int]) -> int:
    """The first offset after `pos` in any of the sorted `marks` lists (or `default`)."""
    best = default
    for offsets in marks:
        i = bisect_right(offsets, pos)
        if i < len(offsets) and offsets[i] < best:
            best = offsets[i]
    return best


def _widen_pipe(stream: IO[bytes]) -> None:
    """Enlarge the pipe git writes into, where the system allows it (Linux)."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setsize is None:
        return
    # Over the system's limit, or not a pipe: the default size works too.
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        fcntl.fcntl(stream.fileno(), setsize, PIPE_SIZE)


class _MergeReader:
    """The merges' own `git log --merges --cc`, read and parsed on a thread while the main
    stream is scanned (waiting for it first left git's main stream blocked and the scan idle:
    a quarter of the time on flask, whose history is one third merges). Its fragments are
    handed over by merge id when the main stream is done."""

    def __init__(self, source: HistorySource) -> None:
        self.source = source
        self._found: dict[str, list[Fragment | Skipped]] = {}
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sentra-git-merges", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        items = self.source.items()
        try:
            for item in items:
                if self._stopped.is_set():
                    break
                self._found.setdefault(_owner(item), []).append(item)
        except BaseException as exc:  # handed to the scanning side
            self._error = exc
        finally:
            items.close()  # stops its git when we stopped early

    def result(self) -> dict[str, list[Fragment | Skipped]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._found

    def stop(self) -> None:
        self._stopped.set()


class _Prefetch:
    """Reads git's output on a thread while the scan works on the previous chunk: without
    it git stops as soon as the pipe is full, and the two cores take turns instead of
    working at once. At most `depth` chunks wait in memory."""

    def __init__(self, stream: IO[bytes], depth: int = 8) -> None:
        self._stream = stream
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sentra-git-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        read1 = getattr(self._stream, "read1", None)
        try:
            if read1 is None:
                while not self._stopped.is_set():
                    chunk = self._stream.read(PREFETCH_CHUNK)
                    self._put(chunk)
                    if not chunk:
                        return
                return
            _widen_pipe(self._stream)
            parts: list[bytes] = []
            total = streamed = 0
            while not self._stopped.is_set():
                chunk = read1(PREFETCH_CHUNK)
                if chunk:
                    parts.append(chunk)
                    total += len(chunk)
                    if total < PREFETCH_MIN and streamed >= PREFETCH_MIN:
                        # git writes a few KB at a time: taking each as it comes made ~30k
                        # wake-ups on pip's history, each taking the interpreter lock from
                        # the scan. Once the stream is a long one, let the pipe fill instead
                        # (git keeps writing meanwhile); a push's few KB go straight through.
                        time.sleep(PREFETCH_PAUSE)
                        continue
                if parts:
                    self._put(b"".join(parts) if len(parts) > 1 else parts[0])
                    streamed += total
                    parts, total = [], 0
                if not chunk:
                    self._put(b"")
                    return
        except BaseException as exc:  # handed to the reading side
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes: what has arrived, waiting only until there is at least
        `MIN_READ` (or the end): each read costs a pass of the prefilter and the parser."""
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                item = self._queue.get(block=total < min(size, MIN_READ) if size > 0 else not parts)
            except queue.Empty:
                break
            if isinstance(item, BaseException):
                raise item
            if not item:  # EOF: hand over what we have, then EOF on the next call
                if parts:
                    self._queue.put(item)
                break
            parts.append(item)
            total += len(item)
            if 0 < size <= total:
                break
        return b"".join(parts)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)


MESSAGE_PATH = "(commit message)"


class MessageSource:
    """Commit messages as fragments (`--include-messages`): path '(commit message)'."""

    def __init__(
        self, *, repo: Path | None = None, revs: Iterable[str] = (), commits: Iterable[str] | None = None
    ) -> None:
        self.repo = repo
        self.revs = list(revs)
        self.commits = list(commits) if commits is not None else None

    def items(self) -> Iterator[Fragment | Skipped]:
        args = ["log", "--no-color", f"--format={LOG_FORMAT}%n%B"]
        stdin = None
        if self.commits is not None:
            if not self.commits:
                return
            args += ["--no-walk=unsorted", "--stdin"]
            stdin = ("\n".join(self.commits) + "\n").encode()
        else:
            args += [*self.revs, "--"]
        proc = subprocess.run(
            ["git", *FIXED_CONFIG, *args], cwd=self.repo, input=stdin, capture_output=True, check=False
        )
        if proc.returncode != 0:
            lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git log: {lines[-1] if lines else 'failed'}")
        for record in (b"\n" + proc.stdout).split(COMMIT_MARK)[1:]:
            head, _, body = record.partition(b"\n")
            commit = _parse_commit(head)
            lines = body.decode("utf-8", "replace").rstrip("\n").split("\n")
            yield Fragment(MESSAGE_PATH, tuple(lines), tuple(range(1, len(lines) + 1)), commit)
