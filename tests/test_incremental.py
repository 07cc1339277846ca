"""Incremental history scans through the ledger: commits already scanned clean with the
same scanner version are skipped, everything else (rules, config, baselines, dirty
commits, messages) makes them count again; no key source never stops a scan."""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

import pytest

from sentra_scan.errors import ExitCode
from tests.helpers import Repo, assert_no_leak, canary_github_token, sentra

KEY = base64.b64encode(bytes(range(90, 122))).decode()
ZERO = "0" * 40
ACME_RULE = """version: 1
rules:
  - id: acme-api-key
    description: ACME API key
    severity: medium
    keywords: [acme_]
    pattern: '\\bacme_(?P<secret>[a-z0-9]{24})\\b'
"""
ACME_KEY = "acme_" + "k3y9" * 6


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for var in ("SENTRA_KEY_FILE", "SENTRA_PASSWORD", "SENTRA_KEY_SOURCE", "SENTRA_NO_RECORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    return {**os.environ, "SENTRA_KEY": KEY}


@pytest.fixture
def history(repo: Repo) -> tuple[Repo, str]:
    """Four clean commits (one holds a string only a custom rule finds) and one secret."""
    token = canary_github_token("incremental")
    repo.commit_files({"README.md": "# demo\n"}, "readme")
    repo.commit_files({"src/app.py": "print('hi')\n"}, "app")
    repo.commit_files({"src/vendor.txt": f"vendor = {ACME_KEY}\n"}, "vendor")
    repo.commit_files({"config/settings.py": f'token = "{token}"\n'}, "config")
    repo.commit_files({"docs/notes.md": "notes\n"}, "notes")
    return repo, token


def audit(repo: Repo, env: dict[str, str], *args: str) -> tuple[int, str, list[dict[str, Any]]]:
    proc = sentra(["audit", *args, "--format", "json"], repo.path, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    return proc.returncode, proc.stderr, doc["findings"]


def skipped(stderr: str) -> int:
    m = re.search(r"sentra: (\d+) commits already scanned clean \(--full to rescan\)", stderr)
    return int(m.group(1)) if m else 0


def audited(stderr: str) -> int:
    m = re.search(r"sentra: audited (\d+) commits", stderr)
    assert m, stderr
    return int(m.group(1))


def test_second_audit_scans_only_what_is_not_known_clean(history: tuple[Repo, str], env: dict[str, str]) -> None:
    repo, token = history
    code1, err1, found1 = audit(repo, env)
    assert (code1, skipped(err1), audited(err1)) == (1, 0, 5)
    assert [f["rule_id"] for f in found1] == ["github-pat"]

    code2, err2, found2 = audit(repo, env)
    assert (code2, skipped(err2), audited(err2)) == (1, 4, 1)
    assert found2 == found1  # the same report
    assert "nothing recorded" not in err2

    # The commit with a finding is scanned again every time.
    code3, err3, found3 = audit(repo, env)
    assert (code3, skipped(err3), audited(err3), found3) == (1, 4, 1, found1)

    # --full rescans everything.
    code4, err4, found4 = audit(repo, env, "--full")
    assert (code4, skipped(err4), audited(err4), found4) == (1, 0, 5, found1)

    # The state lives in the git dir, untracked; a run from a subdirectory uses it too.
    assert sorted(p.name for p in (repo.path / ".git" / "sentra").iterdir()) == ["keys.json", "ledger.db"]
    assert repo.git("status", "--porcelain") == ""
    sub = sentra(["audit"], repo.path / "src", env=env)
    assert (sub.returncode, skipped(sub.stderr)) == (1, 4)

    # New commits: only they are new work.
    repo.commit_files({"docs/more.md": "more\n"}, "more")
    _, err5, found5 = audit(repo, env)
    assert (skipped(err5), audited(err5), found5) == (4, 2, found1)

    for err in (err1, err2, err3, err4, err5):
        assert token not in err
    hist = sentra(["history", "--json"], repo.path, env=env)
    assert hist.returncode == 0, hist.stderr
    runs = json.loads(hist.stdout)
    assert len(runs) == 6
    assert all(r["mode"] == "audit" and len(r["findings"]) == 1 for r in runs)
    assert_no_leak(hist, token)


@pytest.mark.parametrize("extra", [(), ("--include-messages",)])
def test_an_audit_on_the_worker_pool_records_as_one_stream_does(
    history: tuple[Repo, str], env: dict[str, str], extra: tuple[str, ...]
) -> None:
    """On the pool each batch's clean commits are recorded as the batch comes in (with
    commit messages, at the end); the ledger then holds what one stream records."""
    repo, token = history
    for n in range(12):
        repo.commit_files({f"src/mod{n}.py": f"value = {n}\n"}, f"module {n}")
    code1, err1, found1 = audit(repo, env, "--jobs", "2", *extra)
    assert (code1, skipped(err1), audited(err1)) == (1, 0, 17)
    code2, err2, found2 = audit(repo, env, "--jobs", "1", *extra)
    assert (code2, skipped(err2), audited(err2), found2) == (1, 16, 1, found1)
    hist = sentra(["history", "--json"], repo.path, env=env)
    runs = json.loads(hist.stdout)
    assert [len(r["findings"]) for r in runs] == [1, 1]
    assert_no_leak(hist, token)


def test_batches_recorded_before_a_failure_are_kept(
    history: tuple[Repo, str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool audit that fails in a late batch has recorded the batches before it: the next
    audit does not scan them again."""
    from sentra_scan import history as history_mod
    from sentra_scan.api import make_scanner
    from sentra_scan.errors import GitError
    from sentra_scan.incremental import scan_recorded
    from sentra_scan.ranges import Target

    repo, _ = history
    for n in range(12):
        repo.commit_files({f"src/mod{n}.py": f"value = {n}\n"}, f"module {n}")
    commits = repo.git("rev-list", "HEAD").split()
    monkeypatch.setenv("SENTRA_KEY", env["SENTRA_KEY"])
    bogus = Target("bad", commits=(*commits, "0" * 40))
    with pytest.raises(GitError):
        scan_recorded(make_scanner(start=repo.path), bogus, repo.path, mode="audit", jobs=2)
    batches = history_mod._batches([*commits, "0" * 40], 2)
    done = [c for b in batches[:-1] for c in b]  # every batch but the failing last one
    secret = repo.git("log", "--format=%H", "-n1", "--", "config/settings.py").strip()
    assert secret in done
    _, err, _ = audit(repo, env)
    assert skipped(err) == len(done) - 1  # all but the one with the secret


def test_changed_rules_invalidate_the_cache(history: tuple[Repo, str], env: dict[str, str]) -> None:
    repo, _ = history
    assert audited(audit(repo, env)[1]) == 5
    # A rule added: the commit recorded clean before holds what it finds.
    (repo.path / ".sentra.yaml").write_text(ACME_RULE, encoding="utf-8")
    _, err, found = audit(repo, env)
    assert (skipped(err), audited(err)) == (0, 5)
    assert sorted(f["rule_id"] for f in found) == ["acme-api-key", "github-pat"]
    # A rule disabled: again a new scanner version.
    (repo.path / ".sentra.yaml").write_text(ACME_RULE + "disable: [github-pat]\n", encoding="utf-8")
    code, err, found = audit(repo, env)
    assert (code, skipped(err), audited(err)) == (1, 0, 5)
    rules = {f["rule_id"] for f in found}
    assert "acme-api-key" in rules
    assert "github-pat" not in rules
    # Back to the first config: its cache is still valid.
    (repo.path / ".sentra.yaml").unlink()
    _, err, found = audit(repo, env)
    assert (skipped(err), [f["rule_id"] for f in found]) == (4, ["github-pat"])


def test_a_removed_baseline_entry_brings_the_finding_back(history: tuple[Repo, str], env: dict[str, str]) -> None:
    """A commit whose finding the baseline hid must not be cached as clean: the baseline
    can change (or its entry expire) without changing the rules (fail-open before the fix)."""
    repo, _ = history
    made = sentra(["baseline", "create"], repo.path, env=env)
    assert made.returncode == 0, made.stderr
    code, err, found = audit(repo, env)
    assert (code, found) == (0, [])
    (repo.path / ".sentra-baseline").unlink()
    code, err, found = audit(repo, env)
    assert code == 1
    assert [f["rule_id"] for f in found] == ["github-pat"]
    assert skipped(err) == 4  # the clean commits stay cached


def test_messages_are_not_skipped_by_a_scan_without_them(repo: Repo, env: dict[str, str]) -> None:
    """A commit scanned clean without --include-messages has not had its message scanned."""
    token = canary_github_token("in-a-message")
    repo.commit_files({"a.txt": "a\n"}, "first")
    repo.commit_files({"b.txt": "b\n"}, f"deploy with GITHUB_TOKEN={token}")
    assert audit(repo, env)[0] == 0
    code, _, found = audit(repo, env, "--include-messages")
    assert code == 1
    assert [f["rule_id"] for f in found] == ["github-pat"]


def test_no_key_source_still_scans_and_says_so_once(history: tuple[Repo, str], env: dict[str, str]) -> None:
    repo, token = history
    bare = {k: v for k, v in env.items() if k != "SENTRA_KEY"}
    proc = sentra(["audit"], repo.path, env=bare)
    assert proc.returncode == ExitCode.FINDINGS, proc.stderr
    assert "github-pat" in proc.stdout
    assert proc.stderr.count("sentra: nothing recorded:") == 1
    assert "no key source" in proc.stderr
    assert "SENTRA_KEY" in proc.stderr  # how to provide one
    assert "SENTRA_NO_RECORD=1 silences this" in proc.stderr
    assert_no_leak(proc, token)
    assert not (repo.path / ".git" / "sentra").exists()

    quiet = sentra(["audit"], repo.path, env={**bare, "SENTRA_NO_RECORD": "1"})
    assert quiet.returncode == ExitCode.FINDINGS
    assert "nothing recorded" not in quiet.stderr
    flag = sentra(["audit", "--no-record"], repo.path, env=bare)
    assert flag.returncode == ExitCode.FINDINGS
    assert "nothing recorded" not in flag.stderr
    assert not (repo.path / ".git" / "sentra").exists()


def test_no_record_leaves_the_ledger_alone(history: tuple[Repo, str], env: dict[str, str]) -> None:
    repo, _ = history
    audit(repo, env)
    state = repo.path / ".git" / "sentra"
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    _, err, _ = audit(repo, {**env, "SENTRA_NO_RECORD": "1"})
    assert (skipped(err), audited(err)) == (0, 5)  # no ledger: no skipping either
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before


def test_pre_push_skips_commits_already_pushed_clean(history: tuple[Repo, str], env: dict[str, str]) -> None:
    repo, token = history
    head = repo.head()
    stdin = f"refs/heads/main {head} refs/heads/main {ZERO}\n".encode()
    args = ["hook", "pre-push", "origin", "https://example.test/repo.git"]

    first = sentra(args, repo.path, env=env, input=stdin)
    assert first.returncode == ExitCode.FINDINGS, first.stderr
    assert "github-pat" in first.stderr
    assert skipped(first.stderr) == 0

    second = sentra(args, repo.path, env=env, input=stdin)
    assert second.returncode == ExitCode.FINDINGS, second.stderr
    assert skipped(second.stderr) == 4
    assert "github-pat" in second.stderr
    strip = re.compile(r"^sentra: \d+ commits already scanned clean.*\n", re.M)
    assert strip.sub("", second.stderr) == strip.sub("", first.stderr)
    for proc in (first, second):
        assert_no_leak(proc, token)

    full = sentra([*args, "--full"], repo.path, env=env, input=stdin)
    assert full.returncode == ExitCode.FINDINGS
    assert skipped(full.stderr) == 0


def test_clean_push_range_fully_known(repo: Repo, env: dict[str, str]) -> None:
    """Every commit known clean: nothing left to scan is not a reason to scan HEAD."""
    repo.commit_files({"a.txt": "a\n"})
    repo.commit_files({"b.txt": "b\n"})
    stdin = f"refs/heads/main {repo.head()} refs/heads/main {ZERO}\n".encode()
    args = ["hook", "pre-push", "origin", "https://example.test/repo.git"]
    assert sentra(args, repo.path, env=env, input=stdin).returncode == 0
    again = sentra(args, repo.path, env=env, input=stdin)
    assert again.returncode == 0, again.stderr
    assert skipped(again.stderr) == 2
