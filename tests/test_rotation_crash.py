"""Key rotation and rewrap killed at random moments (SIGKILL, seeded delays) never lose
the ledger: after every crash `history` opens and returns every scan with its findings."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import sentra_scan.cli.app  # noqa: F401 (imported before forking, so children start at the command)
from sentra_scan import crypto
from sentra_scan.errors import KeyStateError
from sentra_scan.keys import KEYS_FILE, DataKeys, KeySource, select_source
from sentra_scan.ledger import Ledger
from sentra_scan.model import CommitInfo, Finding, Location, ScanResult, Secret, Severity
from tests.helpers import Repo, canary_github_token, sentra

KEY = base64.b64encode(bytes(range(33, 65))).decode()
PASSWORD = "rotation crash drill 41"
SEED = 20260102


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for var in ("SENTRA_KEY_FILE", "SENTRA_PASSWORD", "SENTRA_KEY_SOURCE", "SENTRA_NO_RECORD", "SENTRA_NEW_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("SENTRA_KEY", KEY)
    return dict(os.environ)


def _finding(i: int) -> Finding:
    commit = CommitInfo(f"{i:040x}", "Rota Tion", "rota@example.test", "2026-01-02T03:04:05+00:00")
    return Finding(
        rule_id="github-pat",
        description="GitHub personal access token (classic)",
        severity=Severity.CRITICAL,
        location=Location(f"src/file{i}.py", i + 1, 5, 45, commit),
        fingerprint=f"{i:032x}",
        secret=Secret("never-recorded-value"),
        line_text="",
    )


@pytest.fixture
def ledger_repo(repo: Repo, env: dict[str, str]) -> Repo:
    """A real audit recorded, plus enough scans that a rotation takes a moment."""
    repo.commit_files({"a.txt": "hello\n"})
    repo.commit_files({"conf.py": f'token = "{canary_github_token("rotation")}"\n'})
    assert sentra(["audit"], repo.path, env=env).returncode == 1
    ledger = Ledger.open(DataKeys.open_or_create(state_dir(repo), select_source(env), create=False))
    ledger.conn.execute("PRAGMA synchronous = OFF")  # only to build the fixture quickly
    for i in range(150):
        ledger.record(
            mode="audit",
            target=f"scan {i}",
            scanner_version="v",
            duration_s=0.1,
            result=ScanResult((_finding(i), _finding(i + 1000))),
            scanned_commits=[f"{i + 5000:040x}"],
        )
    ledger.close()
    return repo


def state_dir(repo: Repo) -> Path:
    return repo.path / ".git" / "sentra"


def snapshot_history(repo: Repo, source: KeySource) -> list[tuple[Any, ...]]:
    keys = DataKeys.open_or_create(state_dir(repo), source, create=False)
    ledger = Ledger.open(keys)
    try:
        return [(r.id, r.seq, r.data, r.findings) for r in ledger.history(limit=10_000)]
    finally:
        ledger.close()


def cli_history(repo: Repo, env: dict[str, str]) -> list[dict[str, Any]]:
    proc = sentra(["history", "-n", "10000", "--json"], repo.path, env=env)
    assert proc.returncode == 0, proc.stderr
    doc: list[dict[str, Any]] = json.loads(proc.stdout)
    return doc


def _in_child(repo: str, args: list[str], environ: dict[str, str]) -> None:
    """A forked process that already imported Sentra: the kill lands inside the command."""
    os.chdir(repo)
    os.environ.clear()
    os.environ.update(environ)
    from sentra_scan.cli import main

    os._exit(main(args))


def kill_forked(repo: Repo, args: list[str], environ: dict[str, str], delay: float | None) -> int | None:
    """Run the command in a forked child; SIGKILL it after `delay` seconds (None: let it finish)."""
    proc = multiprocessing.get_context("fork").Process(target=_in_child, args=(str(repo.path), args, environ))
    proc.start()
    if delay is not None:
        time.sleep(delay)
        proc.kill()
    proc.join(60)
    return proc.exitcode


def kill_subprocess(repo: Repo, args: list[str], environ: dict[str, str], delay: float) -> int:
    cmd = [sys.executable, "-m", "sentra_scan", *args]
    proc = subprocess.Popen(cmd, cwd=repo.path, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(30)


def timed(fn: Any) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def test_rotate_killed_at_random_moments_loses_nothing(ledger_repo: Repo, env: dict[str, str]) -> None:
    repo = ledger_repo
    source = select_source(env)
    expected = snapshot_history(repo, source)
    assert len(expected) == 151
    assert sum(len(f) for *_, f in expected) == 301
    rng = random.Random(SEED)
    deadline = time.monotonic() + 40

    # How long a whole rotation takes, in a fresh process and in a forked one.
    whole = timed(lambda: sentra(["key", "rotate"], repo.path, env=env))
    forked = timed(lambda: kill_forked(repo, ["key", "rotate"], env, None))
    assert snapshot_history(repo, source) == expected

    outcomes = {"killed": 0, "finished": 0, "mid-rotation": 0}
    for i in range(25):
        if time.monotonic() > deadline:
            break
        if i % 5 == 0:  # the real command, killed anywhere in its life (start-up included)
            code = kill_subprocess(repo, ["key", "rotate"], env, rng.uniform(0, max(0.3, whole)))
        else:  # already imported: the kill lands inside the rotation (0-300 ms, scaled to its length)
            code = kill_forked(repo, ["key", "rotate"], env, rng.uniform(0, min(0.3, forked)))
        outcomes["killed" if code == -signal.SIGKILL else "finished"] += 1
        if len(json.loads((state_dir(repo) / KEYS_FILE).read_text())["keys"]) > 1:
            outcomes["mid-rotation"] += 1  # killed between adding the new key and dropping the old
        assert snapshot_history(repo, source) == expected, f"iteration {i}: history changed"
    assert outcomes["killed"] >= 10, outcomes
    assert outcomes["mid-rotation"] >= 1, outcomes

    # The CLI opens what the crashes left, then a clean rotation leaves one key.
    assert [(d["id"], d["findings"]) for d in cli_history(repo, env)] == [(r[0], list(r[3])) for r in expected]
    rotated = sentra(["key", "rotate"], repo.path, env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert "data key rotated" in rotated.stdout
    assert snapshot_history(repo, source) == expected
    envelope = json.loads((state_dir(repo) / KEYS_FILE).read_text())
    assert list(envelope["keys"]) == [envelope["active"]]
    # No hot journal left; a killed atomic write may leave only its (wrapped-key) temp file.
    assert {p.name for p in state_dir(repo).iterdir() if not p.name.endswith(".tmp")} == {
        KEYS_FILE,
        "ledger.db",
        ".lock",
    }
    integrity = Ledger.open(DataKeys.open_or_create(state_dir(repo), source, create=False))
    assert integrity.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    integrity.close()


def opens_with(repo: Repo, sources: dict[str, KeySource]) -> list[str]:
    ok = []
    for name, src in sources.items():
        try:
            DataKeys.open_or_create(state_dir(repo), src, create=False)
        except KeyStateError:
            continue
        ok.append(name)
    return ok


def test_rewrap_to_a_password_and_back_killed_at_random_moments(
    ledger_repo: Repo, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = ledger_repo
    key_src = select_source({"SENTRA_KEY": KEY})
    pw_src = select_source({"SENTRA_PASSWORD": PASSWORD})
    sources = {"key": key_src, "password": pw_src}
    expected = snapshot_history(repo, key_src)
    rng = random.Random(SEED + 1)
    pw_env = {k: v for k, v in env.items() if k != "SENTRA_KEY"} | {"SENTRA_PASSWORD": PASSWORD}
    to = {
        "password": ["key", "rewrap", "--to", "password"],
        "key": ["key", "rewrap", "--to", "key"],
    }
    envs = {"password": {**env, "SENTRA_NEW_PASSWORD": PASSWORD}, "key": {**pw_env, "SENTRA_NEW_KEY": KEY}}
    # The forked children inherit the minimum PBKDF2 count (the CLI runs below use the default).
    monkeypatch.setattr(crypto, "PBKDF2_DEFAULT_ITERATIONS", crypto.PBKDF2_MIN_ITERATIONS)
    took = {
        "password": timed(lambda: kill_forked(repo, to["password"], envs["password"], None)),
        "key": timed(lambda: kill_forked(repo, to["key"], envs["key"], None)),
    }
    assert opens_with(repo, sources) == ["key"]

    seen = set()
    for i in range(6):
        (which,) = opens_with(repo, sources)  # old or new, never neither, never both
        target = "password" if which == "key" else "key"
        kill_forked(repo, to[target], envs[target], rng.uniform(0, 1.3 * took[target]))  # some finish
        (now,) = opens_with(repo, sources)
        seen.add((which, now))
        assert snapshot_history(repo, sources[now]) == expected, f"iteration {i}"

    if opens_with(repo, sources) == ["password"]:
        assert sentra(to["key"], repo.path, env=envs["key"]).returncode == 0
    done = sentra(to["password"], repo.path, env=envs["password"])
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert opens_with(repo, sources) == ["password"]
    assert json.loads((state_dir(repo) / KEYS_FILE).read_text())["kdf"]["iterations"] == 600_000
    assert PASSWORD.encode() not in (state_dir(repo) / KEYS_FILE).read_bytes()
    assert [(d["id"], d["findings"]) for d in cli_history(repo, pw_env)] == [(r[0], list(r[3])) for r in expected]

    back = sentra(to["key"], repo.path, env=envs["key"])
    assert back.returncode == 0, back.stderr
    assert opens_with(repo, sources) == ["key"]
    assert [(d["id"], d["findings"]) for d in cli_history(repo, env)] == [(r[0], list(r[3])) for r in expected]
