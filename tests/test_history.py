"""Commit history as fragments: the `git log -p` stream parser (crafted logs), and
`sentra scan --commits A..B` / `--since REF` on real repositories."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentra_scan.errors import GitError
from sentra_scan.model import CommitInfo, Fragment, Skipped, SkipReason
from sentra_scan.sources import history
from sentra_scan.sources.history import MESSAGE_PATH, HistorySource
from tests.helpers import Repo, assert_no_leak, canary_github_token, sentra, sentra_json

TOKEN = canary_github_token("history")
OTHER = canary_github_token("history-other")
MASKED = TOKEN[:4] + "********"
A, B, C = "a" * 40, "b" * 40, "c" * 40
IDX = "1" * 40 + ".." + "2" * 40


# --- the stream parser, on crafted `git log -p` text -----------------------------------------


@pytest.fixture(scope="module")
def rules_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rules-cache")


@pytest.fixture(autouse=True)
def _quick_cli(monkeypatch: pytest.MonkeyPatch, rules_cache: Path) -> None:
    """One parsed-rules cache for the module's CLI runs; no ledger (these tests are about
    ranges, not the encrypted ledger and its key-source probe)."""
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rules_cache))
    monkeypatch.setenv("SENTRA_NO_RECORD", "1")


def keyword_ends(data: bytes) -> Iterator[int]:
    """A prefilter with one keyword, 'ghp_' (case-insensitive, like the real one)."""
    return (m.end() - 1 for m in re.finditer(b"ghp_", data.lower()))


def head(cid: str, *parents: str, author: str = "Ann Author", date: str = "2026-01-02T03:04:05+00:00") -> str:
    return f"\x1e{cid} {' '.join(parents)}\x1f{author}\x1fann@example.test\x1f{date}\n\n"


def diff(path: str, *hunks: str, index: str = IDX + " 100644", extra: str = "") -> str:
    return f"diff --git a/{path} b/{path}\n{extra}index {index}\n--- a/{path}\n+++ b/{path}\n" + "".join(hunks)


def parse(log: str, *, max_file_size: int = 1_000_000) -> tuple[HistorySource, list[Fragment | Skipped]]:
    source = HistorySource(keyword_ends, max_file_size=max_file_size)
    return source, list(source._read(io.BytesIO(log.encode("utf-8"))))


def rows(items: list[Fragment | Skipped]) -> list[tuple[str, tuple[str, ...], tuple[int, ...], str]]:
    out = []
    for item in items:
        assert isinstance(item, Fragment)
        assert item.commit is not None
        out.append((item.path, item.lines, item.line_numbers, item.commit.id))
    return out


def test_hunks_in_several_commits_are_attributed_to_their_commit() -> None:
    log = (
        head(A, B, author="Ann Author")
        + diff(
            "app/one.py",
            "@@ -3 +3 @@ def f():\n-    old = 1\n+    token = 'ghp_one'\n",
            "@@ -10,0 +11,2 @@\n+clean line\n+also clean\n",  # no keyword: never parsed
            "@@ -20,2 +21,3 @@\n-x\n-y\n+a\n+b = 'GHP_UPPER'\n+c\n",
        )
        + diff("docs/readme.md", "@@ -1 +1 @@\n-intro\n+intro with ghp_doc\n")
        + head(B, C, author="Bob Builder", date="2025-12-31T23:00:00+01:00")
        + diff("app/two.py", "@@ -0,0 +1,2 @@\n+first\n+second ghp_two\n", index="0" * 40 + ".." + "3" * 40)
    )
    source, items = parse(log)
    assert rows(items) == [
        ("app/one.py", ("    token = 'ghp_one'",), (3,), A),
        ("app/one.py", ("a", "b = 'GHP_UPPER'", "c"), (21, 22, 23), A),
        ("docs/readme.md", ("intro with ghp_doc",), (1,), A),
        ("app/two.py", ("first", "second ghp_two"), (1, 2), B),
    ]
    first, last = items[0], items[-1]
    assert isinstance(first, Fragment)
    assert isinstance(last, Fragment)
    assert first.commit == CommitInfo(A, "Ann Author", "ann@example.test", "2026-01-02T03:04:05+00:00", (B,))
    assert last.commit is not None
    assert last.commit.author == "Bob Builder"
    assert last.commit.date == "2025-12-31T23:00:00+01:00"
    assert source.stats.commits == 2
    assert source.stats.commit_ids == [A, B]
    assert source.stats.hunks_parsed == 4


def test_root_commit_has_no_parents() -> None:
    _, items = parse(head(A) + diff("x.py", "@@ -0,0 +1 @@\n+ghp_root\n"))
    [frag] = items
    assert isinstance(frag, Fragment)
    assert frag.commit is not None
    assert frag.commit.parents == ()


def test_keywords_on_removed_and_context_lines_are_ignored() -> None:
    log = head(A, B) + diff(
        "secrets.env",
        "@@ -1,2 +1 @@\n-TOKEN=ghp_removed\n-OTHER=ghp_gone\n+TOKEN=${TOKEN}\n",
        "@@ -9 +8,0 @@\n-ghp_only_removed\n",
    )
    source, items = parse(log)
    assert items == []
    assert source.stats.hunks_parsed == 0


def test_file_headers_are_not_added_lines() -> None:
    """'+++ b/ghp_name' is a header, not content; a keyword in the path alone yields nothing."""
    log = head(A, B) + diff("ghp_notes/ghp_file.txt", "@@ -1 +1 @@\n-a\n+b\n")
    assert parse(log)[1] == []


def test_added_line_starting_with_plus_plus_is_content() -> None:
    """An added '++ x' reads '+++ x', right after a removed '-- y' that reads '--- y': it is
    still an added line, not a file header."""
    log = head(A, B) + diff("notes.md", "@@ -2 +2 @@ a\n--- old\n+++ ghp_after_dashes\n")
    assert rows(parse(log)[1]) == [("notes.md", ("++ ghp_after_dashes",), (2,), A)]


def test_added_plus_plus_line_in_an_earlier_hunk_does_not_rename_the_file() -> None:
    log = head(A, B) + diff(
        "m.md",
        "@@ -1 +1 @@\n-++ x\n+++ y\n",  # hunk 1: an added line '++ y'
        "@@ -21 +21 @@ l19\n-l20\n+t = ghp_second_hunk\n",
    )
    assert rows(parse(log)[1]) == [("m.md", ("t = ghp_second_hunk",), (21,), A)]


def test_combined_diff_of_a_merge_keeps_only_lines_new_against_every_parent() -> None:
    index = "1" * 40 + "," + "2" * 40 + ".." + "3" * 40
    log = head(A, B, C) + (
        "diff --cc conf.py\n"
        f"index {index}\n--- a/conf.py\n+++ b/conf.py\n"
        "@@@ -2,3 -2,3 +2,4 @@@ header\n"
        "- value = 3\n"
        " -value = 2\n"
        "++value = 'ghp_resolution'\n"
        " +from_side = 'ghp_side'\n"  # came from the second parent: its commit has it
        "+ from_main = 'ghp_main'\n"  # came from the first parent
        "  context\n"
        "++extra = 'ghp_merge_only'\n"
    )
    assert rows(parse(log)[1]) == [
        ("conf.py", ("value = 'ghp_resolution'", "extra = 'ghp_merge_only'"), (2, 6), A),
    ]


def test_combined_diff_of_an_octopus_merge() -> None:
    d = "4" * 40
    log = (
        head(A, B, C, d)
        + "diff --cc f.txt\n"
        + f"index {'1' * 40},{'2' * 40},{'3' * 40}..{'5' * 40}\n--- a/f.txt\n+++ b/f.txt\n"
        + "@@@@ -1 -1 -1 +1,2 @@@@\n"
        + "--- gone\n+++ghp_octopus\n ++from_two_parents ghp_x\n"
    )
    assert rows(parse(log)[1]) == [("f.txt", ("ghp_octopus",), (1,), A)]


def test_line_numbers_and_special_lines() -> None:
    log = head(A, B) + diff(
        "win.txt",
        "@@ -5,0 +6,2 @@\n+crlf ghp_crlf\r\n+no newline ghp_end\n\\ No newline at end of file\n",
    )
    assert rows(parse(log)[1]) == [("win.txt", ("crlf ghp_crlf", "no newline ghp_end"), (6, 7), A)]


def test_new_deleted_renamed_symlink_submodule_and_quoted_paths() -> None:
    z = "0" * 40
    log = head(A, B) + (
        f"diff --git a/new.txt b/new.txt\nnew file mode 100644\nindex {z}..{'2' * 40}\n--- /dev/null\n"
        "+++ b/new.txt\n@@ -0,0 +1 @@\n+ghp_new\n"
        f"diff --git a/old.txt b/old.txt\ndeleted file mode 100644\nindex {'2' * 40}..{z}\n--- a/old.txt\n"
        "+++ /dev/null\n@@ -1 +0,0 @@\n-ghp_deleted\n"
        "diff --git a/before.py b/after.py\nsimilarity index 90%\nrename from before.py\nrename to after.py\n"
        f"index {IDX} 100644\n--- a/before.py\n+++ b/after.py\n@@ -3 +3 @@\n-x\n+ghp_renamed_edit\n"
        f"diff --git a/link b/link\nnew file mode 120000\nindex {z}..{'2' * 40}\n--- /dev/null\n"
        "+++ b/link\n@@ -0,0 +1 @@\n+ghp_symlink_target\n\\ No newline at end of file\n"
        f"diff --git a/sub b/sub\nindex {IDX} 160000\n--- a/sub\n+++ b/sub\n@@ -1 +1 @@\n"
        "-Subproject commit 1\n+Subproject commit ghp_sub\n"
        f'diff --git "a/caf\\303\\251 x.py" "b/caf\\303\\251 x.py"\nindex {IDX} 100644\n'
        '--- "a/caf\\303\\251 x.py"\n+++ "b/caf\\303\\251 x.py"\n@@ -1 +1 @@\n-a\n+ghp_quoted\n'
    )
    assert rows(parse(log)[1]) == [
        ("new.txt", ("ghp_new",), (1,), A),
        ("after.py", ("ghp_renamed_edit",), (3,), A),
        ("café x.py", ("ghp_quoted",), (1,), A),
    ]


def test_binary_file_yields_nothing() -> None:
    log = head(A, B) + (
        f"diff --git a/blob.bin b/blob.bin\nnew file mode 100644\nindex {'0' * 40}..{'2' * 40}\n"
        "Binary files /dev/null and b/blob.bin differ\n"
    )
    assert parse(log)[1] == []


def test_a_very_long_line() -> None:
    line = "x" * 3_000_000 + " ghp_at_the_end"
    log = head(A, B) + diff("big.min.js", f"@@ -1 +1 @@\n-old\n+{line}\n")
    _, items = parse(log, max_file_size=10_000_000)
    assert rows(items) == [("big.min.js", (line,), (1,), A)]


def test_a_hunk_over_the_size_limit_is_reported_skipped() -> None:
    log = head(A, B) + diff("big.txt", "@@ -0,0 +1 @@\n+" + "y" * 5000 + " ghp_big\n")
    _, items = parse(log, max_file_size=1000)
    assert items == [Skipped("big.txt", SkipReason.TOO_LARGE, "hunk over 1000 bytes", A)]
    assert isinstance(items[0], Skipped)
    assert items[0].incomplete


def many_commits_log(n: int = 40) -> str:
    parts = []
    for i in range(n):
        cid = f"{i:040x}"
        parts.append(head(cid, f"{i + 1:040x}"))
        parts.append(diff(f"f{i}.py", f"@@ -{i} +{i},2 @@\n-r ghp_removed\n+a{i}\n+k{i} = 'ghp_{i}'\n"))
        parts.append(diff(f"g{i}.txt", "@@ -1 +1 @@\n-x\n+clean\n", f"@@ -9 +9 @@\n-y\n+ghp_g{i}\n"))
        if i % 3 == 0:
            parts.append(diff(f"h{i}.md", "@@ -1 +1 @@\n--- x\n+++ ghp_pp\n"))
    return "".join(parts)


@pytest.mark.parametrize("chunk", [1, 7, 64, 333, 4096])
def test_chunk_boundaries_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    log = many_commits_log()
    expected_source, expected = parse(log)
    assert len(expected) == 40 * 2 + 14
    monkeypatch.setattr(history, "CHUNK", chunk)
    source, items = parse(log)
    assert rows(items) == rows(expected)
    assert source.stats.commit_ids == expected_source.stats.commit_ids
    assert source.stats.bytes == expected_source.stats.bytes


def test_long_line_across_many_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "CHUNK", 1024)
    line = "z" * 200_000 + "ghp_far"
    log = (
        head(A, B) + diff("a.txt", f"@@ -1 +1 @@\n-o\n+{line}\n") + head(B, C) + diff("b.txt", "@@ -1 +1 @@\n+ghp_b\n")
    )
    assert rows(parse(log)[1]) == [("a.txt", (line,), (1,), A), ("b.txt", ("ghp_b",), (1,), B)]


class _StopAfterFirstRead(io.BytesIO):
    """Moves the source's deadline into the past once the first chunk has been read."""

    source: HistorySource

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.source.deadline = 0.0
        return data

    def read1(self, size: int = -1) -> bytes:  # what the source uses under a time budget
        return self.read(size)


def _drain(prefetch: history._Prefetch) -> tuple[bytes, int]:
    out, reads = b"", 0
    while True:
        data = prefetch.read(history.CHUNK)
        if not data:
            return out, reads
        out += data
        reads += 1


@pytest.mark.parametrize("pieces", [1, 7, 400])
def test_the_reader_hands_over_a_trickle_whole_and_in_order(pieces: int) -> None:
    """git writes a few KB at a time: the reader thread gathers them (waiting for the pipe
    to fill) and hands over every byte once, in order, then the end."""
    import subprocess
    import sys

    writer = (
        "import sys, time\n"
        f"for i in range({pieces}):\n"
        "    sys.stdout.buffer.write(b'%06d' % i + bytes(range(256)) * 13 + b'\\n')\n"
        "    sys.stdout.buffer.flush()\n"
        "    time.sleep(0.0005 if i % 50 else 0.01)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    prefetch = history._Prefetch(proc.stdout)
    try:
        data, reads = _drain(prefetch)
    finally:
        prefetch.stop()
        proc.stdout.close()
        proc.wait()
    expected = b"".join(b"%06d" % i + bytes(range(256)) * 13 + b"\n" for i in range(pieces))
    assert data == expected
    assert reads <= pieces


def test_the_reader_passes_on_a_read_error() -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, _buffer: object) -> int:
            raise OSError("pipe broke")

    prefetch = history._Prefetch(io.BufferedReader(Broken()))
    try:
        with pytest.raises(OSError, match="pipe broke"):
            _drain(prefetch)
    finally:
        prefetch.stop()


def test_the_reader_takes_plain_streams_too() -> None:
    class Plain:  # read() only: no read1, no file descriptor
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self.data.read(n)

    for stream in (io.BytesIO(b"x" * 3_000_000), Plain(b"y" * 3_000_000)):
        prefetch = history._Prefetch(stream)  # type: ignore[arg-type]
        try:
            assert _drain(prefetch)[0] in (b"x" * 3_000_000, b"y" * 3_000_000)
        finally:
            prefetch.stop()


def test_deadline_leaves_a_half_read_commit_unscanned(monkeypatch: pytest.MonkeyPatch) -> None:
    log = (
        head(A, B)
        + diff("one.py", "@@ -1 +1 @@\n-a\n+ghp_first_file\n")
        + diff("two.py", "@@ -1 +1 @@\n-a\n+ghp_second_file\n")
        + head(B, C)
        + diff("three.py", "@@ -1 +1 @@\n-a\n+ghp_third\n")
    )
    cut = log.index("diff --git a/two.py") + 20  # the first chunk ends inside two.py's diff
    monkeypatch.setattr(history, "CHUNK", cut)
    source = HistorySource(keyword_ends, max_file_size=10_000, deadline=1e18)
    stream = _StopAfterFirstRead(log.encode())
    stream.source = source
    items = list(source._read(stream))
    assert rows(items) == [("one.py", ("ghp_first_file",), (1,), A)]
    assert source.stats.stopped_early
    assert source.stats.commit_ids == []  # A's two.py was never read: A is not "scanned"


def test_deadline_between_commits_keeps_the_finished_one(monkeypatch: pytest.MonkeyPatch) -> None:
    log = head(A, B) + diff("one.py", "@@ -1 +1 @@\n-a\n+ghp_first\n") + head(B, C) + diff("b.py", "@@ -1 +1 @@\n+x\n")
    monkeypatch.setattr(history, "CHUNK", log.index("\x1e" + B) + 3)  # ends inside B's header
    source = HistorySource(keyword_ends, max_file_size=10_000, deadline=1e18)
    stream = _StopAfterFirstRead(log.encode())
    stream.source = source
    list(source._read(stream))
    assert source.stats.commit_ids == [A]


# --- sentra scan --commits / --since on real repositories ------------------------------------


def settings(token: str, line: int = 3) -> str:
    lines = [f"setting_{i} = {i}" for i in range(1, 8)]
    lines[line - 1] = f'GITHUB_TOKEN = "{token}"'
    return "\n".join(lines) + "\n"


@pytest.fixture
def history_repo(repo: Repo) -> dict[str, str]:
    """base -> adds settings.py (secret on line 3) -> edits elsewhere -> removes the secret."""
    repo.commit_files({"README.md": "# demo\n", "settings.py": settings("placeholder")})
    base = repo.head()
    repo.stage("settings.py", settings(TOKEN))
    added = repo.commit_at("2026-02-01T10:00:00+00:00", "add the token")
    repo.stage("other.txt", "unrelated\n")
    other = repo.commit_at("2026-02-02T10:00:00+00:00", "unrelated")
    repo.stage("settings.py", settings("os.environ['GITHUB_TOKEN']"))
    removed = repo.commit_at("2026-02-03T10:00:00+00:00", "remove the token")
    return {"base": base, "added": added, "other": other, "removed": removed}


def test_range_attributes_the_secret_to_its_commit(repo: Repo, history_repo: dict[str, str]) -> None:
    c = history_repo
    proc, doc = sentra_json(["scan", "--commits", f"{c['base']}..{c['removed']}"], repo.path)
    assert_no_leak(proc, TOKEN)
    assert TOKEN not in proc.stdout
    assert proc.returncode == 1
    [finding] = doc["findings"]
    assert (finding["path"], finding["line"], finding["column"]) == ("settings.py", 3, 17)
    assert finding["rule_id"] == "github-pat"
    assert finding["secret"] == MASKED
    assert finding["commit"] == {
        "id": c["added"],
        "author": "Test Author",
        "email": "author@example.test",
        "date": "2026-02-01T10:00:00+00:00",
    }


def test_text_report_names_the_commit(repo: Repo, history_repo: dict[str, str]) -> None:
    proc = sentra(["scan", "--commits", f"{history_repo['base']}..HEAD"], repo.path)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 1
    assert "settings.py:3:17" in proc.stdout
    assert f"commit {history_repo['added'][:12]}" in proc.stdout
    assert MASKED in proc.stdout


def test_removal_commit_alone_is_clean(repo: Repo, history_repo: dict[str, str]) -> None:
    c = history_repo
    proc, doc = sentra_json(["scan", "--commits", f"{c['other']}..{c['removed']}"], repo.path)
    assert (proc.returncode, doc["findings"]) == (0, [])
    proc, doc = sentra_json(["scan", "--since", c["added"]], repo.path)
    assert (proc.returncode, doc["findings"]) == (0, [])


def test_since_includes_the_adding_commit(repo: Repo, history_repo: dict[str, str]) -> None:
    proc, doc = sentra_json(["scan", "--since", history_repo["base"]], repo.path)
    assert proc.returncode == 1
    assert [f["commit"]["id"] for f in doc["findings"]] == [history_repo["added"]]


def test_single_revision_means_its_whole_ancestry(repo: Repo, history_repo: dict[str, str]) -> None:
    proc, doc = sentra_json(["scan", "--commits", history_repo["other"]], repo.path)
    assert proc.returncode == 1
    assert [f["commit"]["id"] for f in doc["findings"]] == [history_repo["added"]]


def test_empty_range_passes(repo: Repo, history_repo: dict[str, str]) -> None:
    proc, doc = sentra_json(["scan", "--commits", "HEAD..HEAD"], repo.path)
    assert (proc.returncode, doc["findings"]) == (0, [])


def test_only_added_lines_at_their_new_line_numbers(repo: Repo) -> None:
    repo.commit_files({"cfg.ini": "".join(f"k{i} = v{i}\n" for i in range(1, 21))})
    base = repo.head()
    text = (
        "".join(f"k{i} = v{i}\n" for i in range(1, 21))
        .replace("k5 = v5\n", "")
        .replace("k12 = v12\n", f"k12 = {TOKEN}\nk12b = {OTHER}\n")
    )
    repo.commit_files({"cfg.ini": text})
    proc, doc = sentra_json(["scan", "--commits", f"{base}..HEAD"], repo.path)
    assert_no_leak(proc, TOKEN, OTHER)
    assert sorted((f["path"], f["line"]) for f in doc["findings"]) == [("cfg.ini", 11), ("cfg.ini", 12)]


def test_plus_plus_content_line_end_to_end(repo: Repo) -> None:
    repo.commit_files({"notes.md": "a\n-- old\nc\n"})
    base = repo.head()
    repo.commit_files({"notes.md": f"a\n++ {TOKEN}\nc\n"})
    proc, doc = sentra_json(["scan", "--commits", f"{base}..HEAD"], repo.path)
    assert_no_leak(proc, TOKEN)
    assert [(f["path"], f["line"]) for f in doc["findings"]] == [("notes.md", 2)]


@pytest.fixture
def merged(repo: Repo) -> dict[str, str]:
    """main and side both change conf.py line 2 (a real conflict), resolved with a secret;
    side also adds a secret of its own in another file."""
    repo.commit_files({"conf.py": "line1\nvalue = 1\nline3\n"})
    base = repo.head()
    repo.branch("side")
    repo.commit_files({"conf.py": "line1\nvalue = 2\nline3\n"}, "side: value 2")
    repo.stage("side.py", f'SIDE = "{OTHER}"\n')
    side = repo.commit("side: its own token")
    repo.switch("main")
    repo.commit_files({"conf.py": "line1\nvalue = 3\nline3\n"}, "main: value 3")
    conflict = repo.proc("merge", "--no-ff", "-m", "merge side", "side")
    assert conflict.returncode != 0
    assert "CONFLICT" in conflict.stdout + conflict.stderr
    repo.stage("conf.py", f'line1\nvalue = "{TOKEN}"\nline3\n')
    merge = repo.commit("merge side, resolved")
    assert len(repo.git("rev-list", "--parents", "-n1", "HEAD").split()) == 3  # a real merge commit
    return {"base": base, "side": side, "merge": merge}


def test_merge_resolution_is_attributed_to_the_merge(repo: Repo, merged: dict[str, str]) -> None:
    proc, doc = sentra_json(["scan", "--commits", f"{merged['base']}..{merged['merge']}"], repo.path)
    assert_no_leak(proc, TOKEN, OTHER)
    assert proc.returncode == 1
    found = sorted((f["path"], f["line"], f["commit"]["id"]) for f in doc["findings"])
    assert found == [("conf.py", 2, merged["merge"]), ("side.py", 1, merged["side"])]


def test_findings_of_merges_come_in_log_order(repo: Repo, merged: dict[str, str]) -> None:
    """The merges are read beside the main stream and scanned after it; the report is still
    in log order, the resolution's finding at the merge's place."""
    later = canary_github_token("after-the-merge")
    repo.stage("after.py", f'AFTER = "{later}"\n')
    after = repo.commit("after the merge")
    proc, doc = sentra_json(["scan", "--commits", f"{merged['base']}..{after}"], repo.path)
    assert_no_leak(proc, TOKEN, OTHER, later)
    order = repo.git("rev-list", f"{merged['base']}..{after}").split()
    ids = [f["commit"]["id"] for f in doc["findings"]]
    assert ids == [after, merged["merge"], merged["side"]]
    assert ids == sorted(ids, key=order.index)


def test_an_error_in_the_merges_log_reaches_the_scan(repo: Repo, merged: dict[str, str]) -> None:
    source = HistorySource(lambda _data: [], repo=repo.path, revs=[merged["merge"]], max_file_size=1 << 20)
    broken = HistorySource(lambda _data: [], repo=repo.path, revs=["no-such-ref"], max_file_size=1 << 20)
    reader = history._MergeReader(broken)
    with pytest.raises(GitError):
        list(source._merge_items(reader))


def test_a_scan_stopped_early_stops_the_merges_reader(repo: Repo, merged: dict[str, str]) -> None:
    import threading
    import time

    items = HistorySource(
        lambda data: [m.end() - 1 for m in re.finditer(rb"value", data)],
        repo=repo.path,
        revs=[merged["merge"]],
        max_file_size=1 << 20,
    ).items()
    assert next(items) is not None
    items.close()
    deadline = time.monotonic() + 10
    while any(t.name == "sentra-git-merges" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "sentra-git-merges" for t in threading.enumerate())


def test_merge_alone_reports_only_what_it_introduced(repo: Repo, merged: dict[str, str]) -> None:
    """The side branch's token is in the merge's first-parent diff, but the merge did not add it."""
    _, doc = sentra_json(["scan", "--commits", f"{merged['merge']}^2..{merged['merge']}"], repo.path)
    found = [(f["path"], f["commit"]["id"]) for f in doc["findings"]]
    assert found == [("conf.py", merged["merge"])]


def test_clean_merge_of_a_branch_secret_reports_the_branch_commit_once(repo: Repo) -> None:
    repo.commit_files({"README.md": "# r\n"})
    base = repo.head()
    repo.branch("feature")
    branch_commit = repo.commit_files({"feature.py": f"TOKEN = '{TOKEN}'\n"}, "feature")
    repo.switch("main")
    repo.commit_files({"main.txt": "main\n"}, "main work")
    merge = repo.merge("feature")
    proc, doc = sentra_json(["scan", "--commits", f"{base}..{merge}"], repo.path)
    assert proc.returncode == 1
    assert [(f["path"], f["line"], f["commit"]["id"]) for f in doc["findings"]] == [("feature.py", 1, branch_commit)]
    proc, doc = sentra_json(["scan", "--commits", f"{branch_commit}..{merge}"], repo.path)
    assert (proc.returncode, doc["findings"]) == (0, [])


def test_pure_rename_is_not_reported_again(repo: Repo) -> None:
    repo.commit_files({"README.md": "# r\n"})
    base = repo.head()
    added = repo.commit_files({"old/name.py": f"TOKEN = '{TOKEN}'\n"}, "add")
    repo.rename("old/name.py", "new/name.py")
    renamed = repo.commit("rename")
    proc, doc = sentra_json(["scan", "--commits", f"{added}..{renamed}"], repo.path)
    assert (proc.returncode, doc["findings"]) == (0, [])
    proc, doc = sentra_json(["scan", "--commits", f"{base}..{renamed}"], repo.path)
    assert [(f["path"], f["commit"]["id"]) for f in doc["findings"]] == [("old/name.py", added)]


def test_rename_with_an_edit_reports_only_the_edit(repo: Repo) -> None:
    body = "".join(f"line {i}\n" for i in range(20))
    added = repo.commit_files({"a.py": f"TOKEN = '{TOKEN}'\n" + body}, "add")
    repo.rename("a.py", "b.py")
    repo.write("b.py", f"TOKEN = '{TOKEN}'\n" + body + f"SECOND = '{OTHER}'\n")
    repo.git("add", "b.py")
    edited = repo.commit("rename and edit")
    proc, doc = sentra_json(["scan", "--commits", f"{added}..{edited}"], repo.path)
    assert_no_leak(proc, TOKEN, OTHER)
    assert [(f["path"], f["line"]) for f in doc["findings"]] == [("b.py", 22)]


def test_binary_files_are_skipped(repo: Repo) -> None:
    repo.commit_files({"README.md": "# r\n"})
    base = repo.head()
    repo.commit_files({"blob.bin": b"\x00\x01" + TOKEN.encode() + b"\x00\xff"}, "binary")
    proc, doc = sentra_json(["scan", "--commits", f"{base}..HEAD", "--strict"], repo.path)
    assert_no_leak(proc, TOKEN)
    assert (proc.returncode, doc["findings"]) == (0, [])


def test_paths_with_spaces_and_unicode(repo: Repo) -> None:
    repo.commit_files({"README.md": "# r\n"})
    base = repo.head()
    repo.commit_files({"dir one/café.py": f"x = '{TOKEN}'\n"})
    _, doc = sentra_json(["scan", "--commits", f"{base}..HEAD"], repo.path)
    assert [f["path"] for f in doc["findings"]] == ["dir one/café.py"]


def test_include_messages(repo: Repo) -> None:
    repo.commit_files({"README.md": "# r\n"})
    base = repo.head()
    repo.stage("a.txt", "clean\n")
    leaky = repo.commit(f"deploy fix\n\nused token {TOKEN} to test")
    proc, doc = sentra_json(["scan", "--commits", f"{base}..HEAD"], repo.path)
    assert (proc.returncode, doc["findings"]) == (0, [])
    proc, doc = sentra_json(["scan", "--commits", f"{base}..HEAD", "--include-messages"], repo.path)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 1
    assert [(f["path"], f["line"], f["commit"]["id"]) for f in doc["findings"]] == [(MESSAGE_PATH, 3, leaky)]
    text = sentra(["scan", "--since", base, "--include-messages"], repo.path)
    assert_no_leak(text, TOKEN)
    assert f"{MESSAGE_PATH}:3:" in text.stdout


def test_bad_ref_exits_5(repo: Repo, history_repo: dict[str, str]) -> None:
    for args in (["--commits", "nope..HEAD"], ["--commits", "HEAD..nope"], ["--since", "no-such-branch"]):
        proc = sentra(["scan", *args], repo.path)
        assert proc.returncode == 5, args
        assert proc.stdout == ""
        assert "unknown revision 'no" in proc.stderr
        assert "hint:" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_commits_and_since_together_is_a_usage_error(repo: Repo, history_repo: dict[str, str]) -> None:
    proc = sentra(["scan", "--commits", "HEAD~1..HEAD", "--since", "HEAD~1"], repo.path)
    assert proc.returncode == 2
    assert "either --commits or --since" in proc.stderr


def test_outside_a_repository_exits_5(tmp_path: Path) -> None:
    proc = sentra(["scan", "--since", "HEAD"], tmp_path)
    assert proc.returncode == 5
    assert "not inside a git work tree" in proc.stderr


def test_shallow_clone_missing_base_hints_at_the_fetch_depth(
    repo: Repo, history_repo: dict[str, str], tmp_path: Path
) -> None:
    clone = repo.shallow_clone(tmp_path / "shallow", depth=1)
    for args in (["--commits", f"{history_repo['base']}..HEAD"], ["--since", "HEAD~2"]):
        proc = sentra(["scan", *args], clone.path)
        assert proc.returncode == 5, args
        assert "shallow clone" in proc.stderr
        assert "fetch-depth" in proc.stderr
        assert "--unshallow" in proc.stderr


def test_path_trigger_takes_file_headers_not_added_lines_that_look_like_one() -> None:
    """A path-limited rule's file gives all its hunks; an added line '++ .pgpass' reads
    '+++ .pgpass' in the stream but names no file."""
    log = (
        head(A, B)
        + diff("notes.txt", "@@ -1,0 +2,2 @@\n+++ .pgpass\n+plain line\n")
        + diff(".pgpass", "@@ -1,0 +1 @@\n+db:5432:app:app:hunter2hunter2\n")
    )
    source = HistorySource(keyword_ends, max_file_size=1_000_000, path_trigger=lambda p: p.endswith(".pgpass"))
    items = list(source._read(io.BytesIO(log.encode("utf-8"))))
    assert rows(items) == [(".pgpass", ("db:5432:app:app:hunter2hunter2",), (1,), A)]


def test_merge_of_a_renamed_file_with_a_resolution_secret(repo: Repo) -> None:
    """Merges are diffed without rename detection: a side that renamed and edited a file,
    merged with a main that edited the old path, still gives the resolution's secret to
    the merge, and nothing of either side's own lines."""
    body = "".join(f"line{i} = {i}\n" for i in range(20))
    repo.commit_files({"conf.py": body})
    base = repo.head()
    repo.branch("side")
    repo.rename("conf.py", "settings.py")
    repo.stage("settings.py", body.replace("line3 = 3", "line3 = 'side'"))
    repo.commit("side: rename and edit")
    repo.switch("main")
    repo.commit_files({"conf.py": body.replace("line15 = 15", "line15 = 'main'")}, "main: edit")
    repo.proc("merge", "--no-ff", "--no-commit", "side")  # git follows the rename: no conflict
    assert not (repo.path / "conf.py").exists()
    merged = body.replace("line3 = 3", "line3 = 'side'").replace("line15 = 15", f"line15 = '{TOKEN}'")
    repo.stage("settings.py", merged)
    merge = repo.commit("merge side, resolved")
    assert len(repo.git("rev-list", "--parents", "-n1", "HEAD").split()) == 3
    proc, doc = sentra_json(["scan", "--commits", f"{base}..{merge}"], repo.path)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 1, proc.stderr
    assert [(f["path"], f["line"], f["commit"]["id"]) for f in doc["findings"]] == [("settings.py", 16, merge)]
