"""The default key source for real: a private D-Bus session bus and gnome-keyring's Secret
Service, in throwaway HOME/XDG dirs, killed at teardown. Skipped (with the reason) where
gnome-keyring-daemon or dbus is not installed (scripts/bootstrap --system installs them)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentra_scan.keys import KEYRING_SERVICE
from tests.helpers import Repo, assert_no_leak, canary_github_token, sentra

BACKEND = "keyring.backends.SecretService.Keyring"
LOGIN_PASSWORD = "throwaway-login-keyring"  # unlocks the test's own login keyring (empty is refused)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except ProcessLookupError:
        return False
    except OSError:
        return True


def _kill(pid: int) -> None:
    """Stop the forked bus daemon: it is not our child, so poll instead of wait."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not _alive(pid):
            return
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _secret_service() -> Any:
    from keyring.backends import SecretService

    return SecretService.Keyring()


@pytest.fixture
def secret_service(hermetic_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A session bus and an unlocked gnome-keyring; yields the environment to run Sentra in."""
    missing = [tool for tool in ("gnome-keyring-daemon", "dbus-run-session", "dbus-daemon") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/bootstrap --system installs gnome-keyring and dbus)")
    for var in ("SENTRA_KEY", "SENTRA_KEY_FILE", "SENTRA_PASSWORD", "SENTRA_KEY_SOURCE", "SENTRA_NO_RECORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    # A short private directory: unix socket paths are limited to about 100 bytes.
    run_dir = Path(tempfile.mkdtemp(prefix="sentra-bus-"))
    run_dir.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_dir))
    bus = subprocess.run(
        [
            "dbus-daemon",
            "--session",
            "--fork",
            "--print-address=1",
            "--print-pid=1",
            f"--address=unix:path={run_dir / 'bus'}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if bus.returncode != 0:
        shutil.rmtree(run_dir, ignore_errors=True)
        pytest.skip(f"cannot start a D-Bus session bus: {bus.stderr.strip()}")
    address, bus_pid = bus.stdout.split()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    daemon = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    try:
        assert daemon.stdin is not None
        daemon.stdin.write(LOGIN_PASSWORD.encode())
        daemon.stdin.close()
        error: Exception | None = None
        for _ in range(100):  # ready when the unlocked login collection takes an item
            try:
                probe = _secret_service()
                probe.set_password("sentra-test-probe", "ready", "1")
                probe.delete_password("sentra-test-probe", "ready")
                break
            except Exception as exc:  # not up yet
                error = exc
                time.sleep(0.05)
        else:
            pytest.skip(f"gnome-keyring did not come up: {error}")
        yield dict(os.environ)
    finally:
        daemon.terminate()
        try:
            daemon.wait(5)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(5)
        _kill(int(bus_pid))
        shutil.rmtree(run_dir, ignore_errors=True)


def files_containing(data: bytes, root: Path) -> list[str]:
    hits = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and data in path.read_bytes():
                hits.append(str(path))
    return hits


def test_default_source_is_the_os_credential_store(
    repo: Repo, secret_service: dict[str, str], hermetic_env: Path
) -> None:
    env = secret_service
    token = canary_github_token("keyring")
    repo.commit_files({"a.txt": "hello\n"})
    repo.commit_files({"settings.py": f'token = "{token}"\n'})

    before = sentra(["key", "status"], repo.path, env=env)
    assert before.returncode == 0, before.stderr
    assert f"source: OS credential store ({BACKEND})" in before.stdout
    assert "state: none yet" in before.stdout
    assert _secret_service().get_password(KEYRING_SERVICE, "kek:none") is None  # the probe wrote nothing

    first = sentra(["audit"], repo.path, env=env)
    assert first.returncode == 1, first.stderr
    assert "nothing recorded" not in first.stderr
    assert_no_leak(first, token)

    git_dir = repo.path / ".git"
    envelope = json.loads((git_dir / "sentra" / "keys.json").read_text())
    assert envelope["source"] == "keyring"
    user = envelope["keyring_user"]
    assert user == f"kek:{envelope['store_id']}"
    kek = _secret_service().get_password(KEYRING_SERVICE, user)
    assert kek is not None
    assert len(base64.b64decode(kek)) == 32
    for form in (kek.encode(), base64.b64decode(kek)):
        assert files_containing(form, git_dir) == []
        assert files_containing(form, hermetic_env) == []  # gnome-keyring's own file is encrypted

    status = sentra(["key", "status", "--json"], repo.path, env=env)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["source"] == f"OS credential store ({BACKEND})"
    assert (info["state"], info["created_with"], info["keys"], info["scans_recorded"]) == ("opens", "keyring", 1, 1)
    assert kek not in status.stdout

    # Another process reads the key from the store: the second audit is incremental.
    second = sentra(["audit"], repo.path, env=env)
    assert second.returncode == 1
    assert "1 commits already scanned clean" in second.stderr

    rotated = sentra(["key", "rotate"], repo.path, env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert _secret_service().get_password(KEYRING_SERVICE, user) == kek  # the KEK stays; the data key changed
    history = sentra(["history", "--json"], repo.path, env=env)
    assert history.returncode == 0, history.stderr
    runs = json.loads(history.stdout)
    assert [len(r["findings"]) for r in runs] == [1, 1]
    assert_no_leak(history, token)


def test_rewrap_away_from_the_store_removes_its_entry(repo: Repo, secret_service: dict[str, str]) -> None:
    env = secret_service
    repo.commit_files({"a.txt": "hello\n"})
    assert sentra(["audit"], repo.path, env=env).returncode == 0
    keys_json = repo.path / ".git" / "sentra" / "keys.json"
    user = json.loads(keys_json.read_text())["keyring_user"]
    assert _secret_service().get_password(KEYRING_SERVICE, user) is not None

    new_key = base64.b64encode(os.urandom(32)).decode()
    moved = sentra(["key", "rewrap", "--to", "key"], repo.path, env={**env, "SENTRA_NEW_KEY": new_key})
    assert moved.returncode == 0, moved.stderr
    assert _secret_service().get_password(KEYRING_SERVICE, user) is None
    assert sentra(["history"], repo.path, env={**env, "SENTRA_KEY": new_key}).returncode == 0

    back = sentra(["key", "rewrap", "--to", "keyring"], repo.path, env={**env, "SENTRA_KEY": new_key})
    assert back.returncode == 0, back.stderr
    new_user = json.loads(keys_json.read_text())["keyring_user"]
    assert new_user != user
    assert _secret_service().get_password(KEYRING_SERVICE, new_user) is not None
    history = sentra(["history", "--json"], repo.path, env=env)
    assert history.returncode == 0, history.stderr
    assert len(json.loads(history.stdout)) == 1
