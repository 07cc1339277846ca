"""A canary secret through the whole encrypted-state life cycle (audit, incremental audit,
history, status, rotation): its value never reaches a file or an output, and the commit's
sensitive metadata (author, email, path, id) never reaches a file under .git/sentra."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Repo, canary_github_token, sentra

KEY = base64.b64encode(bytes(range(140, 172))).decode()
AUTHOR = "Canary Quillfeather"
EMAIL = "quillfeather.canary@example.test"
PATH = "deploy/quillfeather-settings.py"


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink():
                    yield path


def occurrences(needle: str, *roots: Path) -> list[str]:
    forms = {needle.encode(), needle.encode("utf-16-le"), base64.b64encode(needle.encode())}
    hits = []
    for path in files_under(*roots):
        data = path.read_bytes()
        if any(form in data for form in forms):
            hits.append(str(path))
    return hits


@pytest.fixture
def canary_repo(repo: Repo) -> tuple[Repo, str, str]:
    token = canary_github_token("state-canary")
    repo.commit_files({"README.md": "# canary\n"}, "readme")
    repo.stage(PATH, f'GITHUB_TOKEN = "{token}"\n')
    who = {"GIT_AUTHOR_NAME": AUTHOR, "GIT_AUTHOR_EMAIL": EMAIL}
    repo.git("commit", "-q", "--no-verify", "-m", "settings", env=who)
    commit = repo.head()
    repo.commit_files({"docs/notes.md": "notes\n"}, "notes")
    return repo, token, commit


def test_canary_never_leaves_the_process_or_reaches_state_files(
    canary_repo: tuple[Repo, str, str], hermetic_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, token, commit = canary_repo
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    for var in ("SENTRA_KEY_FILE", "SENTRA_PASSWORD", "SENTRA_KEY_SOURCE", "SENTRA_NO_RECORD"):
        monkeypatch.delenv(var, raising=False)
    env = {
        **os.environ,
        "SENTRA_KEY": KEY,
        "TMPDIR": str(tmpdir),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    runs = [
        (["audit"], 1),
        (["audit", "--format", "json"], 1),
        (["audit", "--format", "sarif", "--full"], 1),
        (["history"], 0),
        (["history", "--json"], 0),
        (["key", "status"], 0),
        (["key", "rotate"], 0),
        (["history", "--json"], 0),
    ]
    outputs = []
    for args, code in runs:
        proc = sentra(args, repo.path, env=env)
        assert proc.returncode == code, (args, proc.stderr)
        outputs.append(proc.stdout + proc.stderr)
    assert "github-pat" in outputs[0]
    assert PATH in outputs[0]  # the report names the file; it is the state on disk that must not
    assert "quillfeather-settings" in outputs[4]  # history shows it, decrypted

    for args, out in zip((r[0] for r in runs), outputs, strict=True):
        assert token not in out, f"the canary leaked to the output of {args}"
        assert token[4:] not in out
    git_dir = repo.path / ".git"
    state = git_dir / "sentra"
    assert sorted(p.name for p in state.iterdir()) == [".lock", "keys.json", "ledger.db"]
    # The value: nowhere on disk outside the work tree's file (git objects are compressed).
    assert occurrences(token, git_dir, hermetic_env, tmpdir) == []
    assert occurrences(token[4:], git_dir, hermetic_env, tmpdir) == []
    assert occurrences(PATH, git_dir)  # the walk does read git's files (the index names the path)
    # The metadata: not in Sentra's state (git's own files hold it, as git always does).
    for sensitive in (AUTHOR, EMAIL, PATH, "quillfeather", commit, commit[:12], "github-pat"):
        assert occurrences(sensitive, state) == [], sensitive
    # Nothing of Sentra's leaks into HOME or the temp dir either.
    for sensitive in (AUTHOR, EMAIL, "quillfeather", commit):
        assert occurrences(sensitive, hermetic_env, tmpdir) == [], sensitive
    assert KEY not in "".join(outputs)
    assert occurrences(KEY, git_dir, hermetic_env, tmpdir) == []
