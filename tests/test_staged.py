"""The staged source, end to end: real repositories, the real hook process (`sentra hook
pre-commit --format json`), and what `git commit` would add, nothing else."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sentra_scan.model import Fragment, Skipped, SkipReason
from sentra_scan.ruleset import RuleSet
from sentra_scan.ruleset.examples import expand
from sentra_scan.sources.diffparse import DiffParser
from tests.helpers import Repo, assert_no_leak, canary_github_token, init_repo, run, sentra, sentra_json

TOKEN = canary_github_token("staged")
OTHER = canary_github_token("staged-other")
THIRD = canary_github_token("staged-third")


@pytest.fixture(autouse=True)
def _no_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about what is scanned, not about the encrypted ledger (test_hooks keeps
    the default): no key-source probe on every blocked commit."""
    monkeypatch.setenv("SENTRA_NO_RECORD", "1")


def hook(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    proc, doc = sentra_json(["hook", "pre-commit", *args], cwd, env=env)
    assert_no_leak(proc, TOKEN, OTHER, THIRD)
    return proc.returncode, doc


def where(doc: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted((f["path"], f["line"]) for f in doc["findings"])


def numbered(n: int, prefix: str = "line") -> list[str]:
    return [f"{prefix} {i}" for i in range(1, n + 1)]


def text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


@pytest.fixture
def based(repo: Repo) -> Repo:
    """A repository with one commit, so that HEAD exists."""
    repo.commit_files({"README.md": "# project\n"}, "initial")
    return repo


# --- added lines only, at their line in the new file -----------------------------------------


def test_new_file_in_unborn_repository(repo: Repo) -> None:
    repo.stage("app/config.py", f'DEBUG = True\nGITHUB_TOKEN = "{TOKEN}"\n')
    code, doc = hook(repo.path)
    assert code == 1
    assert where(doc) == [("app/config.py", 2)]
    finding = doc["findings"][0]
    assert finding["rule_id"] == "github-pat"
    assert finding["column"] == len('GITHUB_TOKEN = "') + 1
    assert finding["secret"] == TOKEN[:4] + "********"


def aws_canary(seed: str) -> str:
    # AWS key ids are base32 after the prefix (tests.helpers.canary_aws_key_id draws from A-Z0-9)
    return expand("AKIA{{chars:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567:16}}", seed)


@pytest.mark.skipif(
    "aws-access-key-id" not in {r.id for r in RuleSet.load().rules}, reason="rules/cloud.yaml not there yet"
)
def test_aws_key_id_in_an_env_file(based: Repo) -> None:
    key = aws_canary("staged-aws")
    based.stage("deploy/.env", f"REGION=eu-west-1\nAWS_ACCESS_KEY_ID={key}\n")
    proc, doc = sentra_json(["hook", "pre-commit"], based.path)
    assert_no_leak(proc, key)
    assert proc.returncode == 1
    assert [(f["path"], f["line"], f["rule_id"], f["secret"]) for f in doc["findings"]] == [
        ("deploy/.env", 2, "aws-access-key-id", "AKIA********")
    ]


def test_modified_file_reports_new_line_numbers_across_hunks(based: Repo) -> None:
    original = numbered(60)
    original[9] = f'old = "{OTHER}"'  # committed earlier: not part of this diff
    based.commit_files({"src/mod.py": text(original)}, "add module")

    new = original.copy()
    new[34] = f'token = "{TOKEN}"'  # original line 35 changed ...
    new[0:0] = ["# header", f'first = "{THIRD}"']  # ... and two lines inserted above it: now line 37
    new.append("tail")
    based.stage("src/mod.py", text(new))

    code, doc = hook(based.path)
    assert code == 1
    assert where(doc) == [("src/mod.py", 2), ("src/mod.py", 37)]
    assert doc["stats"]["lines"] == 4  # the added lines only: 2 inserted, 1 changed, 1 appended


def test_committed_secret_on_unchanged_line_is_not_reported(based: Repo) -> None:
    based.commit_files({"settings.py": text([*numbered(5), f'KEY = "{TOKEN}"', *numbered(5, "more")])})
    content = (based.path / "settings.py").read_text().replace("more 3", "more three")
    based.stage("settings.py", content)
    code, doc = hook(based.path)
    assert (code, doc["findings"]) == (0, [])


# --- renames and deletions -------------------------------------------------------------------


def test_pure_rename_scans_nothing(based: Repo) -> None:
    based.commit_files({"old/secrets.py": text([*numbered(20), f'T = "{TOKEN}"'])})
    based.rename("old/secrets.py", "new/place.py")
    assert "R100" in based.git("diff", "--cached", "--name-status", "-M")
    code, doc = hook(based.path)
    assert (code, doc["findings"], doc["stats"]["lines"]) == (0, [], 0)


def test_rename_with_an_added_line_reports_only_that_line_at_the_new_path(based: Repo) -> None:
    body = [*numbered(20), f'T = "{TOKEN}"']
    based.commit_files({"old/secrets.py": text(body)})
    based.rename("old/secrets.py", "new/place.py")
    based.stage("new/place.py", text([*body, f'U = "{OTHER}"']))
    assert based.git("diff", "--cached", "--name-status", "-M").startswith("R")
    code, doc = hook(based.path)
    assert code == 1
    assert where(doc) == [("new/place.py", 22)]


def test_deleting_a_file_that_contains_a_secret_is_not_flagged(based: Repo) -> None:
    based.commit_files({"leak.env": f"TOKEN={TOKEN}\n"})
    based.remove("leak.env")
    code, doc = hook(based.path)
    assert (code, doc["findings"], doc["skipped"]) == (0, [], [])


def test_deleting_the_line_with_the_secret_is_not_flagged(based: Repo) -> None:
    based.commit_files({"app.py": f'a = 1\ntoken = "{TOKEN}"\nb = 2\n'})
    based.stage("app.py", "a = 1\nb = 2\n")
    code, doc = hook(based.path)
    assert (code, doc["findings"]) == (0, [])


def test_replacing_a_secret_by_another_reports_the_new_one(based: Repo) -> None:
    based.commit_files({"app.py": f'a = 1\ntoken = "{TOKEN}"\n'})
    based.stage("app.py", f'a = 1\ntoken = "{OTHER}"\n')
    code, doc = hook(based.path)
    assert code == 1
    assert where(doc) == [("app.py", 2)]
    assert doc["findings"][0]["secret"] == OTHER[:4] + "********"


# --- what is not text ------------------------------------------------------------------------


def test_binary_file_is_skipped_not_incomplete(based: Repo) -> None:
    based.stage("assets/blob.bin", b"\x00\x01\x02" + TOKEN.encode() + b"\x00\xff\n")
    code, doc = hook(based.path, "--strict")
    assert code == 0
    assert doc["findings"] == []
    assert [(s["path"], s["reason"]) for s in doc["skipped"]] == [("assets/blob.bin", "binary")]
    assert doc["stats"]["complete"] is True


def test_modified_binary_file_is_skipped(based: Repo) -> None:
    based.commit_files({"img.png": b"\x89PNG\x00\x00old"})
    based.stage("img.png", b"\x89PNG\x00\x00new " + TOKEN.encode())
    code, doc = hook(based.path, "--strict")
    assert code == 0
    assert [(s["path"], s["reason"]) for s in doc["skipped"]] == [("img.png", "binary")]


def test_files_marked_binary_by_attributes_are_still_scanned(based: Repo) -> None:
    """`-diff` on lock files or minified code makes git print "Binary files differ" for
    text: a secret there must not pass as "binary"."""
    based.commit_files(
        {
            ".gitattributes": "*.lock -diff\n*.min.js binary\n*.png binary\n",
            "deps.lock": text(numbered(10)),
        }
    )
    based.stage("deps.lock", text([*numbered(10), "extra", f'token = "{TOKEN}"']))
    based.stage("dist/app.min.js", f'var t="{OTHER}";\n')
    based.stage("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00" + THIRD.encode() + b"\n")
    based.stage("plain.bin", b"\x00\x01" + THIRD.encode())
    assert "Binary files" in based.git("diff", "--cached", "--", "deps.lock")

    code, doc = hook(based.path / "dist", "--strict")
    assert code == 1
    assert where(doc) == [("deps.lock", 12), ("dist/app.min.js", 1)]
    assert sorted((s["path"], s["reason"]) for s in doc["skipped"]) == [
        ("logo.png", "binary"),
        ("plain.bin", "binary"),
    ]


def test_binary_and_attribute_binary_files_with_and_in_their_names(based: Repo) -> None:
    based.commit_files({".gitattributes": "*.lock -diff\n"})
    based.stage("x and y.bin", b"\x00\x01binary")
    based.stage("deps and more.lock", f'x = 1\nt = "{TOKEN}"\n')
    code, doc = hook(based.path)
    assert code == 1
    assert where(doc) == [("deps and more.lock", 2)]
    assert [(s["path"], s["reason"]) for s in doc["skipped"]] == [("x and y.bin", "binary")]

    based.commit("binaries")
    based.stage("x and y.bin", b"\x00\x02changed")
    based.rename("x and y.bin", "p and q.bin")
    code, doc = hook(based.path)
    assert [(s["path"], s["reason"]) for s in doc["skipped"]] == [("p and q.bin", "binary")]


def test_submodule_and_symlink_give_no_finding(based: Repo, tmp_path: Path) -> None:
    library = init_repo(tmp_path / "library")
    library.commit_files({"lib.py": f'K = "{TOKEN}"\n'})  # inside the submodule: not this repo's diff
    based.add_submodule(library, "vendor/library")
    based.write("target.txt", "plain\n")
    based.git("add", "target.txt")
    based.symlink("link-to-target", "target.txt")
    based.symlink("dangling", "does/not/exist")
    staged = based.git("diff", "--cached", "--raw")
    assert " 160000 " in staged
    assert " 120000 " in staged

    code, doc = hook(based.path, "--strict")
    assert code == 0
    assert doc["findings"] == []
    assert doc["skipped"] == []
    # .gitmodules and target.txt are ordinary text and were scanned; the gitlink and links were not
    assert doc["stats"]["fragments"] == 2

    # a modified gitlink (the submodule moved to another commit) is no text either
    based.commit("add submodule")
    library.commit_files({"more.py": "x = 1\n"})
    sub = Repo(based.path / "vendor" / "library")
    sub.git("-c", "protocol.file.allow=always", "pull", "-q", "--no-rebase")
    based.git("add", "vendor/library")
    code, doc = hook(based.path, "--strict")
    assert (code, doc["findings"], doc["skipped"], doc["stats"]["fragments"]) == (0, [], [], 0)


def test_file_over_the_size_limit_is_skipped_and_incomplete(based: Repo) -> None:
    based.write(".sentra.yaml", "max-file-size: 1KB\n")
    big = text([f'value_{i} = "{"x" * 60}"' for i in range(40)] + [f'token = "{TOKEN}"'])
    assert len(big) > 2048
    based.stage("data/big.py", big)
    based.stage("small.py", "x = 1\n")

    code, doc = hook(based.path)
    assert code == 0
    assert doc["findings"] == []
    assert [(s["path"], s["reason"]) for s in doc["skipped"]] == [("data/big.py", "too large")]
    assert doc["stats"]["complete"] is False

    code, _ = hook(based.path, "--strict")
    assert code == 4

    proc = sentra(["hook", "pre-commit"], based.path)
    assert proc.returncode == 0
    assert "data/big.py" in proc.stderr
    assert "too large" in proc.stderr
    assert_no_leak(proc, TOKEN)

    proc = sentra(["hook", "pre-commit"], based.path, env={**os.environ, "SENTRA_STRICT": "1"})
    assert proc.returncode == 4


# --- text that is not clean ------------------------------------------------------------------


def test_invalid_utf8_around_the_secret(based: Repo) -> None:
    data = b"caf\xe9 \xff\xfe\n" + b"key=\xc3\x28 " + TOKEN.encode() + b" \xed\xa0\x80\x80\n" + b"\xf0\x28\x8c\x28\n"
    based.stage("latin1.txt", data)
    code, doc = hook(based.path)
    assert code == 1
    assert where(doc) == [("latin1.txt", 2)]


def test_very_long_line_is_scanned_quickly(based: Repo) -> None:
    half = "var a=" + ";".join(f"f{i}(x,{i})" for i in range(60_000))
    half = half[: 512 * 1024]
    line = f'{half};var t="{TOKEN}";{half}'
    assert len(line) > 1024 * 1024
    based.stage("dist/app.min.js", "/* built */\n" + line + "\n")
    start = time.monotonic()
    code, doc = hook(based.path)
    elapsed = time.monotonic() - start
    assert code == 1
    assert where(doc) == [("dist/app.min.js", 2)]
    assert doc["findings"][0]["column"] == len(half) + len(';var t="') + 1
    assert len(doc["findings"][0]["line_masked"]) < 200  # trimmed around the secret
    assert elapsed < 10


def test_crlf_line_endings(based: Repo) -> None:
    based.commit_files({"win.ini": b"[a]\r\nx=1\r\n"})
    based.stage("win.ini", b"[a]\r\nx=1\r\ny=2\r\ntoken=" + TOKEN.encode() + b"\r\n")
    code, doc = hook(based.path)
    assert code == 1
    assert where(doc) == [("win.ini", 4)]
    finding = doc["findings"][0]
    assert finding["end_column"] - finding["column"] == len(TOKEN)
    assert "\r" not in finding["line_masked"]


@pytest.mark.parametrize(
    "path",
    [
        "dir with spaces/my file.py",
        "données/café ü 日本.py",
        'odd/we"ird\tname.py',  # quoted by git even with core.quotepath=off
        "odd/back\\slash.py",
        " leading space.py",
    ],
)
def test_unusual_paths(based: Repo, path: str) -> None:
    based.stage(path, f'x = 1\nt = "{TOKEN}"\n')
    code, doc = hook(based.path)
    assert code == 1
    assert where(doc) == [(path, 2)]


def test_non_ascii_path_with_quotepath_on_in_user_config(based: Repo) -> None:
    based.git("config", "core.quotepath", "on")
    based.git("config", "diff.noprefix", "true")
    based.git("config", "diff.relative", "true")
    based.git("config", "diff.renames", "copies")
    based.stage("sous-dossier/clé.py", f't = "{TOKEN}"\n')
    code, doc = hook(based.path / "sous-dossier")
    assert code == 1
    assert where(doc) == [("sous-dossier/clé.py", 1)]


# --- which index, which work tree ------------------------------------------------------------


def test_git_index_file_is_honoured(based: Repo, tmp_path: Path) -> None:
    """`git commit <path>` runs the hook with GIT_INDEX_FILE naming a temporary index that
    holds HEAD plus those paths: only they may be scanned."""
    based.stage("a.py", f'a = "{TOKEN}"\n')
    based.stage("b.py", f'b = "{OTHER}"\n')
    index = tmp_path / "partial-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    run(["git", "read-tree", "HEAD"], based.path, env=env)
    run(["git", "add", "b.py"], based.path, env=env)

    code, doc = hook(based.path, env=env)
    assert code == 1
    assert where(doc) == [("b.py", 1)]

    code, doc = hook(based.path)  # the real index holds both
    assert where(doc) == [("a.py", 1), ("b.py", 1)]


def test_git_commit_with_paths_scans_only_those_paths(based: Repo) -> None:
    """The real thing: git itself builds the temporary index and runs the hook."""
    hook_file = based.path / ".git" / "hooks" / "pre-commit"
    hook_file.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m sentra_scan hook pre-commit "$@"\n')
    hook_file.chmod(hook_file.stat().st_mode | stat.S_IXUSR)
    based.commit_files({"clean.py": "x = 1\n"})
    based.stage("leak.py", f't = "{TOKEN}"\n')
    based.write("clean.py", "x = 2\n")

    proc = run(["git", "commit", "-m", "only clean.py", "clean.py"], based.path, check=False)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 0, proc.stderr
    assert "leak.py" in based.git("diff", "--cached", "--name-only")  # still staged, not committed

    proc = run(["git", "commit", "-m", "everything"], based.path, check=False)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode != 0
    assert "leak.py:1" in proc.stderr


def test_linked_worktree(based: Repo, tmp_path: Path) -> None:
    tree = based.worktree_add(tmp_path / "feature-tree", "feature")
    assert (tree.path / ".git").is_file()
    tree.stage("feature.py", f'x = 1\nt = "{TOKEN}"\n')

    code, doc = hook(tree.path)
    assert code == 1
    assert where(doc) == [("feature.py", 2)]

    code, doc = hook(based.path)  # the main work tree has its own index
    assert (code, doc["findings"]) == (0, [])

    (tree.path / "pkg").mkdir()
    code, doc = hook(tree.path / "pkg")
    assert where(doc) == [("feature.py", 2)]


def test_subdirectory_reports_repository_relative_paths(based: Repo) -> None:
    based.stage("pkg/sub/mod.py", f't = "{TOKEN}"\n')
    based.stage("top.py", f't = "{OTHER}"\n')
    code, doc = hook(based.path / "pkg" / "sub")
    assert code == 1
    assert where(doc) == [("pkg/sub/mod.py", 1), ("top.py", 1)]

    proc, doc = sentra_json(["scan", "--staged"], based.path / "pkg")
    assert_no_leak(proc, TOKEN, OTHER)
    assert proc.returncode == 1
    assert where(doc) == [("pkg/sub/mod.py", 1), ("top.py", 1)]


def test_config_is_found_from_a_subdirectory(based: Repo) -> None:
    based.write(".sentra.yaml", "disable: [github-pat]\n")
    based.stage("pkg/mod.py", f't = "{TOKEN}"\n')
    code, doc = hook(based.path / "pkg")
    assert (code, doc["findings"]) == (0, [])


def test_unstaged_and_untracked_changes_are_not_scanned(based: Repo) -> None:
    based.commit_files({"app.py": "x = 1\n"})
    based.write("app.py", f'x = 1\nt = "{TOKEN}"\n')  # modified, not staged
    based.write("untracked.py", f't = "{OTHER}"\n')
    code, doc = hook(based.path)
    assert (code, doc["findings"]) == (0, [])

    based.stage("app.py", "x = 1\ny = 2\n")  # a clean version staged ...
    based.write("app.py", f'x = 1\ny = 2\nt = "{TOKEN}"\n')  # ... and a secret added after it
    code, doc = hook(based.path)
    assert (code, doc["findings"], doc["stats"]["lines"]) == (0, [], 1)


def test_no_staged_changes(based: Repo) -> None:
    code, doc = hook(based.path)
    assert (code, doc["findings"], doc["skipped"]) == (0, [], [])


def test_staged_in_a_merge_commit(based: Repo) -> None:
    based.branch("topic")
    based.commit_files({"topic.py": "a = 1\n"})
    based.switch("main")
    based.commit_files({"main.py": "b = 1\n"})
    based.git("merge", "--no-commit", "--no-ff", "topic")
    based.stage("main.py", f'b = 1\nt = "{TOKEN}"\n')  # an "evil merge" line
    code, doc = hook(based.path)
    assert code == 1
    assert where(doc) == [("main.py", 2)]


def test_shallow_clone(based: Repo, tmp_path: Path) -> None:
    based.commit_files({"a.py": "a = 1\n"}, "second")
    clone = based.shallow_clone(tmp_path / "shallow")
    assert (clone.path / ".git" / "shallow").is_file()
    clone.stage("a.py", f'a = 1\nt = "{TOKEN}"\n')
    _, doc = hook(clone.path)
    assert where(doc) == [("a.py", 2)]


def test_bare_git_dir_env(based: Repo, tmp_path: Path) -> None:
    """GIT_DIR and GIT_WORK_TREE (set by some hook runners) locate the repository."""
    based.stage("app.py", f't = "{TOKEN}"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "GIT_DIR": str(based.path / ".git"), "GIT_WORK_TREE": str(based.path)}
    code, doc = hook(elsewhere, env=env)
    assert code == 1
    assert where(doc) == [("app.py", 1)]


def test_large_diff_of_many_files(based: Repo) -> None:
    # larger than a pipe's buffer: the source streams git's output
    for i in range(300):
        based.write(f"many/f{i:03}.py", text([f"x{j} = {j}" for j in range(40)]))
    based.git("add", "many")
    based.stage("many/zz.py", f't = "{TOKEN}"\n')
    code, doc = hook(based.path)
    assert code == 1
    assert where(doc) == [("many/zz.py", 1)]
    assert doc["stats"]["fragments"] == 301


def test_git_failure_is_exit_5_not_1(based: Repo) -> None:
    (based.path / ".git" / "HEAD").write_text("garbage\n")
    proc = sentra(["hook", "pre-commit"], based.path)
    assert proc.returncode == 5, proc.stderr
    assert "error:" in proc.stderr


# --- the diff parser on its own (in process: git's output shapes that are hard to stage) -----


def parse(diff: str, max_file_size: int = 1 << 20) -> list[Fragment | Skipped]:
    lines = [line.encode("utf-8") for line in diff.splitlines(keepends=True)]
    return list(DiffParser(max_file_size=max_file_size).parse(lines))


def test_parser_quoted_paths_and_no_newline_marker() -> None:
    items = parse(
        'diff --git "a/caf\\303\\251 \\"q\\".py" "b/caf\\303\\251 \\"q\\".py"\n'
        "new file mode 100644\n"
        "index 0000000..1111111\n"
        "--- /dev/null\n"
        '+++ "b/caf\\303\\251 \\"q\\".py"\n'
        "@@ -0,0 +1,2 @@\n"
        "+first\n"
        "+second\n"
        "\\ No newline at end of file\n"
    )
    assert items == [Fragment('café "q".py', ("first", "second"), (1, 2))]


def test_parser_hunks_deletions_and_context() -> None:
    items = parse(
        "diff --git a/m.py b/m.py\n"
        "index 1111111..2222222 100644\n"
        "--- a/m.py\n"
        "+++ b/m.py\n"
        "@@ -3,2 +3 @@ def f():\n"
        "-gone\n"
        "-+++ not a header\n"
        "+--- not a header either\n"
        "@@ -40,0 +40,2 @@\n"
        "+diff --git a/x b/x\n"
        "+@@ -1 +1 @@\n"
        "diff --git a/gone.py b/gone.py\n"
        "deleted file mode 100644\n"
        "index 3333333..0000000\n"
        "--- a/gone.py\n"
        "+++ /dev/null\n"
        "@@ -1 +0,0 @@\n"
        "-old\n"
    )
    assert items == [
        Fragment("m.py", ("--- not a header either", "diff --git a/x b/x", "@@ -1 +1 @@"), (3, 40, 41)),
    ]


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ("Binary files /dev/null and b/img.png differ", "img.png"),
        ("Binary files a/img.png and b/img.png differ", "img.png"),
        ("Binary files /dev/null and b/x and y.bin differ", "x and y.bin"),
        ("Binary files a/x and y.bin and b/x and y.bin differ", "x and y.bin"),
        ('Binary files "a/t\\tab.bin" and "b/t\\tab.bin" differ', "t\tab.bin"),
    ],
)
def test_parser_binary_paths(line: str, path: str) -> None:
    items = parse(f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n{line}\n")
    assert items == [Skipped(path, SkipReason.BINARY)]


def test_parser_binary_rename_uses_the_new_path() -> None:
    items = parse(
        "diff --git a/a and b.bin b/c and d.bin\n"
        "similarity index 90%\n"
        "rename from a and b.bin\n"
        "rename to c and d.bin\n"
        "index 1111111..2222222 100644\n"
        "Binary files a/a and b.bin and b/c and d.bin differ\n"
    )
    assert items == [Skipped("c and d.bin", SkipReason.BINARY)]


def test_parser_size_limit_and_nul_bytes() -> None:
    head = "diff --git a/f b/f\nnew file mode 100644\n--- /dev/null\n+++ b/f\n@@ -0,0 +1,3 @@\n"
    assert parse(head + "+aaaa\n+bbbb\n+cccc\n", max_file_size=10) == [
        Skipped("f", SkipReason.TOO_LARGE, "added lines exceed 10 bytes")
    ]
    assert parse(head + "+aaaa\n+b\0b\n+cccc\n") == [Skipped("f", SkipReason.BINARY)]
