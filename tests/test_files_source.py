"""`sentra scan PATH...` and `sentra scan -`: files and directories, in and out of git."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    Repo,
    assert_no_leak,
    canary_github_token,
    init_repo,
    run,
    sentra,
    sentra_json,
)

TOKEN = canary_github_token("files")
OTHER = canary_github_token("files-other")
IGNORED = canary_github_token("files-ignored")
BUILT = canary_github_token("files-build")
HIDDEN = canary_github_token("files-dot-git")
NAMED = [canary_github_token(f"files-name-{i}") for i in range(3)]
ALL = (TOKEN, OTHER, IGNORED, BUILT, HIDDEN, *NAMED)


@pytest.fixture(autouse=True)
def _no_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about what is scanned, not about the encrypted ledger (test_hooks keeps
    the default): no key-source probe on every blocked commit."""
    monkeypatch.setenv("SENTRA_NO_RECORD", "1")


def scan(args: list[str], cwd: Path, *, input: bytes | None = None) -> tuple[int, dict[str, Any]]:
    proc, doc = sentra_json(["scan", *args], cwd, input=input)
    assert_no_leak(proc, *ALL)
    return proc.returncode, doc


def where(doc: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted((f["path"], f["line"]) for f in doc["findings"])


def skipped(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((s["path"], s["reason"]) for s in doc["skipped"])


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """A directory tree outside any git repository."""
    root = tmp_path / "plain"
    write(root / "app.py", f'import os\nTOKEN = "{TOKEN}"\n')
    write(root / "conf" / "settings.ini", f"[gh]\n\ntoken={OTHER}\n")
    write(root / "clean.txt", "nothing here\n")
    write(root / ".git" / "config", f"token={HIDDEN}\n")  # not a repository: never read
    write(root / "vendor" / "lib" / ".git" / "HEAD", f"{HIDDEN}\n")
    return root


# --- directories outside git -----------------------------------------------------------------


def test_directory_outside_git_is_walked_without_dot_git(plain: Path) -> None:
    code, doc = scan(["."], plain)
    assert code == 1
    assert where(doc) == [("app.py", 2), ("conf/settings.ini", 3)]
    assert doc["stats"]["complete"] is True


def test_paths_are_shown_relative_to_the_current_directory(plain: Path) -> None:
    code, doc = scan(["plain/conf"], plain.parent)
    assert (code, where(doc)) == (1, [("plain/conf/settings.ini", 3)])
    code, doc = scan([".."], plain / "conf")
    assert where(doc) == [("../app.py", 2), ("../conf/settings.ini", 3)]


def test_no_path_means_the_current_directory(plain: Path) -> None:
    code, doc = scan([], plain / "conf")
    assert (code, where(doc)) == (1, [("settings.ini", 3)])


def test_single_file(plain: Path) -> None:
    code, doc = scan(["conf/settings.ini"], plain)
    assert (code, where(doc)) == (1, [("conf/settings.ini", 3)])
    code, doc = scan(["clean.txt"], plain)
    assert (code, doc["findings"]) == (0, [])


def test_several_paths(plain: Path) -> None:
    code, doc = scan(["clean.txt", "app.py", "conf"], plain)
    assert (code, where(doc)) == (1, [("app.py", 2), ("conf/settings.ini", 3)])


def test_missing_path_is_a_usage_error(plain: Path) -> None:
    proc = sentra(["scan", "no-such-file.py"], plain)
    assert proc.returncode == 2
    assert "no-such-file.py" in proc.stderr


def test_text_report(plain: Path) -> None:
    proc = sentra(["scan", "app.py"], plain)
    assert proc.returncode == 1
    assert_no_leak(proc, *ALL)
    assert "app.py:2:" in proc.stdout
    assert "github-pat" in proc.stdout
    assert TOKEN[:4] + "********" in proc.stdout


# --- directories inside git ------------------------------------------------------------------


@pytest.fixture
def project(repo: Repo) -> Repo:
    repo.commit_files(
        {
            ".gitignore": "*.env\nbuild/\n",
            "src/app.py": f'TOKEN = "{TOKEN}"\n',
            "README.md": "# readme\n",
        }
    )
    repo.write("untracked.py", f'x = 1\nOTHER = "{OTHER}"\n')  # untracked, not ignored: scanned
    repo.write("local.env", f"TOKEN={IGNORED}\n")
    repo.write("build/out.js", f'var t = "{BUILT}";\n')
    repo.write(".git/canary", f"{HIDDEN}\n")
    return repo


def test_git_directory_respects_gitignore(project: Repo) -> None:
    code, doc = scan(["."], project.path)
    assert code == 1
    assert where(doc) == [("src/app.py", 1), ("untracked.py", 2)]


def test_git_subdirectory(project: Repo) -> None:
    code, doc = scan(["src"], project.path)
    assert where(doc) == [("src/app.py", 1)]
    code, doc = scan(["."], project.path / "src")
    assert (code, where(doc)) == (1, [("app.py", 1)])


def test_no_git_ignore_reads_ignored_files_but_never_dot_git(project: Repo) -> None:
    code, doc = scan([".", "--no-git-ignore"], project.path)
    assert code == 1
    assert where(doc) == [("build/out.js", 1), ("local.env", 1), ("src/app.py", 1), ("untracked.py", 2)]


def test_an_ignored_file_named_explicitly_is_scanned(project: Repo) -> None:
    code, doc = scan(["local.env"], project.path)
    assert (code, where(doc)) == (1, [("local.env", 1)])


def test_tracked_file_deleted_from_the_work_tree(project: Repo) -> None:
    (project.path / "src" / "app.py").unlink()
    code, doc = scan(["."], project.path)
    assert (code, where(doc), doc["skipped"]) == (1, [("untracked.py", 2)], [])


def test_submodule_and_symlinks_in_a_git_directory(project: Repo, tmp_path: Path) -> None:
    library = init_repo(tmp_path / "library")
    library.commit_files({"lib.py": "x = 1\n"})
    project.add_submodule(library, "vendor/library")
    project.symlink("link.py", "src/app.py")
    project.symlink("dangling.py", "nowhere.py")
    code, doc = scan([".", "--strict"], project.path)
    assert code == 1
    assert where(doc) == [("src/app.py", 1), ("untracked.py", 2)]
    assert doc["skipped"] == []


def test_unusual_file_names(repo: Repo) -> None:
    names = ["dir with spaces/my file.py", "données/café 日本.py", 'odd/we"ird\tname.py']
    for name, token in zip(names, NAMED, strict=True):  # one secret each: a repeated one is reported once
        repo.write(name, f'x = 1\nt = "{token}"\n')
    code, doc = scan(["."], repo.path)
    assert code == 1
    assert where(doc) == sorted((name, 2) for name in names)


def test_a_symlink_named_on_the_command_line_is_followed(plain: Path) -> None:
    (plain / "link.ini").symlink_to(plain / "conf" / "settings.ini")
    code, doc = scan(["link.ini"], plain)
    assert (code, where(doc)) == (1, [("link.ini", 3)])
    code, doc = scan(["."], plain)  # found in a directory: not followed (no duplicates, no loops)
    assert where(doc) == [("app.py", 2), ("conf/settings.ini", 3)]


def test_a_fifo_in_a_directory_does_not_block(plain: Path) -> None:
    os.mkfifo(plain / "pipe")
    proc, doc = sentra_json(["scan", "."], plain)  # would block forever opening the FIFO
    assert proc.returncode == 1
    assert where(doc) == [("app.py", 2), ("conf/settings.ini", 3)]


def test_process_substitution(plain: Path) -> None:
    """`sentra scan <(cmd)`: a pipe named on the command line is read."""
    script = f'exec "{sys.executable}" -m sentra_scan scan --format json <(printf "a\\nT={TOKEN}\\n")'
    proc = run(["bash", "-c", script], plain, check=False)
    assert_no_leak(proc, TOKEN)
    assert proc.returncode == 1, proc.stderr
    [finding] = json.loads(proc.stdout)["findings"]
    assert "dev/fd/" in finding["path"]
    assert finding["line"] == 2


# --- what cannot be read as text --------------------------------------------------------------


def test_binary_file_is_skipped_not_incomplete(plain: Path) -> None:
    write(plain / "image.bin", b"\x89PNG\x00\x00" + TOKEN.encode() + b"\x00")
    code, doc = scan(["image.bin", "--strict"], plain)
    assert code == 0
    assert skipped(doc) == [("image.bin", "binary")]
    assert doc["stats"]["complete"] is True


def test_file_over_the_size_limit(plain: Path) -> None:
    write(plain / ".sentra.yaml", "max-file-size: 1KB\n")
    write(plain / "big.py", "x = 1\n" * 400 + f't = "{TOKEN}"\n')
    code, doc = scan(["big.py"], plain)
    assert code == 0
    assert skipped(doc) == [("big.py", "too large")]
    assert doc["stats"]["complete"] is False
    code, _ = scan(["big.py", "--strict"], plain)
    assert code == 4
    proc = sentra(["scan", "big.py"], plain)
    assert "big.py" in proc.stdout + proc.stderr
    assert "too large" in proc.stdout + proc.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a file with mode 000")
def test_unreadable_file(plain: Path) -> None:
    secret = write(plain / "locked.py", f't = "{TOKEN}"\n')
    secret.chmod(0)
    try:
        code, doc = scan(["."], plain)
        assert code == 1  # the other files' findings
        assert ("locked.py", "unreadable") in skipped(doc)
        assert doc["stats"]["complete"] is False
        code, doc = scan(["locked.py", "--strict"], plain)
        assert (code, skipped(doc)) == (4, [("locked.py", "unreadable")])
    finally:
        secret.chmod(0o600)


def test_crlf_and_invalid_utf8(plain: Path) -> None:
    write(plain / "win.txt", b"a\r\n\xff\xfe\r\nkey=" + TOKEN.encode() + b"\r\n")
    code, doc = scan(["win.txt"], plain)
    assert (code, where(doc)) == (1, [("win.txt", 3)])
    assert doc["findings"][0]["end_column"] - doc["findings"][0]["column"] == len(TOKEN)


# --- stdin -----------------------------------------------------------------------------------


def test_stdin(tmp_path: Path) -> None:
    code, doc = scan(["-"], tmp_path, input=f'line 1\nexport GITHUB_TOKEN="{TOKEN}"\n'.encode())
    assert (code, where(doc)) == (1, [("<stdin>", 2)])


def test_stdin_with_a_name(tmp_path: Path) -> None:
    code, doc = scan(["-", "--stdin-name", "config/app.env"], tmp_path, input=f"T={TOKEN}".encode())
    assert (code, where(doc)) == (1, [("config/app.env", 1)])


def test_stdin_clean_and_empty(tmp_path: Path) -> None:
    assert scan(["-"], tmp_path, input=b"nothing to see\n")[0] == 0
    assert scan(["-"], tmp_path, input=b"")[0] == 0


def test_stdin_binary(tmp_path: Path) -> None:
    code, doc = scan(["-", "--strict"], tmp_path, input=b"\x00\x01" + TOKEN.encode())
    assert (code, skipped(doc)) == (0, [("<stdin>", "binary")])


def test_stdin_cannot_be_combined_with_paths(plain: Path) -> None:
    proc = sentra(["scan", "-", "app.py"], plain, input=b"x")
    assert proc.returncode == 2
    assert "stdin" in proc.stderr


def test_unreadable_file_in_process(plain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same path as above without needing a non-root user: reading fails with EACCES."""
    from sentra_scan.model import Fragment, Skipped, SkipReason
    from sentra_scan.sources.files import FileSource

    locked = write(plain / "locked.py", f't = "{TOKEN}"\n')
    real_open = Path.open

    def open_(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "locked.py":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    monkeypatch.chdir(plain)
    items = list(FileSource([Path(".")], max_file_size=1 << 20).items())
    assert Skipped("locked.py", SkipReason.UNREADABLE, "Permission denied") in items
    assert all(item.path != "locked.py" for item in items if isinstance(item, Fragment))
    assert locked.exists()
